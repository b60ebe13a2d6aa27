"""Stage `reshoot render WS --cameras FILE [--frames A:B] --out DIR`: the reconstruction seen from any cameras.

Cameras come in the project's `cameras.json` format, in the registration's world frame; a camera with
per-frame poses (`frames`) moves, any other stays put. With `--calibration-frame` they come in any
calibration file `reshoot init --calibration` reads, in that calibration's frame and unit (a camera of
the rig that was held out of the take): the workspace must have been registered with the calibration's
poses, and they are carried into the world frame as registration carried the rig
(`registration.calibration_in_world`). For each camera and take frame the set and that
frame's actors are rendered together (pinhole: lens distortion is not applied) and written as

    DIR/<camera>/NNNNNN.png         colour, 8-bit RGB (over the fitted environment colour where nothing covers)
    DIR/<camera>/depth/NNNNNN.png   z-depth, 16-bit, millimetres of world units (0 = nothing, clipped at 65.535)
    DIR/<camera>/alpha/NNNNNN.png   coverage, 8-bit (255 = fully covered)

Each camera's folder is written beside its final place and renamed in when complete, with a marker
`.reshoot-output.json`; `--overwrite` replaces only camera folders that render made (the marker, or for
renders made before it depth/ and alpha/), holding nothing else. OUT may not be a workspace.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.geometry.cameras_io import CamerasDocument, read_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import OUTPUT_MARKER, atomic_directory, foreign_entries, made_by, read_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.splats.actors import merge_gaussians
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.ply import read_splat_ply
from reshoot.geometry.splats.render import SplatRender, rasterize
from reshoot.geometry.validation import check_image_size, check_name
from reshoot.workspace import Workspace, load_workspace

log = logging.getLogger(__name__)

DEPTH_UNITS_PER_METRE = 1000  # 16-bit depth PNGs hold millimetres
COMMAND = "reshoot render"
FRAME_FILE = re.compile(r"-?\d+\.png")  # write_render_pngs' names: NNNNNN.png
PASS_FOLDERS = ("depth", "alpha")


@dataclass(frozen=True)
class SplatScene:
    """A workspace's reconstruction.

    Attributes:
        background: the static set.
        actors: take frame → its actors' .ply (loaded on demand).
        environment: [3] colour behind the splats in [0, 1] (fitted with the set: what the cameras saw
            where no surface stands); every render of the scene composites over it.
    """

    background: Gaussians
    actors: dict[int, Path]
    environment: torch.Tensor

    def actors_at(self, frame: int) -> Gaussians | None:
        """The actors of take frame `frame`, or None where the frame has none."""
        path = self.actors.get(int(frame))
        if path is None:
            return None
        actors = read_splat_ply(path)
        return actors if len(actors) else None

    def at(self, frame: int) -> Gaussians:
        """Set + actors of take frame `frame` (the set alone where the frame has no actors)."""
        actors = self.actors_at(frame)
        return merge_gaussians([self.background, actors]) if actors is not None else self.background


def load_splat_scene(workspace: str | Path) -> SplatScene:
    """Read `WS/splats/`.

    Raises:
        InputError: the workspace has not been reconstructed.
    """
    ws = Workspace(workspace)
    if not ws.set_splats.is_file():
        raise InputError(
            f"{workspace}: no reconstruction yet ({ws.set_splats} is missing). "
            f"Run `reshoot reconstruct {workspace}` first."
        )
    actors = {int(p.stem): p for p in sorted(ws.actor_splats.glob("*.ply")) if p.stem.isdigit()}
    return SplatScene(read_splat_ply(ws.set_splats), actors, _environment(ws.reconstruction))


def _environment(path: Path) -> torch.Tensor:
    """[3] the colour behind the splats that `reshoot reconstruct` recorded; black for reconstructions
    made before it was fitted (or without the record)."""
    if path.is_file():
        colour = read_json_document(path, "reconstruction", 1).get("environment")
        if colour is not None:
            return torch.tensor(colour, dtype=torch.float32)
    return torch.zeros(3)


@dataclass(frozen=True)
class RenderSummary:
    """What `render_cameras` wrote: per camera, the take frames rendered; frames that had no actors."""

    frames: dict[str, list[int]]
    without_actors: list[int]


def parse_frames(text: str) -> tuple[int, int]:
    """`"A:B"` → (A, B): take frames A to B - 1. `"A"` is the one frame A.

    Raises:
        InputError: not of that form, or B not after A.
    """
    parts = text.split(":")
    try:
        if len(parts) == 1:
            start = int(parts[0])
            return start, start + 1
        if len(parts) == 2:
            start, stop = int(parts[0]), int(parts[1])
            if stop > start:
                return start, stop
    except ValueError:
        pass
    raise InputError(f"frames {text!r}: give A:B (take frames A to B-1, B after A) or a single frame A.")


def render_cameras(
    workspace: str | Path,
    cameras_file: str | Path,
    out: str | Path,
    frames: tuple[int, int] | None = None,
    overwrite: bool = False,
    backend: str = "auto",
    progress: ProgressFn | None = None,
    calibration_frame: bool = False,
) -> RenderSummary:
    """Render the reconstruction into every camera of `cameras_file` and write the passes under `out`.

    Args:
        frames: (A, B) take frames A to B - 1; None = the whole take.
        overwrite: replace a camera's existing folder under `out` that render made (see `_not_a_render`).
        calibration_frame: `cameras_file` is a calibration (`load_calibration`) in the frame of the one the
            workspace was registered with, not a cameras.json in the world frame.

    Raises:
        InputError: no reconstruction, a bad cameras file, frames outside the take, no frame to render
            for a moving camera, `out` is a workspace, an existing camera folder without `overwrite` or
            not made by render, or `calibration_frame` on a workspace not registered with a calibration's
            poses. Everything is checked before anything is written.
    """
    report = progress or no_progress
    settings = load_workspace(workspace)
    take = range(settings.first_frame, settings.first_frame + settings.frames)
    if frames is not None and (frames[0] < take.start or frames[1] > take.stop):
        raise InputError(
            f"frames {frames[0]}:{frames[1]} are outside the take (frames {take.start} to {take.stop - 1})."
        )
    wanted = list(range(*frames)) if frames is not None else list(take)
    document = _calibrated_cameras(workspace, cameras_file) if calibration_frame else read_cameras_json(cameras_file)
    scene = load_splat_scene(workspace)
    out = Path(out)
    plan = {}
    for i, name in enumerate(document.cameras.names):
        path = document.paths.get(name)
        if path is None:
            plan[name] = [(f, document.cameras.cam_from_world[i]) for f in wanted]
            continue
        poses = {int(f): m for f, m in zip(path.frames.tolist(), path.cam_from_world)}
        plan[name] = [(f, poses[f]) for f in wanted if f in poses]
        if not plan[name]:
            raise InputError(
                f"{cameras_file}: camera {name} has poses for frames {min(poses)} to {max(poses)}, none "
                f"of the frames asked for ({wanted[0]} to {wanted[-1]})."
            )
    if Workspace(out).settings_file.exists():
        raise InputError(
            f"--out {out} is a reshoot workspace; render into a folder of its own (e.g. --out "
            f"{out / 'renders'}), so no camera folder can replace a part of the workspace."
        )
    for i, name in enumerate(document.cameras.names):
        size = int(document.cameras.width[i]), int(document.cameras.height[i])
        check_image_size(*size, f"{cameras_file}: camera {name}")
        target = out / name
        if target.exists() and not target.is_dir():
            raise InputError(f"{target} exists and is a file; choose another --out.")
        if target.is_dir() and any(target.iterdir()):
            reason = _not_a_render(target)
            if reason is not None:
                raise InputError(
                    f"{target} already exists and was not made by {COMMAND} ({reason}); --overwrite "
                    "only replaces camera folders that render made. Nothing was changed: choose another "
                    "--out, or move or delete that folder yourself."
                )
            if not overwrite:
                raise InputError(f"{target} already exists; pass --overwrite to replace it or choose another --out.")
    total = sum(len(v) for v in plan.values())
    done = 0
    without_actors = sorted({f for v in plan.values() for f, _ in v if f not in scene.actors})
    if without_actors:
        log.warning("frames %s have no reconstructed actors; they show the set alone", without_actors)
    for i, name in enumerate(document.cameras.names):
        camera = document.cameras.select(i)
        if bool(camera.has_distortion[0]):
            log.warning("camera %s has lens distortion; renders are pinhole (undistorted) with its K", name)
        pinhole = camera.pinhole()
        with atomic_directory(
            out / name, overwrite=True, replaceable=_not_a_render, marker=COMMAND, command=COMMAND
        ) as tmp:
            for frame, cam_from_world in plan[name]:
                with torch.no_grad():
                    render = rasterize(
                        scene.at(frame),
                        pinhole.with_pose(cam_from_world),
                        background=scene.environment,
                        backend=backend,
                    )
                write_render_pngs(tmp, frame, render)
                done += 1
                report("rendering", done, total)
    return RenderSummary({n: [f for f, _ in v] for n, v in plan.items()}, without_actors)


def _calibrated_cameras(workspace: str | Path, calibration: str | Path) -> CamerasDocument:
    """The static cameras of a calibration file, in the registration's world frame."""
    from reshoot.datasets.calibration import load_calibration
    from reshoot.registration import calibration_in_world

    cameras = load_calibration(calibration)
    for name in cameras.names:
        check_name(name, f"{calibration}: camera {name!r}", "rename it in the calibration")
    return CamerasDocument(calibration_in_world(workspace, cameras, str(calibration)))


