"""Visual hulls from silhouettes: the carved volume holds the object, and occluders do not cut it."""

from __future__ import annotations

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.carving import carve_visual_hull
from reshoot.geometry.conventions import look_at

SIZE = (96, 72)
BOX_MIN, BOX_MAX = np.array([-0.2, -0.15, 0.0]), np.array([0.2, 0.15, 0.9])


def _ring(n: int) -> Camera:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eyes = [(3 * np.cos(a), 3 * np.sin(a), 1.5) for a in angles]
    K = torch.tensor([[80.0, 0, (SIZE[0] - 1) / 2], [0, 80.0, (SIZE[1] - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    return Camera.create(
        [f"c{i}" for i in range(n)],
        K.expand(n, 3, 3),
        np.stack([look_at(e, (0, 0, 0.45)).numpy() for e in eyes]),
        [SIZE[0]] * n,
        [SIZE[1]] * n,
    )


def _silhouettes(cameras: Camera, lo=BOX_MIN, hi=BOX_MAX) -> torch.Tensor:
    """Masks of a solid box: splat a dense sampling of it into every camera (then close 1-px gaps)."""
    g = np.stack(np.meshgrid(*[np.linspace(a, b, 40) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    projection = cameras.project(torch.from_numpy(g))
    masks = torch.zeros(len(cameras), SIZE[1], SIZE[0], dtype=torch.bool)
    for v in range(len(cameras)):
        u = projection.pixels[v, :, 0].round().long().clamp(0, SIZE[0] - 1)
        r = projection.pixels[v, :, 1].round().long().clamp(0, SIZE[1] - 1)
        masks[v, r, u] = True
    return torch.nn.functional.max_pool2d(masks[:, None].float(), 3, 1, 1)[:, 0] > 0


def _inside(points: torch.Tensor, lo, hi, margin: float) -> torch.Tensor:
    p = points.numpy()
    return torch.from_numpy(np.all((p >= lo - margin) & (p <= hi + margin), axis=1))


def test_hull_contains_the_object_and_little_else():
    cameras = _ring(6)
    hull = carve_visual_hull(cameras, _silhouettes(cameras), (-1, -1, -0.1), (1, 1, 1.2), 0.05)
    box_volume = float(np.prod(BOX_MAX - BOX_MIN))
    volume = len(hull.centres) * 0.05**3
    # A hull over-estimates (6 views, 1-px dilated masks, ~4 cm per pixel at the object).
    assert box_volume * 0.8 < volume < box_volume * 3.0, (volume, box_volume)
    assert bool(_inside(hull.centres, BOX_MIN, BOX_MAX, 0.15).all()), "voxels far from the object survived"
    assert 0 < int(hull.surface.sum()) < len(hull.centres), "a solid has inner voxels"


def test_a_camera_that_sees_only_an_occluder_does_not_carve_behind_it():
    cameras = _ring(4)
    masks = _silhouettes(cameras)
    # Camera 0 sees a wall between it and the object: no foreground there, but the set is nearer.
    masks[0] = False
    wall_depth = torch.zeros(4, SIZE[1], SIZE[0])
    wall_depth[0] = 1.5
    naive = carve_visual_hull(cameras, masks, (-1, -1, -0.1), (1, 1, 1.2), 0.05)
    aware = carve_visual_hull(cameras, masks, (-1, -1, -0.1), (1, 1, 1.2), 0.05, occluder_depth=wall_depth)
    assert len(naive.centres) == 0, "without the occluder's depth, camera 0 carves everything away"
    assert len(aware.centres) * 0.05**3 > 0.8 * float(np.prod(BOX_MAX - BOX_MIN))
    assert bool(_inside(aware.centres, BOX_MIN, BOX_MAX, 0.3).all())


def test_min_votes_removes_what_only_one_camera_calls_foreground():
    cameras = _ring(4)
    masks = torch.zeros(4, SIZE[1], SIZE[0], dtype=torch.bool)
    masks[1] = _silhouettes(cameras)[1]
    empty_elsewhere = torch.zeros(4, SIZE[1], SIZE[0])
    empty_elsewhere[[0, 2, 3]] = 0.5  # the others see the set right in front of them: no say
    hull = carve_visual_hull(cameras, masks, (-1, -1, -0.1), (1, 1, 1.2), 0.05, occluder_depth=empty_elsewhere)
    assert len(hull.centres) == 0


def test_one_projected_grid_carves_every_frame_as_a_fresh_carving_would():
    """The grid is projected once per take (`grid_views`); each frame's `carve` with its own masks gives
    what carving that frame from scratch gives, occluders included."""
    from reshoot.geometry.carving import carve, grid_views

    cameras = _ring(5)
    g = torch.Generator().manual_seed(0)
    occluders = torch.rand(5, SIZE[1], SIZE[0], generator=g) * 4
    occluders[occluders < 1] = 0  # unknown depth in a quarter of the pixels
    grid = grid_views(cameras, (-1, -1, -0.1), (1, 1, 1.2), 0.05, occluder_depth=occluders)
    for lo, hi in ((BOX_MIN, BOX_MAX), (BOX_MIN + 0.3, BOX_MAX + 0.3)):  # the object moved
        masks = _silhouettes(cameras, lo, hi)
        once = carve(grid, masks)
        fresh = carve_visual_hull(cameras, masks, (-1, -1, -0.1), (1, 1, 1.2), 0.05, occluder_depth=occluders)
        assert len(once.centres) > 0
        assert torch.equal(once.centres, fresh.centres) and torch.equal(once.votes, fresh.votes)
        assert torch.equal(once.surface, fresh.surface)
