"""Loaders of camera calibrations made by other tools, into reshoot's one `Camera` type (float64).

- `calibration.json`: our own `reshoot/cameras` document (DESIGN.md §4).
- caliscope's `camera_array.toml`: OpenCV calibration of synchronized cameras.
- Strecha et al.'s ground-truth `.camera` files (fountain-P11, Herz-Jesu, ...).
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.files import read_text_document
from reshoot.geometry.validation import check_name

logger = logging.getLogger(__name__)

CALISCOPE_NAME_PREFIX = "cam_"  # caliscope records camera N as cam_N.mp4


def load_calibration(path: str | os.PathLike) -> Camera:
    """Load a calibration file, choosing the reader by the file's suffix.

    Args:
        path: a `reshoot/cameras` JSON document (`.json`) or a caliscope `camera_array.toml` (`.toml`).

    Returns:
        The cameras it describes, in the file's order.

    Raises:
        InputError: the file is missing or of a kind reshoot does not read.
        FormatError: the file is of a known kind but malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such calibration file. Check the path.")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_cameras_json(path).cameras
    if suffix == ".toml":
        return load_caliscope_camera_array(path)
    raise InputError(
        f"{path}: unknown calibration format {suffix!r}. reshoot reads calibration.json (reshoot/cameras) "
        "and caliscope's camera_array.toml."
    )


