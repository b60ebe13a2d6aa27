"""Shot design: a `ShotSpec` and the scene's layout → a camera per frame (`ShotPath`).

A designed shot aims at its subject (the centre of everyone for wide shots, the target otherwise), looks
from the spec's side (by default the side of the first production camera, so screen left and right
match the A-camera) at its pitch or camera height, and sits at the distance that frames the subject
with the size's fill. Moves (push in, pull out, crane, orbit) change that over the shot with a quintic
ease (zero velocity and acceleration at both ends). Entities that must stay in frame (`keep`, and
everyone framed by a wide or full shot) are then checked in every frame, box corners padded by the
layout's uncertainty; when one would leave the frame the whole path is pulled back from its aim by one
factor, found by bisection, so the move keeps its shape.

Explicit shots interpolate keyed cameras from a file with C2 splines: cubic for the positions (clamped
ends), `scipy.spatial.transform.RotationSpline` for the rotations, so nothing jerks at a key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import CamerasDocument
from reshoot.geometry.conventions import focal_px_from_mm, look_at, look_down
from reshoot.geometry.errors import InputError
from reshoot.shot_spec import ShotSpec

DEFAULT_LENS_MM = 35.0
BOX_PAD_M = 0.15  # layout boxes are padded by about their position error before framing
FRAME_MARGIN = 0.03  # kept entities stay this share of the frame away from every edge
MIN_EYE_HEIGHT_M = 0.15
MATCH_HEADING_DEG = 90.0  # a matched camera looks from the side of the camera it matches


@dataclass(frozen=True)
class EntityTrack:
    """An entity of the layout (`reshoot.layout_io.Entity`) on every frame of the take: what framing,
    conditioning and the check need of it.

    Attributes:
        name, kind, entity_id: the entity's.
        boxes: [T, 2, 3] box min and max per take frame (index = frame - first frame), world metres
            (`Entity.boxes`: frames where it was not found take the box of the nearest frame where it was).
    """

    name: str
    kind: str
    entity_id: int
    boxes: np.ndarray

    def box_at(self, frame_index: int) -> np.ndarray:
        """[2, 3] box min and max at take frame index `frame_index` (the last box past the end)."""
        return self.boxes[min(frame_index, len(self.boxes) - 1)]


@dataclass(frozen=True)
class SceneFacts:
    """What shot design needs to know about a workspace.

    Attributes:
        first_frame, frame_count, fps: the take.
        cameras: the registered production cameras.
        entities: the layout's entities by name.
    """

    first_frame: int
    frame_count: int
    fps: float
    cameras: Camera
    entities: dict[str, EntityTrack]

    @property
    def take(self) -> range:
        return range(self.first_frame, self.first_frame + self.frame_count)


@dataclass(frozen=True)
class ShotPath:
    """A camera per frame.

    Attributes:
        frames: [T] take frame numbers.
        K: [3, 3] intrinsics (pixels, OpenCV pixel centres).
        width, height: image size in pixels.
        cam_from_world: [T, 4, 4] float64, OpenCV axes.
        widened_by: factor by which the designed distance was pulled back to keep entities in frame (1 = none).
    """

    frames: np.ndarray
    K: np.ndarray
    width: int
    height: int
    cam_from_world: np.ndarray
    widened_by: float = 1.0


def ease(s: np.ndarray) -> np.ndarray:
    """Quintic smootherstep on [0, 1]: 0 → 0, 1 → 1, first and second derivatives 0 at both ends."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (s * (6 * s - 15) + 10)


def default_heading(cameras: Camera) -> float:
    """Direction (radians, counter-clockwise from +x) the first production camera looks, on the floor."""
    forward = cameras.cam_from_world[0, 2, :3].double().numpy()
    if np.hypot(forward[0], forward[1]) < 1e-6:
        return math.pi / 2
    return math.atan2(forward[1], forward[0])


def _shot_frames(spec: ShotSpec, facts: SceneFacts) -> np.ndarray:
    take = facts.take
    if spec.frames is None:
        return np.arange(take.start, take.stop)
    start, stop = spec.frames
    if start < take.start or stop > take.stop or stop <= start:
        raise InputError(f"shot frames {start}:{stop} are outside the take (frames {take.start} to {take.stop - 1}).")
    return np.arange(start, stop)


