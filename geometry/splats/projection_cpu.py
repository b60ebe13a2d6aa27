"""EWA projection on the CPU: the fused C++ kernel (`csrc/project_cpu.cpp`) behind a torch.autograd.Function.

Same contract and numbers as the pure-torch twin `projection.project_gaussians` fed with
`Gaussians.covariances()`, but from quaternions and log scales in one pass per Gaussian, with a
hand-written backward (as gsplat's fully fused projection). Without the built kernel (or for tensors it
does not take) it runs the twin.
"""

from __future__ import annotations

import torch

from .gaussians import Gaussians
from .projection import EPS_2D, NEAR_PLANE, Projected, project_gaussians
from .rasterize_cpu import KERNEL_DTYPES, extension


def project_gaussians_cpu(
    gaussians: Gaussians,
    cam_from_world: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    near: float = NEAR_PLANE,
    eps2d: float = EPS_2D,
) -> Projected:
    """EWA projection of N Gaussians into C pinhole cameras (lens distortion is not modelled).

    Args:
        gaussians: N Gaussians (means, quaternions and log scales are differentiated).
        cam_from_world: [C, 4, 4] OpenCV axes (not differentiated).
        K: [C, 3, 3] pixels, OpenCV pixel centres (not differentiated).
        width, height: image size in pixels, shared by the C cameras.

    Returns:
        Projected (means2d [C, N, 2], conics [C, N, 3], depths [C, N], radii [C, N] int32), as the twin.
    """
    module = extension()
    means = gaussians.means
    if module is None or means.device.type != "cpu" or means.dtype not in KERNEL_DTYPES:
        return project_gaussians(means, gaussians.covariances(), cam_from_world, K, width, height, near, eps2d)
    dtype = means.dtype
    means2d, conics, depths, radii = _ProjectGaussians.apply(
        means.contiguous(),
        gaussians.quats_wxyz.to(dtype).contiguous(),
        gaussians.log_scales.to(dtype).contiguous(),
        cam_from_world.detach().to(dtype).contiguous(),
        K.detach().to(dtype).contiguous(),
        (int(width), int(height), float(near), float(eps2d)),
    )
    return Projected(means2d, conics, depths, radii)


class _ProjectGaussians(torch.autograd.Function):
    """The kernel's forward and hand-written backward (gradients of means2d, conics and depths)."""

    @staticmethod
    def forward(ctx, means, quats, log_scales, viewmats, Ks, settings):
        means2d, conics, depths, radii = extension().project_forward(means, quats, log_scales, viewmats, Ks, *settings)
        ctx.settings = settings
        ctx.save_for_backward(means, quats, log_scales, viewmats, Ks, radii)
        ctx.mark_non_differentiable(radii)
        return means2d, conics, depths, radii

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, v_means2d, v_conics, v_depths, _v_radii):
        means, quats, log_scales, viewmats, Ks, radii = ctx.saved_tensors
        cams, n = radii.shape
        # autograd passes None for an output that the loss does not use.
        v_means2d = torch.zeros(cams, n, 2, dtype=means.dtype) if v_means2d is None else v_means2d.contiguous()
        v_conics = torch.zeros(cams, n, 3, dtype=means.dtype) if v_conics is None else v_conics.contiguous()
        v_depths = torch.zeros(cams, n, dtype=means.dtype) if v_depths is None else v_depths.contiguous()
        v_means, v_quats, v_log_scales = extension().project_backward(
            means, quats, log_scales, viewmats, Ks, radii, *ctx.settings, v_means2d, v_conics, v_depths
        )
        return v_means, v_quats, v_log_scales, None, None, None
