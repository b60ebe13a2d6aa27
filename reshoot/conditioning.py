"""Conditioning renders of a shot: the reconstruction (set + that frame's actors) seen by the shot camera.

```
WS/shots/<name>/conditioning/
  rgb/NNNNNN.exr        colour, float32 R G B, scene-linear in the workspace's working space (reshoot/colour.py;
                        `chromaticities` and `reshoot/colourSpace` in the header)
  depth/NNNNNN.exr      z-depth, float32 metres (EXR channel "Z"); 0 where nothing was rendered
  alpha/NNNNNN.png      coverage, 16-bit (65535 = fully covered)
  entity/NNNNNN.png     entity id + 1, 16-bit (0 = no entity); ids are layout.json's
  filmed/NNNNNN.png     8-bit, 255 where a production camera filmed the pixel's surface at that frame
                        (its own render's depth agrees: `reprojection.filmed_mask`), 0 where none did
  cryptomatte/NNNNNN.exr  each entity's coverage as Cryptomatte (layer CryptoObject, float32, manifest
                        in the header: geometry/cryptomatte.py)
  preview.mp4           the plain colour render (H.264, the take's fps, sRGB display through OCIO)
  conditioning.json     reshoot/conditioning: shot, revision, frames, entities {id: name}, frames without actors,
                        colour (the OCIO settings rgb/ was written with)
```
Entity ids come from the layout: a set Gaussian inside a prop's box is that prop's, an actor Gaussian
inside a character's box at that frame is that character's (boxes padded as below). The ids are
rendered as one-hot features composited like colour (an entity's composited weight is its coverage of
the pixel, what Cryptomatte stores); a pixel takes the entity with the largest weight when that
weight is at least `ENTITY_WEIGHT`, else none (-1). The folder is written beside its
place and renamed in when complete.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from reshoot.geometry import cryptomatte
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, read_json_document, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.splats.actors import merge_gaussians
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.render import rasterize
from reshoot.geometry.video import write_mp4
from reshoot.render import SplatScene, load_splat_scene
from reshoot.reprojection import filmed_mask
from reshoot.scene import scene_facts
from reshoot.shot_design import EntityTrack, SceneFacts
from reshoot.shot_io import existing_shot, read_shot_document
from reshoot.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    from reshoot.colour import ColourPipeline
    from reshoot.geometry.cameras_io import CamerasDocument

PASSES = ("rgb", "depth", "alpha", "entity", "filmed", "cryptomatte")
"""The conditioning folder's pass folders, one file per frame in each."""
KIND = "conditioning"
VERSION = 1
PROP_PAD_M = 0.05
CHARACTER_PAD_M = 0.15
ENTITY_WEIGHT = 0.5


@dataclass(frozen=True)
class ConditioningFrame:
    """One frame of conditioning.

    Attributes:
        rgb: [H, W, 3] float32 in [0, 1].
        depth: [H, W] float32 z-depth in metres, 0 where nothing was rendered.
        alpha: [H, W] float32 coverage in [0, 1].
        entity_ids: [H, W] int32 layout entity id, -1 for none.
        entity_coverage: [H, W, E] float32 each layout entity's coverage, or None (rendered without entities,
            or read back for the model).
        filmed: [H, W] bool, a production camera filmed the pixel's surface, or None (not computed).
    """

    rgb: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    entity_ids: np.ndarray
    entity_coverage: np.ndarray | None = None
    filmed: np.ndarray | None = None


@dataclass(frozen=True)
class DeliverablePasses:
    """What a shot's EXR deliverable takes from one conditioning frame besides the model's passes.

    Attributes:
        filmed: [H, W] bool (see the module docstring).
        cryptomatte: the Cryptomatte channels {"CryptoObject00.R": [H, W] float32, ...}.
        attributes: the Cryptomatte header attributes (`cryptomatte/<key>/...`).
    """

    filmed: np.ndarray
    cryptomatte: dict[str, np.ndarray]
    attributes: dict[str, str]


@dataclass(frozen=True)
class ConditioningSummary:
    folder: Path
    frames: list[int]
    without_actors: list[int]


def write_exr(path: Path, channel: str, pixels: np.ndarray) -> None:
    """One float32 channel ([H, W]) or an "RGB" channel ([H, W, 3]) as a ZIP-compressed EXR."""
    write_exr_channels(path, {channel: np.ascontiguousarray(pixels, dtype=np.float32)})


