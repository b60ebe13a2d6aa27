"""Stage `reshoot export WS [SHOT]`: a shot's camera (or the registered cameras) for VFX tools.

Formats (`reshoot.geometry.exports` documents each convention):

| format | writes | for |
| --- | --- | --- |
| `json` | `<name>.json` (reshoot/cameras, a pose per frame) | reshoot, scripts |
| `chan` | `<camera>.chan` (one line per frame; static cameras one line) | Nuke (Camera → import chan file) |
| `colmap` | `colmap/` text model, one image per frame `frames/NNNNNN.png` | COLMAP, SfM tools |
| `nerfstudio` | `transforms.json`, one frame per shot frame | nerfstudio, most NeRF/3DGS trainers |
| `usd` | `<name>.usda`, a time-sampled UsdGeom.Camera | Houdini, Maya, Blender, Omniverse |

The export folder (default `WS/shots/<SHOT>/export/`, or `WS/export/` for the registered cameras) is
written beside its place and renamed in when complete, with a marker `.reshoot-output.json`; `--overwrite`
replaces only an earlier export (see `export_cameras`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import CamerasDocument, read_cameras_json, write_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.exports import write_colmap_text, write_nerfstudio_transforms, write_nuke_chan, write_usd_cameras
from reshoot.geometry.files import atomic_directory, check_replaceable, foreign_entries
from reshoot.shot_io import read_shot_document, shot_folder
from reshoot.workspace import Workspace, load_workspace

FORMATS = ("json", "chan", "colmap", "nerfstudio", "usd")
COMMAND = "reshoot export"


@dataclass(frozen=True)
class ExportSummary:
    folder: Path
    files: list[Path]


def _per_frame(document: CamerasDocument, name: str) -> Camera:
    """The shot camera as [T] cameras named by frame (NNNNNN), one per pose."""
    camera = document.cameras.select(name)
    path = document.paths[name]
    T = len(path.frames)
    return Camera.create(
        [f"{int(f):06d}" for f in path.frames],
        camera.K.expand(T, 3, 3).clone(),
        path.cam_from_world.to(camera.K.dtype),
        [int(camera.width[0])] * T,
        [int(camera.height[0])] * T,
    )


def export_cameras(
    workspace: str | Path,
    shot: str | None = None,
    formats: Sequence[str] = FORMATS,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> ExportSummary:
    """Export shot `shot` (or, with None, the registered cameras) in `formats` to `out`.

    `out` gets a marker (.reshoot-output.json); with `overwrite` an existing `out` is replaced only when it
    is an earlier export (that marker, or the default folder) holding nothing but files an export writes.

    Raises:
        InputError: an unknown format, a missing shot or registration, or `out` exists without `overwrite`
            or is not an earlier export.
    """
    root = Path(workspace)
    settings = load_workspace(root)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(f"export formats {list(formats)}: choose from {', '.join(FORMATS)}.")
    if shot is not None:
        shot_folder(root, shot)  # checks the name
        source = Workspace(root).shot(shot).spec
        if not source.is_file():
            raise InputError(
                f"shot {shot!r} does not exist ({source} is missing); list shots with `reshoot shots {root}`."
            )
        default_out = Workspace(root).shot(shot).export
    else:
        source = Workspace(root).cameras
        if not source.is_file():
            raise InputError(f"{root}: not registered yet ({source} is missing). Run `reshoot register {root}`.")
        default_out = Workspace(root).export
    document = read_shot_document(root, shot) if shot is not None else read_cameras_json(source)
    out = Path(out) if out is not None else default_out
    name = shot or "registration"
    written = []
    own = {f"{name}.json", f"{name}.usda", "colmap", "transforms.json"} | {f"{c}.chan" for c in document.cameras.names}

    def replaceable(folder: Path) -> str | None:
        """None when `folder` is an earlier export: it holds export's marker, or it is the default folder (made
        before exports were marked), and nothing but files an export writes."""
        if folder.resolve() == default_out.resolve() and not foreign_entries(folder, own.__contains__):
            return None
        return check_replaceable(folder, COMMAND, own.__contains__)

    with atomic_directory(out, overwrite=overwrite, replaceable=replaceable, marker=COMMAND, command=COMMAND) as tmp:
        cameras = document.cameras
        if "json" in formats:
            write_cameras_json(tmp / f"{name}.json", cameras, document.paths, document.attributes, document.extra)
            written.append(f"{name}.json")
        if "chan" in formats:
            for i, camera in enumerate(cameras.names):
                path = document.paths.get(camera)
                frames = path.frames.tolist() if path is not None else [settings.first_frame]
                poses = path.cam_from_world if path is not None else cameras.cam_from_world[i][None]
                write_nuke_chan(tmp / f"{camera}.chan", frames, poses, cameras.K[i], int(cameras.height[i]))
                written.append(f"{camera}.chan")
        if "usd" in formats:
            write_usd_cameras(tmp / f"{name}.usda", cameras, document.paths, fps=settings.fps)
            written.append(f"{name}.usda")
        flat = _per_frame(document, shot) if shot is not None else cameras
        folder = "frames" if shot is not None else "plates"
        if "colmap" in formats:
            write_colmap_text(tmp / "colmap", flat, {n: f"{n}.png" for n in flat.names})
            written.append("colmap/")
        if "nerfstudio" in formats:
            write_nerfstudio_transforms(tmp / "transforms.json", flat, {n: f"{folder}/{n}.png" for n in flat.names})
            written.append("transforms.json")
    return ExportSummary(out, [out / w for w in written])