def _not_a_render(folder: Path) -> str | None:
    """Why the camera folder `folder` is not an earlier render that may be replaced (None when it is one): it
    holds render's marker (renders made before the marker: depth/ and alpha/ folders) and nothing but
    NNNNNN.png frames and depth/, alpha/ of frames."""
    if made_by(folder) != COMMAND and not ((folder / "depth").is_dir() and (folder / "alpha").is_dir()):
        return f"it has no {OUTPUT_MARKER} written by {COMMAND}"
    frame = lambda n: FRAME_FILE.fullmatch(n) is not None  # noqa: E731
    foreign = foreign_entries(folder, lambda n: n in PASS_FOLDERS or frame(n))
    for sub in (s for s in PASS_FOLDERS if (folder / s).is_dir()):
        foreign += [f"{sub}/{n}" for n in foreign_entries(folder / sub, frame)]
    return f"it also holds {', '.join(foreign[:5])}, which render does not write" if foreign else None


def write_render_pngs(folder: Path, frame: int, render: SplatRender) -> None:
    """Write camera 0 of a render as NNNNNN.png, depth/NNNNNN.png (16-bit mm), alpha/NNNNNN.png."""
    import imageio.v3 as iio

    name = f"{frame:06d}.png"
    (folder / "depth").mkdir(parents=True, exist_ok=True)
    (folder / "alpha").mkdir(exist_ok=True)
    rgb = render.rgb[0].clamp(0, 1).cpu().numpy()
    iio.imwrite(folder / name, (rgb * 255 + 0.5).astype(np.uint8))
    depth = np.clip(render.depth[0].cpu().numpy() * DEPTH_UNITS_PER_METRE + 0.5, 0, 65535).astype(np.uint16)
    iio.imwrite(folder / "depth" / name, depth)
    iio.imwrite(folder / "alpha" / name, (render.alpha[0].clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8))
