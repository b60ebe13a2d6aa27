"""Large vertical planes (walls) in a point cloud of the set, by RANSAC plane segmentation.

The RANSAC is ours, not open3d's `segment_plane`: open3d draws its hypotheses on several threads, so
even with its generator seeded two runs can keep different planes (measured: one wall of the demo
take tilted by 1.4° on one call in three), and the stages that use the planes must give the same
bytes on every run. Hypotheses here come from numpy's seeded generator and are scored in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HYPOTHESES_PER_BATCH = 32  # RANSAC planes scored at once (memory: batch x points distances)


@dataclass(frozen=True)
class FoundPlane:
    """A plane n·X = offset found in points.

    Attributes:
        normal: [3] unit normal; offset: world units.
        inliers: [M] indices (into the points given) within the distance threshold.
    """

    normal: np.ndarray
    offset: float
    inliers: np.ndarray


def ransac_plane(
    points: np.ndarray, distance: float, iterations: int, rng: np.random.Generator
) -> tuple[np.ndarray, float, np.ndarray]:
    """The plane through three of `points` [N, 3] (N >= 3) with the most points within `distance`:
    (unit normal [3], offset, inlier indices [M]); ties go to the earlier hypothesis."""
    samples = rng.integers(0, len(points), size=(iterations, 3))
    a, b, c = points[samples[:, 0]], points[samples[:, 1]], points[samples[:, 2]]
    normals = np.cross(b - a, c - a)
    lengths = np.linalg.norm(normals, axis=1)
    valid = lengths > 1e-12
    normals[valid] /= lengths[valid, None]
    offsets = np.einsum("ij,ij->i", normals, a)
    best, best_count = 0, -1
    for start in range(0, iterations, HYPOTHESES_PER_BATCH):
        stop = min(start + HYPOTHESES_PER_BATCH, iterations)
        counts = (np.abs(points @ normals[start:stop].T - offsets[start:stop]) <= distance).sum(0)
        counts[~valid[start:stop]] = -1
        k = int(np.argmax(counts))
        if counts[k] > best_count:
            best, best_count = start + k, int(counts[k])
    inliers = np.nonzero(np.abs(points @ normals[best] - offsets[best]) <= distance)[0]
    return normals[best], float(offsets[best]), inliers


def vertical_planes(
    points: np.ndarray,
    distance: float,
    min_share: float,
    max_planes: int = 4,
    max_tilt: float = 0.2,
    seed: int = 0,
    normals: np.ndarray | None = None,
    iterations: int = 500,
) -> list[FoundPlane]:
    """Walls: the largest planes of `points` [N, 3] (z up) whose normal is within `max_tilt` (|n_z|) of
    horizontal, found one after the other, each holding at least `min_share` of the points left.
    Stops at the first plane that is not such a wall.

    Args:
        distance: RANSAC inlier threshold, world units.
        seed: the RANSAC's generator (the same planes on every run).
        normals: [N, 3] the points' normals, when known: only points facing sideways (|n_z| <= 0.3)
            are searched, so that a horizontal slab through the walls' points is not taken for a plane.
        iterations: RANSAC hypotheses per plane.
    """
    points = np.asarray(points, dtype=np.float64)
    remaining = np.arange(len(points))
    if normals is not None:
        remaining = remaining[np.abs(normals[:, 2]) <= 0.3]
    rng = np.random.default_rng(seed)
    found: list[FoundPlane] = []
    for _ in range(max_planes):
        if len(remaining) < 100:
            break
        normal, offset, inliers = ransac_plane(points[remaining], distance, iterations, rng)
        if abs(normal[2]) > max_tilt or len(inliers) < min_share * len(remaining):
            break
        found.append(FoundPlane(normal, offset, remaining[inliers]))
        remaining = np.delete(remaining, inliers)
    return found