def _intrinsics(spec: ShotSpec, facts: SceneFacts, reference: Camera | None) -> tuple[np.ndarray, int, int]:
    """K, width, height: the resolution asked for (else the first production camera's) and the lens."""
    base = reference if reference is not None else facts.cameras.select(0)
    width, height = spec.resolution or (int(base.width[0]), int(base.height[0]))
    if spec.lens_mm is None and reference is not None:
        K = reference.K[0].double().numpy().copy()
        scale = width / int(reference.width[0])
        K[:2] *= scale
        K[0, 2], K[1, 2] = (width - 1) / 2, (height - 1) / 2
        return K, width, height
    focal = focal_px_from_mm(spec.lens_mm or DEFAULT_LENS_MM, width)
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]]), width, height


def _entity(facts: SceneFacts, name: str) -> EntityTrack:
    if name not in facts.entities:
        raise InputError(
            f"the shot names {name!r}, which is not in the layout ({', '.join(facts.entities) or 'empty'}); "
            "rerun `reshoot layout` or use one of those names."
        )
    return facts.entities[name]


def _corners(tracks: list[EntityTrack], index: np.ndarray) -> np.ndarray:
    """[T, 8 * E, 3] padded box corners of `tracks` at take-frame indices `index`."""
    if not tracks:
        return np.zeros((len(index), 0, 3))
    boxes = np.stack([t.boxes[index] for t in tracks], axis=1)  # [T, E, 2, 3]
    lo, hi = boxes[:, :, 0] - BOX_PAD_M, boxes[:, :, 1] + BOX_PAD_M
    lo[..., 2] = np.maximum(lo[..., 2], 0.0)  # nothing stands below the floor
    pick = np.array([[i >> 0 & 1, i >> 1 & 1, i >> 2 & 1] for i in range(8)], dtype=bool)  # [8, 3]
    corners = np.where(pick[None, None], hi[:, :, None], lo[:, :, None])  # [T, E, 8, 3]
    return corners.reshape(len(index), -1, 3)


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (frames), edges held."""
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(values, sigma, axis=0, mode="nearest") if sigma > 0 and len(values) > 1 else values


def _rolled(cam_from_world: torch.Tensor, roll_deg: float) -> torch.Tensor:
    if roll_deg == 0:
        return cam_from_world
    c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    roll = torch.eye(4, dtype=torch.float64)
    roll[:2, :2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return roll @ cam_from_world


def _fits(cam_from_world: np.ndarray, K: np.ndarray, width: int, height: int, points: np.ndarray, limit: float) -> bool:
    """Do all `points` ([T, P, 3], world) project in front of and inside the central `limit` share of the frame?"""
    if points.shape[1] == 0:
        return True
    cam = np.einsum("tij,tpj->tpi", cam_from_world[:, :3, :3], points) + cam_from_world[:, None, :3, 3]
    z = cam[..., 2]
    if (z <= 1e-3).any():
        return False
    u = (K[0, 0] * cam[..., 0] / z + K[0, 2] - (width - 1) / 2) / (width / 2)
    v = (K[1, 1] * cam[..., 1] / z + K[1, 2] - (height - 1) / 2) / (height / 2)
    return bool((np.abs(u) <= limit).all() and (np.abs(v) <= limit).all())


@dataclass(frozen=True)
class _Design:
    """The pieces of a designed path, each per frame ([T] or [T, 3])."""

    aim: np.ndarray
    heading: np.ndarray  # radians
    distance_scale: np.ndarray  # move's factor on the framing distance
    rise: np.ndarray  # crane rise, in units of the framing distance
    height: float | None  # fixed eye height (metres) or None for a pitch
    elevation: float  # degrees, when height is None

    def poses(self, distance: float, roll_deg: float, raise_m: float) -> np.ndarray:
        """[T, 4, 4] cam_from_world at framing distance `distance` (metres)."""
        out = []
        for t in range(len(self.aim)):
            direction = np.array([math.cos(self.heading[t]), math.sin(self.heading[t]), 0.0])
            d = distance * self.distance_scale[t]
            if self.height is not None:
                eye = self.aim[t] - d * direction
                eye[2] = self.height
            elif self.elevation >= 90.0:
                eye = self.aim[t] + np.array([0.0, 0.0, d])
            else:
                el = math.radians(self.elevation)
                forward = np.array([math.cos(el) * direction[0], math.cos(el) * direction[1], -math.sin(el)])
                eye = self.aim[t] - d * forward
            eye[2] = max(MIN_EYE_HEIGHT_M, eye[2] + self.rise[t] * distance + raise_m)
            if self.elevation >= 90.0 and self.height is None:
                pose = look_down(eye, image_up=direction)
            else:
                pose = look_at(eye, self.aim[t])
            out.append(_rolled(pose, roll_deg).numpy())
        return np.stack(out)


def design_shot(spec: ShotSpec, facts: SceneFacts, keyframes: CamerasDocument | None = None) -> ShotPath:
    """A camera per frame for `spec` (see the module docstring).

    Args:
        keyframes: the explicit cameras of an explicit spec (ignored otherwise).

    Raises:
        InputError: frames outside the take, names not in the layout or registration, an explicit spec
            without its cameras, or entities that cannot be kept in frame.
    """
    frames = _shot_frames(spec, facts)
    if spec.explicit:
        if keyframes is None:
            raise InputError(f"the shot follows the cameras in {spec.keyframes}, which were not given.")
        return _explicit_path(spec, keyframes, frames)
    reference = None
    if spec.match_camera is not None:
        if spec.match_camera not in facts.cameras.names:
            raise InputError(
                f"the shot matches camera {spec.match_camera!r}, which is not registered "
                f"({', '.join(facts.cameras.names)})."
            )
        reference = facts.cameras.select(spec.match_camera)
    K, width, height = _intrinsics(spec, facts, reference)
    index = frames - facts.first_frame
    everyone = list(facts.entities.values())
    target = _entity(facts, spec.target) if spec.target is not None else None
    kept = [_entity(facts, k) for k in spec.keep]
    framed = everyone if spec.size == "wide" or target is None else [target]
    if not framed:
        raise InputError(
            "the layout has no characters or props to frame; run `reshoot layout` on a take with "
            "something in it, or give explicit cameras with --cameras."
        )

    T = len(frames)
    s = ease(np.arange(T) / max(T - 1, 1))
    framed_corners = _corners(framed, index)
    group_centre = (framed_corners.reshape(-1, 3).min(0) + framed_corners.reshape(-1, 3).max(0)) / 2
    aim = np.broadcast_to(group_centre, (T, 3)).copy()
    if target is not None:
        target_centre = _smooth(target.boxes[index].mean(axis=1), facts.fps / 4)
        if spec.follow:
            aim = target_centre
        elif spec.move == "push_in" or spec.size != "wide":
            weight = s[:, None] if spec.move == "push_in" and spec.size == "wide" else np.ones((T, 1))
            aim = aim + weight * (target_centre - aim)

    heading0 = default_heading(facts.cameras if reference is None else reference)
    if reference is not None and spec.heading_offset_deg == 0:
        heading0 += math.radians(MATCH_HEADING_DEG)
    heading = np.full(T, heading0 + math.radians(spec.heading_offset_deg))
    amount = spec.move_amount * spec.speed
    scale, rise = np.ones(T), np.zeros(T)
    if spec.move.startswith("orbit"):
        heading = heading + math.radians(amount) * s
    elif spec.move == "push_in":
        scale = 1.0 - min(amount, 0.85) * s
    elif spec.move == "pull_out":
        scale = 1.0 + amount * s
    elif spec.move in ("crane_up", "crane_down"):
        rise = (1 if spec.move == "crane_up" else -1) * amount * s

    eye_height = spec.height_m
    if reference is not None:
        eye_height = float(reference.centers[0, 2])
    elevation = spec.elevation_deg if spec.elevation_deg is not None else 0.0
    design = _Design(aim, heading, scale, rise, eye_height, elevation)

    # The framing distance: the subject (at the start of the move) just fits, then the size's fill.
    still = _Design(aim, heading, np.ones(T), np.zeros(T), eye_height, elevation)
    fill = spec.fill
    fit = _bisect(
        lambda d: _fits(still.poses(d, 0.0, spec.raise_m), K, width, height, framed_corners, min(fill, 1.0)),
        what="the subject",
    )
    distance = fit / max(fill, 1.0) * spec.distance_scale

    # A wide or full framing holds for the whole shot, except that a push-in means to leave it.
    required = kept + (framed if fill <= 1.0 and spec.move != "push_in" else [])
    required_corners = _corners(list({t.name: t for t in required}.values()), index)
    limit = 1.0 - 2 * FRAME_MARGIN
    widened = 1.0
    if not _fits(design.poses(distance, spec.roll_deg, spec.raise_m), K, width, height, required_corners, limit):
        names = ", ".join(t.name for t in required)
        widened = _bisect(
            lambda k: _fits(
                design.poses(distance * k, spec.roll_deg, spec.raise_m), K, width, height, required_corners, limit
            ),
            what=names,
            low=1.0,
        )
    poses = design.poses(distance * widened, spec.roll_deg, spec.raise_m)
    return ShotPath(frames, K, width, height, poses, widened)


def _bisect(ok, what: str, low: float = 0.05, iterations: int = 40) -> float:
    """The smallest x ≥ low (to 0.1 %) with ok(x), assuming ok is monotone in x.

    Raises:
        InputError: not even 4096 × low works.
    """
    high = low
    while not ok(high):
        high *= 2
        if high > 4096 * low:
            raise InputError(
                f"{what} cannot be framed from this angle and height (it stays outside or behind the "
                "camera); choose another angle or drop it from the shot."
            )
    if high == low:
        return low
    low_ = high / 2
    for _ in range(iterations):
        if high - low_ <= 1e-3 * high:
            break
        mid = (low_ + high) / 2
        low_, high = (low_, mid) if ok(mid) else (mid, high)
    return high


def _explicit_path(spec: ShotSpec, keyframes: CamerasDocument, frames: np.ndarray) -> ShotPath:
    """Interpolate the keyed camera (the file's only camera) to every frame of the shot; apply the offsets."""
    from scipy.interpolate import CubicSpline
    from scipy.spatial.transform import Rotation, RotationSpline

    camera = keyframes.cameras.select(0)
    path = keyframes.paths.get(camera.names[0])
    if path is None or len(path.frames) == 1:
        source = path.cam_from_world[0] if path is not None else camera.cam_from_world[0]
        keyed = frames
        world = np.broadcast_to(torch.linalg.inv(source.double()).numpy(), (len(frames), 4, 4)).copy()
    else:
        key_frames = path.frames.numpy()
        order = np.argsort(key_frames)
        key_frames = key_frames[order]
        key_world = torch.linalg.inv(path.cam_from_world.double()).numpy()[order]
        keyed = frames[(frames >= key_frames[0]) & (frames <= key_frames[-1])]
        if not len(keyed):
            raise InputError(
                f"the keyed camera has keys for frames {key_frames[0]} to {key_frames[-1]}, none of the "
                f"shot's frames ({frames[0]} to {frames[-1]})."
            )
        positions = CubicSpline(key_frames, key_world[:, :3, 3], bc_type="clamped")(keyed)
        rotations = RotationSpline(key_frames, Rotation.from_matrix(key_world[:, :3, :3]))(keyed).as_matrix()
        world = np.tile(np.eye(4), (len(keyed), 1, 1))
        world[:, :3, :3] = rotations
        world[:, :3, 3] = positions
    right, forward = world[:, :3, 0], world[:, :3, 2]
    world[:, :3, 3] += spec.dolly_m * forward + spec.truck_m * right
    world[:, 2, 3] += spec.raise_m
    K = camera.K[0].double().numpy().copy()
    width, height = int(camera.width[0]), int(camera.height[0])
    if spec.resolution is not None:
        K[:2] *= spec.resolution[0] / width
        width, height = spec.resolution
    if spec.lens_mm is not None:
        K[0, 0] = K[1, 1] = focal_px_from_mm(spec.lens_mm, width)
    return ShotPath(np.asarray(keyed), K, width, height, np.linalg.inv(world))
