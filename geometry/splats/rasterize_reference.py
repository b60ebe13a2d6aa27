"""Pure-torch twin of the CPU rasterizer: 2D Gaussians → pixels, with gsplat's `rasterize_to_pixels` rules.

Dense and obviously correct (DESIGN.md §3, "fast paths have reference twins"): every pixel looks at
every Gaussian of its tile, in depth order, and the compositing rules are masks and cumulative
products that autograd differentiates. The C++ kernel (`rasterize_cpu.py`) must give the same numbers.
It is also the fallback when the kernel is not built; pixels are processed a block of tiles at a time
(and, with gradients, under activation checkpointing) so memory stays bounded.

The rules (gsplat 1.5):
- Pixel (row i, col j) is evaluated at (x, y) = (j + 0.5, i + 0.5) in means2d coordinates.
- A Gaussian takes part in a tile iff radius > 0 and the tile lies in [floor((mean - r) / tile),
  ceil((mean + r) / tile)) on both axes, clamped to the image's tiles.
- In a tile, Gaussians are composited front to back by depth; ties keep index order.
- Per pixel: sigma = 0.5 (a dx² + c dy²) + b dx dy with (dx, dy) = mean - pixel; skipped if sigma < 0;
  alpha = min(0.999, opacity exp(-sigma)); skipped if alpha < 1/255; if T (1 - alpha) <= 1e-4 the pixel
  stops and this Gaussian is not added; else render += colour alpha T and T *= 1 - alpha.
- alpha output = 1 - T; render += T background when backgrounds are given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

ALPHA_MIN = 1.0 / 255.0  # alphas below are skipped
ALPHA_MAX = 0.999  # alphas are capped here
TRANSMITTANCE_MIN = 1e-4  # a pixel stops before its transmittance would reach this
DEFAULT_CHUNK_ELEMENTS = 1 << 22  # pixel x Gaussian pairs evaluated at once by the twin


@dataclass(frozen=True)
class RasterOutput:
    """Rasterized images.

    Attributes:
        render: [C, H, W, D] composited colours (plus T x background when backgrounds are given).
        alpha: [C, H, W] coverage 1 - T in [0, 1).
    """

    render: torch.Tensor
    alpha: torch.Tensor


@dataclass(frozen=True)
class _Composite:
    """One block of pixels composited (internal)."""

    render: torch.Tensor  # [P, D]
    transmittance: torch.Tensor  # [P] final T
    terminated: torch.Tensor  # [P] bool: the pixel stopped early (T would have reached 1e-4)


def tile_ranges(
    means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int, tile_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """The tiles each Gaussian takes part in, as gsplat bins them.

    Args:
        means2d: [C, N, 2] pixel coordinates (x, y) of the Gaussians' centres.
        radii: [C, N] int, pixel radius of the bounding square; <= 0 means culled.
        width, height: image size in pixels.
        tile_size: tile edge in pixels.

    Returns:
        tile_min: [C, N, 2] first tile (x, y), inclusive; integral values in the means' dtype.
        tile_max: [C, N, 2] last tile + 1 (x, y), exclusive. Culled Gaussians get tile_max == tile_min;
            a non-finite mean gives NaN, which no tile index compares equal or greater to.
    """
    tiles = torch.tensor(
        [math.ceil(width / tile_size), math.ceil(height / tile_size)], dtype=means2d.dtype, device=means2d.device
    )
    r = radii.to(means2d.dtype)[..., None]
    # Computed as the kernel computes it: (mean - r) / tile in the means' dtype, then floor/ceil and clamp.
    tile_min = torch.minimum(torch.floor((means2d - r) / tile_size).clamp(min=0), tiles)
    tile_max = torch.minimum(torch.ceil((means2d + r) / tile_size).clamp(min=0), tiles)
    culled = (radii <= 0)[..., None]
    return tile_min, torch.where(culled, tile_min, tile_max)


def rasterize_to_pixels_reference(
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
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> RasterOutput:
    """Rasterize per-camera 2D Gaussians, in pure torch (differentiable by autograd).

    Args:
        means2d: [C, N, 2] centres in pixels, (x, y) with pixel (i, j) at (j + 0.5, i + 0.5).
        conics: [C, N, 3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]].
        colors: [C, N, D] any channels (colour, depth, features).
        opacities: [C, N] in (0, 1).
        depths: [C, N] sort key, front (small) to back; not differentiated.
        radii: [C, N] int pixel radius of the 3-sigma bounding square; 0 = culled.
        width, height: image size in pixels.
        tile_size: tile edge in pixels (membership is per tile, as in gsplat).
        backgrounds: [C, D] colour behind the Gaussians, or None (black, i.e. zero).
        chunk_elements: bound on the pixel x Gaussian pairs evaluated at once (memory).

    Returns:
        RasterOutput with render [C, H, W, D] and alpha [C, H, W].
    """
    render, transmittance, _ = _rasterize(
        means2d, conics, colors, opacities, depths, radii, width, height, tile_size, backgrounds, chunk_elements
    )
    return RasterOutput(render, 1.0 - transmittance)


def _rasterize(
    means2d, conics, colors, opacities, depths, radii, width, height, tile_size, backgrounds, chunk_elements
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """render [C, H, W, D], final transmittance [C, H, W], early-terminated pixels [C, H, W] bool."""
    renders, transmittances, terminated = [], [], []
    for cam in range(means2d.shape[0]):
        out = _rasterize_camera(
            means2d[cam],
            conics[cam],
            colors[cam],
            opacities[cam],
            depths[cam],
            radii[cam],
            width,
            height,
            tile_size,
            chunk_elements,
        )
        render = out.render
        if backgrounds is not None:
            render = render + out.transmittance[..., None] * backgrounds[cam]
        renders.append(render)
        transmittances.append(out.transmittance)
        terminated.append(out.terminated)
    return torch.stack(renders), torch.stack(transmittances), torch.stack(terminated)


def _rasterize_camera(
    means2d, conics, colors, opacities, depths, radii, width, height, tile_size, chunk_elements
) -> _Composite:
    """One camera: [N, ...] inputs → render [H, W, D], T [H, W], terminated [H, W], block by block."""
    # Front to back once for all tiles; picking a subset later keeps this order.
    order = torch.sort(depths, stable=True).indices
    means2d, conics, colors, opacities, radii = (t[order] for t in (means2d, conics, colors, opacities, radii))
    tile_min, tile_max = tile_ranges(means2d[None], radii[None], width, height, tile_size)
    tile_min, tile_max = tile_min[0], tile_max[0]
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (means2d, conics, colors, opacities))

    rows = []
    for ty in range(tiles_y):
        in_row = (tile_min[:, 1] <= ty) & (tile_max[:, 1] > ty)
        block = max(1, chunk_elements // (tile_size * tile_size * max(1, int(in_row.sum()))))
        blocks = []
        for tx0 in range(0, tiles_x, block):
            tx1 = min(tx0 + block, tiles_x)
            # Candidates: touch some tile of the block. The per-pixel tile test inside decides membership,
            # so this pre-selection only saves work and never changes a result.
            candidate = in_row & (tile_min[:, 0] < tx1) & (tile_max[:, 0] > tx0)
            idx = torch.nonzero(candidate).squeeze(1)
            args = (means2d[idx], conics[idx], colors[idx], opacities[idx], tile_min[idx], tile_max[idx])
            rect = (tx0 * tile_size, ty * tile_size, min(tx1 * tile_size, width), min((ty + 1) * tile_size, height))
            if grad and tiles_x * tiles_y > 1:
                # Recompute in backward instead of keeping every block's [P, M] intermediates.
                out = checkpoint(_composite_block, *args, rect, tile_size, use_reentrant=False)
            else:
                out = _composite_block(*args, rect, tile_size)
            blocks.append(out)
        rows.append(blocks)

    def assemble(field: str) -> torch.Tensor:
        return torch.cat([torch.cat([getattr(b, field) for b in blocks], dim=1) for blocks in rows], dim=0)

    return _Composite(assemble("render"), assemble("transmittance"), assemble("terminated"))


def _composite_block(means2d, conics, colors, opacities, tile_min, tile_max, rect, tile_size) -> _Composite:
    """Composite the pixels of rect = (x0, y0, x1, y1) over candidate Gaussians already front to back.

    Args:
        means2d: [M, 2]; conics: [M, 3]; colors: [M, D]; opacities: [M]; tile_min, tile_max: [M, 2].

    Returns:
        _Composite with render [h, w, D], transmittance [h, w], terminated [h, w] (h, w of the rect).
    """
    x0, y0, x1, y1 = rect
    dtype = means2d.dtype
    device = means2d.device
    ys, xs = torch.meshgrid(torch.arange(y0, y1, device=device), torch.arange(x0, x1, device=device), indexing="ij")
    px, py = xs.reshape(-1, 1).to(dtype) + 0.5, ys.reshape(-1, 1).to(dtype) + 0.5  # [P, 1]
    tx, ty = (xs.reshape(-1, 1) // tile_size).to(dtype), (ys.reshape(-1, 1) // tile_size).to(dtype)

    # [P, M] pixel x Gaussian.
    member = (tx >= tile_min[:, 0]) & (tx < tile_max[:, 0]) & (ty >= tile_min[:, 1]) & (ty < tile_max[:, 1])
    dx, dy = means2d[:, 0] - px, means2d[:, 1] - py
    a, b, c = conics[:, 0], conics[:, 1], conics[:, 2]
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    # clamp(min=0): sigma < 0 is skipped anyway, and exp(-sigma) must not overflow (inf x 0 = NaN grads).
    alpha = torch.clamp(opacities * torch.exp(-sigma.clamp(min=0)), max=ALPHA_MAX)
    hit = member & (sigma >= 0) & (alpha >= ALPHA_MIN)
    one_minus = 1.0 - torch.where(hit, alpha, torch.zeros_like(alpha))
    # T after each Gaussian if every hit were added (skipped ones multiply by exactly 1, as in a loop).
    t_after = torch.cumprod(one_minus, dim=1)
    stop = hit & (t_after <= TRANSMITTANCE_MIN)
    # Exclusive early termination: the first stopping Gaussian and everything behind it are dropped.
    keep = hit & (torch.cumsum(stop.to(torch.int32), dim=1) == 0)
    kept = torch.where(keep, alpha, torch.zeros_like(alpha))
    t_after = torch.cumprod(1.0 - kept, dim=1)
    t_before = torch.cat([torch.ones_like(t_after[:, :1]), t_after[:, :-1]], dim=1)
    weights = kept * t_before  # [P, M]
    render = weights @ colors  # [P, D]
    transmittance = t_after[:, -1] if t_after.shape[1] else torch.ones(len(px), dtype=dtype, device=device)
    h, w = y1 - y0, x1 - x0
    return _Composite(render.reshape(h, w, -1), transmittance.reshape(h, w), stop.any(dim=1).reshape(h, w))
