"""Visual hulls: 3D occupancy from foreground silhouettes of calibrated cameras (voxel carving).

A voxel is kept when no camera that could see it calls its pixel background. "Could see it" leaves
out cameras it falls outside of and cameras where the static set stands in front of it (given the
set's depth per pixel), so a character walking behind a prop is not carved away by the camera that
sees only the prop. Written here rather than taken from open3d: open3d's `VoxelGrid.carve_silhouette`
takes one silhouette at a time with no occluder depth and no "seen by at least k cameras" rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .camera import Camera
from .errors import InputError

MAX_VOXELS = 40_000_000
"""Largest carving grid (about 9 + 4 V bytes a voxel for V cameras: 1 GB with 4 cameras), so that a tiny
voxel size fails at once."""


def check_voxel_grid(bounds_min, bounds_max, voxel_size: float) -> int:
    """The number of voxels of the grid over the box at `voxel_size`.

    Raises:
        InputError: `voxel_size` is not a positive finite number, or the grid exceeds MAX_VOXELS (the
            message gives the smallest voxel size that fits).
    """
    if not (isinstance(voxel_size, (int, float)) and math.isfinite(voxel_size) and voxel_size > 0):
        raise InputError(
            f"--voxel-size {voxel_size!r}: give a positive voxel edge (world units, metres when the scale is known)."
        )
    extent = [max(float(hi) - float(lo), 0.0) for lo, hi in zip(bounds_min, bounds_max)]
    count = math.prod(max(math.ceil(e / voxel_size), 1) for e in extent)
    if count > MAX_VOXELS:
        smallest = (math.prod(max(e, voxel_size) for e in extent) / MAX_VOXELS) ** (1 / 3)
        raise InputError(
            f"--voxel-size {voxel_size:g}: the box to carve ({' x '.join(f'{e:.2f}' for e in extent)}) "
            f"would take {count:,} voxels, more than {MAX_VOXELS:,}; give a voxel size of at least "
            f"{math.ceil(smallest * 1000) / 1000:g}."
        )
    return count


@dataclass(frozen=True)
class VisualHull:
    """Occupied voxels.

    Attributes:
        centres: [M, 3] world metres, centres of the occupied voxels.
        surface: [M] bool, True for voxels with at least one free 6-neighbour.
        voxel_size: edge length in metres.
        votes: [M] int64, how many cameras saw each voxel (unhidden) as foreground.
    """

    centres: torch.Tensor
    surface: torch.Tensor
    voxel_size: float
    votes: torch.Tensor


@dataclass(frozen=True)
class VoxelGridViews:
    """Where each voxel of a grid falls in each camera: what every frame of a take carves with.

    Cameras, grid and occluders do not change over a take, so this is computed once and each frame's
    carving only looks its silhouettes up (projecting the grid was most of a frame's carving: the demo
    take's 48 frames of character search took 25 s with it, 5 s without).

    Attributes:
        lo: [3] float64 world corner of the grid; voxel_size: its edge (metres); dims: (nx, ny, nz).
        pixels: [V, nx * ny * nz] int32 flat pixel index (row * width + col) of each voxel's centre in
            each camera, -1 where the camera does not see it (outside its picture, or hidden by the set).
    """

    lo: torch.Tensor
    voxel_size: float
    dims: tuple[int, int, int]
    pixels: torch.Tensor


def grid_views(
    cameras: Camera,
    bounds_min: tuple[float, float, float],
    bounds_max: tuple[float, float, float],
    voxel_size: float,
    occluder_depth: torch.Tensor | None = None,
    depth_margin: float = 0.05,
    chunk: int = 1 << 20,
) -> VoxelGridViews:
    """Project a voxel grid into the cameras once (see `VoxelGridViews`).

    Args:
        cameras: V cameras (distortion is applied when projecting).
        bounds_min, bounds_max: the grid's world box in metres.
        voxel_size: voxel edge in metres.
        occluder_depth: [V, H, W] z-depth of the static set in metres (0 = unknown), or None.
        depth_margin: a voxel counts as hidden by the set when it is this far (metres) behind it.
        chunk: voxels projected at once (memory bound).

    Raises:
        InputError: the grid is too fine (`check_voxel_grid`).
    """
    check_voxel_grid(bounds_min, bounds_max, voxel_size)
    lo = torch.tensor(bounds_min, dtype=torch.float64)
    hi = torch.tensor(bounds_max, dtype=torch.float64)
    dims = torch.clamp(((hi - lo) / voxel_size).ceil().long(), min=1)
    nx, ny, nz = (int(d) for d in dims)
    total = nx * ny * nz
    pixels = torch.full((len(cameras), total), -1, dtype=torch.int32)
    for start in range(0, total, chunk):
        index = torch.arange(start, min(start + chunk, total))
        ijk = torch.stack([index // (ny * nz), (index // nz) % ny, index % nz], -1)
        hits = cameras.pixel_hits(lo + (ijk.double() + 0.5) * voxel_size)
        for v in range(len(cameras)):
            rows, cols = hits.rows[v], hits.cols[v]
            seen = hits.inside[v]
            if occluder_depth is not None:
                set_depth = occluder_depth[v, rows, cols].double()
                seen = seen & ((set_depth <= 0) | (hits.depth[v] < set_depth + depth_margin))
            flat = (rows * int(cameras.width[v]) + cols).to(torch.int32)
            pixels[v, index] = torch.where(seen, flat, torch.full_like(flat, -1))
    return VoxelGridViews(lo, float(voxel_size), (nx, ny, nz), pixels)


def carve(views: VoxelGridViews, foreground: torch.Tensor, min_votes: int = 2) -> VisualHull:
    """Carve a projected voxel grid with one frame's foreground masks.

    A voxel is kept when no camera that sees it calls its pixel background and at least `min_votes`
    of them call it foreground.

    Args:
        views: the grid in the cameras (`grid_views`).
        foreground: [V, H, W] bool, True on moving things; each camera's own size.

    Returns:
        The occupied voxels (possibly none).
    """
    total = views.pixels.shape[1]
    free = torch.zeros(total, dtype=torch.bool)
    votes = torch.zeros(total, dtype=torch.int64)
    for v in range(len(views.pixels)):
        pixels = views.pixels[v]
        seen = pixels >= 0
        is_foreground = foreground[v].reshape(-1)[pixels.clamp_min(0).long()]
        free |= seen & ~is_foreground
        votes += (seen & is_foreground).long()
    keep = ~free & (votes >= min_votes)
    grid = keep.reshape(views.dims)
    padded = torch.nn.functional.pad(grid[None, None].float(), (1, 1, 1, 1, 1, 1))
    neighbours = torch.nn.functional.conv3d(padded, _six_neighbour_kernel())[0, 0]
    surface = grid & (neighbours < 6)
    ijk = grid.nonzero()
    centres = (views.lo + (ijk.double() + 0.5) * views.voxel_size).float()
    return VisualHull(centres, surface[grid], views.voxel_size, votes[keep])


def carve_visual_hull(
    cameras: Camera,
    foreground: torch.Tensor,
    bounds_min: tuple[float, float, float],
    bounds_max: tuple[float, float, float],
    voxel_size: float,
    occluder_depth: torch.Tensor | None = None,
    min_votes: int = 2,
    depth_margin: float = 0.05,
) -> VisualHull:
    """Carve a voxel grid with one set of foreground masks: `carve` on `grid_views` (whose Args these
    are). For many frames of one take, project the grid once with `grid_views` and `carve` each."""
    views = grid_views(cameras, bounds_min, bounds_max, voxel_size, occluder_depth, depth_margin)
    return carve(views, foreground, min_votes)


def _six_neighbour_kernel() -> torch.Tensor:
    kernel = torch.zeros(1, 1, 3, 3, 3)
    for axis in range(3):
        for offset in (0, 2):
            index = [1, 1, 1]
            index[axis] = offset
            kernel[0, 0, index[0], index[1], index[2]] = 1.0
    return kernel
