"""CPU rasterizer of 2D Gaussians: the C++/OpenMP kernel behind a torch.autograd.Function.

Same contract and numbers as gsplat's `rasterize_to_pixels` and as the pure-torch twin
`rasterize_reference.rasterize_to_pixels_reference` (whose docstring lists the rules). The kernel
(`csrc/rasterize_cpu.cpp`) bins Gaussians into 16x16 tiles, sorts them by depth, composites each tile
with per-pixel early termination, and its backward pass walks each tile back to front recovering the
transmittance by division, summing per-Gaussian gradients without any [pixels x Gaussians] tensor.

The kernel is built once by `python -m reshoot.geometry.splats.build` (the Makefile's setup does it).
At import this module only loads an up-to-date build; without one, `rasterize_to_pixels` runs the twin
(same results, far slower) and a warning says how to build.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from .build import load_prebuilt
from .rasterize_reference import RasterOutput, rasterize_to_pixels_reference

LOG = logging.getLogger(__name__)

__all__ = ["RasterOutput", "cpu_kernel_available", "extension", "rasterize_to_pixels"]

KERNEL_DTYPES = (torch.float32, torch.float64)  # what the C++ kernels take (both of them)


def _load() -> Any | None:
    module = load_prebuilt()
    if module is None:
        LOG.warning(
            "The C++ CPU rasterizer is not built (or is out of date): splats render with the pure-torch "
            "reference, which is much slower. Build it with `make setup` or "
            "`python -m reshoot.geometry.splats.build`."
        )
    return module


_EXTENSION: Any | None = _load()


def cpu_kernel_available() -> bool:
    """Whether the compiled C++ rasterizer is loaded (else the pure-torch twin is used)."""
    return _EXTENSION is not None


def extension() -> Any | None:
    """The loaded C++ kernels (rasterizer and fused projection) as their operator namespace
    `torch.ops.reshoot_splats_cpu`, or None when they are not built."""
    return _EXTENSION


def rasterize_to_pixels(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    radii: torch.Tensor,
    width: int,
    height: int,
    tile_size: int = 16,
    backgrounds: torch.Tensor | None = None,
) -> RasterOutput:
    """Rasterize per-camera 2D Gaussians on the CPU (gsplat's `rasterize_to_pixels` semantics).

    Differentiable w.r.t. means2d, conics, colors, opacities (and backgrounds); depths and radii only
    decide the order and the tiles. Uses the C++ kernel for float32/float64 CPU tensors when it is
    built, else the pure-torch twin.

    Args:
        means2d: [C, N, 2] centres in pixels, (x, y) with pixel (i, j) at (j + 0.5, i + 0.5).
        conics: [C, N, 3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]].
        colors: [C, N, D] any channels (colour, depth, features).
        opacities: [C, N] in (0, 1).
        depths: [C, N] sort key, front (small) to back; > 0 for visible Gaussians.
        radii: [C, N] int pixel radius of the 3-sigma bounding square; 0 = culled.
        width, height: image size in pixels.
        tile_size: tile edge in pixels.
        backgrounds: [C, D] colour behind the Gaussians, or None (zero).

    Returns:
        RasterOutput with render [C, H, W, D] and alpha [C, H, W].

    Raises:
        ValueError: on inconsistent shapes, sizes or dtypes.
    """
    _validate(means2d, conics, colors, opacities, depths, radii, width, height, tile_size, backgrounds)
    use_kernel = _EXTENSION is not None and means2d.device.type == "cpu" and means2d.dtype in KERNEL_DTYPES
    if not use_kernel:
        return rasterize_to_pixels_reference(
            means2d, conics, colors, opacities, depths, radii, width, height, tile_size, backgrounds
        )
    dtype = means2d.dtype
    floats = [t.to(dtype).contiguous() for t in (means2d, conics, colors, opacities)]
    bg = None if backgrounds is None else backgrounds.to(dtype).contiguous()
    render, alpha = _RasterizeToPixels.apply(
        *floats,
        bg,
        depths.detach().to(dtype).contiguous(),
        radii.detach().to(torch.int32).contiguous(),
        int(width),
        int(height),
        int(tile_size),
    )
    return RasterOutput(render, alpha)


def _validate(means2d, conics, colors, opacities, depths, radii, width, height, tile_size, backgrounds) -> None:
    """Shapes and sizes at the public boundary (these are programming errors, hence ValueError)."""
    if means2d.dim() != 3 or means2d.shape[-1] != 2:
        raise ValueError(f"means2d must be [C, N, 2], got {tuple(means2d.shape)}")
    cams, n = means2d.shape[:2]
    expected = {
        "conics": (conics, (cams, n, 3)),
        "opacities": (opacities, (cams, n)),
        "depths": (depths, (cams, n)),
        "radii": (radii, (cams, n)),
    }
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must be {list(shape)} to match means2d, got {tuple(tensor.shape)}")
    if colors.dim() != 3 or tuple(colors.shape[:2]) != (cams, n):
        raise ValueError(f"colors must be [{cams}, {n}, D], got {tuple(colors.shape)}")
    if backgrounds is not None and tuple(backgrounds.shape) != (cams, colors.shape[2]):
        raise ValueError(f"backgrounds must be [{cams}, {colors.shape[2]}], got {tuple(backgrounds.shape)}")
    if radii.is_floating_point():
        raise ValueError("radii must be an integer tensor (pixels)")
    if width <= 0 or height <= 0 or tile_size <= 0:
        raise ValueError(f"width, height and tile_size must be positive, got {width}, {height}, {tile_size}")


class _RasterizeToPixels(torch.autograd.Function):
    """The kernel's forward and hand-written backward (gradients of render and of alpha)."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, backgrounds, depths, radii, width, height, tile_size):
        (render, alpha, transmittance, last, tile_offsets, gauss_ids, isect_slots, gauss_offsets) = (
            _EXTENSION.rasterize_forward(
                means2d, conics, colors, opacities, depths, radii, backgrounds, width, height, tile_size
            )
        )
        ctx.image = (width, height, tile_size)
        ctx.has_background = backgrounds is not None
        saved = [
            means2d,
            conics,
            colors,
            opacities,
            transmittance,
            last,
            tile_offsets,
            gauss_ids,
            isect_slots,
            gauss_offsets,
        ]
        ctx.save_for_backward(*saved, *([backgrounds] if backgrounds is not None else []))
        return render, alpha

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, v_render, v_alpha):
        (
            means2d,
            conics,
            colors,
            opacities,
            transmittance,
            last,
            tile_offsets,
            gauss_ids,
            isect_slots,
            gauss_offsets,
            *rest,
        ) = ctx.saved_tensors
        backgrounds = rest[0] if ctx.has_background else None
        width, height, tile_size = ctx.image
        cams, _, channels = colors.shape
        # autograd passes None (or zeros) for an output that the loss does not use.
        v_render = (
            torch.zeros(cams, height, width, channels, dtype=colors.dtype)
            if v_render is None
            else v_render.contiguous()
        )
        v_alpha = torch.zeros(cams, height, width, dtype=colors.dtype) if v_alpha is None else v_alpha.contiguous()
        v_means2d, v_conics, v_colors, v_opacities = _EXTENSION.rasterize_backward(
            means2d,
            conics,
            colors,
            opacities,
            backgrounds,
            transmittance,
            last,
            tile_offsets,
            gauss_ids,
            isect_slots,
            gauss_offsets,
            v_render,
            v_alpha,
            width,
            height,
            tile_size,
        )
        v_backgrounds = None
        if ctx.has_background and ctx.needs_input_grad[4]:
            # render += T x background, per pixel.
            v_backgrounds = (transmittance[..., None] * v_render).sum(dim=(1, 2))
        return v_means2d, v_conics, v_colors, v_opacities, v_backgrounds, None, None, None, None, None
