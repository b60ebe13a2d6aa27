"""Ground truth (the synthetic generator's, or a held-out real camera) in a workspace's world frame,
and scores of estimates against it.

Registration fixes its own gauge (floor at z = 0, but its own origin, heading and, without a scale
hint, its own unit), so ground-truth cameras are mapped into it by the similarity that best aligns the
cameras both know (at least three, by their centres) before anything is rendered or compared there.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reshoot.geometry.alignment import similarity_transform, transform_cameras
from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError
from reshoot.layout_io import Entity
from reshoot.shot_design import ShotPath


def registration_from_truth(truth: Camera, registered: Camera) -> np.ndarray:
    """[4, 4] similarity taking ground-truth world points into the registration's frame, fitted on the
    centres of the cameras both know (matched by name).

    Raises:
        InputError: fewer than three cameras are in both.
    """
    common = [n for n in registered.names if n in truth.names]
    if len(common) < 3:
        raise InputError(
            f"ground truth and registration share {len(common)} cameras ({common}); at least 3 are "
            "needed to align their frames."
        )
    return similarity_transform(truth.select(common).centers.numpy(), registered.select(common).centers.numpy())


def cameras_in_registration_frame(truth: Camera, registered: Camera) -> Camera:
    """Every camera of `truth`, moved into the frame of `registered` (see `registration_from_truth`)."""
    return transform_cameras(truth, registration_from_truth(truth, registered))


@dataclass(frozen=True)
class LayoutScores:
    """An estimated layout against the true one (both in the registration's frame).

    Attributes:
        matches: estimated entity name → true entity name (characters by their paths, props by centre).
        missing: true entities with no estimate; phantoms: estimated entities with no true one.
        floor_errors: per matched character, per frame both have: floor distance (metres).
        prop_centre_errors: per matched prop: distance between box centres (metres).
        recall: share of (true character, frame) pairs with an estimated character within `radius`.
        identity_switches: times the estimate nearest a true character changes name between frames
            where both are found.
    """

    matches: dict[str, str]
    missing: list[str]
    phantoms: list[str]
    floor_errors: dict[str, list[float]]
    prop_centre_errors: dict[str, float]
    recall: float
    identity_switches: int


def _entity_track(entity: Entity, transform: np.ndarray | None) -> dict:
    """frame (None for a prop) → (floor xy [2], box centre [3]) in the registration frame."""
    out = {}
    for f in entity.frames:
        centre = f.box.mean(axis=0)
        floor = f.floor
        if transform is not None:
            centre = transform[:3, :3] @ centre + transform[:3, 3]
            floor = transform[:3, :3] @ floor + transform[:3, 3]
        out[f.frame] = (floor[:2], centre)
    return out


def compare_layouts(
    estimate: Sequence[Entity], truth: Sequence[Entity], registration_from_truth_: np.ndarray, radius: float = 0.5
) -> LayoutScores:
    """Match estimated entities to true ones and measure the errors (see LayoutScores).

    Args:
        estimate, truth: the entities of two layouts (`read_layout`); the truth in its own frame.
        registration_from_truth_: [4, 4] similarity taking truth into the estimate's frame.
        radius: metres within which an estimate counts as finding a true entity.
    """
    from scipy.optimize import linear_sum_assignment

    matches, floor_errors, prop_errors = {}, {}, {}
    missing, phantoms = [], []
    for kind in ("character", "prop"):
        est = [e for e in estimate if e.kind == kind]
        tru = [e for e in truth if e.kind == kind]
        est_tracks = [_entity_track(e, None) for e in est]
        tru_tracks = [_entity_track(e, registration_from_truth_) for e in tru]
        cost = np.full((len(est), len(tru)), 1e6)
        for i, a in enumerate(est_tracks):
            for j, b in enumerate(tru_tracks):
                if kind == "prop":
                    distance = float(np.linalg.norm(a[None][1][:2] - b[None][1][:2]))
                else:
                    shared = [f for f in a if f in b]
                    distance = float(np.median([np.linalg.norm(a[f][0] - b[f][0]) for f in shared])) if shared else 1e6
                if distance < radius:
                    cost[i, j] = distance
        rows, cols = linear_sum_assignment(cost) if cost.size else ([], [])
        paired = {(i, j) for i, j in zip(rows, cols) if cost[i, j] < 1e6}
        for i, j in paired:
            matches[est[i].name] = tru[j].name
            if kind == "prop":
                prop_errors[tru[j].name] = float(np.linalg.norm(est_tracks[i][None][1] - tru_tracks[j][None][1]))
            else:
                shared = sorted(f for f in est_tracks[i] if f in tru_tracks[j])
                floor_errors[tru[j].name] = [
                    float(np.linalg.norm(est_tracks[i][f][0] - tru_tracks[j][f][0])) for f in shared
                ]
        missing += [tru[j].name for j in range(len(tru)) if j not in {p[1] for p in paired}]
        phantoms += [est[i].name for i in range(len(est)) if i not in {p[0] for p in paired}]
    found, total, switches = 0, 0, 0
    characters = [e for e in estimate if e.kind == "character"]
    tracks = {e.name: _entity_track(e, None) for e in characters}
    for e in truth:
        if e.kind != "character":
            continue
        true_track = _entity_track(e, registration_from_truth_)
        previous = None
        for frame, (floor, _) in sorted(true_track.items()):
            total += 1
            near = [(float(np.linalg.norm(t[frame][0] - floor)), name) for name, t in tracks.items() if frame in t]
            near = [n for n in near if n[0] < radius]
            if near:
                found += 1
                name = min(near)[1]
                switches += int(previous is not None and name != previous)
                previous = name
    return LayoutScores(matches, missing, phantoms, floor_errors, prop_errors, found / max(total, 1), switches)


def true_boxes_in_frame(
    path: ShotPath, truth: Sequence[Entity], registration_from_truth_: np.ndarray, names: list[str] | None = None
) -> np.ndarray:
    """[T] per shot frame: does every corner of the true entities' boxes project inside the image?

    Args:
        path: the shot's cameras (registration frame).
        truth: ground-truth entities (`read_layout` of the take's gt/entities.json: the generator's frame).
        registration_from_truth_: [4, 4] similarity into the registration's frame.
        names: only these entities; None = all of them.

    Raises:
        InputError: a true entity has no box for a frame of the shot.
    """
    inside = []
    for i, frame in enumerate(path.frames):
        corners = []
        for e in truth:
            if names is not None and e.name not in names:
                continue
            entry = next((f for f in e.frames if f.frame in (None, int(frame))), None)
            if entry is None:
                raise InputError(f"ground-truth entity {e.name!r} has no box for frame {int(frame)}.")
            lo, hi = entry.box
            corners += [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        world = (
            np.asarray(corners).reshape(-1, 3) @ registration_from_truth_[:3, :3].T + registration_from_truth_[:3, 3]
        )
        cam = world @ path.cam_from_world[i, :3, :3].T + path.cam_from_world[i, :3, 3]
        u = path.K[0, 0] * cam[:, 0] / cam[:, 2] + path.K[0, 2]
        v = path.K[1, 1] * cam[:, 1] / cam[:, 2] + path.K[1, 2]
        inside.append(
            bool(
                (cam[:, 2] > 0).all()
                and (u > -0.5).all()
                and (u < path.width - 0.5).all()
                and (v > -0.5).all()
                and (v < path.height - 0.5).all()
            )
        )
    return np.asarray(inside)


TRUE_DEPTH_AGREEMENT = 0.02
"""A production camera filmed a true surface point where its true depth there is within this fraction."""


def true_filmed_mask(
    depth: np.ndarray, held: Camera, production: Camera, production_depths: list[np.ndarray]
) -> np.ndarray:
    """Which pixels of a ground-truth camera show a surface some production camera filmed, from true depth alone.

    Args:
        depth: [H, W] the held-out camera's true z-depth (0 = no surface), generator frame.
        held: that one camera (generator frame).
        production: V production cameras (generator frame; their lens distortion applied).
        production_depths: V true z-depths [H_v, W_v] at the same frame.

    Returns:
        [H, W] bool: a surface, landing inside some production image where that camera's true depth at the
        nearest pixel is within TRUE_DEPTH_AGREEMENT of the point's.
    """
    import torch

    height, width = depth.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = torch.from_numpy(np.stack([xs, ys], -1).reshape(1, -1, 2))
    points = held.to(torch.float64).unproject(pixels, torch.from_numpy(depth.astype(np.float64)).reshape(1, -1))[0]
    filmed = np.zeros(height * width, bool)
    for v in range(len(production)):
        projection = production.select(v).to(torch.float64).project(points)
        uv, z = projection.pixels[0].numpy(), projection.depth[0].numpy()
        col, row = np.round(uv[:, 0]).astype(np.int64), np.round(uv[:, 1]).astype(np.int64)
        their = production_depths[v]
        inside = (z > 0) & (col >= 0) & (col < their.shape[1]) & (row >= 0) & (row < their.shape[0])
        agree = np.abs(their[row[inside], col[inside]] - z[inside]) <= TRUE_DEPTH_AGREEMENT * z[inside]
        filmed[np.flatnonzero(inside)[agree]] = True
    return filmed.reshape(height, width) & (depth > 0)


def ground_truth_shot(workspace: str | Path, take: str | Path, camera: str, name: str, overwrite: bool = False) -> Path:
    """Make shot `name` the synthetic take's ground-truth camera `camera` (moved into the registration's
    frame) and write its true frames beside it, for `reshoot check --truth`.

    Writes `shots/NAME/` (as `reshoot shoot --cameras` does) and `shots/NAME/truth/NNNNNN.png` plus
    `truth/entity/NNNNNN.png` (16-bit generator entity id + 1) for every frame of the take.

    Raises:
        InputError: the take has no ground truth for `camera`.
    """
    import imageio.v3 as iio

    from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
    from reshoot.geometry.files import atomic_directory
    from reshoot.shots import shoot
    from reshoot.synthetic import TakePaths
    from reshoot.workspace import Workspace

    root, paths = Path(workspace), TakePaths(take)
    truth = read_cameras_json(paths.cameras).cameras
    frames_folder, maps = paths.frames(camera), paths.maps(camera)
    if camera not in truth.names or not frames_folder.is_dir() or not maps.is_file():
        raise InputError(
            f"{take}: no ground truth for camera {camera!r} (need gt/cameras.json, {frames_folder} and {maps})."
        )
    registered = read_cameras_json(Workspace(root).cameras).cameras
    moved = cameras_in_registration_frame(truth, registered).select([camera])
    with tempfile.TemporaryDirectory() as tmp:
        cameras_file = Path(tmp) / "camera.json"
        write_cameras_json(cameras_file, moved)
        result = shoot(root, None, name, cameras_file, overwrite=overwrite)
    labels = np.load(maps)
    with atomic_directory(Workspace(root).shot(result.name).truth, overwrite=True) as out:
        (out / "entity").mkdir()
        for frame, ids in zip(labels["frames"], labels["entity_ids"]):
            stem = f"{int(frame):06d}.png"
            shutil.copyfile(frames_folder / stem, out / stem)
            iio.imwrite(out / "entity" / stem, (ids + 1).astype(np.uint16))
    return result.folder