def write_exr_channels(path: Path, channels: dict[str, np.ndarray], attributes: dict | None = None) -> None:
    """Named channels (each [H, W], or [H, W, 3] for "RGB"; the array's dtype is the channel's type: float16
    half, float32 float) and header attributes as one ZIP-compressed scanline EXR."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, **(attributes or {})}
    with OpenEXR.File(header, channels) as exr:
        exr.write(str(path))


def read_exr(path: Path, channel: str) -> np.ndarray:
    """The named channel of an EXR written by `write_exr`."""
    import OpenEXR

    with OpenEXR.File(str(path)) as exr:
        channels = exr.channels()
        if channel not in channels:
            raise InputError(f"{path}: no EXR channel {channel!r} (has {sorted(channels)}).")
        return np.array(channels[channel].pixels, dtype=np.float32)


def _in_boxes(means: torch.Tensor, boxes: list[np.ndarray], pad: float) -> torch.Tensor:
    """[N] index of the first box (of [2, 3] min/max) holding each mean, -1 for none."""
    out = torch.full((len(means),), -1, dtype=torch.int64)
    for i, box in enumerate(boxes):
        lo = torch.as_tensor(box[0] - pad, dtype=means.dtype)
        hi = torch.as_tensor(box[1] + pad, dtype=means.dtype)
        inside = ((means >= lo) & (means <= hi)).all(dim=1) & (out < 0)
        out[inside] = i
    return out


def entity_one_hots(
    background: Gaussians, actors: Gaussians | None, entities: list[EntityTrack], frame_index: int
) -> torch.Tensor:
    """[N_set + N_actors, E] one-hot entity features in the order of `merge_gaussians([set, actors])`.

    Set Gaussians may belong to props, actor Gaussians to characters (their box at `frame_index`, an
    index into the take).
    """
    props = [i for i, e in enumerate(entities) if e.kind == "prop"]
    characters = [i for i, e in enumerate(entities) if e.kind == "character"]
    parts = []
    for gaussians, members, pad in ((background, props, PROP_PAD_M), (actors, characters, CHARACTER_PAD_M)):
        if gaussians is None:
            continue
        hits = _in_boxes(gaussians.means, [entities[i].boxes[frame_index] for i in members], pad)
        one_hot = torch.zeros(len(gaussians), len(entities), dtype=gaussians.means.dtype)
        rows = torch.nonzero(hits >= 0).squeeze(1)
        one_hot[rows, torch.as_tensor(members, dtype=torch.int64)[hits[rows]]] = 1.0
        parts.append(one_hot)
    return torch.cat(parts)


def render_conditioning_frame(
    scene: SplatScene,
    entities: list[EntityTrack],
    frame_index: int,
    frame: int,
    camera: Camera,
    backend: str = "auto",
    sources: Camera | None = None,
) -> ConditioningFrame:
    """The conditioning passes of one take frame seen by one posed pinhole camera.

    Args:
        scene: the reconstruction.
        entities: the layout's entities (empty: every pixel gets id -1).
        frame_index: `frame` as an index into the take (frame - first frame).
        frame: the take frame number (selects the actors).
        camera: one pinhole camera (V = 1).
        backend: rasterizer backend.
        sources: the production cameras, to tell which pixels they filmed (`filmed`); None: not told.
    """
    actors = scene.actors_at(frame)
    gaussians = merge_gaussians([scene.background, actors]) if actors is not None else scene.background
    features = entity_one_hots(scene.background, actors, entities, frame_index) if entities else None
    with torch.no_grad():
        render = rasterize(gaussians, camera, features=features, background=scene.environment, backend=backend)
    ids = np.full(render.alpha.shape[1:], -1, dtype=np.int32)
    coverage = None
    if render.features is not None:
        coverage = render.features[0].clamp(0, 1).numpy().astype(np.float32)
        weight, best = render.features[0].max(dim=-1)
        chosen = np.array([e.entity_id for e in entities], dtype=np.int32)[best.numpy()]
        ids = np.where(weight.numpy() >= ENTITY_WEIGHT, chosen, -1).astype(np.int32)
    filmed = None
    if sources is not None:
        filmed = filmed_mask(gaussians, camera, render.depth[0], render.alpha[0], sources, backend).numpy()
    return ConditioningFrame(
        rgb=render.rgb[0].clamp(0, 1).numpy(),
        depth=render.depth[0].numpy(),
        alpha=render.alpha[0].clamp(0, 1).numpy(),
        entity_ids=ids,
        entity_coverage=coverage,
        filmed=filmed,
    )


@dataclass(frozen=True)
class _ShotRenderer:
    """What rendering shot `name`'s conditioning frames needs, read once from the workspace."""

    name: str
    document: CamerasDocument
    facts: SceneFacts
    scene: SplatScene
    colour: ColourPipeline
    sources: Camera
    backend: str

    @classmethod
    def load(cls, root: Path, name: str, backend: str) -> _ShotRenderer:
        registered = read_cameras_json(Workspace(root).cameras)
        return cls(
            name,
            read_shot_document(root, name),
            scene_facts(root),
            load_splat_scene(root),
            load_workspace(root).colour_pipeline(),
            registered.cameras.select(registered.names_with_role("production", default="production")),
            backend,
        )

    def render(self, indices: Sequence[int], out: Path, progress: ProgressFn | None = None) -> list[np.ndarray]:
        """Render and write the passes of the shot's frames at `indices` (positions in its path) into `out`;
        their 8-bit previews."""
        import imageio.v3 as iio

        report = progress or no_progress
        pinhole = self.document.cameras.select(0).pinhole()
        path = self.document.paths[self.name]
        entities = list(self.facts.entities.values())
        names = [e.name for e in entities]
        colour = self.colour
        previews = []
        for k, i in enumerate(indices):
            frame = int(path.frames[i])
            shot_camera = pinhole.with_pose(path.cam_from_world[i])
            passes = render_conditioning_frame(
                self.scene, entities, frame - self.facts.first_frame, frame, shot_camera, self.backend, self.sources
            )
            stem = f"{frame:06d}"
            linear = colour.to_working(passes.rgb)
            write_exr_channels(out / "rgb" / f"{stem}.exr", {"RGB": linear}, colour.exr_attributes)
            write_exr(out / "depth" / f"{stem}.exr", "Z", passes.depth)
            iio.imwrite(out / "alpha" / f"{stem}.png", (passes.alpha * 65535 + 0.5).astype(np.uint16))
            iio.imwrite(out / "entity" / f"{stem}.png", (passes.entity_ids + 1).astype(np.uint16))
            assert passes.filmed is not None  # sources were given
            iio.imwrite(out / "filmed" / f"{stem}.png", passes.filmed.astype(np.uint8) * 255)
            coverage = passes.entity_coverage
            if coverage is None:
                coverage = np.zeros((*passes.alpha.shape, 0), np.float32)
            write_exr_channels(
                out / "cryptomatte" / f"{stem}.exr",
                cryptomatte.channels(coverage, names),
                cryptomatte.header_attributes(names),
            )
            previews.append(colour.to_8bit(linear))
            report("conditioning", k + 1, len(indices))
        return previews


