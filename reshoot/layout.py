"""Stage `reshoot layout WS`: where every character and prop stands, in 3D, frame by frame.

- **Characters**: per frame, each camera's foreground (frame vs clean plate) is carved into a visual
  hull (`geometry/carving.py`; with a reconstruction, the set's depth keeps a prop from cutting away
  an actor behind it); characters are found in it and tracked (`reshoot/characters.py`). Where
  registration found no floor, characters are found by size alone.
- **Props**: the static reconstruction (`splats/background.ply`, else the registration's points)
  without the floor and the walls (RANSAC planes, `geometry/planes.py`), clustered with DBSCAN.
- **Names**: `character_N` / `prop_N` by default; an existing `layout.json` is read first and
  entities found again keep their id and (possibly user-given) name.

Writes `WS/layout.json` (`reshoot/layout` v1) and `WS/layout_plan.png` (top-down plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.background import foreground_mask, prepared_image, prepared_plates
from reshoot.characters import (
    CharacterTracker,
    Detection,
    _Track,
    character_search,
    detect_characters,
)
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.carving import carve, check_voxel_grid, grid_views
from reshoot.geometry.errors import InputError
from reshoot.geometry.planes import vertical_planes
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.splats.render import render_each
from reshoot.layout_io import Entity, EntityFrame, Layout, read_layout, write_layout
from reshoot.layout_plan import draw_plan
from reshoot.stage_options import LayoutOptions
from reshoot.workspace import Workspace, load_workspace

FAILED_CAMERA_FOREGROUND = 0.4  # a camera whose median foreground share exceeds this has no usable plate


@dataclass(frozen=True)
class LayoutSummary:
    """What `layout` found: entity names by kind, cameras left out, warnings, the files written."""

    characters: list[str]
    props: list[str]
    cameras_left_out: list[str]
    warnings: list[str]
    layout: Path
    plan: Path


def layout(
    workspace: str | Path, options: LayoutOptions | None = None, progress: ProgressFn | None = None
) -> LayoutSummary:
    """Find characters and props, track the characters, write `layout.json` and the plan.

    Raises:
        InputError: no registration yet, or fewer than two cameras with a usable background model.
    """
    options = options or LayoutOptions()
    report = progress or no_progress
    root = Path(workspace)
    settings = load_workspace(root)
    ws = Workspace(root)
    if not ws.cameras.is_file():
        raise InputError(f"{root}: no registration yet. Run `reshoot register {root}` first.")
    cameras = read_cameras_json(ws.cameras).cameras
    check_voxel_grid(*character_search(ws, cameras, options).bounds, options.voxel_size)  # before any work
    previous = _previous_entities(ws.layout)  # a hand-edited layout.json that does not read stops us here
    footage = settings.open_footage()
    frames = list(footage.frames)
    warnings: list[str] = []
    try:
        small = cameras.scaled(options.downscale).pinhole()
        plates = prepared_plates(
            footage, cameras, options.downscale, options.samples, report, settings.open_plates(footage)
        )
        images = {}
        masks = {}
        for k, frame in enumerate(frames):
            images[frame] = [
                prepared_image(footage.source(n).read(frame), cameras.select(i), options.downscale)
                for i, n in enumerate(cameras.names)
            ]
            masks[frame] = torch.stack(
                [foreground_mask(im, plates[n].rgb) for im, n in zip(images[frame], cameras.names)]
            )
            report("foreground", k + 1, len(frames))
    finally:
        footage.close()

    shares = torch.stack([masks[f].float().mean((1, 2)) for f in frames]).median(0).values
    usable = [i for i in range(len(cameras)) if float(shares[i]) <= FAILED_CAMERA_FOREGROUND]
    left_out = [cameras.names[i] for i in range(len(cameras)) if i not in usable]
    for name in left_out:
        warnings.append(
            f"camera {name}: its background model fails (most of the picture differs from its clean "
            "plate: a moving camera or flickering light?); it is left out of the character search."
        )
    if len(usable) < 2:
        raise InputError(
            f"{root}: only {len(usable)} camera(s) have a usable background model "
            f"({left_out} do not); characters need at least two."
        )
    small_used = small.select(usable)
    occluders = _set_depth(ws, small_used)
    if occluders is None:
        warnings.append(
            "no reconstruction (splats/background.ply): props cannot hide characters from the carving, "
            "and props come from the sparse registration points. Run `reshoot reconstruct` first "
            "for a better layout."
        )
    search = character_search(ws, cameras, options)
    warnings += search.warnings
    options, bounds = search.options, search.bounds
    tracker = CharacterTracker(options)
    grid = grid_views(small_used, *bounds, options.voxel_size, occluder_depth=occluders)
    for k, frame in enumerate(frames):
        fg = masks[frame][usable]
        hull = carve(grid, fg)
        tracker.update(
            frame,
            detect_characters(
                frame,
                hull,
                small_used,
                fg,
                [images[frame][i] for i in usable],
                options,
                tracker.expected(frame),
                occluders,
            ),
        )
        report("characters", k + 1, len(frames))
    tracks = tracker.tracks(len(frames))
    if not tracks:
        warnings.append("nothing moves in this take: the layout holds props only.")
    props = find_props(ws)
    entities = _named_entities(tracks, props, previous)
    result = Layout(
        tuple(entities), tuple(cameras.names), tuple(left_out), (frames[0], frames[-1] + 1), tuple(warnings)
    )
    write_layout(ws.layout, result)
    plan = ws.layout_plan
    draw_plan(plan, result.entities, cameras, bounds)
    return LayoutSummary(
        [e.name for e in result.of_kind("character")],
        [e.name for e in result.of_kind("prop")],
        left_out,
        warnings,
        ws.layout,
        plan,
    )


def _set_depth(ws: Workspace, cameras: Camera) -> torch.Tensor | None:
    """[V, H, W] z-depth of the reconstructed set in each camera, or None without a reconstruction."""
    path = ws.set_splats
    if not path.is_file():
        return None
    from reshoot.geometry.splats.ply import read_splat_ply

    return torch.stack([render.depth[0] for render in render_each(read_splat_ply(path), cameras)])


@dataclass(frozen=True)
class Prop:
    """A static object standing in the set: its box (metres) and how many points support it."""

    box_min: np.ndarray
    box_max: np.ndarray
    support: int


def find_props(ws: Workspace, min_height: float = 0.15, min_points: int = 50) -> list[Prop]:
    """Props: the set's points minus the floor and the walls, clustered (open3d DBSCAN); clusters that
    nearly touch are merged, and a prop needs `min_points` points and `min_height` metres."""
    import open3d as o3d

    points = _set_points(ws)
    points = points[(points[:, 2] > 0.04)]
    walls = vertical_planes(points, distance=0.04, min_share=0.1)
    if walls:
        points = np.delete(points, np.concatenate([w.inliers for w in walls]), axis=0)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    labels = np.asarray(cloud.cluster_dbscan(eps=0.1, min_points=8))
    kept = np.asarray(cloud.points)
    pieces = []
    for cluster in range(labels.max() + 1 if len(labels) else 0):
        members = kept[labels == cluster]
        lo, hi = np.percentile(members, 2, axis=0), np.percentile(members, 98, axis=0)
        lo[2] = 0.0  # props stand on the floor
        pieces.append(Prop(lo, hi, len(members)))
    props = [p for p in _merged(pieces) if p.support >= min_points and p.box_max[2] >= min_height]
    return sorted(props, key=lambda p: (float(p.box_min[0]), float(p.box_min[1])))


def _merged(props: list[Prop], gap: float = 0.1) -> list[Prop]:
    """Clusters whose floor boxes overlap or nearly touch (within `gap` metres) are one prop seen in
    pieces (a table's top and its foot, a cabinet's sides)."""
    props = list(props)
    merged = True
    while merged:
        merged = False
        for i in range(len(props)):
            for j in range(i + 1, len(props)):
                a, b = props[i], props[j]
                apart = np.maximum(a.box_min[:2] - b.box_max[:2], b.box_min[:2] - a.box_max[:2]).max()
                if apart < gap:
                    props[i] = Prop(
                        np.minimum(a.box_min, b.box_min), np.maximum(a.box_max, b.box_max), a.support + b.support
                    )
                    del props[j]
                    merged = True
                    break
            if merged:
                break
    return props


def _set_points(ws: Workspace) -> np.ndarray:
    """[N, 3] the static set: opaque, small splats of the reconstruction, else the sparse points."""
    path = ws.set_splats
    if path.is_file():
        from reshoot.geometry.splats.ply import read_splat_ply

        g = read_splat_ply(path)
        keep = (g.opacities > 0.5) & (g.scales.amax(-1) < 0.2)  # larger ones fill walls, floor and the void
        return g.means[keep].double().numpy()
    import open3d as o3d

    return np.asarray(o3d.io.read_point_cloud(str(ws.points)).points)


def _previous_entities(path: Path) -> list[Entity]:
    """The entities of the existing layout.json, whose names (possibly given by hand) are kept; [] without one.

    Raises:
        InputError: it exists but does not read (the error says where); nothing is overwritten then.
    """
    if not path.is_file():
        return []
    try:
        return list(read_layout(path).entities)
    except InputError as error:
        raise InputError(
            f"{error} The layout keeps the names given in it: fix the file, or move it away to start the names over."
        ) from None


def _named_entities(tracks: list[_Track], props: list[Prop], previous: list[Entity]) -> list[Entity]:
    """The layout's entities; ones found again (same kind, within 0.5 m on the floor) keep their previous
    id and name, the rest get new ids and default names. Sorted by id."""
    next_id = max((e.entity_id for e in previous), default=-1) + 1
    taken: set[int] = set()

    def identity(kind: str, floor: np.ndarray) -> tuple[int, str | None]:
        nonlocal next_id
        best = None
        for e in previous:
            if e.kind != kind or e.entity_id in taken:
                continue
            distance = float(np.linalg.norm(e.mean_xy() - floor))
            if distance < 0.5 and (best is None or distance < best[0]):
                best = (distance, e)
        if best is not None:
            taken.add(best[1].entity_id)
            return best[1].entity_id, best[1].name
        next_id += 1
        return next_id - 1, None

    found: list[tuple[int, str | None, str, tuple[EntityFrame, ...]]] = []
    for t in tracks:
        frames = tuple(_entity_frame(d) for _, d in sorted(t.detections.items()))
        entity_id, name = identity("character", np.mean([d.floor for d in t.detections.values()], axis=0))
        found.append((entity_id, name, "character", frames))
    for p in props:
        centre = (p.box_min + p.box_max) / 2
        entity_id, name = identity("prop", centre[:2])
        box = EntityFrame(
            None,
            _vector(centre),
            _vector(p.box_min),
            _vector(p.box_max),
            floor_position=(float(centre[0]), float(centre[1]), 0.0),
            confidence=min(1.0, p.support / 200),
        )
        found.append((entity_id, name, "prop", (box,)))

    names = {e.name for e in previous} | {name for _, name, _, _ in found if name is not None}
    counters = {"character": 0, "prop": 0}

    def default_name(kind: str) -> str:
        while True:
            counters[kind] += 1
            name = f"{kind}_{counters[kind]}"
            if name not in names:
                names.add(name)
                return name

    entities = [Entity(i, name if name is not None else default_name(kind), kind, f) for i, name, kind, f in found]
    return sorted(entities, key=lambda e: e.entity_id)


def _vector(values) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def _entity_frame(d: Detection) -> EntityFrame:
    return EntityFrame(
        d.frame,
        _vector((d.box_min + d.box_max) / 2),
        _vector(d.box_min),
        _vector(d.box_max),
        floor_position=(float(d.floor[0]), float(d.floor[1]), 0.0),
        confidence=float(d.confidence),
        cameras=tuple(d.cameras),
        interpolated=d.interpolated,
    )
