"""Stage `reshoot export WS [SHOT]`: a shot's camera (or the registered cameras) for VFX tools.

Formats (`reshoot.geometry.exports` documents each convention):

| format | writes | for |
| --- | --- | --- |
| `json` | `<name>.json` (reshoot/cameras, a pose per frame) | reshoot, scripts |
| `chan` | `<camera>.chan` (one line per frame; static cameras one line); refused (unless `force`) for a camera whose principal point is off-centre or whose pixels are not square; lens distortion, which it cannot hold either, is named in a warning | Nuke (Camera → import chan file) |
| `colmap` | `colmap/` text model, one image per frame `NNNNNN.png` | COLMAP, SfM tools |
| `nerfstudio` | `transforms.json`, one frame per shot frame, `file_path` relative to the json (the shot's `frames/`, or the registration's `plates/`) | nerfstudio, most NeRF/3DGS trainers |
| `stmap` | `<camera>_undistort.exr`, `<camera>_distort.exr` per camera with lens distortion (none for a shot's pinhole camera) | Nuke's STMap node (and Fusion, Flame, Resolve) |
| `usd` | `<name>.usda`, a time-sampled UsdGeom.Camera (lens in USD's tenths of a scene unit, clipping range from the registration's points, `defaultPrim`) | Houdini, Maya, Blender, Omniverse |

The export folder (default `WS/shots/<SHOT>/export/`, or `WS/export/` for the registered cameras) is
written beside its place and renamed in when complete, with a marker `.reshoot-output.json`; `--overwrite`
replaces only an earlier export (see `export_cameras`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import CamerasDocument, read_cameras_json, write_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.exports import (
    chan_limitations,
    write_colmap_text,
    write_nerfstudio_transforms,
    write_nuke_chan,
    write_usd_cameras,
)
from reshoot.geometry.files import atomic_directory, check_replaceable, foreign_entries
from reshoot.geometry.stmap import write_stmaps
from reshoot.shot_io import read_shot_document, shot_folder
from reshoot.workspace import Workspace, load_workspace

FORMATS = ("json", "chan", "colmap", "nerfstudio", "stmap", "usd")
COMMAND = "reshoot export"


@dataclass(frozen=True)
class ExportSummary:
    """What `export_cameras` wrote, and what a format could not carry (with `force`)."""

    folder: Path
    files: list[Path]
    warnings: list[str] = field(default_factory=list)


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
    force: bool = False,
) -> ExportSummary:
    """Export shot `shot` (or, with None, the registered cameras) in `formats` to `out`.

    `out` gets a marker (.reshoot-output.json); with `overwrite` an existing `out` is replaced only when it
    is an earlier export (that marker, or the default folder) holding nothing but files an export writes.
    A .chan is refused for a camera whose principal point or pixel aspect it cannot carry (see
    `chan_limitations`) unless `force`; the summary's warnings say what each .chan dropped (with `force`,
    and lens distortion always).

    Raises:
        InputError: an unknown format, a missing shot or registration, `out` exists without `overwrite`
            or is not an earlier export, or a .chan cannot carry a camera (without `force`).
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
    warnings = _chan_warnings(document.cameras, force) if "chan" in formats else []
    registration = Workspace(root).registered
    written = []
    own = {f"{name}.json", f"{name}.usda", "colmap", "transforms.json"} | {
        f"{c}{suffix}" for c in document.cameras.names for suffix in (".chan", "_undistort.exr", "_distort.exr")
    }

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
        if "stmap" in formats:
            written += [p.name for p in write_stmaps(tmp, cameras)]
        if "usd" in formats:
            points = _points(registration.points)
            write_usd_cameras(tmp / f"{name}.usda", cameras, document.paths, fps=settings.fps, points=points)
            written.append(f"{name}.usda")
        flat = _per_frame(document, shot) if shot is not None else cameras
        images = Workspace(root).shot(shot).frames if shot is not None else registration.plates
        if "colmap" in formats:
            write_colmap_text(tmp / "colmap", flat, {n: f"{n}.png" for n in flat.names})
            written.append("colmap/")
        if "nerfstudio" in formats:
            # Relative to where the json will be (`out`), so the export can move with its workspace.
            relative = Path(os.path.relpath(images.resolve(), out.resolve()))
            write_nerfstudio_transforms(
                tmp / "transforms.json", flat, {n: (relative / f"{n}.png").as_posix() for n in flat.names}
            )
            written.append("transforms.json")
    return ExportSummary(out, [out / w for w in written], warnings)


REFUSED_IN_CHAN = ("principal_point", "pixel_aspect")


def _chan_warnings(cameras: Camera, force: bool) -> list[str]:
    """What each .chan drops: an off-centre principal point or non-square pixels refuse the export without
    `force`; the rest (and those, with `force`) come back as warnings."""
    found = chan_limitations(cameras)
    refused = [
        f"{name}.chan: {'; '.join(p for kind, p in problems.items() if kind in REFUSED_IN_CHAN)}"
        for name, problems in found.items()
        if any(kind in REFUSED_IN_CHAN for kind in problems)
    ]
    if refused and not force:
        raise InputError(
            "a Nuke .chan cannot carry these cameras:\n  "
            + "\n  ".join(refused)
            + "\nUse the USD export (it holds the principal point and pixel aspect), leave chan out "
            "(--format usd ...), or pass --force to write the .chan without them."
        )
    return [f"{name}.chan: {'; '.join(problems.values())}: dropped from the .chan" for name, problems in found.items()]


def _points(path: Path) -> np.ndarray | None:
    """[N, 3] the registration's sparse points (world), for clipping ranges; None when absent."""
    if not path.is_file():
        return None
    import open3d as o3d

    return np.asarray(o3d.io.read_point_cloud(path).points)
