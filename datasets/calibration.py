"""Loaders of camera calibrations made by other tools, into reshoot's one `Camera` type (float64).

- `calibration.json`: our own `reshoot/cameras` document (DESIGN.md §4).
- caliscope's `camera_array.toml`: OpenCV calibration of synchronized cameras.
- Pose2Sim's (and anipose's) calibration TOML: one table per camera, OpenCV's K, distortion and
  Rodrigues rotation.
- Qualisys Track Manager's `.qca` (XML): sensor units ×64, camera positions in millimetres.
- OpenCV FileStorage YAML / XML: the layouts OpenCV's calibration samples and multi-camera tools write.
- COLMAP sparse models (text or binary folders) and nerfstudio `transforms.json` (read by
  `geometry/exports.py`, which also writes them).
- Strecha et al.'s ground-truth `.camera` files (fountain-P11, Herz-Jesu, ...).

`load_calibration` tells these apart by the file (or folder) and its content; each reader here has a
writer beside it (the round trips in tests/test_calibration.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.exports import read_colmap_model, read_nerfstudio_transforms
from reshoot.geometry.files import read_text_document, write_text_atomic
from reshoot.geometry.validation import check_name

logger = logging.getLogger(__name__)

CALISCOPE_NAME_PREFIX = "cam_"  # caliscope records camera N as cam_N.mp4
QUALISYS_SENSOR_UNITS = 64.0  # a .qca's focal lengths and principal points are in 1/64 pixel
# Qualisys's camera axes have y up and look down -z; OpenCV's (ours) have y down and look down +z.
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
FORMATS = (
    "calibration.json (reshoot/cameras), caliscope's camera_array.toml, a Pose2Sim or anipose calibration "
    "TOML, a Qualisys .qca, an OpenCV FileStorage .yml/.xml, a COLMAP sparse model folder (text or binary) and a "
    "nerfstudio transforms.json"
)


def load_calibration(path: str | os.PathLike) -> Camera:
    """Load a calibration, telling its format from the path and the content.

    - a folder: a COLMAP sparse model (cameras/images as .txt or .bin);
    - `.json`: a nerfstudio transforms.json when it has "frames", else a `reshoot/cameras` document;
    - `.toml`: caliscope's camera_array.toml when it has [cameras.N] tables, else Pose2Sim's / anipose's;
    - `.yml`, `.yaml`, and `.xml` with an `<opencv_storage>` root: an OpenCV FileStorage;
    - `.qca` (also `.qca.txt`, other `.xml`): a Qualisys calibration.

    Args:
        path: the calibration file or COLMAP model folder.

    Returns:
        The cameras it describes, float64.

    Raises:
        InputError: the path is missing or of a kind reshoot does not read.
        FormatError: it is of a known kind but malformed.
    """
    path = Path(path)
    if path.is_dir():
        return read_colmap_model(path)
    if not path.is_file():
        raise InputError(f"{path}: no such calibration file or COLMAP model folder. Check the path.")
    name = path.name.lower()
    if name.endswith(".json"):
        document = read_text_document(path, json.loads, "JSON", "a calibration")
        if isinstance(document, dict) and "frames" in document and "format" not in document:
            return read_nerfstudio_transforms(path).cameras
        return read_cameras_json(path).cameras
    if name.endswith(".toml"):
        document = read_text_document(path, tomllib.loads, "TOML", "a calibration")
        if "cameras" in document:
            return load_caliscope_camera_array(path)
        return load_pose2sim_toml(path)
    if name.endswith((".yml", ".yaml")) or (name.endswith(".xml") and is_opencv_storage(path)):
        return load_opencv_storage(path)
    if name.endswith((".qca", ".qca.txt", ".xml")):
        return load_qualisys_qca(path)
    raise InputError(f"{path}: unknown calibration format {path.suffix!r}. reshoot reads {FORMATS}.")


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


# ------------------------------------------------------------------------------------------------
# Pose2Sim / anipose TOML


def _pose2sim_name(key: str, entry: dict[str, Any], where: str) -> str:
    """The camera's name: its `name` (else the table's key) without the `int_` prefix and `_img`
    suffix of Pose2Sim's intrinsics folders (int_cam01_img → cam01), so that it matches the video."""
    name = str(entry.get("name", key))
    name = name.removeprefix("int_").removesuffix("_img")
    return check_name(name, f"{where} name", "rename the camera's table (and its video)")