def _render_range(root: Path, name: str, backend: str, indices: list[int], out: Path) -> list[np.ndarray]:
    """One range job of `render_conditioning`: it reads what it needs from the workspace itself."""
    return _ShotRenderer.load(root, name, backend).render(indices, out)


def render_conditioning(
    workspace: str | Path,
    name: str,
    backend: str = "auto",
    progress: ProgressFn | None = None,
    ranges: int = 1,
    executor: str = "serial",
) -> ConditioningSummary:
    """Render every frame of shot `name` into `WS/shots/<name>/conditioning/` (see the module docstring).

    Args:
        ranges: split the frames into this many consecutive ranges, a job each on one thread (1: one loop
            here, on this process's threads). Frames are rendered independently: the ranges give the same
            passes serially and on Ray to the bit, and one loop's to within float rounding.
        executor: "serial" or "ray", for the range jobs (reshoot/scaleout.py).

    Raises:
        InputError: the shot or the reconstruction is missing, bad ranges, or a range failed.
    """
    from reshoot.scaleout import check_ranges, run_in_ranges

    report = progress or no_progress
    root = Path(workspace)
    existing_shot(root, name)
    check_ranges(ranges)
    shot = Workspace(root).shot(name)
    renderer = _ShotRenderer.load(root, name, backend)
    document, facts, colour = renderer.document, renderer.facts, renderer.colour
    entities = list(facts.entities.values())
    frames = [int(f) for f in document.paths[name].frames]
    without_actors = [f for f in frames if f not in renderer.scene.actors]
    with atomic_directory(shot.conditioning, overwrite=True) as tmp:
        for sub in PASSES:
            (tmp / sub).mkdir()
        if ranges == 1:
            previews = renderer.render(range(len(frames)), tmp, report)
        else:
            values = run_in_ranges(
                _render_range,
                len(frames),
                ranges,
                lambda a, b: (root, name, backend, list(range(a, b)), tmp),
                executor,
                what="frames",
                labels=frames,
                progress=lambda done, total: report("conditioning", done, total),
            )
            previews = [preview for value in values for preview in value]
        write_mp4(tmp / "preview.mp4", np.stack(previews), facts.fps)
        write_json_document(
            tmp / "conditioning.json",
            KIND,
            VERSION,
            {
                "shot": name,
                "revision": document.extra.get("shot", {}).get("revision"),
                "frames": frames,
                "entities": {str(e.entity_id): e.name for e in entities},
                "frames_without_actors": without_actors,
                "colour": colour.settings.spaces(),
            },
        )
    return ConditioningSummary(shot.conditioning, frames, without_actors)


