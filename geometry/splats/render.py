"""Rendering Gaussian splats into cameras: one function, three backends with matching numbers.

- `gsplat`: gsplat's CUDA rasterizer (when CUDA is present and the tensors live there).
- `cpu`: our fused C++ projection (`projection_cpu`) + our C++/OpenMP tile rasterizer (`rasterize_cpu`).
- `reference`: their pure-torch twins (`projection`, `rasterize_reference`; tests, fallback).

All use gsplat's conventions: `cam_from_world` viewmats, wxyz quaternions, log scales, logit
opacities, SH colours; pixel centres at +0.5 in the 2D Gaussians (our K is shifted on the way in).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..camera import Camera
from ..errors import InputError
from .gaussians import Gaussians
from .projection import Projected, project_gaussians
from .sh import sh_to_rgb

BACKENDS = ("auto", "cpu", "reference", "gsplat")
MIN_ALPHA_FOR_DEPTH = 1e-6


@dataclass(frozen=True)
class SplatRender:
    """What a render returns.

    Attributes:
        rgb: [C, H, W, 3] colour (background composited where coverage is partial).
        depth: [C, H, W] expected z-depth in metres (accumulated depth / alpha; 0 where alpha ~ 0).
        alpha: [C, H, W] coverage in [0, 1].
        features: [C, H, W, F] alpha-composited extra features (e.g. entity one-hots), or None.
        means2d: [C, N, 2] projected means (pixel centres at +0.5); after backward its `.grad` is
            what a densification strategy reads.
        radii: [C, N] int32 pixel radii, 0 for Gaussians not drawn.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    features: torch.Tensor | None
    means2d: torch.Tensor
    radii: torch.Tensor


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise InputError(f"unknown rasterizer backend {backend!r}; choose one of {BACKENDS}.")
    if backend == "auto":
        return "gsplat" if device.type == "cuda" else "cpu"
    if backend == "gsplat" and device.type != "cuda":
        raise InputError("the gsplat backend needs CUDA tensors; use backend 'cpu' on this machine.")
    return backend


def rasterize(
    gaussians: Gaussians,
    cameras: Camera,
    features: torch.Tensor | None = None,
    sh_degree: int | None = None,
    background: torch.Tensor | None = None,
    backend: str = "auto",
) -> SplatRender:
    """Render N Gaussians into C cameras of one image size.

    Args:
        gaussians: the splats (float32; world metres).
        cameras: C cameras sharing width and height (distortion is ignored: pinhole).
        features: [N, F] extra per-Gaussian channels to composite (or [C, N, F], per camera), or None.
        sh_degree: SH degree to use (training schedules raise it); default all coefficients.
        background: [3] colour behind the splats; default black.
        backend: "auto" (gsplat on CUDA, else cpu), "cpu", "reference" or "gsplat".
    """
    width, height = int(cameras.width[0]), int(cameras.height[0])
    if bool((cameras.width != width).any() or (cameras.height != height).any()):
        raise InputError("rasterize: all cameras of one call must share the image size; render them in groups.")
    device = gaussians.means.device
    backend = _resolve_backend(backend, device)
    viewmats = cameras.cam_from_world.to(device=device, dtype=gaussians.means.dtype)
    Ks = cameras.K.to(device=device, dtype=gaussians.means.dtype)
    if backend == "gsplat":
        return _rasterize_gsplat(gaussians, viewmats, Ks, width, height, features, sh_degree, background)

    if backend == "cpu":
        from .projection_cpu import project_gaussians_cpu  # loads the C++ kernels (or warns) on first use

        projected = project_gaussians_cpu(gaussians, viewmats, Ks, width, height)
    else:
        projected = project_gaussians(gaussians.means, gaussians.covariances(), viewmats, Ks, width, height)
    if projected.means2d.requires_grad:
        projected.means2d.retain_grad()
    centres = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
    dirs = gaussians.means[None] - centres[:, None]  # [C, N, 3]
    rgb = sh_to_rgb(gaussians.sh[None].expand(len(cameras), -1, -1, -1), dirs, sh_degree)
    channels = [rgb, projected.depths[..., None]]
    if features is not None:
        channels.append(_per_camera(features, len(cameras)))
    colors = torch.cat(channels, dim=-1)
    backgrounds = None
    if background is not None:
        backgrounds = torch.zeros(len(cameras), colors.shape[-1], dtype=colors.dtype, device=device)
        backgrounds[:, :3] = background.to(backgrounds)
    opacities = gaussians.opacities[None].expand(len(cameras), -1)
    if backend == "cpu":
        from .rasterize_cpu import rasterize_to_pixels
    else:
        from .rasterize_reference import rasterize_to_pixels_reference as rasterize_to_pixels
    out = rasterize_to_pixels(
        projected.means2d,
        projected.conics,
        colors,
        opacities,
        projected.depths,
        projected.radii,
        width,
        height,
        backgrounds=backgrounds,
    )
    return _split(out.render, out.alpha, features is not None, projected)


def _per_camera(features: torch.Tensor, cameras: int) -> torch.Tensor:
    """[N, F] or [C, N, F] features → [C, N, F]."""
    return features if features.dim() == 3 else features[None].expand(cameras, -1, -1)


def _split(render: torch.Tensor, alpha: torch.Tensor, has_features: bool, projected: Projected) -> SplatRender:
    """Channels [rgb, accumulated depth, features...] → a SplatRender."""
    accumulated = render[..., 3]
    depth = torch.where(
        alpha > MIN_ALPHA_FOR_DEPTH, accumulated / alpha.clamp_min(MIN_ALPHA_FOR_DEPTH), torch.zeros_like(accumulated)
    )
    return SplatRender(
        render[..., :3], depth, alpha, render[..., 4:] if has_features else None, projected.means2d, projected.radii
    )


def _rasterize_gsplat(gaussians, viewmats, Ks, width, height, features, sh_degree, background) -> SplatRender:
    """gsplat's CUDA rasterizer with our conventions (K shifted to its pixel centres)."""
    import gsplat

    Ks = Ks.clone()
    Ks[:, :2, 2] += 0.5
    degree = gaussians.sh_degree if sh_degree is None else sh_degree
    common = dict(
        means=gaussians.means,
        quats=gaussians.quats_wxyz,
        scales=gaussians.scales,
        opacities=gaussians.opacities,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        packed=False,
    )
    bg = None if background is None else background.to(viewmats)[None].expand(len(viewmats), -1)
    render, alpha, info = gsplat.rasterization(
        colors=gaussians.sh,
        sh_degree=degree,
        render_mode="RGB+ED",
        backgrounds=None if bg is None else torch.cat([bg, torch.zeros_like(bg[:, :1])], -1),
        **common,
    )
    feats = None
    if features is not None:
        feats, _, _ = gsplat.rasterization(colors=_per_camera(features, len(viewmats)), **common)
    radii = info["radii"]
    radii = radii.amax(-1) if radii.dim() == 3 else radii  # gsplat >= 1.5 gives per-axis radii
    return SplatRender(render[..., :3], render[..., 3], alpha[..., 0], feats, info["means2d"], radii.to(torch.int32))


@torch.no_grad()
def render_each(
    gaussians: Gaussians, cameras: Camera, backend: str = "auto", background: torch.Tensor | None = None
) -> list[SplatRender]:
    """Render into each camera on its own (cameras of any sizes), without gradients: V renders of C = 1.
    `background`: [3] colour behind the splats (default black)."""
    return [
        rasterize(gaussians, cameras.select(i), background=background, backend=backend) for i in range(len(cameras))
    ]
