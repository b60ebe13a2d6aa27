"""Dense plane-sweep stereo: depth of textured planes with a known answer, fusion by agreement."""

from __future__ import annotations

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.geometry.stereo import (
    DepthMap,
    StereoConfig,
    StereoView,
    depth_normals,
    fuse_depths,
    select_sources,
    stereo_depths,
    view_depth,
    voxel_downsampled,
)

SIZE = (96, 64)


def _cameras(eyes, target) -> Camera:
    K = torch.tensor([[80.0, 0, (SIZE[0] - 1) / 2], [0, 80.0, (SIZE[1] - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    n = len(eyes)
    return Camera.create(
        [f"c{i}" for i in range(n)],
        K.expand(n, 3, 3),
        np.stack([look_at(e, target).numpy() for e in eyes]),
        [SIZE[0]] * n,
        [SIZE[1]] * n,
    )


def _texture(xy: torch.Tensor) -> torch.Tensor:
    """A colourful, non-repeating texture [..., 3] of plane coordinates [..., 2] (metres)."""
    x, y = xy[..., 0], xy[..., 1]
    return (
        torch.stack(
            [
                0.5 + 0.25 * torch.sin(7.3 * x) * torch.cos(5.1 * y) + 0.2 * torch.sin(23.0 * x + 3 * y),
                0.5 + 0.3 * torch.sin(11.0 * y + 2 * x) * torch.cos(3.7 * x),
                0.5 + 0.3 * torch.cos(17.0 * x - 13.0 * y),
            ],
            -1,
        )
        .clamp(0, 1)
        .float()
    )


def _floor_views(cameras: Camera) -> tuple[list[StereoView], list[torch.Tensor]]:
    """Each camera's picture of a textured floor z = 0 (black where its rays miss it) and true z-depth."""
    views, depths = [], []
    for i in range(len(cameras)):
        camera = cameras.select(i)
        rows, cols = torch.meshgrid(
            torch.arange(SIZE[1], dtype=torch.float64), torch.arange(SIZE[0], dtype=torch.float64), indexing="ij"
        )
        directions = camera.pixel_directions(torch.stack([cols, rows], -1).reshape(1, -1, 2))[0]
        depth = -camera.centers[0, 2] / directions[:, 2]
        hit = camera.centers[0] + depth[:, None] * directions
        image = torch.where((depth > 0)[:, None], _texture(hit[:, :2]), torch.zeros(1, 3)).reshape(SIZE[1], SIZE[0], 3)
        views.append(StereoView(camera, image))
        depths.append(torch.where(depth > 0, depth, torch.zeros_like(depth)).reshape(SIZE[1], SIZE[0]).float())
    return views, depths


class TestViewDepth:
    def test_a_floor_seen_obliquely_comes_out_at_its_depth(self):
        eyes = [(0.0, -3.0, 1.6), (0.4, -3.0, 1.6), (-0.4, -3.1, 1.7), (0.1, -2.7, 1.5)]
        cameras = _cameras(eyes, (0.0, 0.5, 0.0))
        views, truth = _floor_views(cameras)
        found = view_depth(views[0], views[1:], near=0.5, far=12.0, top=2.0)
        known = found.depth > 0
        in_range = (truth[0] > 0.5) & (truth[0] < 12.0)
        error = ((found.depth - truth[0]).abs() / truth[0])[known]
        assert float((known & in_range).sum()) > 0.8 * float(in_range.sum()), "most of the floor gets a depth"
        assert float(error.median()) < 0.01 and float((error < 0.03).float().mean()) > 0.85, error.quantile(0.9)
        up = found.normal[known]
        assert float((up[:, 2] > 0.95).float().mean()) > 0.9, "the floor's normal points up"

    def test_without_horizontal_planes_the_oblique_floor_is_worse(self):
        """Fronto-parallel planes alone mismatch a floor seen at a grazing angle (its windows shear)."""
        eyes = [(0.0, -3.0, 0.9), (0.6, -3.0, 0.9), (-0.6, -3.0, 0.9)]
        cameras = _cameras(eyes, (0.0, 1.0, 0.0))
        views, truth = _floor_views(cameras)

        def good_share(config: StereoConfig) -> float:
            found = view_depth(views[0], views[1:], 0.5, 12.0, 2.0, config)
            return float((((found.depth - truth[0]).abs() / truth[0].clamp_min(1e-6)) < 0.02).float().mean())

        assert good_share(StereoConfig()) > good_share(StereoConfig(horizontal_planes=0)) + 0.1

    def test_a_masked_reference_pixel_gets_no_depth(self):
        cameras = _cameras([(0.0, -3.0, 1.6), (0.5, -3.0, 1.6)], (0.0, 0.5, 0.0))
        views, _ = _floor_views(cameras)
        mask = torch.ones(SIZE[1], SIZE[0], dtype=torch.bool)
        mask[:, : SIZE[0] // 2] = False
        found = view_depth(StereoView(views[0].camera, views[0].image, mask), views[1:], 0.5, 12.0, 2.0)
        assert not bool((found.depth[:, : SIZE[0] // 2] > 0).any())
        assert float((found.depth[:, SIZE[0] // 2 :] > 0).float().mean()) > 0.5


class TestFusion:
    def test_only_points_another_view_confirms_are_kept(self):
        eyes = [(0.0, -3.0, 1.6), (0.5, -3.0, 1.6), (-0.5, -3.0, 1.6)]
        views, truth = _floor_views(_cameras(eyes, (0.0, 0.5, 0.0)))
        good = [DepthMap(d, torch.zeros(*d.shape, 3), torch.ones_like(d)) for d in truth]
        fused = fuse_depths(views, good)
        assert len(fused.points.points) > 0.8 * sum(int((d > 0).sum()) for d in truth)
        assert float(fused.points.points[:, 2].abs().max()) < 1e-3, "true depths lift onto the floor"
        wrong = [
            good[0],
            DepthMap(truth[1] * 0.8, good[1].normal, good[1].score),
            DepthMap(truth[2] * 0.8, good[2].normal, good[2].score),
        ]
        fused_wrong = fuse_depths(views, wrong, StereoConfig(min_consistent=1))
        assert float((fused_wrong.depths[0] > 0).float().mean()) < 0.05, "no other view agrees with view 0"

    def test_voxel_downsampling_keeps_one_point_per_voxel(self):
        eyes = [(0.0, -3.0, 1.6), (0.5, -3.0, 1.6)]
        views, truth = _floor_views(_cameras(eyes, (0.0, 0.5, 0.0)))
        fused = fuse_depths(
            views, [DepthMap(d, torch.tensor([0.0, 0.0, 1.0]).expand(*d.shape, 3), torch.ones_like(d)) for d in truth]
        )
        thin = voxel_downsampled(fused.points, 0.1)
        keys = torch.floor(thin.points.double() / 0.1)
        assert len(torch.unique(keys, dim=0)) == len(thin.points) < len(fused.points.points)
        assert torch.allclose(thin.normals, torch.tensor([0.0, 0.0, 1.0]).expand_as(thin.normals))


def test_depth_normals_of_a_plane_are_its_normal():
    cameras = _cameras([(0.0, -3.0, 1.6)], (0.0, 0.5, 0.0))
    _, truth = _floor_views(cameras)
    normals = depth_normals(truth[0][None].double(), cameras)[0]
    inner = normals[2:-2, 2:-2][truth[0][2:-2, 2:-2] > 0]
    assert torch.allclose(inner, torch.tensor([0.0, 0.0, 1.0], dtype=inner.dtype).expand_as(inner), atol=1e-4)


def test_sources_are_views_that_share_the_frustum():
    eyes = [(0.0, -3.0, 1.6), (0.5, -3.0, 1.6), (0.0, 3.0, 1.6), (-0.6, -3.0, 1.6), (0.0, -3.0, 1.61)]
    cameras = _cameras(eyes[:4], (0.0, 0.0, 0.5))
    cameras = Camera.cat([cameras, _cameras(eyes[4:], (0.0, 0.0, 0.5)).renamed(["same_place"])])
    chosen = select_sources(cameras, 0, 1.0, 8.0, count=2, min_angle_deg=2.0, max_angle_deg=50.0)
    assert sorted(chosen) == [1, 3], "the camera opposite and the one at the same place are no use"


def test_stereo_depths_bounds_each_view_by_the_box():
    eyes = [(0.0, -3.0, 1.6), (0.4, -3.0, 1.6), (-0.4, -3.1, 1.7)]
    views, truth = _floor_views(_cameras(eyes, (0.0, 0.5, 0.0)))
    depths = stereo_depths(views, (-3, -3, -0.05), (3, 5, 2.0))
    assert len(depths) == 3
    for found, true in zip(depths, truth):
        known = found.depth > 0
        assert float(known.float().mean()) > 0.5
        assert float(((found.depth - true).abs() / true.clamp_min(1e-6))[known].median()) < 0.01


def test_window_means_equal_a_box_pool_that_leaves_the_padding_out():
    """The summed-area window means are the pool's, borders included (odd sizes, several windows)."""
    import torch.nn.functional as F

    from reshoot.geometry.stereo import _window_mean

    x = torch.rand(3, 2, 23, 37, generator=torch.Generator().manual_seed(0))
    for window in (3, 7, 11):
        expected = F.avg_pool2d(x, window, 1, window // 2, count_include_pad=False)
        assert torch.allclose(_window_mean(x, window), expected, atol=1e-6)
