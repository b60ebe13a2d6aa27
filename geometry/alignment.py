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


def transform_cameras(cameras: Camera, b_from_a: np.ndarray) -> Camera:
    """Cameras given in frame A, expressed in frame B.

    Args:
        b_from_a: [4, 4] similarity, x_b = s R x_a + t (as `similarity_transform` returns).

    Returns:
        The cameras with cam_from_world mapping B points into camera frames in B's units.
    """
    import torch

    m = np.asarray(b_from_a, np.float64)
    scale = float(np.cbrt(np.linalg.det(m[:3, :3])))
    rotation = torch.from_numpy(m[:3, :3] / scale)
    shift = torch.from_numpy(m[:3, 3])
    old = cameras.cam_from_world.to(torch.float64)
    new = old.clone()
    new[:, :3, :3] = old[:, :3, :3] @ rotation.T
    new[:, :3, 3] = scale * old[:, :3, 3] - new[:, :3, :3] @ shift
    return Camera(
        cameras.names,
        cameras.K,
        new.to(cameras.cam_from_world.dtype),
        cameras.width,
        cameras.height,
        cameras.distortion,
    )


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


def mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """[V, 3, 3] -> [3, 3]: the rotation nearest (Frobenius) to their arithmetic mean."""
    u, _, vt = np.linalg.svd(rotations.mean(0))
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between rotations a and b ([..., 3, 3]) in degrees."""
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_errors(estimate: Camera, truth: Camera, align_rotations: bool = False) -> PoseErrors:
    """Align `estimate` to `truth` (same names) and compare.

    Args:
        align_rotations: the alignment's rotation is the mean of the cameras' world rotations (chordal
            L2 mean of truth_R^T estimate_R), and only scale and shift come from the centres (>= 2
            cameras). Three cameras in a row (a row of cameras along one side of a set) leave a
            centres-only similarity free to turn about their line; their orientations do not.
            False: the similarity of the centres alone (Umeyama, >= 3 cameras not in a line).

    Returns:
        PoseErrors over the cameras of `estimate`, in its order.
    """
    truth = truth.select(list(estimate.names))
    if align_rotations:
        rot = mean_rotation(
            np.swapaxes(truth.cam_from_world[:, :3, :3].numpy(), -1, -2) @ estimate.cam_from_world[:, :3, :3].numpy()
        )
        source = estimate.centers.numpy() @ rot.T
        target = truth.centers.numpy()
        centred = source - source.mean(0)
        scale = float(np.sum(centred * (target - target.mean(0))) / np.sum(centred**2))
        aligned = scale * centred + target.mean(0)
    else:
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


@dataclass(frozen=True)
class PairAgreement:
    """How the relative pose of two cameras compares between an estimate and a reference.

    Attributes:
        a, b: camera names.
        rotation_deg: angle between the estimated and reference rotations of b relative to a.
        direction_deg: angle between the estimated and reference directions from a's centre to b's.
        baseline: reference distance between the centres (reference units).
        centre_discrepancy: baseline * sin(direction error): how far b's centre would have to move
            (reference units) to explain the direction error.
    """

    a: str
    b: str
    rotation_deg: float
    direction_deg: float
    baseline: float
    centre_discrepancy: float


def relative_pose_agreement(estimate: Camera, reference: Camera) -> list[PairAgreement]:
    """Compare every pair's relative pose (scale-free: rotation and baseline direction).

    Args:
        estimate, reference: cameras with the same names (the estimate's are compared).
    """
    reference = reference.select(list(estimate.names))
    est_rot, ref_rot = (c.cam_from_world[:, :3, :3].numpy() for c in (estimate, reference))
    est_c, ref_c = estimate.centers.numpy(), reference.centers.numpy()
    out = []
    for i in range(len(estimate)):
        for j in range(i + 1, len(estimate)):
            rot = float(rotation_angle_deg(ref_rot[j] @ ref_rot[i].T, est_rot[j] @ est_rot[i].T))
            # Directions in camera a's frame, so the two frames' gauges cancel.
            d_est = est_rot[i] @ (est_c[j] - est_c[i])
            d_ref = ref_rot[i] @ (ref_c[j] - ref_c[i])
            cos = d_est @ d_ref / (np.linalg.norm(d_est) * np.linalg.norm(d_ref))
            angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
            baseline = float(np.linalg.norm(d_ref))
            out.append(
                PairAgreement(
                    estimate.names[i],
                    estimate.names[j],
                    rot,
                    angle,
                    baseline,
                    baseline * float(np.sin(np.radians(angle))),
                )
            )
    return out
