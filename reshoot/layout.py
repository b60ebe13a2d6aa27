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

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.background import foreground_mask, prepared_image, prepared_plates
from reshoot.characters import (
    CharacterOptions,
    CharacterTracker,
    Detection,
    _Track,
    character_search,
    detect_characters,
)
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.carving import carve_visual_hull, check_voxel_grid
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_path, write_json_document
from reshoot.geometry.planes import vertical_planes
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.splats.render import render_each
from reshoot.geometry.validation import check_number
from reshoot.layout_io import read_layout_entities
from reshoot.workspace import Workspace, load_workspace

FAILED_CAMERA_FOREGROUND = 0.4  # a camera whose median foreground share exceeds this has no usable plate


@dataclass(frozen=True)
class LayoutOptions(CharacterOptions):
    """Settings of `reshoot layout`: those of finding and tracking characters (`CharacterOptions`), and

    Attributes:
        downscale: foreground masks at 1/downscale resolution.
        samples: frames per camera for the clean plate.
    """

    downscale: int = 2
    samples: int = 24

    def __post_init__(self) -> None:
        if isinstance(self.downscale, bool) or not isinstance(self.downscale, int) or not 1 <= self.downscale <= 16:
            raise InputError(f"layout: --downscale must be a whole number from 1 to 16, got {self.downscale!r}.")
        if not 3 <= self.samples <= 1000:
            raise InputError(f"layout: samples must be 3 to 1000 frames per camera, got {self.samples!r}.")
        check_number(self.voxel_size, "layout: --voxel-size", 0, 1, low_open=True)


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
                [foreground_mask(im, plates[n][0]) for im, n in zip(images[frame], cameras.names)]
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
    for k, frame in enumerate(frames):
        fg = masks[frame][usable]
        hull = carve_visual_hull(small_used, fg, *bounds, options.voxel_size, occluder_depth=occluders)
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
    body = {
        "floor": {"z": 0.0},
        "cameras": list(cameras.names),
        "cameras_left_out": left_out,
        "frames": [frames[0], frames[-1] + 1],
        "warnings": warnings,
        "entities": entities,
    }
    write_json_document(ws.layout, "layout", 1, body)
    plan = ws.layout_plan
    draw_plan(plan, entities, cameras, bounds)
    return LayoutSummary(
        [e["name"] for e in entities if e["kind"] == "character"],
        [e["name"] for e in entities if e["kind"] == "prop"],
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


def _previous_entities(path: Path) -> list[dict]:
    """The entities of the existing layout.json, whose names (possibly given by hand) are kept; [] without one.

    Raises:
        InputError: it exists but does not read (the error says where); nothing is overwritten then.
    """
    if not path.is_file():
        return []
    try:
        return read_layout_entities(path)
    except InputError as error:
        raise InputError(
            f"{error} The layout keeps the names given in it: fix the file, or move it away to start the names over."
        ) from None


def _named_entities(tracks: list[_Track], props: list[Prop], previous: list[dict]) -> list[dict]:
    """Entities in the layout format; ones found again (same kind, within 0.5 m on the floor) keep their
    previous id and name, the rest get new ids and default names."""

    def mean_floor(entity: dict) -> np.ndarray:
        return np.mean([np.asarray(f["position"][:2]) for f in entity["frames"]], axis=0)

    used_ids = {e["id"] for e in previous}
    next_id = max(used_ids, default=-1) + 1
    taken: set[int] = set()
    entities = []

    def identity(kind: str, floor: np.ndarray) -> tuple[int, str | None]:
        nonlocal next_id
        best = None
        for e in previous:
            if e["kind"] != kind or e["id"] in taken:
                continue
            distance = float(np.linalg.norm(mean_floor(e) - floor))
            if distance < 0.5 and (best is None or distance < best[0]):
                best = (distance, e)
        if best is not None:
            taken.add(best[1]["id"])
            return best[1]["id"], best[1]["name"]
        next_id += 1
        return next_id - 1, None

    counters = {"character": 0, "prop": 0}

    def default_name(kind: str) -> str:
        names = {e["name"] for e in previous} | {e["name"] for e in entities}
        while True:
            counters[kind] += 1
            name = f"{kind}_{counters[kind]}"
            if name not in names:
                return name

    for t in tracks:
        frames = [_frame_entry(d) for _, d in sorted(t.detections.items())]
        entity_id, name = identity("character", np.mean([d.floor for d in t.detections.values()], axis=0))
        entities.append({"id": entity_id, "name": name, "kind": "character", "frames": frames})
    for p in props:
        centre = (p.box_min + p.box_max) / 2
        entity_id, name = identity("prop", centre[:2])
        entities.append(
            {
                "id": entity_id,
                "name": name,
                "kind": "prop",
                "frames": [
                    {
                        "frame": None,
                        "position": _rounded(centre),
                        "floor_position": _rounded([centre[0], centre[1], 0.0]),
                        "box_min": _rounded(p.box_min),
                        "box_max": _rounded(p.box_max),
                        "confidence": round(min(1.0, p.support / 200), 3),
                    }
                ],
            }
        )
    for e in entities:
        if e["name"] is None:
            e["name"] = default_name(e["kind"])
    return sorted(entities, key=lambda e: e["id"])


def _rounded(values) -> list[float]:
    return [round(float(v), 4) for v in values]


def _frame_entry(d: Detection) -> dict:
    centre = (d.box_min + d.box_max) / 2
    return {
        "frame": d.frame,
        "position": _rounded(centre),
        "floor_position": _rounded([d.floor[0], d.floor[1], 0.0]),
        "box_min": _rounded(d.box_min),
        "box_max": _rounded(d.box_max),
        "confidence": round(d.confidence, 3),
        "cameras": list(d.cameras),
        **({"interpolated": True} if d.interpolated else {}),
    }


def draw_plan(path: Path, entities: list[dict], cameras: Camera, bounds) -> None:
    """Write the top-down plan (`plan_figure`) as a PNG."""
    import matplotlib.pyplot as plt

    figure = plan_figure(entities, cameras, bounds)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def plan_figure(entities: list[dict], cameras: Camera, bounds, shot_centres: dict[str, np.ndarray] | None = None):
    """Top-down plan (matplotlib figure): the floor box, camera frusta, props, character paths with a
    tick every 12 frames, and optionally shot camera paths.

    Args:
        entities: layout.json's entities.
        cameras: the registered cameras (frusta).
        bounds: ((x0, y0, z0), (x1, y1, z1)) floor extent, world metres.
        shot_centres: shot name → [T, 3] camera centres per frame (drawn as dashed paths).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    figure, axes = plt.subplots(figsize=(8, 8), dpi=100)
    (x0, y0, _), (x1, y1, _) = bounds
    axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=True, color="0.93", zorder=0))
    for i, name in enumerate(cameras.names):
        camera = cameras.select(i)
        centre = camera.centers[0].numpy()
        corners = torch.tensor([[0.0, camera.height[0] / 2], [float(camera.width[0] - 1), camera.height[0] / 2]])
        rays = camera.pixel_directions(corners[None].double())[0].numpy()
        reach = 0.6 * math.hypot(x1 - x0, y1 - y0) / 4
        tips = [centre[:2] + reach * r[:2] / max(np.linalg.norm(r[:2]), 1e-9) for r in rays]
        axes.add_patch(Polygon([centre[:2], *tips], closed=True, alpha=0.25, color="tab:blue"))
        axes.annotate(name, centre[:2], fontsize=8, color="tab:blue")
    for e in entities:
        if e["kind"] == "prop":
            f = e["frames"][0]
            axes.add_patch(
                Rectangle(
                    f["box_min"][:2],
                    f["box_max"][0] - f["box_min"][0],
                    f["box_max"][1] - f["box_min"][1],
                    fill=False,
                    color="tab:brown",
                    lw=1.5,
                )
            )
            axes.annotate(e["name"], f["box_max"][:2], fontsize=8, color="tab:brown")
        else:
            path_xy = np.array([f["floor_position"][:2] for f in e["frames"]])
            (line,) = axes.plot(path_xy[:, 0], path_xy[:, 1], lw=1.5)
            ticks = [f for f in e["frames"] if f["frame"] % 12 == 0]
            axes.scatter(
                [f["floor_position"][0] for f in ticks],
                [f["floor_position"][1] for f in ticks],
                s=12,
                color=line.get_color(),
            )
            for f in ticks:
                axes.annotate(str(f["frame"]), f["floor_position"][:2], fontsize=6, color=line.get_color())
            axes.annotate(e["name"], path_xy[0], fontsize=9, color=line.get_color(), weight="bold")
    for name, centres in (shot_centres or {}).items():
        axes.plot(centres[:, 0], centres[:, 1], ls="--", lw=1.2, color="tab:red")
        axes.scatter(centres[:1, 0], centres[:1, 1], marker="s", s=20, color="tab:red")
        axes.annotate(f"shot {name}", centres[0, :2], fontsize=8, color="tab:red")
    axes.set_aspect("equal")
    axes.autoscale()
    axes.set_xlabel("x (m)")
    axes.set_ylabel("y (m)")
    axes.set_title("layout: top-down plan (floor z = 0)")
    return figure
