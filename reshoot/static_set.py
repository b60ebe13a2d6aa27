"""The static set as surfaces: dense stereo of the empty set, its planes and the starting Gaussians.

From calibrated views of the empty set (clean plates with their moving pixels masked, survey photos):
1. `stereo_surfaces`: plane-sweep depth of every view at a reduced size, the points two views agree
   on (`geometry/stereo.py`), one per `spacing` voxel: where fitting starts (never in empty space), and
   what the views observe (for free-space pruning).
2. `set_planes`: the floor (z = 0, where registration found it) and the walls (large vertical planes of
   the stereo points), priors that pull nearby Gaussians onto them.
3. `initial_set`: flat surfels on the stereo points, each plane's unseen gaps filled (`plane_fill`); with
   too few of them (an untextured set), the sparse registration points plus seeds on the floor and in the
   box over it, as 3DGS does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.planes import vertical_planes
from reshoot.geometry.progress import ProgressFn
from reshoot.geometry.splats.actors import colors_at
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.surfaces import Plane, plane_fill, points_on_plane, surfel_gaussians
from reshoot.geometry.splats.train import ObservedSurfaces, TrainingView, initial_gaussians
from reshoot.geometry.stereo import StereoConfig, StereoView, fuse_depths, stereo_depths, voxel_downsampled

MIN_STEREO_POINTS = 2000  # with fewer confirmed stereo pixels the set starts from sparse points and seeds
MIN_SPARSE_POINTS = 2000  # with fewer registration points (and no stereo) seeds are added
SEED_POINTS = 20000
SURFEL_THICKNESS = 1e-3  # metres: the standard deviation of a surfel across its surface
WALL_SHARE = 0.1  # a wall holds at least this share of the stereo points off the floor
WALL_DISTANCE = 0.05  # metres: RANSAC inlier distance of a wall
WALL_MERGE = 0.3  # metres: parallel planes closer than this are one wall
FLOOR_DISTANCE = 0.03  # metres: stereo points this close to z = 0 (facing up) are on the floor
SET_SH_DEGREE = 0  # the set's colour is view-independent: higher SH terms, fitted from eye-level views,
#                    extrapolate to wrong (mostly dark) colours from above


@dataclass(frozen=True)
class StereoSurfaces:
    """What dense stereo found of the set.

    Attributes:
        observed: the views' confirmed depths and the confirmed points (for pruning).
        points, colors, normals: [N, 3] the confirmed points, one per voxel of the spacing.
    """

    observed: ObservedSurfaces
    points: torch.Tensor
    colors: torch.Tensor
    normals: torch.Tensor


def scene_box(points: np.ndarray, cameras: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(min [3], max [3]) world box of the set: the sparse points (0.5-99.5th percentiles) and the
    cameras, 10 % larger, from the floor to twice the highest camera."""
    centres = cameras.centers.double().numpy()
    lo = np.minimum(np.percentile(points, 0.5, axis=0), centres.min(0))
    hi = np.maximum(np.percentile(points, 99.5, axis=0), centres.max(0))
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    lo[2] = min(-0.05, float(lo[2]))
    hi[2] = max(float(hi[2]), 2.0 * float(centres[:, 2].max()))
    return lo, hi


def stereo_surfaces(
    views: Sequence[TrainingView],
    box: tuple[np.ndarray, np.ndarray],
    reduce: int,
    spacing: float,
    progress: ProgressFn | None = None,
    config: StereoConfig = StereoConfig(),
) -> StereoSurfaces:
    """Dense stereo of the views at 1/`reduce` of their size, fused and thinned to one point per voxel.

    Args:
        views: the set's training views (masks: 1 where the pixel may be used).
        box: the scene's world box (bounds each view's depth range).
        spacing: voxel edge of the returned points, world units.
        config: the plane sweep's settings.
    """
    stereo = [
        StereoView(view.camera, view.image, None if view.mask is None else view.mask > 0.5).reduced(reduce)
        for view in views
    ]
    depths = stereo_depths(stereo, box[0], box[1], config, progress=progress)
    fused = fuse_depths(stereo, depths, config)
    thinned = voxel_downsampled(fused.points, spacing)
    cameras = Camera.cat([v.camera.renamed([f"stereo_{i}"]) for i, v in enumerate(stereo)])
    return StereoSurfaces(
        ObservedSurfaces(cameras, fused.depths, fused.points.points), thinned.points, thinned.colors, thinned.normals
    )


