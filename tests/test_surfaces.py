"""Splats that are surfaces: surfels, plane / elongation / depth-normal priors, free-space pruning, floor fill,
and the known answer they exist for: a textured floor seen only at grazing angles renders right from above."""

from __future__ import annotations

import math

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at, look_down
from reshoot.geometry.splats.gaussians import Gaussians, select_gaussians
from reshoot.geometry.splats.render import rasterize
from reshoot.geometry.splats.surfaces import (
    Plane,
    depth_normal_loss,
    elongation_loss,
    explained_by_environment,
    facing_normals,
    floating,
    gaussian_normals,
    on_planes,
    plane_axes,
    plane_camera,
    plane_coverage_loss,
    plane_fill,
    plane_loss,
    rotation_to_normal,
    surfel_gaussians,
    views_seeing,
)
from reshoot.geometry.splats.train import TrainConfig, TrainingView, initial_gaussians, psnr, train_splats
from reshoot.geometry.stereo import StereoView, fuse_depths, stereo_depths, voxel_downsampled

FLOOR = Plane((0.0, 0.0, 1.0), 0.0, "floor")


def _surfels(points, normals, spacing=0.05) -> Gaussians:
    points = torch.as_tensor(points, dtype=torch.float32)
    normals = torch.as_tensor(normals, dtype=torch.float32)
    return surfel_gaussians(points, torch.full((len(points), 3), 0.5), normals, spacing, 1e-3, sh_degree=0)