def _pose2sim_size(value: Any, where: str) -> list[int]:
    """[width, height] in pixels; Pose2Sim writes them as floats (1088.0)."""
    ok = isinstance(value, list) and len(value) == 2
    ok = ok and all(
        isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s) and s > 0 and s == int(s)
        for s in value
    )
    if not ok:
        raise FormatError(
            f"{where}: size must be [width, height], two positive whole numbers of pixels, got {value!r}."
        )
    return [int(s) for s in value]


def load_pose2sim_toml(path: str | os.PathLike) -> Camera:
    """Read a Pose2Sim (or anipose) calibration TOML.

    One table per camera (`[metadata]` is skipped) with `size` [width, height] (pixels), `matrix` K,
    `distortions` OpenCV's k1 k2 p1 p2 (and k3), `rotation` (a Rodrigues 3-vector) and `translation`
    (metres), which together are cam_from_world, as OpenCV's calibration gives them; `fisheye = true`
    is refused (reshoot's lens model is OpenCV's pinhole one). K is taken as is (OpenCV pixel centres).

    Args:
        path: the TOML file.

    Returns:
        The cameras in the file's order, named by `_pose2sim_name`.

    Raises:
        InputError: the file is missing or not TOML.
        FormatError: a camera table lacks or garbles a field, a camera is a fisheye, or no camera is found.
    """
    path = Path(path)
    doc = read_text_document(path, tomllib.loads, "TOML", "a Pose2Sim calibration")
    names, fields = [], []
    for key, entry in doc.items():
        if key == "metadata" or not isinstance(entry, dict):
            continue
        where = f"{path}: [{key}]"
        missing = [k for k in ("size", "matrix", "distortions", "rotation", "translation") if k not in entry]
        if missing:
            raise FormatError(f"{where}: missing {', '.join(missing)}; is this a Pose2Sim calibration?")
        if entry.get("fisheye", False) is True:
            raise FormatError(
                f"{where}: a fisheye camera; reshoot reads pinhole lenses with OpenCV's distortion. "
                "Calibrate it with Pose2Sim's pinhole model."
            )
        distortions = _number_matrix(entry["distortions"], (len(entry["distortions"]),), f"{where} distortions")
        if not 4 <= len(distortions) <= 5:
            raise FormatError(f"{where}: distortions must be OpenCV's k1 k2 p1 p2 (and k3), got {len(distortions)}.")
        cam_from_world = np.eye(4)
        cam_from_world[:3, :3] = Rotation.from_rotvec(
            _number_matrix(entry["rotation"], (3,), f"{where} rotation")
        ).as_matrix()
        cam_from_world[:3, 3] = _number_matrix(entry["translation"], (3,), f"{where} translation")
        names.append(_pose2sim_name(key, entry, where))
        fields.append(
            {
                "K": _number_matrix(entry["matrix"], (3, 3), f"{where} matrix"),
                "cam_from_world": cam_from_world,
                "size": _pose2sim_size(entry["size"], where),
                "distortion": np.pad(distortions, (0, 5 - len(distortions))),
            }
        )
    if not names:
        raise FormatError(f"{path}: no camera tables; is this a Pose2Sim calibration?")
    if len(set(names)) != len(names):
        raise FormatError(f"{path}: camera names repeat: {names}. Give each camera table its own name.")
    return _camera_from_fields(names, fields, str(path))


def write_pose2sim_toml(path: str | os.PathLike, cameras: Camera) -> None:
    """Write `cameras` as a Pose2Sim calibration TOML (`load_pose2sim_toml`'s format), atomically."""
    lines = []
    for i, name in enumerate(cameras.names):
        K = cameras.K[i].double().numpy()
        pose = cameras.cam_from_world[i].double().numpy()
        rotation = Rotation.from_matrix(pose[:3, :3]).as_rotvec()
        lines += [
            f"[{name}]",
            f'name = "{name}"',
            f"size = [{float(cameras.width[i])!r}, {float(cameras.height[i])!r}]",
            f"matrix = {_toml_list(K)}",
            f"distortions = {_toml_list(cameras.distortion[i].double().numpy())}",
            f"rotation = {_toml_list(rotation)}",
            f"translation = {_toml_list(pose[:3, 3])}",
            "fisheye = false",
            "",
        ]
    write_text_atomic(path, "\n".join(lines + ["[metadata]", "adjusted = false", "error = 0.0", ""]))