def conditioning_revision(folder: str | Path) -> int | None | bool:
    """The shot revision a conditioning folder was rendered for (None if unrecorded); False without one."""
    path = Path(folder) / "conditioning.json"
    if not path.is_file():
        return False
    return read_json_document(path, KIND, VERSION).get("revision")


@functools.cache
def _colour_pipeline(config: str, working_space: str, footage_space: str):
    """The OCIO pipeline of recorded colour settings (one per settings: building it parses the config)."""
    from reshoot.colour import ColourPipeline, ColourSettings

    return ColourPipeline(ColourSettings(config, working_space, footage_space))


def read_conditioning_frame(folder: str | Path, frame: int) -> ConditioningFrame:
    """One frame of a conditioning folder (WS/shots/<name>/conditioning).

    Raises:
        InputError: the folder or frame is missing.
    """
    import imageio.v3 as iio

    folder = Path(folder)
    document = read_json_document(folder / "conditioning.json", KIND, VERSION)
    if frame not in document["frames"]:
        raise InputError(
            f"{folder}: frame {frame} was not rendered (frames {document['frames'][0]} to {document['frames'][-1]})."
        )
    stem = f"{frame:06d}"
    rgb = read_exr(folder / "rgb" / f"{stem}.exr", "RGB")
    if "colour" in document:  # linear in the working space; older folders hold footage-encoded colour
        rgb = _colour_pipeline(**document["colour"]).to_footage(rgb)
    return ConditioningFrame(
        rgb=rgb,
        depth=read_exr(folder / "depth" / f"{stem}.exr", "Z"),
        alpha=iio.imread(folder / "alpha" / f"{stem}.png").astype(np.float32) / 65535,
        entity_ids=iio.imread(folder / "entity" / f"{stem}.png").astype(np.int32) - 1,
    )


def conditioning_entities(folder: str | Path) -> dict[int, str]:
    """The layout entities a conditioning folder was rendered with: id → name."""
    document = read_json_document(Path(folder) / "conditioning.json", KIND, VERSION)
    return {int(k): v for k, v in document["entities"].items()}


def _deliverable_pass_files(folder: Path, frame: int) -> tuple[Path, Path]:
    """(filmed PNG, Cryptomatte EXR) of one frame, refused when either is missing."""
    stem = f"{frame:06d}"
    filmed, matte = folder / "filmed" / f"{stem}.png", folder / "cryptomatte" / f"{stem}.exr"
    if not (filmed.is_file() and matte.is_file()):
        raise InputError(
            f"{folder}: frame {frame} has no filmed/ or cryptomatte/ pass (conditioning rendered by an older "
            f"reshoot); render it again with `reshoot condition WS {folder.parent.name}`."
        )
    return filmed, matte


def read_filmed_mask(folder: str | Path, frame: int) -> np.ndarray:
    """[H, W] bool filmed mask of one frame (see the module docstring), without reading its Cryptomatte.

    Raises:
        InputError: the folder was rendered before the deliverable passes existed (or lost them).
    """
    import imageio.v3 as iio

    filmed, _ = _deliverable_pass_files(Path(folder), frame)
    return iio.imread(filmed) >= 128


def read_deliverable_passes(folder: str | Path, frame: int) -> DeliverablePasses:
    """The filmed mask and the Cryptomatte of one frame of a conditioning folder.

    Raises:
        InputError: the folder was rendered before these passes existed (or lost them).
    """
    import OpenEXR

    _, matte = _deliverable_pass_files(Path(folder), frame)
    with OpenEXR.File(str(matte), separate_channels=True) as exr:
        channels = {name: np.array(c.pixels, dtype=np.float32) for name, c in exr.channels().items()}
        attributes = {k: str(v) for k, v in exr.header().items() if k.startswith("cryptomatte/")}
    return DeliverablePasses(read_filmed_mask(folder, frame), channels, attributes)
