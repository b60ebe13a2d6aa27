"""Conversions between reshoot's `Camera` and pycolmap's cameras and poses.

COLMAP puts pixel centres at (0.5, 0.5) (OpenCV: (0, 0)), so principal points shift by 0.5.
COLMAP's `cam_from_world` uses the same OpenCV camera axes as ours. Distortion: COLMAP's OPENCV model
is OpenCV's k1 k2 p1 p2; FULL_OPENCV adds k3 (and rational terms we keep at zero); SIMPLE_RADIAL's
k is OpenCV's k1 with a single focal length.
"""

from __future__ import annotations

import numpy as np
import torch

from .camera import Camera
from .errors import FormatError
from .pycolmap_import import pycolmap


def colmap_camera(camera: Camera, index: int = 0, camera_id: int | None = None) -> pycolmap.Camera:
    """pycolmap camera of `camera[index]`: PINHOLE, OPENCV or FULL_OPENCV as its distortion needs."""
    K = camera.K[index].to(torch.float64).numpy()
    dist = camera.distortion[index].to(torch.float64).numpy()
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5
    if not dist.any():
        model, params = "PINHOLE", [fx, fy, cx, cy]
    elif dist[4] == 0:
        model, params = "OPENCV", [fx, fy, cx, cy, *dist[:4]]
    else:
        model, params = "FULL_OPENCV", [fx, fy, cx, cy, *dist[:4], dist[4], 0.0, 0.0, 0.0]
    kwargs = {} if camera_id is None else {"camera_id": camera_id}
    return pycolmap.Camera(
        model=model, width=int(camera.width[index]), height=int(camera.height[index]), params=params, **kwargs
    )


def colmap_params_string(camera: Camera, index: int = 0) -> tuple[str, str]:
    """(model name, comma-separated params) for pycolmap's ImageReaderOptions."""
    cam = colmap_camera(camera, index)
    return cam.model.name, ",".join(f"{p:.17g}" for p in cam.params)


# COLMAP camera models we read, with the positions of fx, fy, cx, cy in their parameter vectors and
# the OpenCV coefficient (index into k1 k2 p1 p2 k3) of each distortion parameter after them.
COLMAP_MODELS: dict[str, tuple[tuple[int, int, int, int], tuple[int, ...]]] = {
    "SIMPLE_PINHOLE": ((0, 0, 1, 2), ()),
    "PINHOLE": ((0, 1, 2, 3), ()),
    "SIMPLE_RADIAL": ((0, 0, 1, 2), (0,)),
    "RADIAL": ((0, 0, 1, 2), (0, 1)),
    "OPENCV": ((0, 1, 2, 3), (0, 1, 2, 3)),
    # k4 k5 k6 are the denominator of OpenCV's rational model; with them zero it is the 5-coefficient model.
    "FULL_OPENCV": ((0, 1, 2, 3), (0, 1, 2, 3, 4, -1, -1, -1)),
}


def intrinsics_from_colmap(cam: pycolmap.Camera, where: str = "COLMAP camera") -> tuple[np.ndarray, np.ndarray]:
    """(K [3, 3] with OpenCV pixel centres, distortion [5] k1 k2 p1 p2 k3) of a pycolmap camera.

    Raises:
        FormatError: a model we do not map (fisheye models, non-zero rational terms k4..k6); the
            message starts with `where`.
    """
    model = cam.model.name
    if model not in COLMAP_MODELS:
        raise FormatError(
            f"{where}: COLMAP camera model {model} is not supported; reshoot reads "
            f"{', '.join(COLMAP_MODELS)}. Undistort the model with COLMAP's image_undistorter first."
        )
    (ifx, ify, icx, icy), slots = COLMAP_MODELS[model]
    params = [float(p) for p in cam.params]
    first = 3 if ifx == ify else 4
    dist = np.zeros(5)
    for slot, value in zip(slots, params[first:]):
        if slot < 0:
            if value != 0:
                raise FormatError(f"{where}: FULL_OPENCV with non-zero k4, k5 or k6 is not supported.")
        else:
            dist[slot] = value
    K = np.array([[params[ifx], 0, params[icx] - 0.5], [0, params[ify], params[icy] - 0.5], [0, 0, 1]])
    return K, dist


def rigid_from_matrix(cam_from_world: np.ndarray) -> pycolmap.Rigid3d:
    """pycolmap Rigid3d from a [4, 4] (or [3, 4]) matrix."""
    return pycolmap.Rigid3d(np.asarray(cam_from_world, dtype=np.float64)[:3, :4])


def cameras_from_reconstruction(
    reconstruction: pycolmap.Reconstruction, image_ids: list[int], names: list[str]
) -> Camera:
    """Our Camera batch for registered images of a reconstruction, named `names`."""
    Ks, dists, poses, widths, heights = [], [], [], [], []
    for image_id in image_ids:
        image = reconstruction.image(image_id)
        cam = reconstruction.camera(image.camera_id)
        K, dist = intrinsics_from_colmap(cam)
        pose = np.eye(4)
        pose[:3, :4] = image.cam_from_world().matrix()
        Ks.append(K)
        dists.append(dist)
        poses.append(pose)
        widths.append(cam.width)
        heights.append(cam.height)
    return Camera.create(names, np.stack(Ks), np.stack(poses), widths, heights, np.stack(dists))
