"""Dense multi-view stereo on the CPU: plane-sweep depth maps of calibrated views, fused into points.

For each reference view, its best source views are warped onto it through a family of plane
hypotheses (planes facing the camera, spaced evenly in inverse depth, and horizontal planes z = c,
which in the z-up world frame hold the floor and table tops at their true slant). Each pixel takes
the hypothesis whose colour NCC over a small window, averaged over its two best sources (so one
occluded source does not veto it), is highest; a second, finer sweep around that plane refines it.
`fuse_depths` then keeps a pixel's point only where another view's depth map agrees with it
(geometric consistency): every kept point is seen by at least two views.

Written here rather than taken from a library: pycolmap's PatchMatch stereo needs CUDA, open3d and
kornia have no multi-view stereo, and OpenCV's block matchers need rectified pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .camera import Camera
from .progress import ProgressFn, no_progress


@dataclass(frozen=True)
class StereoView:
    """One calibrated image for stereo.

    Attributes:
        camera: one pinhole camera (V = 1).
        image: [H, W, 3] float32 in [0, 1].
        mask: [H, W] bool, True where the pixel may be used (e.g. not on moving actors), or None.
    """

    camera: Camera
    image: torch.Tensor
    mask: torch.Tensor | None = None

    def reduced(self, factor: int) -> StereoView:
        """The view at 1/factor of its size: box-averaged image, a pixel usable where all it covers is."""
        if factor == 1:
            return self
        h, w = self.image.shape[0] // factor * factor, self.image.shape[1] // factor * factor
        image = self.image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean((1, 3))
        mask = (
            None
            if self.mask is None
            else self.mask[:h, :w].reshape(h // factor, factor, w // factor, factor).float().amin((1, 3)) > 0.5
        )
        return StereoView(self.camera.scaled(factor), image, mask)


@dataclass(frozen=True)
class StereoConfig:
    """Settings of the plane sweep and the fusion.

    Attributes:
        fronto_planes: planes facing the reference camera, evenly spaced in inverse depth.
        horizontal_planes: planes z = c, evenly spaced from the floor (z = 0) to `top`.
        refine_steps: hypotheses of each finer sweep around each pixel's best plane.
        refine_rounds: finer sweeps, each on a grid refine_steps + 1 times finer.
        sources: source views per reference view.
        window: NCC window edge in pixels (odd).
        min_ncc: a pixel keeps its depth when its best score reaches this.
        min_texture: and its window's standard deviation (RGB in [0, 1]) reaches this.
        min_angle_deg, max_angle_deg: triangulation angles that make a useful source view.
        depth_tolerance: relative z-depth difference under which two views' depths agree.
        min_consistent: views (besides the reference) whose depth must agree for a point to be kept.
    """

    fronto_planes: int = 48
    horizontal_planes: int = 24
    refine_steps: int = 8
    refine_rounds: int = 2
    sources: int = 4
    window: int = 7
    min_ncc: float = 0.5
    min_texture: float = 0.015
    min_angle_deg: float = 2.0
    max_angle_deg: float = 50.0
    depth_tolerance: float = 0.015
    min_consistent: int = 1


@dataclass(frozen=True)
class DepthMap:
    """A view's stereo depth.

    Attributes:
        depth: [H, W] z-depth in world units, 0 where unknown.
        normal: [H, W, 3] world unit normal of the winning plane (facing the camera), zeros where unknown.
        score: [H, W] NCC of the winning plane, in [-1, 1].
    """

    depth: torch.Tensor
    normal: torch.Tensor
    score: torch.Tensor


@dataclass(frozen=True)
class DensePoints:
    """Fused stereo points.

    Attributes:
        points: [N, 3] world.
        colors: [N, 3] in [0, 1].
        normals: [N, 3] world unit normals (facing the view they came from).
        support: [N] int64, views whose depth agrees (the reference included).
    """

    points: torch.Tensor
    colors: torch.Tensor
    normals: torch.Tensor
    support: torch.Tensor


def select_sources(
    cameras: Camera, reference: int, near: float, far: float, count: int, min_angle_deg: float, max_angle_deg: float
) -> list[int]:
    """Source views for a reference view: chosen greedily to see, under a useful triangulation angle,
    the most of the reference's frustum (a grid of pixels at three depths between `near` and `far`)
    that fewer than two chosen views see yet; angles near 15 degrees count more.

    Args:
        cameras: all V views; reference: index of the reference view.
        near, far: the reference's depth range (world units).
    """
    w, h = float(cameras.width[reference]), float(cameras.height[reference])
    cols, rows = torch.meshgrid(
        torch.linspace(0.1 * w, 0.9 * w, 6, dtype=torch.float64),
        torch.linspace(0.1 * h, 0.9 * h, 5, dtype=torch.float64),
        indexing="ij",
    )
    pixels = torch.stack([cols.flatten(), rows.flatten()], -1)
    depths = torch.tensor([near + (far - near) * f for f in (0.15, 0.4, 0.7)], dtype=torch.float64)
    reference_camera = cameras.select(reference)
    points = torch.cat([reference_camera.unproject(pixels[None], d.expand(1, len(pixels)))[0] for d in depths])
    hits = cameras.pixel_hits(points)  # [V, K]
    rays = points[None] - cameras.centers.double()[:, None]
    rays = rays / rays.norm(dim=-1, keepdim=True)
    angles = torch.rad2deg(torch.acos((rays * rays[reference]).sum(-1).clamp(-1, 1)))
    good = hits.inside & (angles >= min_angle_deg) & (angles <= max_angle_deg)
    good[reference] = False
    weight = good * (1 - (angles - 15.0).abs() / 60.0).clamp_min(0.1)
    covered = torch.zeros(len(points))
    chosen: list[int] = []
    for _ in range(count):
        gain = (weight * (covered < 2)).sum(-1)
        gain[chosen] = 0
        best = int(gain.argmax())
        if float(gain[best]) <= 0:
            break
        chosen.append(best)
        covered += good[best].double()
    return chosen


def depth_normals(depth: torch.Tensor, cameras: Camera, step: int = 1) -> torch.Tensor:
    """World normals [C, H, W, 3] of z-depth maps [C, H, W]: central differences (over `step` pixels
    either side) of the lifted points, turned to face the camera; zeros within `step` of the border.

    Args:
        depth: [C, H, W] z-depth of C pinhole cameras, world units.
    """
    c, h, w = depth.shape
    rows, cols = torch.meshgrid(torch.arange(h, dtype=depth.dtype), torch.arange(w, dtype=depth.dtype), indexing="ij")
    K = cameras.K.to(depth)
    x = (cols[None] - K[:, None, None, 0, 2]) / K[:, None, None, 0, 0] * depth
    y = (rows[None] - K[:, None, None, 1, 2]) / K[:, None, None, 1, 1] * depth
    points = torch.stack([x, y, depth], -1)  # camera frame
    du = points[:, step:-step, 2 * step :] - points[:, step:-step, : -2 * step]
    dv = points[:, 2 * step :, step:-step] - points[:, : -2 * step, step:-step]
    normal = torch.linalg.cross(dv, du)  # faces the camera (negative z) for a surface in front
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    world = normal @ cameras.cam_from_world[:, None, :3, :3].to(depth)  # R^T n as row vectors
    return torch.nn.functional.pad(world.permute(0, 3, 1, 2), (step, step, step, step)).permute(0, 2, 3, 1)


def _pixel_grid(camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera centre [3] and unit-z world ray directions [H, W, 3] of every pixel centre."""
    h, w = int(camera.height[0]), int(camera.width[0])
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    pixels = torch.stack([cols, rows], -1).reshape(1, -1, 2)
    return camera.centers[0].double(), camera.pixel_directions(pixels)[0].reshape(h, w, 3)