def _toml_list(array: np.ndarray) -> str:
    """A (nested) TOML array of floats, each written so that it reads back to the same float64."""
    if array.ndim == 1:
        return "[" + ", ".join(repr(float(x)) for x in array) + "]"
    return "[" + ", ".join(_toml_list(row) for row in array) + "]"


# ------------------------------------------------------------------------------------------------
# Qualisys .qca


def _attributes(element: ElementTree.Element | None, keys: tuple[str, ...], where: str) -> list[float]:
    """The finite numbers of `element`'s attributes `keys`, or a FormatError naming `where`."""
    if element is None:
        raise FormatError(f"{where}: missing; is this a Qualisys calibration?")
    try:
        values = [float(element.attrib[k]) for k in keys]
    except KeyError as exc:
        raise FormatError(f"{where}: attribute {exc.args[0]} is missing.") from None
    except ValueError as exc:
        raise FormatError(f"{where}: not a number ({exc}).") from None
    if not all(math.isfinite(v) for v in values):
        raise FormatError(f"{where}: non-finite numbers.")
    return values


def load_qualisys_qca(path: str | os.PathLike) -> Camera:
    """Read a Qualisys Track Manager calibration (`.qca`, XML).

    Per `<camera serial=...>` (cameras with active="0" are skipped):
    - `<fov_video left top right bottom>`: the picture, width = right - left + 1;
    - `<intrinsic>`: focalLengthU/V and centerPointU/V in sensor units (1/64 pixel; the centre is
      taken relative to the fov's left/top corner), radialDistortion1-3 and tangentalDistortion1-2,
      which are OpenCV's k1 k2 k3 and p1 p2 as they stand (Pose2Sim's converter divides them by 64
      too, but the demo's independent calibration of the same phones has k1 -0.031 to -0.053, as the
      .qca's -0.046 to -0.048 read as they stand, not -0.0007);
    - `<transform>`: the camera's centre x y z in millimetres and r11..r33 (row i, column j), the
      world-to-camera rotation in Qualisys's camera axes (y up, looking down -z), turned into OpenCV's.
    Checked against the shared Pose2Sim demo, whose Pose2Sim TOML is an independent calibration of
    the same rig: centres within 15 cm and rotations within 3° of it (tests/test_calibration.py).
    A camera with a view rotation is refused.

    Args:
        path: the .qca file.

    Returns:
        The active cameras in the file's order, named by their serial.

    Raises:
        InputError: the file is missing.
        FormatError: not XML, no cameras, a rotated view, missing or garbled attributes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (a Qualisys .qca calibration is expected). Check the path.")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise FormatError(f"{path}: not valid XML ({exc}); a Qualisys .qca calibration is expected.") from None
    names, fields = [], []
    for camera in root.findall("cameras/camera"):
        serial = camera.attrib.get("serial", "")
        where = f"{path}: camera {serial!r}"
        if camera.attrib.get("active", "1") == "0":
            logger.info("%s: not active; skipped.", where)
            continue
        if camera.attrib.get("video_resolution", "1080p") not in ("1080p", "N/A"):
            raise FormatError(
                f"{where}: calibrated for video_resolution={camera.attrib['video_resolution']}; reshoot reads "
                "calibrations at full (1080p) resolution. Export the calibration at 1080p."
            )
        if camera.attrib.get("viewrotation", "0") not in ("0", "0.0"):
            raise FormatError(
                f"{where}: its view is rotated (viewrotation={camera.attrib['viewrotation']}); reshoot reads "
                "calibrations of unrotated views. Export the calibration with the view rotation at 0."
            )
        left, top, right, bottom = _attributes(
            camera.find("fov_video"), ("left", "top", "right", "bottom"), f"{where} fov_video"
        )
        fu, fv, cu, cv, k1, k2, k3, p1, p2 = _attributes(
            camera.find("intrinsic"),
            ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV", "radialDistortion1",
             "radialDistortion2", "radialDistortion3", "tangentalDistortion1", "tangentalDistortion2"),
            f"{where} intrinsic",
        )  # fmt: skip
        transform = _attributes(
            camera.find("transform"),
            ("x", "y", "z", *(f"r{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3))),
            f"{where} transform",
        )
        rotation = QUALISYS_TO_OPENCV @ np.array(transform[3:]).reshape(3, 3)
        centre = np.array(transform[:3]) / 1000.0
        cam_from_world = np.eye(4)
        cam_from_world[:3, :3] = rotation
        cam_from_world[:3, 3] = -rotation @ centre
        s = QUALISYS_SENSOR_UNITS
        names.append(check_name(serial, f"{where} serial", "give the camera a serial that is safe as a file name"))
        fields.append(
            {
                "K": np.array([[fu / s, 0.0, cu / s - left], [0.0, fv / s, cv / s - top], [0.0, 0.0, 1.0]]),
                "cam_from_world": cam_from_world,
                "size": [int(right - left + 1), int(bottom - top + 1)],
                "distortion": np.array([k1, k2, p1, p2, k3]),
            }
        )
    if not names:
        raise FormatError(f"{path}: no active <camera> under <cameras>; is this a Qualisys calibration?")
    if len(set(names)) != len(names):
        raise FormatError(f"{path}: camera serials repeat: {names}.")
    return _camera_from_fields(names, fields, str(path))


def write_qualisys_qca(path: str | os.PathLike, cameras: Camera) -> None:
    """Write `cameras` as a Qualisys .qca (`load_qualisys_qca`'s subset of it), atomically.

    Raises:
        FormatError: a camera's K has skew (a .qca has none).
    """
    root = ElementTree.Element("calibration", {"source": "reshoot", "type": "regular"})
    group = ElementTree.SubElement(root, "cameras")
    s = QUALISYS_SENSOR_UNITS
    for i, name in enumerate(cameras.names):
        K = cameras.K[i].double().numpy()
        if K[0, 1] != 0:
            raise FormatError(f"camera {name}: K has skew {K[0, 1]:g}, which a Qualisys .qca cannot hold.")
        pose = cameras.cam_from_world[i].double().numpy()
        centre = -pose[:3, :3].T @ pose[:3, 3] * 1000.0
        rotation = QUALISYS_TO_OPENCV @ pose[:3, :3]
        k1, k2, p1, p2, k3 = (repr(float(x)) for x in cameras.distortion[i].double())
        camera = ElementTree.SubElement(group, "camera", {"active": "1", "serial": name, "viewrotation": "0"})
        right, bottom = int(cameras.width[i]) - 1, int(cameras.height[i]) - 1
        ElementTree.SubElement(
            camera, "fov_video", {"left": "0", "top": "0", "right": str(right), "bottom": str(bottom)}
        )
        transform = {k: repr(float(v)) for k, v in zip("xyz", centre)}
        transform.update({f"r{r + 1}{c + 1}": repr(float(rotation[r, c])) for r in range(3) for c in range(3)})
        ElementTree.SubElement(camera, "transform", transform)
        intrinsic = {
            "focalLengthU": repr(float(K[0, 0] * s)),
            "focalLengthV": repr(float(K[1, 1] * s)),
            "centerPointU": repr(float(K[0, 2] * s)),
            "centerPointV": repr(float(K[1, 2] * s)),
            "radialDistortion1": k1,
            "radialDistortion2": k2,
            "radialDistortion3": k3,
            "tangentalDistortion1": p1,
            "tangentalDistortion2": p2,
        }
        ElementTree.SubElement(camera, "intrinsic", intrinsic)
    ElementTree.indent(root)
    write_text_atomic(path, ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


# ------------------------------------------------------------------------------------------------
# OpenCV FileStorage (YAML / XML)

OPENCV_SUFFIXES = (".yml", ".yaml", ".xml")
# The names OpenCV's samples and tools give each camera's matrices: multi-camera files index them
# (camera_matrix_0, K_0 ...), stereo_calib numbers them from 1 (M1, D1), a single camera has none.
OPENCV_K = ("camera_matrix_{i}", "K_{i}", "M{n}")
OPENCV_DISTORTION = ("distortion_coefficients_{i}", "camera_distortion_{i}", "dist_{i}", "D_{i}", "D{n}")


def is_opencv_storage(path: Path) -> bool:
    """Whether a .yml/.yaml/.xml file is an OpenCV FileStorage (its YAML directive or <opencv_storage>)."""
    head = path.read_bytes()[:256].decode("utf-8", errors="replace")
    return "<opencv_storage" in head or head.lstrip().startswith("%YAML")


def _opencv_node(storage: Any, names: tuple[str, ...], i: int, single: bool) -> Any:
    """The first non-empty node among `names` for camera i (formatted with i and n = i + 1; for a
    one-camera file also the names without an index), or None."""
    candidates = [name.format(i=i, n=i + 1) for name in names]
    if single:
        candidates += [name.split("_{")[0] for name in names if "_{" in name]
    for name in candidates:
        node = storage.getNode(name)
        if not node.empty():
            return node
    return None


def _opencv_number(storage: Any, names: list[str]) -> float | None:
    for name in names:
        node = storage.getNode(name)
        if not node.empty() and (node.isReal() or node.isInt()):
            return float(node.real())
    return None


def _opencv_size(storage: Any, i: int, where: str) -> list[int]:
    """[width, height] of camera i: image_width_i / image_height_i, image_width / image_height, or
    image_size / imageSize ([width, height])."""
    width = _opencv_number(storage, [f"image_width_{i}", "image_width"])
    height = _opencv_number(storage, [f"image_height_{i}", "image_height"])
    if width is None or height is None:
        for name in (f"image_size_{i}", "image_size", "imageSize"):
            node = storage.getNode(name)
            if not node.empty():
                values = node.mat().reshape(-1) if node.isMap() else [node.at(k).real() for k in range(node.size())]
                if len(values) == 2:
                    width, height = float(values[0]), float(values[1])
                    break
    if width is None or height is None:
        raise FormatError(
            f"{where}: no image size. Add image_width and image_height (pixels of the frames it was calibrated "
            "on) to the file, e.g. image_width_0: 1920 and image_height_0: 1080."
        )
    return _pose2sim_size([width, height], where)


def load_opencv_storage(path: str | os.PathLike) -> Camera:
    """Read an OpenCV FileStorage calibration (YAML or XML, as `cv2.FileStorage` writes it).

    Layouts read (per camera i from 0, or n = i + 1 for stereo_calib's):
    - multi-camera: `camera_matrix_i` (or `K_i`), `distortion_coefficients_i` (or `camera_distortion_i`,
      `dist_i`, `D_i`), the pose as `R_i` (3x3, or a Rodrigues 3-vector) and `T_i` (or `t_i`), or a 4x4
      `camera_pose_i`, all cam_from_world; a camera without a pose is at the origin;
    - stereo_calib's: `M1` `D1` `M2` `D2` and `R` `T` (camera 2 from camera 1, which is the origin);
    - one camera: `camera_matrix` `distortion_coefficients` (OpenCV's calibration sample), at the origin.
    The image size comes from `image_width[_i]` and `image_height[_i]` or `image_size` ([w, h]); the
    names from a `camera_names` sequence (reshoot writes one), else "0", "1", ... (`open_footage` then
    maps them to the footage's cameras in name order, with a warning). K is taken as is (OpenCV pixel
    centres); the translation in the file's units (registration reports them: [registration.md]).

    Raises:
        InputError: the file is missing.
        FormatError: not an OpenCV FileStorage, no camera matrix, or a garbled matrix, pose or size.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (an OpenCV calibration is expected). Check the path.")
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as exc:  # OpenCV's parser raises through a SystemError on some input
        reason = str(exc.__cause__ or exc).strip().splitlines()[-1]
        raise FormatError(f"{path}: not an OpenCV FileStorage ({reason}).") from None
    try:
        single = all(_opencv_node(storage, OPENCV_K, i, False) is None for i in (0, 1))
        names_node = storage.getNode("camera_names")
        given = [names_node.at(k).string() for k in range(names_node.size())] if names_node.isSeq() else []
        names, fields = [], []
        for i in range(64):
            K = _opencv_node(storage, OPENCV_K, i, single and i == 0)
            if K is None:
                break
            where = f"{path}: camera {given[i] if i < len(given) else i}"
            distortion_node = _opencv_node(storage, OPENCV_DISTORTION, i, single and i == 0)
            distortion = np.zeros(5) if distortion_node is None else distortion_node.mat().reshape(-1)
            if distortion.size > 5 and np.any(distortion[5:] != 0):
                raise FormatError(f"{where}: {distortion.size} distortion coefficients; reshoot reads OpenCV's 5.")
            names.append(given[i] if i < len(given) else str(i))
            fields.append(
                {
                    "K": _number_matrix(K.mat(), (3, 3), f"{where} camera matrix"),
                    "cam_from_world": _opencv_pose(storage, i, where),
                    "size": _opencv_size(storage, i, where),
                    "distortion": np.pad(distortion[:5], (0, 5 - min(distortion.size, 5))),
                }
            )
    finally:
        storage.release()
    if not names:
        raise FormatError(
            f"{path}: no camera matrix (camera_matrix_0, K_0, M1 or camera_matrix); is this a camera calibration?"
        )
    if len(given) not in (0, len(names)):
        raise FormatError(f"{path}: camera_names lists {len(given)} names for {len(names)} cameras.")
    return _camera_from_fields([check_name(n, f"{path}: camera name", "rename it") for n in names], fields, str(path))


def _opencv_pose(storage: Any, i: int, where: str) -> np.ndarray:
    """cam_from_world [4, 4] of camera i: camera_pose_i, R_i/T_i, or stereo_calib's R/T for camera 2."""
    pose = np.eye(4)
    node = storage.getNode(f"camera_pose_{i}")
    if not node.empty():
        return _number_matrix(node.mat(), (4, 4), f"{where} camera_pose_{i}")
    rotation, translation = storage.getNode(f"R_{i}"), storage.getNode(f"T_{i}")
    if translation.empty():
        translation = storage.getNode(f"t_{i}")
    if rotation.empty() and i == 1 and storage.getNode("R_0").empty():  # stereo_calib: R, T of camera 2
        rotation, translation = storage.getNode("R"), storage.getNode("T")
    if rotation.empty() and translation.empty():
        return pose
    R = rotation.mat()
    if R is not None and R.size == 3:  # a Rodrigues vector, as cv2.calibrateCamera gives rvecs
        pose[:3, :3] = Rotation.from_rotvec(R.reshape(3)).as_matrix()
    else:
        pose[:3, :3] = _number_matrix(R, (3, 3), f"{where} rotation")
    pose[:3, 3] = _number_matrix(translation.mat().reshape(-1), (3,), f"{where} translation")
    if not np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-4):
        raise FormatError(f"{where}: its rotation is not a rotation matrix.")
    return pose


def write_opencv_storage(path: str | os.PathLike, cameras: Camera) -> None:
    """Write `cameras` as an OpenCV FileStorage (YAML, or XML for a .xml path) in
    `load_opencv_storage`'s multi-camera layout, with their names, atomically."""
    import cv2

    path = Path(path)
    storage = cv2.FileStorage(path.name, cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_MEMORY)
    storage.write("nCameras", len(cameras))
    storage.startWriteStruct("camera_names", cv2.FileNode_SEQ)
    for name in cameras.names:
        storage.write("", name)
    storage.endWriteStruct()
    for i in range(len(cameras)):
        pose = cameras.cam_from_world[i].double().numpy()
        storage.write(f"image_width_{i}", int(cameras.width[i]))
        storage.write(f"image_height_{i}", int(cameras.height[i]))
        storage.write(f"camera_matrix_{i}", cameras.K[i].double().numpy())
        storage.write(f"distortion_coefficients_{i}", cameras.distortion[i].double().numpy().reshape(1, 5))
        storage.write(f"R_{i}", pose[:3, :3])
        storage.write(f"T_{i}", pose[:3, 3].reshape(3, 1))
    write_text_atomic(path, storage.releaseAndGetString())


# ------------------------------------------------------------------------------------------------
# Units

UNITS_TO_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001}
CALIBRATION_UNITS = ("auto", *UNITS_TO_METRES)
METRES_UP_TO = 50.0  # a rig whose cameras are a median of at most this many units apart is in metres
TYPICAL_SPACING_M = 4.0  # else cm or mm, whichever puts the cameras nearer this far apart


def median_spacing(cameras: Camera) -> float:
    """Median distance between the camera centres, in the calibration's units (0 for one camera)."""
    centres = cameras.centers.double().numpy()
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(centres), 1)]
    return float(np.median(distances)) if distances.size else 0.0


def sniff_units(cameras: Camera) -> str:
    """The length unit of a calibration's translations, from how far apart its cameras stand: metres
    when their median spacing is at most METRES_UP_TO units (a film set), else centimetres or
    millimetres, whichever puts them nearer TYPICAL_SPACING_M apart. A rig of one camera is in metres."""
    spacing = median_spacing(cameras)
    if spacing <= METRES_UP_TO:
        return "m"
    return min(("cm", "mm"), key=lambda unit: abs(math.log(spacing * UNITS_TO_METRES[unit] / TYPICAL_SPACING_M)))


def in_metres(cameras: Camera, unit: str) -> Camera:
    """The same cameras with their translations converted from `unit` to metres."""
    pose = cameras.cam_from_world.clone()
    pose[:, :3, 3] *= UNITS_TO_METRES[unit]
    return Camera(cameras.names, cameras.K, pose, cameras.width, cameras.height, cameras.distortion)