def _number_matrix(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A finite float64 array of exactly `shape`, or a FormatError naming `where`."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape or not np.isfinite(array).all():
        wanted = "x".join(str(s) for s in shape)
        raise FormatError(f"{where}: expected {wanted} finite numbers, got {value!r}.")
    return array


def _rotation_matrix(value: Any, where: str) -> np.ndarray:
    """caliscope stores a 3x3 rotation; older files (and OpenCV's habit) a 3-vector Rodrigues."""
    array = np.asarray(value, dtype=np.float64) if isinstance(value, list) else None
    if array is not None and array.shape == (3,) and np.isfinite(array).all():
        from scipy.spatial.transform import Rotation

        return Rotation.from_rotvec(array).as_matrix()
    return _number_matrix(value, (3, 3), where)


def _caliscope_camera(key: str, entry: Any, where: str) -> tuple[str, dict[str, Any]] | None:
    """One `[cameras.N]` table → (name, fields), or None for an ignored camera."""
    if not isinstance(entry, dict):
        raise FormatError(f"{where}: [cameras.{key}] must be a table.")
    if entry.get("ignore", False) is True:
        logger.info("%s: camera %s is marked ignore = true; skipped.", where, key)
        return None
    cam_id = entry.get("cam_id", key)
    if isinstance(cam_id, bool) or not re.fullmatch(r"\d+", str(cam_id)):
        raise FormatError(f"{where}: [cameras.{key}] cam_id must be a non-negative integer, got {cam_id!r}.")
    name = f"{CALISCOPE_NAME_PREFIX}{int(cam_id)}"
    here = f"{where}: camera {name}"
    missing = [k for k in ("size", "matrix", "rotation", "translation") if k not in entry]
    if missing:
        hint = (
            " It has no extrinsics yet: run caliscope's extrinsic calibration first."
            if {"rotation", "translation"} & set(missing)
            else ""
        )
        raise FormatError(f"{here}: missing {', '.join(missing)}.{hint}")
    size = entry["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise FormatError(f"{here}: size must be [width, height] in pixels, got {size!r}.")
    distortions = entry.get("distortions") or []
    dist = _number_matrix(distortions, (len(distortions),), f"{here} distortions") if distortions else None
    if dist is not None and len(dist) > 5:
        raise FormatError(f"{here}: distortions must be OpenCV's k1 k2 p1 p2 k3 (at most 5 numbers).")
    cam_from_world = np.eye(4)
    cam_from_world[:3, :3] = _rotation_matrix(entry["rotation"], f"{here} rotation")
    cam_from_world[:3, 3] = _number_matrix(entry["translation"], (3,), f"{here} translation")
    return name, {
        "K": _number_matrix(entry["matrix"], (3, 3), f"{here} matrix"),
        "cam_from_world": cam_from_world,
        "size": size,
        "distortion": np.zeros(5) if dist is None else np.pad(dist, (0, 5 - len(dist))),
    }


def load_caliscope_camera_array(path: str | os.PathLike) -> Camera:
    """Read caliscope's `camera_array.toml`.

    Each `[cameras.N]` table gives `matrix` (K, pixels), `distortions` (OpenCV k1 k2 p1 p2 k3),
    `rotation` (3x3, or a Rodrigues 3-vector) and `translation` (metres), which together are
    cam_from_world, and `size` = [width, height]. Cameras with `ignore = true` are skipped. caliscope
    calibrates with OpenCV, whose pixel centres reshoot shares, so K is taken as is.

    Args:
        path: the `camera_array.toml`.

    Returns:
        The cameras named `cam_<cam_id>` (as caliscope names their videos), sorted by cam_id.

    Raises:
        InputError: the file is missing or not TOML.
        FormatError: a camera table lacks or garbles a field, or no camera is left.
    """
    path = Path(path)
    doc = read_text_document(path, tomllib.loads, "TOML", "caliscope's camera_array.toml")
    tables = doc.get("cameras")
    if not isinstance(tables, dict) or not tables:
        raise FormatError(f"{path}: no [cameras.N] tables; is this caliscope's camera_array.toml?")
    cameras: dict[str, dict[str, Any]] = {}
    for key, entry in tables.items():
        parsed = _caliscope_camera(key, entry, str(path))
        if parsed is None:
            continue
        name, fields = parsed
        if name in cameras:
            raise FormatError(f"{path}: camera {name} appears twice.")
        cameras[name] = fields
    if not cameras:
        raise FormatError(f"{path}: every camera is marked ignore = true; nothing to load.")
    names = sorted(cameras, key=lambda n: int(n[len(CALISCOPE_NAME_PREFIX) :]))
    return _camera_from_fields(names, [cameras[n] for n in names], str(path))


def _camera_from_fields(names: list[str], fields: list[dict[str, Any]], where: str) -> Camera:
    for name, f in zip(names, fields):
        check_name(name, f"{where}: camera name", "rename it")
        if not (f["K"][0, 0] > 0 and f["K"][1, 1] > 0):
            raise FormatError(
                f"{where}: camera {name}: the focal lengths fx and fy (K[0][0], K[1][1]) must be "
                f"positive (pixels), got {f['K'][0, 0]:g} and {f['K'][1, 1]:g}. Fix the calibration."
            )
    try:
        return Camera.create(
            names,
            np.stack([f["K"] for f in fields]),
            np.stack([f["cam_from_world"] for f in fields]),
            [f["size"][0] for f in fields],
            [f["size"][1] for f in fields],
            np.stack([f["distortion"] for f in fields]),
        )
    except FormatError:
        raise
    except InputError as exc:
        raise FormatError(f"{where}: {exc}") from None


def _strecha_camera(path: Path) -> dict[str, Any]:
    """Parse one Strecha `.camera` file (9 lines: K, zeros, R camera-to-world, centre C, size)."""
    try:
        rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        values = [[float(x) for x in row] for row in rows]
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path}: not a Strecha .camera file of numbers ({exc}).") from None
    shape = [len(r) for r in values]
    if shape[:8] != [3] * 8 or len(values) < 9 or len(values[8]) != 2:
        raise FormatError(
            f"{path}: expected 9 lines (3 of K, '0 0 0', 3 of R, the centre C, 'width height'), "
            f"found rows of lengths {shape}."
        )
    array = np.asarray(values[:8], dtype=np.float64)
    if not np.isfinite(array).all():
        raise FormatError(f"{path}: contains non-finite numbers.")
    width, height = values[8]
    if width != int(width) or height != int(height) or width <= 0 or height <= 0:
        raise FormatError(f"{path}: the last line must be the image width and height in pixels.")
    world_from_cam_rot, centre = array[4:7], array[7]
    cam_from_world = np.eye(4)
    cam_from_world[:3, :3] = world_from_cam_rot.T
    cam_from_world[:3, 3] = -world_from_cam_rot.T @ centre
    # K is taken as is (OpenCV pixel centres). The data cannot tell the convention apart: SIFT
    # matches lie on the predicted epipolar lines at a median of ~0.1-0.15 px whether or not both
    # principal points move by half a pixel (measured: 0.5 px shifts change it by < 0.02 px), because
    # a common shift of both images barely moves epipolar lines. At most 0.5 px is at stake.
    return {
        "K": array[:3],
        "cam_from_world": cam_from_world,
        "size": [int(width), int(height)],
        "distortion": np.zeros(5),
    }


def load_strecha_cameras(folder: str | os.PathLike) -> tuple[Camera, list[Path]]:
    """Read a Strecha multi-view benchmark scene (e.g. fountain-P11).

    The folder holds `images/NNNN.jpg` and `gt_dense_cameras/NNNN.jpg.camera`, whose 9 lines are K
    (3 lines, pixels), `0 0 0`, R (3 lines, the camera-to-world rotation), the camera centre C
    (world) and `width height`; so cam_from_world = [Rᵀ | −Rᵀ C]. The lens is ideal (no distortion).

    Args:
        folder: the scene folder.

    Returns:
        The cameras named by image stem ("0000", ...), sorted by name, and the matching image paths.

    Raises:
        InputError: the folder, its camera files, or an image for a camera is missing.
        FormatError: a `.camera` file is malformed.
    """
    folder = Path(folder)
    camera_dir = folder / "gt_dense_cameras"
    if not camera_dir.is_dir():
        raise InputError(f"{folder}: no gt_dense_cameras/ folder; is this a Strecha benchmark scene?")
    files = sorted(camera_dir.glob("*.camera"))
    if not files:
        raise InputError(f"{camera_dir}: no .camera files.")
    names, fields, images = [], [], []
    for file in files:
        image_name = file.name[: -len(".camera")]  # "0000.jpg"
        image = folder / "images" / image_name
        if not image.is_file():
            raise InputError(f"{file}: its image {image} is missing. Restore it or remove the .camera file.")
        names.append(Path(image_name).stem)
        fields.append(_strecha_camera(file))
        images.append(image)
    return _camera_from_fields(names, fields, str(camera_dir)), images
