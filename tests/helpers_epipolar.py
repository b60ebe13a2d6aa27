"""SIFT matching for checking calibrations against images (test helper, not product code).

The check: match SIFT features between two views, keep the matches that some fundamental matrix
explains (LO-RANSAC on the raw pixels; the calibration under test plays no part in choosing them),
and measure how far they lie from the epipolar lines the calibration predicts
(`reshoot.geometry.epipolar.epipolar_distances`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.epipolar import epipolar_distances

_EXTRACTOR = None


@dataclass(frozen=True)
class Features:
    """SIFT features of one image.

    Attributes:
        pixels: [N, 2] float64 keypoint positions, OpenCV pixel centres.
        descriptors: [N, 128] float32.
    """

    pixels: np.ndarray
    descriptors: np.ndarray


def sift(image: np.ndarray) -> Features:
    """SIFT (pycolmap, CPU) of an [H, W, 3] float32 RGB image in [0, 1]."""
    global _EXTRACTOR
    import pycolmap

    if _EXTRACTOR is None:
        options = pycolmap.FeatureExtractionOptions()
        options.sift.max_num_features = 8192
        options.num_threads = 2
        _EXTRACTOR = pycolmap.FeatureExtractor.create(options, device=pycolmap.Device.cpu)
    grey = np.ascontiguousarray(image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    keypoints, descriptors = _EXTRACTOR.extract_from_float32_array(grey)
    # COLMAP puts the centre of the top-left pixel at (0.5, 0.5); reshoot (OpenCV) at (0, 0).
    pixels = np.array([[k.x, k.y] for k in keypoints], dtype=np.float64).reshape(-1, 2) - 0.5
    return Features(pixels, np.asarray(descriptors.data, dtype=np.float32))


def ratio_matches(a: Features, b: Features, ratio: float = 0.8, chunk: int = 2048) -> np.ndarray:
    """Mutual nearest neighbours that pass Lowe's ratio test: [M, 2] int indices (a, b).

    Brute force in chunks with torch (a k-d tree is slow in 128 dimensions).
    """
    if len(a.pixels) < 2 or len(b.pixels) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    da, db = torch.from_numpy(a.descriptors), torch.from_numpy(b.descriptors)
    best_b, ratio_ok = [], []
    best_a = torch.full((len(db),), -1, dtype=torch.long)
    best_a_dist = torch.full((len(db),), float("inf"))
    for start in range(0, len(da), chunk):
        dist = torch.cdist(da[start : start + chunk], db)  # [chunk, Nb]
        two = dist.topk(2, dim=1, largest=False)
        best_b.append(two.indices[:, 0])
        ratio_ok.append(two.values[:, 0] < ratio * two.values[:, 1])
        col = dist.min(dim=0)
        better = col.values < best_a_dist
        best_a_dist = torch.where(better, col.values, best_a_dist)
        best_a = torch.where(better, col.indices + start, best_a)
    nearest_b, ok = torch.cat(best_b), torch.cat(ratio_ok)
    mutual = best_a[nearest_b] == torch.arange(len(da))
    ia = torch.nonzero(ok & mutual)[:, 0]
    return torch.stack([ia, nearest_b[ia]], dim=1).numpy()


@dataclass(frozen=True)
class Correspondences:
    """Matched pixels of two views.

    Attributes:
        pixels_a: [M, 2] float64 pixels in view a (OpenCV centres, distorted image).
        pixels_b: [M, 2] float64 the matching pixels in view b.
    """

    pixels_a: np.ndarray
    pixels_b: np.ndarray


def geometric_matches(a: Features, b: Features, max_error_px: float = 4.0) -> Correspondences:
    """Ratio-test matches that a fundamental matrix fitted to them (LO-RANSAC, seeded) explains."""
    import pycolmap

    pairs = ratio_matches(a, b)
    pa, pb = a.pixels[pairs[:, 0]], b.pixels[pairs[:, 1]]
    if len(pairs) < 8:
        return Correspondences(pa[:0], pb[:0])
    options = pycolmap.RANSACOptions(max_error=max_error_px, random_seed=0, max_num_trials=20000)
    fit = pycolmap.estimate_fundamental_matrix(pa, pb, options)
    if fit is None:
        return Correspondences(pa[:0], pb[:0])
    inliers = np.asarray(fit["inlier_mask"], dtype=bool)
    return Correspondences(pa[inliers], pb[inliers])


def concat(parts: list[Correspondences]) -> Correspondences:
    """Pool correspondences (e.g. of several frames of the same camera pair)."""
    return Correspondences(np.concatenate([p.pixels_a for p in parts]), np.concatenate([p.pixels_b for p in parts]))


def median_epipolar_px(cameras: Camera, name_a: str, name_b: str, matches: Correspondences) -> float:
    """Median symmetric epipolar distance (pixels) of the matches under the calibration `cameras`."""
    d = epipolar_distances(
        cameras.select(name_a),
        cameras.select(name_b),
        torch.from_numpy(matches.pixels_a),
        torch.from_numpy(matches.pixels_b),
    )
    return float(d.median())


def rotate_camera(cameras: Camera, name: str, degrees: float) -> Camera:
    """A copy of `cameras` in which camera `name` is turned by `degrees` (about its own x+y diagonal)."""
    from scipy.spatial.transform import Rotation

    i = cameras.index(name)
    axis = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    turn = torch.from_numpy(Rotation.from_rotvec(np.deg2rad(degrees) * axis).as_matrix())
    cam_from_world = cameras.cam_from_world.clone()
    cam_from_world[i, :3, :] = turn @ cam_from_world[i, :3, :]
    return Camera.create(cameras.names, cameras.K, cam_from_world, cameras.width, cameras.height, cameras.distortion)
