"""Epipolar geometry of calibrated camera pairs: how far matched pixels lie from their epipolar lines.

This is the check that a calibration agrees with the images it claims to describe (the matches of a
correct calibration lie on the lines it predicts, to a pixel or so), and a building block of
registration quality reports.
"""

from __future__ import annotations

import torch

from .camera import Camera


def _skew(v: torch.Tensor) -> torch.Tensor:
    """[3] → [3, 3] cross-product matrix, `_skew(a) @ b == cross(a, b)`."""
    zero = torch.zeros((), dtype=v.dtype)
    return torch.stack(
        [
            torch.stack([zero, -v[2], v[1]]),
            torch.stack([v[2], zero, -v[0]]),
            torch.stack([-v[1], v[0], zero]),
        ]
    )


def _single(camera: Camera, label: str) -> None:
    if len(camera) != 1:
        raise ValueError(f"{label} must hold exactly one camera, got {len(camera)}; use Camera.select.")


def fundamental_matrix(cam_a: Camera, cam_b: Camera) -> torch.Tensor:
    """The fundamental matrix of two calibrated cameras, for undistorted pixels.

    Args:
        cam_a: one camera (V = 1).
        cam_b: one camera (V = 1), in the same world frame.

    Returns:
        F: [3, 3] with `x_b^T F x_a = 0` for homogeneous *undistorted* pixel coordinates (OpenCV
        pixel centres) of the same world point in a and b. Scale is arbitrary.
    """
    _single(cam_a, "cam_a")
    _single(cam_b, "cam_b")
    b_from_a = cam_b.cam_from_world[0] @ cam_a.world_from_cam[0]
    essential = _skew(b_from_a[:3, 3]) @ b_from_a[:3, :3]
    return torch.linalg.inv(cam_b.K[0]).T @ essential @ torch.linalg.inv(cam_a.K[0])


def undistorted_pixels(camera: Camera, pixels: torch.Tensor) -> torch.Tensor:
    """Remove lens distortion from pixel coordinates, keeping the camera's K.

    Args:
        camera: one camera (V = 1).
        pixels: [N, 2] pixel coordinates (OpenCV centres) in the distorted image.

    Returns:
        [N, 2] where those pixels would be seen by the ideal pinhole with the same K.
    """
    _single(camera, "camera")
    dirs_world = camera.pixel_directions(pixels[None].to(camera.K.dtype))[0]  # [N, 3], camera z = 1
    dirs_cam = dirs_world @ camera.cam_from_world[0, :3, :3].T
    homogeneous = dirs_cam @ camera.K[0].T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


def epipolar_distances(cam_a: Camera, cam_b: Camera, pixels_a: torch.Tensor, pixels_b: torch.Tensor) -> torch.Tensor:
    """Symmetric epipolar distance of matched pixels, in pixels.

    Each pixel is undistorted with its camera's calibration; the distance of a match is the mean of
    the distance of `pixels_b` to the epipolar line of `pixels_a` in image b and the distance of
    `pixels_a` to the line of `pixels_b` in image a.

    Args:
        cam_a: one camera (V = 1).
        cam_b: one camera (V = 1), in the same world frame.
        pixels_a: [N, 2] pixel coordinates in image a (OpenCV centres, distorted image).
        pixels_b: [N, 2] the matching pixel coordinates in image b.

    Returns:
        [N] float64 distances in (undistorted) pixels, >= 0.
    """
    F = fundamental_matrix(cam_a, cam_b)
    ones = torch.ones(pixels_a.shape[0], 1, dtype=F.dtype)
    xa = torch.cat([undistorted_pixels(cam_a, pixels_a), ones], dim=1)  # [N, 3]
    xb = torch.cat([undistorted_pixels(cam_b, pixels_b), ones], dim=1)
    lines_b = xa @ F.T  # [N, 3] epipolar lines in image b
    lines_a = xb @ F  # [N, 3] epipolar lines in image a
    residual = (xb * lines_b).sum(dim=1).abs()  # |x_b^T F x_a|, the same for both lines
    dist_b = residual / lines_b[:, :2].norm(dim=1).clamp_min(1e-300)
    dist_a = residual / lines_a[:, :2].norm(dim=1).clamp_min(1e-300)
    return 0.5 * (dist_a + dist_b)