def _plane_depths(
    centre: torch.Tensor, directions: torch.Tensor, normals: torch.Tensor, offsets: torch.Tensor
) -> torch.Tensor:
    """z-depths [D, H, W] where each pixel's ray meets plane n·X = c (inf where it never does ahead).

    Args:
        centre: [3]; directions: [H, W, 3] unit-z rays; normals: [D, 3] or [D, H, W, 3]; offsets: [D] or [D, H, W].
    """
    if normals.dim() == 2:
        normals = normals[:, None, None, :]
        offsets = offsets[:, None, None]
    denominator = (normals * directions[None]).sum(-1)
    depth = (offsets - (normals * centre).sum(-1)) / torch.where(
        denominator.abs() < 1e-9, torch.full_like(denominator, 1e-9), denominator
    )
    return torch.where(depth > 0, depth, torch.full_like(depth, math.inf))


def _window_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Box mean over window x window pixels of [B, C, H, W], per channel: [B, C, H, W]; near the border, the
    mean of the pixels inside the image (as `avg_pool2d` without counting the padding). From a summed-area
    table, four reads per pixel whatever the window (the pool reads w^2 and was most of the stereo's
    time), in float64 so that the variances taken from these means keep float32's precision."""
    half = window // 2

    def box_sums(t: torch.Tensor) -> torch.Tensor:
        table = F.pad(t, (half + 1, half, half + 1, half)).cumsum(-1).cumsum(-2)
        return (
            table[..., window:, window:]
            - table[..., :-window, window:]
            - table[..., window:, :-window]
            + table[..., :-window, :-window]
        )

    counts = box_sums(torch.ones(1, 1, *x.shape[-2:], dtype=torch.float64))
    return (box_sums(x.double()) / counts).to(x.dtype)