def set_planes(points: torch.Tensor, normals: torch.Tensor, floor: bool) -> list[Plane]:
    """The floor z = 0 (when registration found it) and the walls: large vertical planes of the stereo
    points (facing sideways, off the floor), each wall once (a plane parallel to a wall already found
    and within WALL_MERGE of it is that wall's other face or its noise). A wall reaches beyond its
    stereo points (its top is often seen by one camera only); the floor does not (its unseen gaps are
    filled at the start, and what comes to lie on it later at its open edges stands in for the void)."""
    planes = [Plane((0.0, 0.0, 1.0), 0.0, "floor")] if floor else []
    above = points[:, 2] > 0.2
    candidates = points[above].double().numpy()
    walls: list[Plane] = []
    for wall in vertical_planes(candidates, WALL_DISTANCE, WALL_SHARE, normals=normals[above].double().numpy()):
        same = [
            w
            for w in walls
            if abs(cosine := float(np.dot(w.normal, wall.normal))) > 0.97
            and abs(w.offset - np.sign(cosine) * wall.offset) < WALL_MERGE
        ]
        if not same:
            inliers = candidates[wall.inliers, :2]
            lo = np.percentile(inliers, 1, axis=0) - WALL_MERGE
            hi = np.percentile(inliers, 99, axis=0) + WALL_MERGE
            walls.append(
                Plane(
                    tuple(float(x) for x in wall.normal),
                    float(wall.offset),
                    f"wall_{len(walls) + 1}",
                    reaches_beyond_start=True,
                    footprint=(tuple(lo.tolist()), tuple(hi.tolist())),
                )
            )
    return planes + walls


def initial_set(
    stereo: StereoSurfaces | None,
    sparse_points: np.ndarray,
    sparse_colors: np.ndarray,
    training: Camera,
    plates: list[TrainingView],
    spacing: float,
    floor: bool,
    seed: int,
) -> tuple[Gaussians, list[Plane] | None]:
    """The set's starting Gaussians, and its planes when they are surfels (None otherwise).

    Surfels on the stereo points when stereo confirmed at least MIN_STEREO_POINTS pixels, with the gaps
    inside each plane's observed points filled (`set_planes`, `plane_fill`: the floor where registration
    found it, the walls); otherwise isotropic Gaussians on the sparse points, plus seeds when those are
    few (`seeded_points`).
    """
    if stereo is not None and len(stereo.observed.points) >= MIN_STEREO_POINTS:
        points, colors, normals = stereo.points, stereo.colors, stereo.normals
        planes = set_planes(points, normals, floor)
        for plane, on in _points_on(planes, stereo):
            fill, fill_colors = plane_fill(stereo.points[on], stereo.colors[on], plane, spacing)
            points, colors = torch.cat([points, fill]), torch.cat([colors, fill_colors])
            normals = torch.cat([normals, torch.tensor([plane.normal], dtype=normals.dtype).expand(len(fill), 3)])
        surfels = surfel_gaussians(points, colors, normals, spacing / 2, SURFEL_THICKNESS, sh_degree=SET_SH_DEGREE)
        return surfels, planes
    points, colors = seeded_points(sparse_points, sparse_colors, training, plates, seed)
    return initial_gaussians(points, colors, sh_degree=SET_SH_DEGREE), None


def _points_on(planes: list[Plane], stereo: StereoSurfaces) -> list[tuple[Plane, torch.Tensor]]:
    """Each plane with the [N] bool mask of the stereo points on it (`points_on_plane`): within
    FLOOR_DISTANCE of the floor or WALL_DISTANCE of a wall, facing along its normal (|cos| > 0.9)."""
    points, normals = stereo.points.double(), stereo.normals.double()
    return [
        (
            plane,
            points_on_plane(points, normals, plane, FLOOR_DISTANCE if plane.name == "floor" else WALL_DISTANCE, 0.9),
        )
        for plane in planes
    ]


def seeded_points(
    points: np.ndarray, colors: np.ndarray, training: Camera, plates: list[TrainingView], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse points, plus (when they are few, as with calibrated cameras that see little texture) seeds:
    half on the floor (z = 0, which the world frame guarantees) and half spread through the box over it,
    each coloured by the plates it projects into. Seeds in empty space fade and are pruned in training,
    as in 3DGS's random initialization."""
    if len(points) >= MIN_SPARSE_POINTS:
        return points, colors
    rng = np.random.default_rng(seed)
    footprint = np.concatenate([points[:, :2], training.centers[:, :2].numpy()])
    lo, hi = footprint.min(0), footprint.max(0)
    top = float(training.centers[:, 2].max())
    n = SEED_POINTS // 2
    floor = np.column_stack([rng.uniform(lo, hi, (n, 2)), np.zeros(n)])
    volume = np.column_stack([rng.uniform(lo, hi, (n, 2)), rng.uniform(0, top, n)])
    seeds = torch.from_numpy(np.concatenate([floor, volume]))
    masks = [torch.ones(v.image.shape[:2], dtype=torch.bool) for v in plates]
    seen = (training.project(seeds).depth > 0).any(0)
    seed_colors = colors_at(seeds[seen].float(), training, [v.image for v in plates], masks)
    return (np.concatenate([points, seeds[seen].numpy()]), np.concatenate([colors, seed_colors.numpy()]))


def read_sparse_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(points [N, 3], colors [N, 3] in [0, 1]) of the registration's points.ply."""
    import open3d as o3d

    cloud = o3d.io.read_point_cloud(str(path))
    return np.asarray(cloud.points), np.asarray(cloud.colors)
