"""Comparing estimated cameras with ground truth up to a similarity (the gauge of SfM)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import Camera


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity mapping `source` points onto `target` (Umeyama, via open3d).

    Args:
        source: [N, 3], target: [N, 3] corresponding points, N >= 3 not collinear.

    Returns:
        [4, 4] float64 with target ≈ T[:3, :3] @ source + T[:3, 3] (the 3x3 part is scale * rotation).
    """
    import open3d as o3d

    src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(source, np.float64)))
    dst = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(target, np.float64)))
    pairs = o3d.utility.Vector2iVector(np.stack([np.arange(len(source))] * 2, axis=1))
    estimator = o3d.pipelines.registration.TransformationEstimationPointToPoint(with_scaling=True)
    return np.asarray(estimator.compute_transformation(src, dst, pairs))


@dataclass(frozen=True)
class PoseErrors:
    """Errors of estimated cameras after the best similarity alignment to ground truth.

    Attributes:
        names: the cameras compared.
        rotation_deg: [V] angle of the residual rotation per camera, degrees.
        centre_error: [V] camera-centre distance after alignment, ground-truth units.
        scale: ground-truth units per estimated unit, from the alignment.
    """

    names: tuple[str, ...]
    rotation_deg: np.ndarray
    centre_error: np.ndarray
    scale: float


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between rotations a and b ([..., 3, 3]) in degrees."""
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_errors(estimate: Camera, truth: Camera) -> PoseErrors:
    """Align `estimate` to `truth` (same names, >= 3 cameras) by their centres and compare.

    Returns:
        PoseErrors over the cameras of `estimate`, in its order.
    """
    truth = truth.select(list(estimate.names))
    sim = similarity_transform(estimate.centers.numpy(), truth.centers.numpy())
    scale = float(np.cbrt(np.linalg.det(sim[:3, :3])))
    rot = sim[:3, :3] / scale
    aligned = estimate.centers.numpy() @ sim[:3, :3].T + sim[:3, 3]
    est_rot = estimate.cam_from_world[:, :3, :3].numpy() @ rot.T
    return PoseErrors(
        estimate.names,
        rotation_angle_deg(truth.cam_from_world[:, :3, :3].numpy(), est_rot),
        np.linalg.norm(aligned - truth.centers.numpy(), axis=1),
        scale,
    )
