"""Projection of 3D Gaussians to 2D image Gaussians (EWA splatting, as gsplat's fully fused projection).

Differentiable torch code: the reference twin of the fused C++ projection (`projection_cpu`), which the
CPU backend uses (through autograd, this twin's small batched ops cost more than the rasterization), and
the projection of the reference backend. Pixel coordinates of the output follow gsplat: pixel
(row i, col j) is centred at (j + 0.5, i + 0.5), so our K (OpenCV centres) is shifted by half a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEAR_PLANE = 0.01  # metres: Gaussians closer to the camera plane are culled
EPS_2D = 0.3  # pixels^2 added to every 2D covariance (gsplat's anti-aliasing blur)
FRUSTUM_MARGIN = 0.3  # as gsplat: clamp the Jacobian's x/z, y/z to 1.3 x the field of view
SIGMA_EXTENT = 3.33  # as gsplat 1.5: a Gaussian's footprint reaches 3.33 standard deviations


@dataclass(frozen=True)
class Projected:
    """Per camera, the 2D image Gaussians.

    Attributes:
        means2d: [C, N, 2] pixel coordinates, pixel centres at +0.5 (gsplat convention).
        conics: [C, N, 3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]], 1/pixels^2.
        depths: [C, N] camera z of the means, metres.
        radii: [C, N] int32 pixel half-size of the square that bounds the Gaussian (the larger of
            gsplat's per-axis 3.33-sigma radii); 0 = culled (behind, off-screen, degenerate).
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor


def project_gaussians(
    means: torch.Tensor,
    covariances: torch.Tensor,
    cam_from_world: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    near: float = NEAR_PLANE,
    eps2d: float = EPS_2D,
) -> Projected:
    """EWA projection of N Gaussians into C pinhole cameras (lens distortion is not modelled).

    Args:
        means: [N, 3] world.
        covariances: [N, 3, 3] world.
        cam_from_world: [C, 4, 4] OpenCV axes.
        K: [C, 3, 3] pixels, OpenCV pixel centres.
        width, height: image size in pixels, shared by the C cameras.

    Returns:
        Projected; gradients flow to means and covariances (not through radii), from the cameras
        where a Gaussian is drawn (radius > 0).
    """
    rot = cam_from_world[:, None, :3, :3]  # [C, 1, 3, 3]
    means_c = (rot @ means[None, :, :, None])[..., 0] + cam_from_world[:, None, :3, 3]  # [C, N, 3]
    cov_c = rot @ covariances[None] @ rot.transpose(-1, -2)  # [C, N, 3, 3]
    x, y, z = means_c.unbind(-1)
    fx, fy = K[:, None, 0, 0], K[:, None, 1, 1]
    cx, cy = K[:, None, 0, 2] + 0.5, K[:, None, 1, 2] + 0.5
    in_front = z > near
    z_safe = torch.where(in_front, z, torch.ones_like(z))

    # Jacobian of the perspective map at the mean, with x/z and y/z clamped near the frustum so that
    # Gaussians far outside the view do not get huge, unstable footprints.
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + FRUSTUM_MARGIN * tan_x, cx / fx + FRUSTUM_MARGIN * tan_x
    lim_y_pos, lim_y_neg = (height - cy) / fy + FRUSTUM_MARGIN * tan_y, cy / fy + FRUSTUM_MARGIN * tan_y
    tx = z_safe * torch.minimum(torch.maximum(x / z_safe, -lim_x_neg), lim_x_pos)
    ty = z_safe * torch.minimum(torch.maximum(y / z_safe, -lim_y_neg), lim_y_pos)
    zeros = torch.zeros_like(z_safe)
    jac = torch.stack(
        [
            torch.stack([fx / z_safe, zeros, -fx * tx / z_safe**2], -1),
            torch.stack([zeros, fy / z_safe, -fy * ty / z_safe**2], -1),
        ],
        -2,
    )  # [C, N, 2, 3]
    cov2d = jac @ cov_c @ jac.transpose(-1, -2)
    a = cov2d[..., 0, 0] + eps2d
    b = cov2d[..., 0, 1]
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * b
    valid = in_front & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], -1)

    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], -1)
    depths = z
    with torch.no_grad():
        # gsplat 1.5: per-axis radii of 3.33 sigma, culled per axis; our tiles use their larger one.
        radius_x = torch.ceil(SIGMA_EXTENT * torch.sqrt(a))
        radius_y = torch.ceil(SIGMA_EXTENT * torch.sqrt(c))
        u, v = means2d.unbind(-1)
        on_screen = (u + radius_x > 0) & (u - radius_x < width) & (v + radius_y > 0) & (v - radius_y < height)
        radii = torch.maximum(radius_x, radius_y)
        radii = torch.where(valid & on_screen, radii, torch.zeros_like(radii)).to(torch.int32)
    # As gsplat: a Gaussian culled in a camera (radius 0) gets no gradient from that camera.
    drawn = radii > 0
    means2d, conics, depths = (
        torch.where(drawn[..., None], means2d, means2d.detach()),
        torch.where(drawn[..., None], conics, conics.detach()),
        torch.where(drawn, depths, depths.detach()),
    )
    return Projected(means2d, conics, depths, radii)