def _camera(eye, target, size=(64, 48), focal=60.0, name="c") -> Camera:
    K = torch.tensor([[focal, 0, (size[0] - 1) / 2], [0, focal, (size[1] - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    pose = look_down(eye) if target is None else look_at(eye, target)
    return Camera.create([name], K[None], pose[None].numpy(), [size[0]], [size[1]])


def test_a_surfels_normal_is_its_local_z():
    normals = torch.nn.functional.normalize(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    g = _surfels(torch.zeros(50, 3), normals)
    assert torch.allclose(g.rotations[:, :, 2], normals, atol=1e-5)
    assert torch.allclose(rotation_to_normal(normals).norm(dim=-1), torch.ones(50), atol=1e-5)
    assert torch.allclose(gaussian_normals(g).abs(), normals.abs(), atol=1e-5), "the thin axis is the normal"


class TestPlaneLoss:
    def test_pulls_near_gaussians_onto_the_plane_and_leaves_the_rest(self):
        tilted = torch.nn.functional.normalize(torch.tensor([[0.3, 0.0, 1.0]]), dim=-1)
        g = _surfels(
            [[0.0, 0.0, 0.05], [1.0, 0.0, 1.0], [2.0, 0.0, 0.02]],
            torch.cat([tilted, torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])]),
        )
        means = g.means.clone().requires_grad_(True)
        quats = g.quats_wxyz.clone().requires_grad_(True)
        moved = Gaussians(means, quats, g.log_scales, g.logit_opacities, g.sh)
        assert on_planes(moved, [FLOOR], 0.1).tolist() == [0, -1, -1], "far, or facing sideways: not the floor's"
        loss = plane_loss(moved, [FLOOR], 0.1)
        loss.backward()
        assert float(loss.detach()) > 0
        assert float(means.grad[0, 2]) > 0, "descending the loss lowers the Gaussian onto z = 0"
        assert float(means.grad[1:].abs().sum()) == 0 and float(quats.grad[1:].abs().sum()) == 0
        assert float(quats.grad[0].abs().sum()) > 0, "and turns its normal to the plane's"

    def test_is_zero_for_opaque_gaussians_lying_on_the_plane_and_charges_transparency(self):
        g = _surfels([[0.0, 0.0, 0.0], [0.5, 0.2, 0.0]], [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
        opaque = Gaussians(g.means, g.quats_wxyz, g.log_scales, torch.full((2,), 30.0), g.sh)
        assert float(plane_loss(opaque, [FLOOR], 0.1)) < 1e-10
        assert math.isclose(float(plane_loss(g, [FLOOR], 0.1)), 0.5, rel_tol=1e-5), "half-transparent: 1 - 0.5 each"

    def test_a_given_owner_keeps_a_tilted_gaussian_on_its_plane(self):
        g = _surfels([[0.0, 0.0, 0.02]], [[1.0, 0.0, 0.0]])  # turned on its side: no longer the floor's by its normal
        assert on_planes(g, [FLOOR], 0.1).tolist() == [-1]
        assert float(plane_loss(g, [FLOOR], 0.1)) == 0
        assert float(plane_loss(g, [FLOOR], 0.1, owner=torch.tensor([0]))) > 0.9, "its plane still turns it back"


def _floor_grid(spacing: float, extent: float = 1.0, scale: float | None = None) -> Gaussians:
    """Opaque grey surfels on z = 0 every `spacing` over [0, extent)^2, each of in-plane scale `scale`."""
    xs = torch.arange(spacing / 2, extent, spacing)  # centres inside the cells, off their edges
    points = torch.cat(
        [torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2), torch.zeros(len(xs) ** 2, 1)], 1
    )
    normals = torch.tensor([[0.0, 0.0, 1.0]]).expand(len(points), 3)
    return surfel_gaussians(points, torch.full((len(points), 3), 0.5), normals, scale or spacing, 1e-3, 0, opacity=0.9)


class TestPlaneCoverage:
    def test_the_plane_camera_sees_the_plane_square_on_where_documented(self):
        wall = Plane((0.0, -1.0, 0.0), -2.0, "wall")  # y = 2, the cameras on the y < 2 side (front > 0)
        camera = plane_camera(wall, 1.0, torch.tensor([0.5, 2.3, 1.0]), 0.01, 64, distance=1.5)
        assert torch.allclose(camera.centers[0], torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64)), "in front"
        u, v, n = plane_axes(wall, 1.0)
        points = torch.stack(
            [
                torch.tensor([0.5, 2.0, 1.0]),
                torch.tensor([0.5, 2.0, 1.0]) + 0.1 * u,
                torch.tensor([0.5, 2.0, 1.0]) + 0.2 * v,
            ]
        ).double()
        projection = camera.project(points)
        c = 31.5
        assert torch.allclose(
            projection.pixels[0], torch.tensor([[c, c], [c + 10, c], [c, c + 20]], dtype=torch.float64)
        )
        assert torch.allclose(projection.depth[0], torch.full((3,), 1.5, dtype=torch.float64))
        assert torch.allclose(n, torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)), "towards the front side"

    def test_charges_gaps_between_surfels_and_nothing_outside_their_area(self):
        centre = torch.tensor([0.5, 0.5, 0.0])
        touching = plane_coverage_loss(_floor_grid(0.05), FLOOR, 1.0, centre, 0.01, 64, 0.05)
        gapped = plane_coverage_loss(_floor_grid(0.05, scale=0.012), FLOOR, 1.0, centre, 0.01, 64, 0.05)
        assert float(touching) < 0.01 < 0.2 < float(gapped), (touching, gapped)
        beyond = plane_coverage_loss(
            _floor_grid(0.05, scale=0.012), FLOOR, 1.0, torch.tensor([3.0, 3.0, 0.0]), 0.01, 64, 0.05
        )
        assert float(beyond) == 0.0, "where no surfel stands, nothing is asked"
        from_below = plane_coverage_loss(_floor_grid(0.05, scale=0.012), FLOOR, -1.0, centre, 0.01, 64, 0.05)
        assert abs(float(from_below) - float(gapped)) < 0.02, "a disc covers the same from either side"

    def test_the_outline_is_not_pushed_outwards(self):
        """A window half over the edge of the surfels' area: the half outside does not count."""
        grid = _floor_grid(0.05)
        inside = plane_coverage_loss(grid, FLOOR, 1.0, torch.tensor([0.5, 0.5, 0.0]), 0.01, 64, 0.05)
        edge = plane_coverage_loss(grid, FLOOR, 1.0, torch.tensor([0.95, 0.5, 0.0]), 0.01, 64, 0.05)
        assert float(edge) < float(inside) + 0.02, (inside, edge)

    def test_its_gradient_grows_and_opacifies_the_surfels(self):
        grid = _floor_grid(0.05, scale=0.012)
        scales = grid.log_scales.clone().requires_grad_(True)
        opacities = grid.logit_opacities.clone().requires_grad_(True)
        g = Gaussians(grid.means, grid.quats_wxyz, scales, opacities, grid.sh)
        plane_coverage_loss(g, FLOOR, 1.0, torch.tensor([0.5, 0.5, 0.0]), 0.01, 64, 0.05).backward()
        seen = scales.grad[:, 0] != 0
        assert int(seen.sum()) > 50
        assert bool((scales.grad[seen, :2] <= 0).all()) and bool((opacities.grad[seen] <= 0).all())


def test_max_scale_holds_every_gaussian_within_its_share_of_the_scene():
    """A dark sheet 2 m wide over a floor seen by four cameras 3 m from its middle (scene scale 1.1 x 3 m):
    held at 5 % of the scene, no Gaussian's standard deviation exceeds 0.165 m from the first step on;
    unheld, the sheet stays metres wide."""
    eyes = [(3.0 * math.cos(a), 3.0 * math.sin(a), 0.6) for a in np.linspace(0, 2 * math.pi, 4, endpoint=False)]
    views = [TrainingView(c, _floor_image(c)) for c in (_camera(e, (0.0, 0.0, 0.0), name=str(e)) for e in eyes)]
    xs = torch.arange(-0.95, 1.0, 0.1)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    points = torch.cat([torch.cat([grid, torch.zeros(len(grid), 1)], 1), torch.tensor([[0.0, 0.0, 0.5]])])
    normals = torch.tensor([[0.0, 0.0, 1.0]]).expand(len(points), 3)
    start = surfel_gaussians(points, torch.full((len(points), 3), 0.5), normals, 0.1, 1e-3, 0, opacity=0.9)
    start.log_scales[-1, :2] = math.log(2.0)  # the sheet
    start.sh[-1] = -1.5  # dark

    def fitted(max_scale):
        config = TrainConfig(iterations=20, views_per_step=2, sh_degree=0, densify=False, max_scale=max_scale)
        return train_splats(views, start, config).gaussians.log_scales.exp().amax(1)

    assert float(fitted(0.05).max()) <= 0.05 * 1.1 * 3.0 * (1 + 1e-5)
    assert float(fitted(None).max()) > 1.0


def test_elongation_loss_is_zero_for_discs_and_grows_for_needles():
    def gaussians(scales):
        n = len(scales)
        return Gaussians(
            torch.zeros(n, 3),
            torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
            torch.log(torch.tensor(scales)),
            torch.zeros(n),
            torch.zeros(n, 1, 3),
        )

    assert float(elongation_loss(gaussians([[0.05, 0.05, 0.001], [0.05, 0.04, 0.05]]), 4.0)) == 0
    short, long = (float(elongation_loss(gaussians([[0.05 * r, 0.05, 0.001]]), 4.0)) for r in (8.0, 16.0))
    assert 0 < short < long
    assert math.isclose(long - short, math.log(2), rel_tol=1e-5), "the cost is the log of the excess ratio"


def test_depth_normal_loss_is_zero_when_the_normals_agree_with_the_depth():
    camera = _camera((0.0, -3.0, 1.6), (0.0, 0.5, 0.0))
    rows, cols = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    directions = camera.pixel_directions(torch.stack([cols, rows], -1).reshape(1, -1, 2).double())[0]
    depth = (-camera.centers[0, 2] / directions[:, 2]).reshape(1, 48, 64).float()
    up = torch.tensor([0.0, 0.0, 1.0]).expand(1, 48, 64, 3)
    alpha = torch.ones(1, 48, 64)
    assert float(depth_normal_loss(up, depth, alpha, camera)) < 1e-4
    sideways = torch.tensor([1.0, 0.0, 0.0]).expand(1, 48, 64, 3)
    assert float(depth_normal_loss(sideways, depth, alpha, camera)) > 0.9


def test_facing_normals_turn_towards_each_camera():
    g = _surfels([[0.0, 0.0, 0.0]], [[0.0, 0.0, -1.0]])
    cameras = Camera.cat(
        [_camera((0.0, -2.0, 1.0), (0, 0, 0), name="above"), _camera((0.0, -2.0, -1.0), (0, 0, 0), name="below")]
    )
    normals = facing_normals(g, cameras)
    assert float(normals[0, 0, 2]) > 0.99 and float(normals[1, 0, 2]) < -0.99


class TestPruningRules:
    def test_floating_needs_two_views_that_see_through_the_point(self):
        cameras = Camera.cat(
            [_camera((0.0, -3.0, 1.0), (0, 0, 1.0), name="a"), _camera((0.3, -3.0, 1.0), (0, 0, 1.0), name="b")]
        )
        depths = [torch.full((48, 64), 3.0), torch.full((48, 64), 3.0)]  # both see a wall 3 m away
        points = torch.tensor([[0.0, -1.5, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)  # in front, on it
        assert floating(points, cameras, depths, 0.05, min_votes=2).tolist() == [True, False]
        assert floating(points, cameras, [depths[0], torch.zeros(48, 64)], 0.05, min_votes=2).tolist() == [False, False]

    def test_views_seeing_skips_views_where_the_point_is_hidden(self):
        cameras = Camera.cat(
            [_camera((0.0, -3.0, 1.0), (0, 0, 1.0), name="a"), _camera((0.0, 3.0, 1.0), (0, 0, 1.0), name="b")]
        )
        depths = torch.stack([torch.full((48, 64), 1.0), torch.zeros(48, 64)])  # a: a surface 1 m in front
        assert views_seeing(torch.tensor([[0.0, 0.0, 1.0]]), cameras, depths, 0.05).tolist() == [1]

    def test_a_floor_carried_past_its_edge_in_the_voids_colour_is_explained_by_the_environment(self):
        environment = torch.tensor([0.06, 0.06, 0.07])
        spacing = 0.05
        xs = torch.arange(spacing / 2, 1.5, spacing)  # the floor is [0, 1) x [0, 1); beyond x = 1, the void
        points = torch.cat(
            [torch.stack(torch.meshgrid(xs, xs[:20], indexing="ij"), -1).reshape(-1, 2), torch.zeros(len(xs) * 20, 1)],
            1,
        )
        past_edge = points[:, 0] > 1.0
        dark_line = (points[:, 0] - 0.525).abs() < 0.01  # a dark line across the floor, one surfel wide
        colours = torch.where((past_edge | dark_line)[:, None], environment, torch.tensor([0.6, 0.5, 0.4]))
        fitted = surfel_gaussians(
            points, colours, torch.tensor([[0.0, 0.0, 1.0]]).expand(len(points), 3), spacing, 1e-3, 0, opacity=0.9
        )
        cameras = [  # eye level, from the floor's closed sides
            _camera((0.5, -2.0, 1.2), (0.5, 0.5, 0.0), size=(96, 64), name="front"),
            _camera((-1.5, 0.5, 1.2), (0.5, 0.5, 0.0), size=(96, 64), name="side"),
        ]
        truth = select_gaussians(fitted, ~past_edge)
        images = [rasterize(truth, c, background=environment).rgb[0] for c in cameras]
        void = explained_by_environment(fitted, cameras, images, [None, None], environment, tolerance=0.03)
        assert bool(void[points[:, 0] > 1.1].all()), "beyond the edge, nothing behind it: the void explains it"
        assert not bool(void[~past_edge].any()), "the floor is kept, its dark line too (the views see it there)"
        assert not bool(explained_by_environment(fitted, cameras, images, [None, None], environment + 0.1, 0.03).any())


def test_plane_fill_covers_the_floors_unseen_gaps_and_nothing_outside():
    xs, ys = np.meshgrid(np.arange(-1, 1.001, 0.05), np.arange(-1, 1.001, 0.05))
    floor = np.column_stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)])
    hole = (np.abs(floor[:, 0]) < 0.3) & (np.abs(floor[:, 1]) < 0.3)
    seen = torch.from_numpy(floor[~hole]).float()
    colors = torch.where(seen[:, :1] < 0, torch.tensor([[1.0, 0, 0]]), torch.tensor([[0.0, 0, 1.0]]))
    points, fill = plane_fill(seen, colors, Plane((0.0, 0.0, 1.0), 0.0, "floor"), 0.1)
    assert len(points) > 0 and float(points[:, 2].abs().max()) == 0
    assert float(points[:, :2].abs().max()) < 0.4, "only the hole is filled"
    inside = ((points[:, 0].abs() < 0.3) & (points[:, 1].abs() < 0.3)).float().mean()
    assert float(inside) == 1.0
    left = points[:, 0] < -0.1
    assert float(fill[left, 0].min()) > 0.5, "colours come from the nearest seen floor"


def test_plane_fill_covers_a_walls_hole_on_the_wall():
    """A wall x + y = 2 (tilted 45 degrees about z), seen everywhere but behind where an actor stood."""
    normal = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    along = np.array([-1.0, 1.0, 0.0]) / np.sqrt(2)
    us, zs = np.meshgrid(np.arange(-1.5, 1.501, 0.05), np.arange(0.0, 2.001, 0.05))
    wall = np.sqrt(2) * normal + us.reshape(-1, 1) * along + np.outer(zs.ravel(), [0.0, 0.0, 1.0])
    hole = (np.abs(us.ravel()) < 0.3) & (zs.ravel() > 0.5) & (zs.ravel() < 1.5)
    seen = torch.from_numpy(wall[~hole]).float()
    colors = torch.where(seen[:, 2:] > 1.0, torch.tensor([[1.0, 0, 0]]), torch.tensor([[0.0, 0, 1.0]]))
    points, fill = plane_fill(seen, colors, Plane(tuple(normal.tolist()), float(np.sqrt(2)), "wall_1"), 0.1)
    assert len(points) > 0
    np.testing.assert_allclose(points.double().numpy() @ normal, np.sqrt(2), atol=1e-5)  # on the wall
    u, z = points.double().numpy() @ along, points[:, 2].double().numpy()
    assert float(np.abs(u).max()) < 0.35 and z.min() > 0.45 and z.max() < 1.55, "only the hole is filled"
    covered = torch.cdist(torch.from_numpy(wall[hole]).float(), torch.cat([seen, points])).min(1).values
    assert float(covered.max()) <= 0.1 + 1e-5, "every point of the hole has a point within one cell"
    assert float(fill[z < 0.9, 2].min()) > 0.5 and float(fill[z > 1.1, 0].min()) > 0.5, "colours of the nearest wall"


def test_plane_fill_of_points_on_a_line_is_empty():
    line = torch.tensor([[x, 0.0, 0.0] for x in np.arange(0, 1, 0.1)]).float()
    points, fill = plane_fill(line, torch.ones(len(line), 3), Plane((0.0, 0.0, 1.0), 0.0, "floor"), 0.05)
    assert points.shape == (0, 3) and fill.shape == (0, 3)


def _texture(xy: torch.Tensor) -> torch.Tensor:
    x, y = xy[..., 0], xy[..., 1]
    return (
        torch.stack(
            [
                0.5 + 0.3 * torch.sin(6.0 * x) * torch.cos(4.0 * y),
                0.5 + 0.3 * torch.sin(9.0 * y + 2 * x),
                0.5 + 0.3 * torch.cos(7.0 * x - 5.0 * y),
            ],
            -1,
        )
        .clamp(0, 1)
        .float()
    )


def _floor_image(camera: Camera) -> torch.Tensor:
    """[H, W, 3] the textured floor z = 0 (within |x|, |y| < 2 m) seen by a camera, black elsewhere."""
    w, h = int(camera.width[0]), int(camera.height[0])
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    directions = camera.pixel_directions(torch.stack([cols, rows], -1).reshape(1, -1, 2))[0]
    depth = -camera.centers[0, 2] / directions[:, 2]
    hit = camera.centers[0] + depth[:, None] * directions
    on = (depth > 0) & (hit[:, :2].abs() < 2.0).all(-1)
    return torch.where(on[:, None], _texture(hit[:, :2]), torch.zeros(1, 3)).reshape(h, w, 3)


def test_a_floor_seen_only_at_grazing_angles_renders_right_from_above():
    """Eight cameras 0.6 m above a textured floor, 3 m from its middle (rays meet it at about 11 degrees).
    Fitted from dense stereo surfels with the floor prior and view-independent colour, the floor seen
    straight down is a solid, flat floor with its texture; the plain 3DGS recipe (random start in the
    box, SH 3) leaves it see-through and smeared."""
    eyes = [(3.0 * math.cos(a), 3.0 * math.sin(a), 0.6) for a in np.linspace(0, 2 * math.pi, 8, endpoint=False)]
    cameras = [_camera(e, (0.0, 0.0, 0.0), size=(96, 64), focal=70.0, name=f"c{i}") for i, e in enumerate(eyes)]
    views = [TrainingView(c, _floor_image(c)) for c in cameras]
    above = _camera((0.0, 0.0, 3.0), None, size=(64, 64), focal=80.0, name="above")  # the middle 2.4 m
    truth = _floor_image(above)

    stereo = [StereoView(v.camera, v.image) for v in views]
    fused = fuse_depths(stereo, stereo_depths(stereo, (-2.5, -2.5, -0.05), (2.5, 2.5, 1.0)))
    dense = voxel_downsampled(fused.points, 0.04)
    config = TrainConfig(
        iterations=300,
        views_per_step=2,
        sh_degree=0,
        refine_start=100,
        refine_stop=250,
        refine_every=50,
        reset_every=10_000,
        thickness=1e-3,
        min_surfel_scale=0.01,
        plane_weight=1.0,
        elongation_weight=0.1,
    )
    surfels = train_splats(
        views, surfel_gaussians(dense.points, dense.colors, dense.normals, 0.02, 1e-3, 0), config, planes=[FLOOR]
    ).gaussians

    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-2, 2, (3000, 2)), rng.uniform(0, 1.0, 3000)])
    plain = train_splats(
        views,
        initial_gaussians(points, np.full((3000, 3), 0.5), sh_degree=3),
        TrainConfig(
            iterations=300,
            views_per_step=2,
            sh_degree_interval=75,
            refine_start=100,
            refine_stop=250,
            refine_every=50,
            reset_every=10_000,
        ),
    ).gaussians
    with torch.no_grad():
        renders = {name: rasterize(g, above) for name, g in (("surfels", surfels), ("plain", plain))}
        seen = min(psnr(rasterize(surfels, v.camera).rgb[0], v.image) for v in views)
    scores = {name: psnr(r.rgb[0], truth) for name, r in renders.items()}
    assert seen > 19, seen
    assert scores["surfels"] > scores["plain"] + 2.5, scores
    coverage = {name: float(r.alpha.mean()) for name, r in renders.items()}
    assert coverage["surfels"] > 0.9 and coverage["surfels"] > coverage["plain"] + 0.05, coverage
    on_floor = (surfels.means[:, 2].abs() < 0.02).float()
    assert float((on_floor * surfels.opacities).sum() / surfels.opacities.sum()) > 0.9, "the surfels lie on the floor"
