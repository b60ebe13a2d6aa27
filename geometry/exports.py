"""Camera exports for other tools: COLMAP text models, nerfstudio `transforms.json`, Nuke `.chan`, USD.

Each writer has a reader, and each pair has a round-trip test (DESIGN.md §3: conversions to other
conventions live in `geometry` and are tested both ways). The convention changes:

| | reshoot | COLMAP | nerfstudio |
| --- | --- | --- | --- |
| pixel centres | (0, 0) = centre of the top-left pixel | (0.5, 0.5) | (0.5, 0.5) |
| principal point | cx, cy | cx + 0.5, cy + 0.5 | cx + 0.5, cy + 0.5 |
| extrinsic | cam_from_world, OpenCV axes | cam_from_world, OpenCV axes | camera-to-world, OpenGL axes |
| world | z up | as given (we write ours) | z up (we write ours; no applied_transform) |
| distortion | OpenCV k1 k2 p1 p2 k3 | OPENCV / FULL_OPENCV model | k1 k2 p1 p2 k3 (+ k4, unused) |

Where these were checked (nerfstudio at commit 50e0e3c, July 2025):
- COLMAP's pixel centres: `colmap_K_from_opencv` in `conventions.py`; the COLMAP reference test
  projects with pycolmap's own `Camera.img_from_cam`.
- nerfstudio's: `nerfstudio/cameras/cameras.py`, `Cameras.get_image_coords(pixel_offset=0.5)` gives
  pixel (row i, column j) the coordinates (i + 0.5, j + 0.5), and `generate_rays` forms the direction
  ((x - cx) / fx, -(y - cy) / fy, -1) in OpenGL camera axes, rotated by `camera_to_worlds`. Likewise
  `nerfstudio/process_data/colmap_utils.py`, `colmap_to_json`, copies COLMAP's cx, cy unchanged.
- nerfstudio's distortion (`camera_utils._compute_residual_and_jacobian`) is OpenCV's
  radial-tangential model, with an extra polynomial term k4 r^8 that OpenCV's 5 coefficients lack.
- `applied_transform` (`nerfstudio_dataparser.py`) records the rotation a converter applied to the
  original world (COLMAP's y-down world is turned z-up). Our world is already z-up, so we write none.
  Caveat: nerfstudio assumes the legacy COLMAP rotation when `applied_transform` is absent and a
  `colmap/sparse/0` folder sits beside the transforms.json; that only affects how it maps exports
  back to the original world, not training.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .alignment import rotation_angle_deg
from .camera import Camera
from .colmap import colmap_camera, intrinsics_from_colmap
from .conventions import colmap_K_from_opencv, opencv_from_opengl, opencv_K_from_colmap, opengl_from_opencv
from .errors import FormatError, InputError
from .files import atomic_directory, atomic_path, foreign_entries, read_text_document, write_text_atomic

log = logging.getLogger(__name__)

# nerfstudio camera models that are perspective projections (its CAMERA_MODEL_TO_TYPE → PERSPECTIVE).
_NERFSTUDIO_PERSPECTIVE = {"SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV"}
_NERFSTUDIO_DISTORTION_KEYS = ("k1", "k2", "p1", "p2", "k3")  # reshoot's order
_NERFSTUDIO_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
NAME_KEY = "camera_name"  # reshoot's per-frame key in transforms.json; nerfstudio ignores it


def _check_plain_pinhole(cameras: Camera, tool: str) -> None:
    """Refuse intrinsics the target format cannot hold (skew, a non-standard last row)."""
    K = cameras.K
    bad = (K[:, 0, 1] != 0) | (K[:, 1, 0] != 0) | (K[:, 2, :2] != 0).any(-1) | (K[:, 2, 2] != 1)
    bad |= ~torch.isfinite(K).all(dim=(-1, -2)) | ~torch.isfinite(cameras.cam_from_world).all(dim=(-1, -2))
    if bool(bad.any()):
        which = [n for n, b in zip(cameras.names, bad.tolist()) if b]
        raise InputError(
            f"cameras {which}: {tool} holds only K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with finite "
            "values (no skew). Remove the skew (re-calibrate or resample the images) before exporting."
        )


# ------------------------------------------------------------------------------------------------
# COLMAP


def _point_colors(points_rgb: np.ndarray | None, n: int) -> np.ndarray:
    """[N, 3] uint8 colours from uint8 values or floats in [0, 1] (black when not given)."""
    if points_rgb is None:
        return np.zeros((n, 3), dtype=np.uint8)
    rgb = np.asarray(points_rgb)
    if rgb.shape != (n, 3):
        raise InputError(f"points_rgb must be [N, 3] like points_xyz ({n} points), got {rgb.shape}.")
    if rgb.dtype == np.uint8:
        return rgb
    rgb = rgb.astype(np.float64)
    if not np.isfinite(rgb).all() or rgb.min() < 0 or rgb.max() > 1:
        raise InputError("points_rgb: give uint8 values or floats in [0, 1].")
    return np.round(rgb * 255).astype(np.uint8)


def _colmap_image_names(cameras: Camera, image_names: Mapping[str, str] | None) -> list[str]:
    """COLMAP image names per camera: `image_names[camera]`, else `<camera>.png`."""
    image_names = dict(image_names or {})
    unknown = sorted(set(image_names) - set(cameras.names))
    if unknown:
        raise InputError(
            f"image_names names cameras that are not exported: {unknown}; the cameras are {list(cameras.names)}."
        )
    names = [str(image_names.get(n, f"{n}.png")) for n in cameras.names]
    # COLMAP's text format ends each image line with the name and splits on spaces.
    bad = [n for n in names if not n or any(ch.isspace() for ch in n)]
    if bad:
        raise InputError(f"COLMAP image names must be non-empty and without spaces, got {bad}; rename them.")
    if len(set(names)) != len(names):
        raise InputError(f"COLMAP image names must be unique, got {names}.")
    return names


def write_colmap_text(
    folder: str | Path,
    cameras: Camera,
    image_names: Mapping[str, str] | None = None,
    points_xyz: np.ndarray | None = None,
    points_rgb: np.ndarray | None = None,
    overwrite: bool = False,
    observations: Mapping[str, Sequence[tuple[int, float, float]]] | None = None,
) -> None:
    """Write cameras (and optional points) as a COLMAP text model, built and written by pycolmap.

    The folder gets `cameras.txt`, `images.txt`, `points3D.txt` and COLMAP 3.12's `rigs.txt`,
    `frames.txt` (older COLMAP ignores those two). One COLMAP camera, trivial rig, image and frame per
    reshoot camera, with ids 1..V in the order of `cameras`. The principal point is shifted by +0.5 px
    to COLMAP's pixel centres; the pose is the same cam_from_world (COLMAP also uses OpenCV axes) in
    reshoot's world. Points carry the 2D observations given in `observations` (images.txt's POINTS2D,
    points3D.txt's TRACK), none otherwise. The folder is written beside and renamed into place.

    Args:
        folder: the model folder to create.
        cameras: V cameras; K must have no skew.
        image_names: camera name → COLMAP image name (relative to the images folder, no spaces);
            cameras not in it get `<camera>.png`.
        points_xyz: [N, 3] world points (world units), or None.
        points_rgb: [N, 3] colours, uint8 or float in [0, 1]; black when None.
        overwrite: replace an existing non-empty `folder` that is a COLMAP text model (only the model's
            files, nothing else: another folder is never replaced).
        observations: camera name → (point index into `points_xyz`, x, y) per observation, x and y in
            reshoot's (OpenCV) pixels; written at COLMAP's pixel centres (+0.5).

    Raises:
        InputError: skew, unknown or space-containing image names, bad point arrays, or `folder`
            exists and is not empty without `overwrite` or is not a COLMAP text model.
    """
    from .pycolmap_import import pycolmap

    _check_plain_pinhole(cameras, "COLMAP")
    names = _colmap_image_names(cameras, image_names)
    xyz = np.zeros((0, 3)) if points_xyz is None else np.asarray(points_xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or not np.isfinite(xyz).all():
        raise InputError(f"points_xyz must be [N, 3] finite world coordinates, got shape {xyz.shape}.")
    if points_xyz is None and points_rgb is not None:
        raise InputError("points_rgb was given without points_xyz.")
    rgb = _point_colors(points_rgb, len(xyz))
    observations = dict(observations or {})
    bad = [
        n
        for n, seen in observations.items()
        if n not in cameras.names or any(not 0 <= p < len(xyz) for p, _, _ in seen)
    ]
    if bad:
        raise InputError(f"observations of {bad}: unknown cameras or point indices outside 0..{len(xyz) - 1}.")

    cam_from_world = cameras.cam_from_world.detach().cpu().to(torch.float64).numpy()
    reconstruction = pycolmap.Reconstruction()
    for i, name in enumerate(names):
        camera_id = i + 1
        reconstruction.add_camera_with_trivial_rig(colmap_camera(cameras, i, camera_id))
        seen = observations.get(cameras.names[i], ())
        image = pycolmap.Image(
            name=name,
            camera_id=camera_id,
            image_id=camera_id,
            points2D=[pycolmap.Point2D(np.array([x + 0.5, y + 0.5])) for _, x, y in seen],
        )
        reconstruction.add_image_with_trivial_frame(image, pycolmap.Rigid3d(cam_from_world[i, :3, :4]))
    tracks = [pycolmap.Track() for _ in range(len(xyz))]
    for i, name in enumerate(cameras.names):
        for k, (point, _, _) in enumerate(observations.get(name, ())):
            tracks[point].add_element(i + 1, k)
    for p, c, track in zip(xyz, rgb, tracks):
        reconstruction.add_point3D(p, track, c)
    with atomic_directory(
        folder, overwrite=overwrite, replaceable=_not_a_colmap_model, command="the COLMAP export"
    ) as tmp:
        reconstruction.write_text(str(tmp))


COLMAP_TEXT_FILES = ("cameras.txt", "images.txt", "points3D.txt", "rigs.txt", "frames.txt")


def _not_a_colmap_model(folder: Path) -> str | None:
    """Why `folder` is not a COLMAP text model that may be replaced (None when it is): it must hold
    cameras.txt and images.txt and no other files than a text model has."""
    if not all((folder / name).is_file() for name in COLMAP_TEXT_FILES[:2]):
        return "it has no cameras.txt and images.txt"
    foreign = foreign_entries(folder, lambda name: name in COLMAP_TEXT_FILES)
    return f"it also holds {', '.join(foreign[:5])}, which a COLMAP text model does not have" if foreign else None


def read_colmap_model(folder: str | Path) -> Camera:
    """Read the registered images of a COLMAP sparse model (text or binary) as reshoot cameras.

    Each registered image becomes one camera named after its image name's stem (`images/a.png` → `a`),
    in image-id order; images without a pose are skipped (and logged). A rig's model, whose images are
    `<camera>/<frame>` (stems repeat from camera to camera), gives one camera per folder instead, from
    its first image; its other images must show the camera where the first does (within
    `RIG_POSE_TOLERANCE` of the rig's size, and 1°): reshoot's cameras do not move. Intrinsics come from
    the image's COLMAP camera with the principal point shifted by -0.5 px to OpenCV pixel centres.

    Args:
        folder: a folder with `cameras.txt` and `images.txt` (and, from COLMAP 3.12, `rigs.txt`,
            `frames.txt`; `points3D.txt` is read but its points are not returned), or the same as
            `.bin` files.

    Returns:
        Camera with float64 tensors, V = the number of registered images.

    Raises:
        InputError: the folder or its model files are missing or cannot be parsed.
        FormatError: an unsupported camera model, no registered image, image names whose stems
            collide outside a rig's folders, or a rig camera that moves.
    """
    from .pycolmap_import import pycolmap

    folder = Path(folder)
    text = all((folder / f).is_file() for f in ("cameras.txt", "images.txt"))
    if not text and not all((folder / f).is_file() for f in ("cameras.bin", "images.bin")):
        raise InputError(
            f"{folder}: no COLMAP model here (no cameras.txt and images.txt, nor cameras.bin and images.bin). "
            "Give the folder that holds them (e.g. sparse/0)."
        )
    suffix = ".txt" if text else ".bin"
    cameras_file, images_file = folder / f"cameras{suffix}", folder / f"images{suffix}"
    reconstruction = pycolmap.Reconstruction()
    try:
        (reconstruction.read_text if text else reconstruction.read_binary)(str(folder))
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"{folder}: COLMAP could not read this model ({exc}).") from None

    posed = [reconstruction.images[i] for i in sorted(reconstruction.images)]
    for image in posed:
        if not image.has_pose:
            log.warning("%s: image %s has no pose; skipped.", images_file, image.name)
    posed = [image for image in posed if image.has_pose]
    if not posed:
        raise FormatError(f"{images_file}: no image has a pose; nothing to read.")
    images = _one_image_per_camera(posed, images_file)
    names, Ks, dists, poses, widths, heights = [], [], [], [], [], []
    for name, image in images.items():
        camera = reconstruction.cameras[image.camera_id]
        K, dist = intrinsics_from_colmap(camera, f"{cameras_file}: camera {image.camera_id}")
        names.append(name)
        Ks.append(K)
        dists.append(dist)
        poses.append(_pose_matrix(image))
        widths.append(int(camera.width))
        heights.append(int(camera.height))
    try:
        return Camera.create(names, np.stack(Ks), np.stack(poses), widths, heights, np.stack(dists))
    except FormatError:
        raise
    except InputError as exc:
        raise FormatError(f"{folder}: {exc}") from None


RIG_POSE_TOLERANCE = 0.01  # a rig camera's images may place it this share of the rig's size apart


def _pose_matrix(image) -> np.ndarray:
    """[4, 4] cam_from_world of a posed pycolmap image."""
    pose = np.eye(4)
    pose[:3, :4] = image.cam_from_world().matrix()
    return pose


def _one_image_per_camera(images: list, where: Path) -> dict:
    """Camera name → the pycolmap image that calibrates it (see `read_colmap_model`)."""
    stems = [Path(image.name).stem for image in images]
    if len(set(stems)) == len(stems):
        return dict(zip(stems, images))
    folders = [Path(image.name).parent.name for image in images]
    if not all(folders):
        raise FormatError(
            f"{where}: camera names are image-name stems and these collide: {sorted(stems)}. Name the images "
            "after their cameras, or put each camera's images in a folder named after it."
        )
    first: dict = {}
    for folder, image in zip(folders, images):
        first.setdefault(folder, image)
    centres = {name: image.projection_center() for name, image in first.items()}
    size = max((np.linalg.norm(a - b) for a in centres.values() for b in centres.values()), default=0.0)
    for folder, image in zip(folders, images):
        moved = np.linalg.norm(image.projection_center() - centres[folder])
        turned = float(rotation_angle_deg(_pose_matrix(image)[:3, :3], _pose_matrix(first[folder])[:3, :3]))
        if image.camera_id != first[folder].camera_id or moved > RIG_POSE_TOLERANCE * size or turned > 1.0:
            raise FormatError(
                f"{where}: camera {folder!r} moves or changes lens between its images ({first[folder].name} and "
                f"{image.name}: {moved:.3g} units and {turned:.2f}° apart, COLMAP cameras {first[folder].camera_id} "
                f"and {image.camera_id}); reshoot calibrates fixed cameras. Give a model of one instant."
            )
    return first


# ------------------------------------------------------------------------------------------------
# nerfstudio


class NerfstudioTransforms(NamedTuple):
    """What a transforms.json holds, as reshoot values (unpacks as `cameras, image_paths`).

    Attributes:
        cameras: one camera per frame, float64.
        image_paths: camera name → the frame's `file_path` as written (relative to the json's folder).
    """

    cameras: Camera
    image_paths: dict[str, str]


def write_nerfstudio_transforms(path: str | Path, cameras: Camera, image_paths: Mapping[str, str]) -> None:
    """Write cameras as a nerfstudio `transforms.json`, one frame per camera, written atomically.

    Per frame: `file_path`, `transform_matrix` (camera-to-world, OpenGL camera axes: x right, y up,
    z backward, in reshoot's z-up world), intrinsics `fl_x fl_y cx cy w h` with nerfstudio's pixel
    centres (cx = reshoot cx + 0.5, see the module docstring), OpenCV distortion `k1 k2 p1 p2 k3`, and
    `camera_name` (reshoot's, ignored by nerfstudio). Top level: `"camera_model": "OPENCV"` (nerfstudio
    reads it only there) and, when every camera has one horizontal field of view, `camera_angle_x`
    (radians; the Blender-synthetic layout that original-NeRF loaders read). No `applied_transform`:
    the world is already z-up. nerfstudio's dataparser still re-centres and rescales poses at load time
    by default (`orientation_method`, `auto_scale_poses`), as for any dataset.

    Args:
        path: the transforms.json to write.
        cameras: V cameras; K must have no skew.
        image_paths: camera name → image path for every camera, relative to `path`'s folder.

    Raises:
        InputError: skew, or `image_paths` misses cameras or names unknown ones.
    """
    _check_plain_pinhole(cameras, "nerfstudio's transforms.json")
    missing = [n for n in cameras.names if n not in image_paths]
    unknown = sorted(set(image_paths) - set(cameras.names))
    if missing or unknown:
        raise InputError(
            f"image_paths must give one image per camera: missing {missing}, unknown {unknown}; "
            f"the cameras are {list(cameras.names)}."
        )
    K = colmap_K_from_opencv(cameras.K).detach().cpu().to(torch.float64)
    world_from_cam_gl = opengl_from_opencv(cameras.cam_from_world.detach().cpu().to(torch.float64))
    dist = cameras.distortion.detach().cpu().to(torch.float64)
    frames = []
    for i, name in enumerate(cameras.names):
        frame: dict[str, Any] = {
            "file_path": str(image_paths[name]),
            NAME_KEY: name,
            "transform_matrix": world_from_cam_gl[i].tolist(),
            "fl_x": float(K[i, 0, 0]),
            "fl_y": float(K[i, 1, 1]),
            "cx": float(K[i, 0, 2]),
            "cy": float(K[i, 1, 2]),
            "w": int(cameras.width[i]),
            "h": int(cameras.height[i]),
        }
        frame.update({k: float(v) for k, v in zip(_NERFSTUDIO_DISTORTION_KEYS, dist[i].tolist())})
        frames.append(frame)
    document: dict[str, Any] = {"camera_model": "OPENCV"}
    angles = {round(2 * math.atan(float(w) / 2 / float(K[i, 0, 0])), 12) for i, w in enumerate(cameras.width.tolist())}
    if len(angles) == 1:
        document["camera_angle_x"] = angles.pop()
    write_text_atomic(path, json.dumps({**document, "frames": frames}, indent=2) + "\n")


def _number(value: Any, where: str, key: str, integer: bool = False) -> float:
    """A finite JSON number; with `integer`, a whole one (some tools write 640.0 for a width)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (integer and not float(value).is_integer()):
        kind = "an integer" if integer else "a finite number"
        raise FormatError(f'{where}: "{key}" must be {kind}, got {value!r}.')
    return int(value) if integer else value


def _frame_intrinsics(meta: Mapping[str, Any], frame: Mapping[str, Any], where: str) -> tuple[list[float], list[float]]:
    """([fx, fy, cx, cy, w, h], OpenCV [k1 k2 p1 p2 k3]) of a frame, nerfstudio's precedence.

    As nerfstudio's dataparser: a key at the top level applies to every frame; distortion comes from
    the top level if one of k1 k2 k3 p1 p2 distortion_params is there (k4 alone does not count, as in
    nerfstudio), else from the frame.
    """
    values = []
    for key in _NERFSTUDIO_INTRINSIC_KEYS:
        source = meta if key in meta else frame
        if key not in source:
            raise FormatError(f'{where}: missing "{key}" (neither in the frame nor at the top level).')
        values.append(_number(source[key], where, key, integer=key in ("w", "h")))
    source = meta if any(k in meta for k in (*_NERFSTUDIO_DISTORTION_KEYS, "distortion_params")) else frame
    if "distortion_params" in source:  # nerfstudio's order: k1 k2 k3 k4 p1 p2
        params = source["distortion_params"]
        if not isinstance(params, list) or len(params) != 6:
            raise FormatError(f'{where}: "distortion_params" must be 6 numbers (k1 k2 k3 k4 p1 p2).')
        k1, k2, k3, k4, p1, p2 = (_number(p, where, "distortion_params") for p in params)
    else:
        k1, k2, p1, p2, k3 = (_number(source.get(k, 0.0), where, k) for k in _NERFSTUDIO_DISTORTION_KEYS)
        k4 = _number(source.get("k4", 0.0), where, "k4")
    if k4 != 0:
        raise FormatError(f"{where}: distortion k4 (nerfstudio's r^8 term) is not supported by reshoot's OpenCV model.")
    return values, [k1, k2, p1, p2, k3]


def _transform_matrix(value: Any, where: str) -> np.ndarray:
    """[4, 4] from a 4x4 or 3x4 (nerfstudio uses only the top 3 rows) list of finite numbers."""
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        m = None
    if m is None or m.shape not in ((4, 4), (3, 4)) or not np.isfinite(m).all():
        raise FormatError(f'{where}: "transform_matrix" must be a 4x4 (or 3x4) matrix of finite numbers.')
    out = np.eye(4)
    out[:3] = m[:3]
    return out


def read_nerfstudio_transforms(path: str | Path) -> NerfstudioTransforms:
    """Read a nerfstudio `transforms.json` of perspective cameras as reshoot cameras.

    One camera per frame, in file order, named by the frame's `camera_name` (written by reshoot) or
    else its `file_path` stem. Intrinsics per frame or at the top level (nerfstudio's precedence);
    cx, cy shifted by -0.5 px to OpenCV pixel centres; `transform_matrix` read as OpenGL
    camera-to-world. An `applied_transform` in the file is ignored (logged): poses stay in the file's
    world, which nerfstudio's own converters make z-up.

    Args:
        path: the transforms.json.

    Returns:
        NerfstudioTransforms (cameras, image_paths), float64.

    Raises:
        InputError: the file is missing or not JSON.
        FormatError: missing or malformed fields, a non-perspective camera model, k4 distortion,
            colliding camera names, or a transform that is not rigid.
    """
    path = Path(path)
    meta = read_text_document(path, json.loads, "JSON", "a nerfstudio transforms.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise FormatError(f'{path}: a nerfstudio transforms.json needs a non-empty "frames" list.')
    model = meta.get("camera_model", "OPENCV")
    if model not in _NERFSTUDIO_PERSPECTIVE:
        raise FormatError(
            f"{path}: camera_model {model!r} is not supported; reshoot reads perspective cameras "
            f"({', '.join(sorted(_NERFSTUDIO_PERSPECTIVE))})."
        )
    if "applied_transform" in meta:
        log.info("%s: applied_transform ignored; poses are read in the file's world.", path)

    names, Ks, dists, poses, sizes, image_paths = [], [], [], [], [], {}
    for i, frame in enumerate(meta["frames"]):
        where = f"{path}: frame #{i}"
        if not isinstance(frame, dict) or not isinstance(frame.get("file_path"), str):
            raise FormatError(f'{where}: expected an object with a "file_path" string.')
        name = frame.get(NAME_KEY, Path(frame["file_path"]).stem)
        if not isinstance(name, str) or not name:
            raise FormatError(f'{where}: "{NAME_KEY}" must be a non-empty string.')
        if name in image_paths:
            raise FormatError(f"{where}: camera name {name!r} repeats (names are camera_name or the file stem).")
        (fx, fy, cx, cy, w, h), dist = _frame_intrinsics(meta, frame, where)
        if w <= 0 or h <= 0:
            raise FormatError(f'{where}: "w" and "h" must be positive (pixels).')
        names.append(name)
        image_paths[name] = frame["file_path"]
        Ks.append([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        dists.append(dist)
        poses.append(_transform_matrix(frame.get("transform_matrix"), where))
        sizes.append((w, h))
    K = opencv_K_from_colmap(torch.tensor(Ks, dtype=torch.float64))
    cam_from_world = opencv_from_opengl(torch.from_numpy(np.stack(poses)))
    try:
        cameras = Camera.create(names, K, cam_from_world, [s[0] for s in sizes], [s[1] for s in sizes], dists)
    except InputError as exc:  # a transform that is not a rotation + translation: name the file
        raise FormatError(f"{path}: {exc}") from None
    return NerfstudioTransforms(cameras, image_paths)


# ------------------------------------------------------------------------------------------------
# Nuke .chan
#
# One line per frame: `frame tx ty tz rx ry rz vfov` (Nuke's "import chan file" on a Camera node):
# translation in Nuke's world, which is y-up (x, y, z)_nuke = (x, z, -y)_reshoot; rotation in degrees,
# Nuke's default order ZXY (Z applied first: R = Ry Rx Rz) of the camera-to-world in OpenGL camera axes
# (Nuke cameras look down -z); vfov the vertical field of view in degrees. The filmback is not in a
# .chan: Nuke turns vfov into a focal length with the Camera node's vertical aperture, so set its
# horizontal aperture to vertical aperture × width / height (18.672 × 640 / 360 = 33.195 mm for a
# 640×360 shot with Nuke's default vertical aperture) for the horizontal view to match. Square pixels,
# a centred principal point and no lens distortion are assumed (`chan_limitations` says where a camera
# breaks them); the USD export carries the first two exactly.

NUKE_FROM_WORLD = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)


CHAN_TOLERANCE_PX = 0.5  # what a .chan may drop: the principal point's offset, distortion at the corners


def chan_limitations(cameras: Camera) -> dict[str, dict[str, str]]:
    """Camera name → what a .chan cannot carry for it, by kind (cameras without any are left out):
    "principal_point" more than CHAN_TOLERANCE_PX off the image centre, "pixel_aspect" (fx ≠ fy by more
    than that over the image height), "distortion" that moves an image corner by more than that."""
    lenses = cameras.to(torch.float64, "cpu")
    K = lenses.K
    width, height = cameras.width.to(torch.float64), cameras.height.to(torch.float64)
    off_x, off_y = K[:, 0, 2] - (width - 1) / 2, K[:, 1, 2] - (height - 1) / 2
    fov_mismatch = (K[:, 0, 0] / K[:, 1, 1] - 1).abs() * height / 2  # px at the image's edge
    corners = torch.stack(
        [torch.zeros_like(width), torch.zeros_like(width), width - 1, height - 1, width - 1, torch.zeros_like(width)],
        -1,
    ).reshape(-1, 3, 2)
    moved = (lenses.distort_pixels(corners) - corners).norm(dim=-1).amax(-1)
    found: dict[str, dict[str, str]] = {}
    for i, name in enumerate(cameras.names):
        problems = {}
        if max(abs(float(off_x[i])), abs(float(off_y[i]))) > CHAN_TOLERANCE_PX:
            problems["principal_point"] = (
                f"its principal point is {float(off_x[i]):+.1f}, {float(off_y[i]):+.1f} px off the image centre "
                "(a .chan has no film offset)"
            )
        if float(fov_mismatch[i]) > CHAN_TOLERANCE_PX:
            problems["pixel_aspect"] = (
                f"its pixels are not square (fx {float(K[i, 0, 0]):.2f}, fy {float(K[i, 1, 1]):.2f})"
            )
        if float(moved[i]) > CHAN_TOLERANCE_PX:
            problems["distortion"] = f"its lens distortion moves the image corners by up to {float(moved[i]):.1f} px"
        if problems:
            found[name] = problems
    return found


def write_nuke_chan(
    path: str | Path, frames: Sequence[int], cam_from_world: torch.Tensor, K: torch.Tensor, height: int
) -> None:
    """Write a camera path as a Nuke .chan (format above), atomically.

    Args:
        frames: [T] frame numbers.
        cam_from_world: [T, 4, 4] reshoot poses (OpenCV axes, z-up world).
        K: [3, 3] intrinsics; only fy goes in (as the vertical field of view).
        height: image height in pixels.
    """
    from scipy.spatial.transform import Rotation

    frames = [int(f) for f in frames]
    poses = cam_from_world.detach().cpu().to(torch.float64)
    if poses.shape != (len(frames), 4, 4):
        raise InputError(f"write_nuke_chan: {len(frames)} frames but poses of shape {tuple(poses.shape)}.")
    world = NUKE_FROM_WORLD @ opengl_from_opencv(poses)
    with warnings.catch_warnings():  # straight-down cameras sit in ZXY's gimbal lock; any solution is exact
        warnings.simplefilter("ignore", UserWarning)
        zxy = Rotation.from_matrix(world[:, :3, :3].numpy()).as_euler("zxy", degrees=True)
    vfov = math.degrees(2 * math.atan(height / 2 / float(K[1, 1])))
    lines = [
        " ".join([str(f)] + [f"{v:.10f}" for v in (*world[i, :3, 3].tolist(), zxy[i, 1], zxy[i, 2], zxy[i, 0], vfov)])
        for i, f in enumerate(frames)
    ]
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_nuke_chan(path: str | Path) -> tuple[list[int], torch.Tensor, float]:
    """Read a .chan written by `write_nuke_chan` (or Nuke): frames, cam_from_world [T, 4, 4], vfov (degrees).

    Raises:
        FormatError: a line without 7 or 8 numbers; InputError: the file is missing.
    """
    from scipy.spatial.transform import Rotation

    def parse(text: str) -> list[list[float]]:
        rows = [line.split() for line in text.splitlines() if line.strip()]
        if not rows or any(len(r) not in (7, 8) for r in rows):
            raise ValueError("each line needs frame tx ty tz rx ry rz [vfov]")
        return [[float(v) for v in r] for r in rows]

    rows = np.array(read_text_document(path, parse, ".chan", "a Nuke .chan file"))
    world = torch.eye(4, dtype=torch.float64).repeat(len(rows), 1, 1)
    rotation = Rotation.from_euler("zxy", np.stack([rows[:, 6], rows[:, 4], rows[:, 5]], axis=1), degrees=True)
    world[:, :3, :3] = torch.from_numpy(rotation.as_matrix())
    world[:, :3, 3] = torch.from_numpy(rows[:, 1:4])
    cam_from_world = opencv_from_opengl(torch.linalg.inv(NUKE_FROM_WORLD) @ world)
    vfov = float(rows[0, 7]) if rows.shape[1] == 8 else float("nan")
    return [int(f) for f in rows[:, 0]], cam_from_world, vfov


# ------------------------------------------------------------------------------------------------
# USD (usd-core)
#
# A UsdGeom.Camera per camera under /cameras (the stage's defaultPrim, so the file can be referenced
# without a prim path), in a z-up stage with metersPerUnit = 1 (our world as is). USD cameras look down
# -z with +y up (OpenGL axes); the xform is camera-to-world, time-sampled per frame for moving cameras.
# Lens: a 36 mm full-frame filmback, focal length fx × 36 / width mm, vertical aperture
# focal × height / fy (so fx ≠ fy survives), and the principal point in the aperture offsets, which move
# the film window (so the image centre moves the other way): -(cx - (width - 1) / 2) × 36 / width
# horizontally and (cy - (height - 1) / 2) × verticalAperture / height vertically (checked against
# pxr's Gf.Camera frustum in the tests). USD measures focal length and apertures in tenths of a scene
# unit ("Lens Measurement Units" in UsdGeom.Camera's documentation): on a metre stage a tenth is 100 mm,
# so 35 mm is written 0.35 (Blender's importer reads it back as 35 mm; 35 there would be a 3.5 m
# lens). The clipping range holds the scene: from a tenth of the nearest to twice the farthest depth of
# the scene's points over the camera's poses (a tenth: the sparse points are the set's, and an actor can
# walk much closer to the camera than any of them). The image size is kept as custom attributes reshoot:width /
# reshoot:height.

USD_APERTURE_MM = 36.0
USD_METERS_PER_UNIT = 1.0
DEFAULT_CLIPPING = (0.01, 1000.0)  # world units: a set of any size, when the scene's points are unknown
MIN_NEAR_CLIP = 0.001


def usd_lens_unit_mm(meters_per_unit: float) -> float:
    """Millimetres in the unit USD measures lenses in: a tenth of a scene unit."""
    return meters_per_unit * 1000.0 / 10.0


def clipping_range(cam_from_world: torch.Tensor, points: np.ndarray | None) -> tuple[float, float]:
    """Near and far clip (world units) that hold `points` ([N, 3] world) in front of every pose [T, 4, 4]:
    a tenth of the nearest positive depth (1st percentile, so a stray point does not decide it), twice the
    farthest. DEFAULT_CLIPPING without points in front."""
    if points is None or len(points) == 0:
        return DEFAULT_CLIPPING
    poses = cam_from_world.detach().cpu().to(torch.float64).numpy().reshape(-1, 4, 4)
    depth = (np.asarray(points, np.float64) @ poses[:, 2, :3].T + poses[:, 2, 3]).ravel()
    depth = depth[depth > 0]
    if len(depth) == 0:
        return DEFAULT_CLIPPING
    return max(0.1 * float(np.percentile(depth, 1)), MIN_NEAR_CLIP), 2.0 * float(depth.max())


def write_usd_cameras(
    path: str | Path,
    cameras: Camera,
    paths: Mapping[str, Any] | None = None,
    fps: float = 24.0,
    points: np.ndarray | None = None,
) -> None:
    """Write cameras (and per-frame paths: name → object with `frames` [T] and `cam_from_world` [T, 4, 4])
    as a .usda stage, atomically.

    Args:
        points: [N, 3] world points of the scene (e.g. the registration's sparse points) for the clipping
            ranges; None gives DEFAULT_CLIPPING.

    Raises:
        InputError: skew, or a camera name that is not a valid USD prim name.
    """
    from pxr import Gf, Sdf, Usd, UsdGeom

    _check_plain_pinhole(cameras, "USD")
    paths = dict(paths or {})
    path = Path(path)
    with atomic_path(path) as tmp:
        stage = Usd.Stage.CreateInMemory()
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
        UsdGeom.SetStageMetersPerUnit(stage, USD_METERS_PER_UNIT)
        lens_unit = usd_lens_unit_mm(USD_METERS_PER_UNIT)
        stage.SetTimeCodesPerSecond(fps)
        stage.SetFramesPerSecond(fps)
        stage.SetDefaultPrim(UsdGeom.Scope.Define(stage, "/cameras").GetPrim())
        all_frames = [int(f) for p in paths.values() for f in p.frames.tolist()]
        if all_frames:
            stage.SetStartTimeCode(min(all_frames))
            stage.SetEndTimeCode(max(all_frames))
        for i, name in enumerate(cameras.names):
            if not Sdf.Path.IsValidIdentifier(name):
                raise InputError(
                    f"camera name {name!r} is not a valid USD prim name (letters, digits, _; not "
                    "starting with a digit); rename it before exporting to USD."
                )
            camera = UsdGeom.Camera.Define(stage, f"/cameras/{name}")
            K = cameras.K[i].detach().cpu().double()
            width, height = int(cameras.width[i]), int(cameras.height[i])
            focal = float(K[0, 0]) * USD_APERTURE_MM / width  # mm
            vertical = focal * height / float(K[1, 1])  # mm
            camera.CreateFocalLengthAttr(focal / lens_unit)
            camera.CreateHorizontalApertureAttr(USD_APERTURE_MM / lens_unit)
            camera.CreateVerticalApertureAttr(vertical / lens_unit)
            camera.CreateHorizontalApertureOffsetAttr(
                -(float(K[0, 2]) - (width - 1) / 2) * USD_APERTURE_MM / width / lens_unit
            )
            camera.CreateVerticalApertureOffsetAttr((float(K[1, 2]) - (height - 1) / 2) * vertical / height / lens_unit)
            prim = camera.GetPrim()
            prim.CreateAttribute("reshoot:width", Sdf.ValueTypeNames.Int).Set(width)
            prim.CreateAttribute("reshoot:height", Sdf.ValueTypeNames.Int).Set(height)
            transform = camera.AddTransformOp(UsdGeom.XformOp.PrecisionDouble)
            moving = paths.get(name)
            if moving is None:
                poses, times = cameras.cam_from_world[i][None], [Usd.TimeCode.Default()]
            else:
                poses, times = moving.cam_from_world, [Usd.TimeCode(int(f)) for f in moving.frames.tolist()]
            camera.CreateClippingRangeAttr(Gf.Vec2f(*clipping_range(poses, points)))
            world = opengl_from_opencv(poses.detach().cpu().to(torch.float64))
            for m, time in zip(world, times):
                transform.Set(Gf.Matrix4d(m.T.tolist()), time)  # Gf matrices act on row vectors
        stage.GetRootLayer().Export(str(tmp))


def read_usd_cameras(path: str | Path) -> tuple[Camera, dict[str, tuple[list[int], torch.Tensor]]]:
    """Read the cameras of a stage written by `write_usd_cameras`.

    Returns:
        cameras (pose at the first sample for moving ones) and, for time-sampled cameras, name →
        (frames, cam_from_world [T, 4, 4]).

    Raises:
        InputError: the file is missing or holds no camera; FormatError: a camera without reshoot:width.
    """
    from pxr import Usd, UsdGeom

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist.")
    stage = Usd.Stage.Open(str(path))
    names, Ks, poses, widths, heights, moving = [], [], [], [], [], {}
    for prim in stage.Traverse():
        if not prim.IsA(UsdGeom.Camera):
            continue
        camera = UsdGeom.Camera(prim)
        width, height = prim.GetAttribute("reshoot:width").Get(), prim.GetAttribute("reshoot:height").Get()
        if width is None or height is None:
            raise FormatError(f"{path}: camera {prim.GetPath()} has no reshoot:width / reshoot:height.")
        focal = camera.GetFocalLengthAttr().Get()
        horizontal, vertical = camera.GetHorizontalApertureAttr().Get(), camera.GetVerticalApertureAttr().Get()
        fx, fy = focal * width / horizontal, focal * height / vertical
        cx = -camera.GetHorizontalApertureOffsetAttr().Get() * width / horizontal + (width - 1) / 2
        cy = camera.GetVerticalApertureOffsetAttr().Get() * height / vertical + (height - 1) / 2
        xformable = UsdGeom.Xformable(prim)
        times = xformable.GetTimeSamples()
        samples = [xformable.GetLocalTransformation(Usd.TimeCode(t)) for t in times] or [
            xformable.GetLocalTransformation(Usd.TimeCode.Default())
        ]
        world = torch.tensor([[list(row) for row in m] for m in samples], dtype=torch.float64).transpose(1, 2)
        cam_from_world = opencv_from_opengl(world)
        name = prim.GetName()
        if times:
            moving[name] = ([int(round(t)) for t in times], cam_from_world)
        names.append(name)
        Ks.append([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        poses.append(cam_from_world[0])
        widths.append(int(width))
        heights.append(int(height))
    if not names:
        raise InputError(f"{path} holds no UsdGeom.Camera.")
    return Camera.create(names, torch.tensor(Ks, dtype=torch.float64), torch.stack(poses), widths, heights), moving