def _ncc(reference: torch.Tensor, warped: torch.Tensor, valid: torch.Tensor, window: int) -> torch.Tensor:
    """Windowed colour NCC [D, H, W] of a reference image [3, H, W] with warped sources [D, 3, H, W]: the
    channels' covariances summed over the sum of their standard-deviation products, each channel centred
    on its own window mean, so that cameras with another white balance (a gain and an offset per
    channel) still match; -1 where the source does not cover the window's centre (`valid` [D, H, W] bool)."""
    ref = reference[None]
    mean_r, mean_w = _window_mean(ref, window), _window_mean(warped, window)
    var_r = (_window_mean(ref * ref, window) - mean_r**2).clamp_min(0)
    var_w = (_window_mean(warped * warped, window) - mean_w**2).clamp_min(0)
    cov = _window_mean(ref * warped, window) - mean_r * mean_w
    ncc = cov.sum(1) / (var_r * var_w).sqrt().sum(1).clamp_min(1e-6)
    return torch.where(valid, ncc.clamp(-1, 1), torch.full_like(ncc, -1.0))


def _warp(
    source: StereoView, centre: torch.Tensor, directions: torch.Tensor, depths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The source image seen through per-pixel depths [D, H, W] of the reference: ([D, 3, H, W], valid [D, H, W])."""
    d, h, w = depths.shape
    finite = torch.isfinite(depths)
    points = centre + torch.where(finite, depths, torch.zeros_like(depths))[..., None] * directions[None]
    projection = source.camera.project(points.reshape(1, -1, 3))
    pixels = projection.pixels[0].reshape(d, h, w, 2)
    sw, sh = int(source.camera.width[0]), int(source.camera.height[0])
    grid = torch.stack([(pixels[..., 0] + 0.5) / sw * 2 - 1, (pixels[..., 1] + 0.5) / sh * 2 - 1], -1).float()
    image = source.image.permute(2, 0, 1)[None].expand(d, -1, -1, -1)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = (grid.abs() <= 1).all(-1) & finite & (projection.depth[0].reshape(d, h, w) > 0)
    if source.mask is not None:
        usable = (
            F.grid_sample(
                source.mask[None, None].float().expand(d, -1, -1, -1),
                grid,
                mode="nearest",
                padding_mode="zeros",
                align_corners=False,
            )[:, 0]
            > 0.5
        )
        inside &= usable
    return warped, inside


def _sweep(
    reference: StereoView,
    sources: Sequence[StereoView],
    centre: torch.Tensor,
    directions: torch.Tensor,
    depths: torch.Tensor,
    window: int,
) -> torch.Tensor:
    """Score [D, H, W] of per-pixel depth hypotheses: mean NCC of the two best sources."""
    ref = reference.image.permute(2, 0, 1)
    scores = torch.stack([_ncc(ref, *_warp(s, centre, directions, depths), window) for s in sources])
    best = scores.topk(min(2, len(sources)), dim=0).values
    return best.mean(0)


def view_depth(
    reference: StereoView,
    sources: Sequence[StereoView],
    near: float,
    far: float,
    top: float,
    config: StereoConfig = StereoConfig(),
    chunk: int = 16,
) -> DepthMap:
    """Plane-sweep depth of one reference view.

    Args:
        reference: the view whose depth is estimated.
        sources: views to match against (at least one).
        near, far: z-depth range searched (world units).
        top: height of the highest horizontal plane (world z; the floor is z = 0).
        chunk: hypotheses scored at once (memory: chunk x sources x H x W x 3 floats).
    """
    centre, directions = _pixel_grid(reference.camera)
    h, w = directions.shape[:2]
    axis = reference.camera.cam_from_world[0, 2, :3].double()
    inverse = torch.linspace(1.0 / near, 1.0 / far, config.fronto_planes, dtype=torch.float64)
    normals = [axis[None].expand(config.fronto_planes, -1)]
    offsets = [(axis * centre).sum() + 1.0 / inverse]
    if config.horizontal_planes > 0:
        up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        heights = torch.linspace(0.0, top, config.horizontal_planes, dtype=torch.float64)
        normals.append(up[None].expand(config.horizontal_planes, -1))
        offsets.append(heights)
    normals_all, offsets_all = torch.cat(normals), torch.cat(offsets)

    best_score = torch.full((h, w), -2.0)
    best_index = torch.zeros((h, w), dtype=torch.long)
    for start in range(0, len(normals_all), chunk):
        n, c = normals_all[start : start + chunk], offsets_all[start : start + chunk]
        depths = _plane_depths(centre, directions, n, c)
        depths = torch.where((depths >= near) & (depths <= far), depths, torch.full_like(depths, math.inf))
        score = _sweep(reference, sources, centre, directions, depths, config.window)
        value, index = score.max(0)
        better = value > best_score
        best_score = torch.where(better, value, best_score)
        best_index = torch.where(better, index + start, best_index)

    # Finer sweeps: shift each pixel's plane along its normal by fractions of the spacing there, the
    # spacing shrinking by refine_steps + 1 each round.
    pixel_normals = normals_all[best_index]  # [H, W, 3]
    offsets = offsets_all[best_index]
    score = best_score
    coarse = _plane_depths(centre, directions, pixel_normals[None], offsets[None])[0]
    fronto_step = (1.0 / near - 1.0 / far) / max(config.fronto_planes - 1, 1)
    step = torch.where(
        best_index < config.fronto_planes,
        coarse**2 * fronto_step,
        torch.full_like(coarse, top / max(config.horizontal_planes - 1, 1)),
    )
    fractions = torch.linspace(-0.5, 0.5, config.refine_steps + 2, dtype=torch.float64)[1:-1]
    for _ in range(config.refine_rounds):
        shifted = offsets[None] + fractions[:, None, None] * step[None]
        depths = _plane_depths(centre, directions, pixel_normals[None].expand(len(fractions), -1, -1, -1), shifted)
        depths = torch.where((depths >= near) & (depths <= far), depths, torch.full_like(depths, math.inf))
        fine_score, fine_index = _sweep(reference, sources, centre, directions, depths, config.window).max(0)
        better = fine_score > score
        offsets = torch.where(better, shifted.gather(0, fine_index[None])[0], offsets)
        score = torch.where(better, fine_score, score)
        step = step / (config.refine_steps + 1)
    depth = _plane_depths(centre, directions, pixel_normals[None], offsets[None])[0]

    image = reference.image.permute(2, 0, 1)[None]
    texture = (_window_mean(image * image, config.window) - _window_mean(image, config.window) ** 2)[0].clamp_min(0)
    texture = texture.mean(0).sqrt()
    ok = (score >= config.min_ncc) & (texture >= config.min_texture) & torch.isfinite(depth)
    if reference.mask is not None:
        ok &= reference.mask
    # The surface's normal from the depth map itself where it is smooth (2 pixels either side known and
    # within 10 % of the centre), else the winning plane's.
    known = torch.where(ok, depth, torch.zeros_like(depth))[None, None]
    rough = (known <= 0) | (F.max_pool2d(known, 5, 1, 2) - known > 0.1 * known)
    smooth = F.max_pool2d(rough.double(), 5, 1, 2)[0, 0] == 0
    known = known[0, 0]
    from_depth = depth_normals(known[None], reference.camera, step=2)[0].double()
    plane_normal = torch.where((pixel_normals * directions).sum(-1, keepdim=True) > 0, -pixel_normals, pixel_normals)
    facing = torch.where((smooth & (from_depth.norm(dim=-1) > 0.5))[..., None], from_depth, plane_normal)
    return DepthMap(
        torch.where(ok, depth, torch.zeros_like(depth)).float(),
        torch.where(ok[..., None], facing, torch.zeros_like(facing)).float(),
        score.float(),
    )


def stereo_depths(
    views: Sequence[StereoView],
    bounds_min: Sequence[float],
    bounds_max: Sequence[float],
    config: StereoConfig = StereoConfig(),
    progress: ProgressFn | None = None,
) -> list[DepthMap]:
    """Depth maps of every view, each matched against its best sources among the others.

    Args:
        views: the calibrated images (pinhole; their cameras in one world frame, z up, floor z = 0).
        bounds_min, bounds_max: [3] world box holding the scene; it bounds each view's depth range.
    """
    report = progress or no_progress
    cameras = Camera.cat([v.camera.renamed([f"s{i}"]) for i, v in enumerate(views)])
    corners = torch.tensor(
        [
            [x, y, z]
            for x in (bounds_min[0], bounds_max[0])
            for y in (bounds_min[1], bounds_max[1])
            for z in (bounds_min[2], bounds_max[2])
        ],
        dtype=torch.float64,
    )
    depths = []
    for i, view in enumerate(views):
        corner_depth = view.camera.project(corners).depth[0]
        far = float(corner_depth.max())
        near = max(0.05 * far, 0.2)
        chosen = select_sources(cameras, i, near, far, config.sources, config.min_angle_deg, config.max_angle_deg)
        if not chosen or far <= near:
            h, w = view.image.shape[:2]
            depths.append(DepthMap(torch.zeros(h, w), torch.zeros(h, w, 3), torch.full((h, w), -1.0)))
        else:
            depths.append(view_depth(view, [views[j] for j in chosen], near, far, float(bounds_max[2]), config))
        report("stereo depth", i + 1, len(views))
    return depths


@dataclass(frozen=True)
class FusedDepth:
    """What the views' depth maps agree on.

    Attributes:
        points: the confirmed points of every view.
        depths: per view, [H, W] z-depth where confirmed, else 0.
    """

    points: DensePoints
    depths: list[torch.Tensor]


def fuse_depths(
    views: Sequence[StereoView], depths: Sequence[DepthMap], config: StereoConfig = StereoConfig()
) -> FusedDepth:
    """Points of every view's depth map that at least `config.min_consistent` other views confirm.

    A point confirms in another view when its z-depth there is within `depth_tolerance` (relative) of
    that view's own depth at the pixel it lands on.
    """
    cameras = Camera.cat([v.camera.renamed([f"s{i}"]) for i, v in enumerate(views)])
    kept_points, kept_colors, kept_normals, kept_support, confirmed = [], [], [], [], []
    for i, (view, depth) in enumerate(zip(views, depths)):
        confirmed.append(torch.zeros_like(depth.depth))
        valid = depth.depth > 0
        if not bool(valid.any()):
            continue
        rows, cols = torch.nonzero(valid, as_tuple=True)
        pixels = torch.stack([cols, rows], -1).double()[None]
        points = view.camera.unproject(pixels, depth.depth[rows, cols].double()[None])[0]
        hits = cameras.pixel_hits(points)
        support = torch.ones(len(points), dtype=torch.int64)
        for j, other in enumerate(depths):
            if j == i:
                continue
            there = other.depth[hits.rows[j], hits.cols[j]].double()
            agree = hits.inside[j] & (there > 0) & ((hits.depth[j] - there).abs() <= config.depth_tolerance * there)
            support += agree.long()
        keep = support >= 1 + config.min_consistent
        confirmed[i][rows[keep], cols[keep]] = depth.depth[rows[keep], cols[keep]]
        kept_points.append(points[keep].float())
        kept_colors.append(view.image[rows[keep], cols[keep]])
        kept_normals.append(depth.normal[rows[keep], cols[keep]])
        kept_support.append(support[keep])
    if not kept_points:
        empty = DensePoints(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))
        return FusedDepth(empty, confirmed)
    return FusedDepth(
        DensePoints(torch.cat(kept_points), torch.cat(kept_colors), torch.cat(kept_normals), torch.cat(kept_support)),
        confirmed,
    )


def voxel_downsampled(points: DensePoints, voxel_size: float) -> DensePoints:
    """One point per occupied voxel: the mean position, colour and (renormalised) normal of its points,
    and their largest support."""
    if len(points.points) == 0:
        return points
    keys = torch.floor(points.points.double() / voxel_size).long()
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    count = torch.bincount(inverse).double()[:, None]

    def mean(x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(len(count), x.shape[1], dtype=torch.float64).index_add_(0, inverse, x.double())
        return (total / count).float()

    normals = mean(points.normals)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    support = torch.zeros(len(count), dtype=torch.int64).scatter_reduce_(0, inverse, points.support, "amax")
    return DensePoints(mean(points.points), mean(points.colors), normals, support)
