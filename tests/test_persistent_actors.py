"""Persistent actors: one set of Gaussians per character through the take, moved frame by frame
(D3DGS's rigidity, rotation and isometry losses), appearance shared, ghosts of the hull pruned."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.geometry.splats.actors import ActorView, merge_gaussians
from reshoot.geometry.splats.gaussians import Gaussians, select_gaussians
from reshoot.geometry.splats.persistent import (
    CharacterStart,
    FrameViews,
    PersistentConfig,
    _body_loss,
    _Fit,
    _frame_loss,
    _Neighbours,
    cropped,
    fit_persistent_actors,
    rigidity_losses,
)
from reshoot.geometry.splats.render import rasterize
from reshoot.geometry.splats.sh import rgb_to_sh_dc
from reshoot.geometry.splats.train import psnr

SIZE = (64, 48)
STEP = torch.tensor([0.08, 0.03, 0.0])  # metres per frame


def _camera(eye, target, name: str) -> Camera:
    K = torch.tensor([[70.0, 0, (SIZE[0] - 1) / 2], [0, 70.0, (SIZE[1] - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    return Camera.create([name], K[None], look_at(eye, target)[None].numpy(), [SIZE[0]], [SIZE[1]])


def _box(seed: int = 0) -> Gaussians:
    """A textured box (0.4 x 0.3 x 0.6 m) standing on the floor at the origin: Gaussians on its surface."""
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor([0.4, 0.3, 0.6])
    points = (torch.rand(900, 3, generator=g) - 0.5) * size
    face = torch.randint(0, 3, (900,), generator=g)
    side = torch.where(torch.rand(900, generator=g) < 0.5, -0.5, 0.5)
    points[torch.arange(900), face] = side * size[face]
    points[:, 2] += 0.3
    colors = torch.stack(
        [
            0.5 + 0.4 * torch.sin(19 * points[:, 0] + 7 * points[:, 2]),
            0.5 + 0.4 * torch.sin(23 * points[:, 1] - 11 * points[:, 2]),
            0.5 + 0.4 * torch.cos(17 * points[:, 2]),
        ],
        -1,
    )
    sh = rgb_to_sh_dc(colors)[:, None]
    return Gaussians(
        points,
        torch.tensor([[1.0, 0, 0, 0]]).repeat(900, 1),
        torch.full((900, 3), math.log(0.025)),
        torch.full((900,), 4.0),
        torch.cat([sh, torch.zeros(900, 3, 3)], 1),
    )


def _moved(g: Gaussians, shift: torch.Tensor) -> Gaussians:
    return Gaussians(g.means + shift, g.quats_wxyz, g.log_scales, g.logit_opacities, g.sh)


def _frames(truth: Gaussians, cameras: list[Camera], count: int, without: tuple[int, ...] = ()) -> list[FrameViews]:
    frames = []
    for t in range(count):
        views, masks = [], []
        if t not in without:
            for camera in cameras:
                with torch.no_grad():
                    out = rasterize(_moved(truth, t * STEP), camera)
                blank = torch.zeros(SIZE[1], SIZE[0])
                views.append(ActorView(camera, out.rgb[0], torch.zeros(SIZE[1], SIZE[0], 3), blank, blank))
                masks.append(out.alpha[0] > 0.5)
        frames.append(FrameViews(t, views, masks))
    return frames


def _rig() -> tuple[list[Camera], Camera]:
    target = (0.2, 0.1, 0.3)
    eyes = [(2.2, -0.6, 1.2), (-1.8, -1.2, 1.1), (0.4, 2.3, 1.3), (-0.9, 1.8, 0.9)]
    return [_camera(e, target, f"c{i}") for i, e in enumerate(eyes)], _camera((0.5, -0.4, 2.6), target, "above")


def test_rigid_motion_costs_nothing_and_deformation_does():
    g = torch.Generator().manual_seed(1)
    means = torch.randn(60, 3, generator=g) * 0.1
    quats = torch.nn.functional.normalize(torch.randn(60, 4, generator=g), dim=-1)
    neighbours = _Neighbours(means, torch.zeros(60, dtype=torch.long), k=6)
    turn = torch.tensor([math.cos(0.2), 0.0, 0.0, math.sin(0.2)])  # 0.4 rad about z
    rotation = torch.tensor([[math.cos(0.4), -math.sin(0.4), 0], [math.sin(0.4), math.cos(0.4), 0], [0, 0, 1.0]])
    from reshoot.geometry.splats.persistent import _quat_multiply

    moved_means = means @ rotation.T + torch.tensor([0.3, -0.1, 0.05])
    moved_quats = _quat_multiply(turn.expand(60, 4), quats)
    members = torch.arange(60)
    rigid = rigidity_losses(moved_means, moved_quats, means, quats, neighbours, members)
    assert all(float(x) < 1e-5 for x in rigid), rigid
    bent = moved_means + torch.randn(60, 3, generator=g) * 0.02
    deformed = rigidity_losses(bent, moved_quats, means, quats, neighbours, members)
    assert float(deformed[0]) > 0.005 and float(deformed[2]) > 0.005, deformed


def test_a_rigidly_moving_box_keeps_its_shape_where_a_frame_has_no_views():
    """Frame 3's cameras are all removed: the box there comes from the frames around it, carried along
    its track, and still renders right from a camera no frame was fitted to."""
    cameras, above = _rig()
    truth = _box()
    frames = _frames(truth, cameras, 6, without=(3,))
    noisy = torch.randn(900, 3, generator=torch.Generator().manual_seed(2)) * 0.01
    start = Gaussians(
        truth.means + noisy,
        truth.quats_wxyz,
        truth.log_scales,
        torch.full((900,), 1.0),
        torch.cat([torch.zeros(900, 1, 3), torch.zeros(900, 3, 3)], 1),
    )
    floor = np.stack([(t * STEP[:2]).numpy() for t in range(6)])
    config = PersistentConfig(start_iterations=150, track_iterations=25, refine_iterations=120)
    actors = fit_persistent_actors(frames, [CharacterStart(0, floor, start)], config)
    with torch.no_grad():
        seen = psnr(rasterize(actors.at(3), above).rgb[0], rasterize(_moved(truth, 3 * STEP), above).rgb[0])
    assert seen > 22, seen
    kept = actors.alive[3] & actors.alive[0]
    distances = lambda m: torch.cdist(m[kept][::10], m[kept][::10])  # noqa: E731
    change = (distances(actors.means[3]) - distances(actors.means[0])).abs()
    assert float(change.median()) < 0.01, "the box keeps its shape"
    centre_error = (actors.means[3][kept].mean(0) - actors.means[0][kept].mean(0) - 3 * STEP).norm()
    assert float(centre_error) < 0.03, centre_error


def test_ghosts_of_the_hull_are_pruned():
    """Gaussians added beside the box, where every camera sees background in some frame, are ghosts."""
    cameras, _ = _rig()
    truth = _box()
    frames = _frames(truth, cameras, 4)
    ghost = Gaussians(
        torch.tensor([[0.0, 0.0, 1.2]]).repeat(40, 1) + torch.randn(40, 3) * 0.03,
        torch.tensor([[1.0, 0, 0, 0]]).repeat(40, 1),
        torch.full((40, 3), math.log(0.025)),
        torch.full((40,), 1.0),
        torch.zeros(40, 4, 3),
    )
    start = Gaussians(
        torch.cat([truth.means, ghost.means]),
        torch.cat([truth.quats_wxyz, ghost.quats_wxyz]),
        torch.cat([truth.log_scales, ghost.log_scales]),
        torch.cat([truth.logit_opacities, ghost.logit_opacities]),
        torch.cat([truth.sh, ghost.sh]),
    )
    floor = np.stack([(t * STEP[:2]).numpy() for t in range(4)])
    actors = fit_persistent_actors(
        frames,
        [CharacterStart(0, floor, start)],
        PersistentConfig(start_iterations=30, track_iterations=10, refine_iterations=20),
    )
    assert actors.pruned["ghost"] >= 30, actors.pruned
    assert float(actors.means[0][:, 2].max()) < 0.75, "nothing is left floating over the box"


@pytest.mark.parametrize("cull_views", [0, 1])
def test_gaussians_that_a_frames_views_see_through_are_hidden_in_that_frame(cull_views: int):
    """The box's top half is gone in frame 2 (its views show the bottom half alone): with cull_views=1
    the top's Gaussians are hidden in frame 2 and kept in the frames that show them; with 0 they stay
    (too few of their views over the take see through them for the ghost rule)."""
    cameras, _ = _rig()
    truth = _box()
    frames = _frames(truth, cameras, 4)
    frames[2] = _frames(select_gaussians(truth, truth.means[:, 2] < 0.3), cameras, 3)[2]
    floor = np.stack([(t * STEP[:2]).numpy() for t in range(4)])
    actors = fit_persistent_actors(
        frames,
        [CharacterStart(0, floor, truth)],
        PersistentConfig(start_iterations=30, track_iterations=10, refine_iterations=20, cull_views=cull_views),
    )
    top = actors.means[0][:, 2] > 0.45
    assert int(top.sum()) > 100 and actors.pruned["ghost"] < 20, actors.pruned
    assert int((actors.alive[1] & top).sum()) >= 0.9 * int(top.sum()), "frame 1 shows the top: kept"
    hidden_in_2 = int((~actors.alive[2] & top).sum())
    if cull_views:
        assert hidden_in_2 >= 0.9 * int(top.sum()), (hidden_in_2, int(top.sum()))
        assert actors.pruned["culled_frames"] >= hidden_in_2
    else:
        assert hidden_in_2 == 0 and "culled_frames" not in actors.pruned


class TestCroppedFrame:
    """`cropped` cuts each view to a window around its foreground, one window size per image size, so
    that `_frame_loss` renders the views in one batched call; the loss stays the mean over views of
    each view's own loss."""

    def _frame(self) -> FrameViews:
        cameras, _ = _rig()
        frame = _frames(_box(), cameras, 1)[0]
        masks = list(frame.foreground)
        masks[1] = torch.zeros_like(masks[1])  # a view without foreground keeps its whole picture
        return FrameViews(frame.frame, frame.views, masks)

    def test_windows_share_a_size_and_hold_each_foreground(self):
        frame = self._frame()
        cut = cropped(frame, margin=3)
        sizes = {tuple(v.image.shape[:2]) for i, v in enumerate(cut.views) if i != 1}
        assert len(sizes) == 1 and sizes != {(SIZE[1], SIZE[0])}
        assert tuple(cut.views[1].image.shape[:2]) == (SIZE[1], SIZE[0])
        for full, part, view in zip(frame.foreground, cut.foreground, cut.views):
            assert int(part.sum()) == int(full.sum())  # no foreground pixel is cut off
            assert view.camera.width[0] == part.shape[1] and view.camera.height[0] == part.shape[0]
        # the cropped camera sees a point where the full one does, shifted by the window's corner
        point = torch.tensor([[0.2, 0.1, 0.3]], dtype=torch.float64)
        for full, part in zip(frame.views, cut.views):
            a, b = full.camera.project(point).pixels[0, 0], part.camera.project(point).pixels[0, 0]
            offset = a - b
            assert torch.allclose(offset, offset.round(), atol=1e-9)

    def test_batched_loss_is_the_mean_of_the_views_losses(self):
        cut = cropped(self._frame(), margin=3)
        gaussians = _moved(_box(seed=1), torch.tensor([0.02, -0.01, 0.0]))
        config = PersistentConfig(ssim_weight=0.2)
        loss, composites = _frame_loss(gaussians, cut, config)
        singles = [
            _frame_loss(gaussians, FrameViews(cut.frame, [view], [mask]), config)
            for view, mask in zip(cut.views, cut.foreground)
        ]
        opacity = config.opacity_weight * gaussians.opacities.mean()
        expected = sum(single[0] - opacity for single in singles) / len(singles) + opacity
        assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-7)
        for composite, single in zip(composites, singles):
            assert torch.allclose(composite, single[1][0], atol=1e-6)


class TestBodyAboutItsTrack:
    """A character is a body about its track's vertical axis: what lies farther than `body_radius` is
    dropped at the start, pulled back by the body loss while fitting, and pruned if it stays out."""

    def test_a_start_keeps_what_lies_within_the_radius(self):
        box = _box()
        floor = np.array([[0.1, 0.0], [0.2, 0.0]])
        aside = _moved(box, torch.tensor([0.9, 0.0, 0.0]))  # its centre 0.8 m from the axis at (0.1, 0)
        start = CharacterStart(0, floor, merge_gaussians([box, aside])).within(0.45)
        assert len(start.gaussians) == len(box)
        assert torch.equal(start.gaussians.means, box.means)

    def test_the_body_loss_pulls_only_what_lies_beyond_the_radius_towards_the_axis(self):
        means = torch.tensor([[0.1, 0.0, 1.0], [0.0, 0.3, 0.5], [1.0, 0.0, 0.2], [0.0, -0.7, 1.4]])
        start = Gaussians(
            means,
            torch.tensor([[1.0, 0, 0, 0]]).repeat(4, 1),
            torch.full((4, 3), -3.0),
            torch.zeros(4),
            torch.zeros(4, 4, 3),
        )
        config = PersistentConfig(body_radius=0.5)
        fit = _Fit([CharacterStart(0, np.zeros((2, 2)), start)], 2, config)
        loss = _body_loss(fit, 1, config)
        assert loss.item() == pytest.approx((0.5 + 0.2) / 4)
        loss.backward()
        grad = fit.means[1].grad
        assert torch.equal(grad[:2], torch.zeros(2, 3)), "what lies within the radius is left alone"
        assert float(grad[2, 0]) > 0 and float(grad[3, 1]) < 0, "descent moves the others towards the axis"
        assert torch.equal(grad[:, 2], torch.zeros(4)), "heights are free"

    def test_a_ghost_beside_the_body_is_gone_and_nothing_strays_from_the_track(self):
        """Gaussians 0.8 m beside a walking box start with it; none is left beyond the radius in any
        frame, and the box still renders right from above."""
        cameras, above = _rig()
        truth = _box()
        frames = _frames(truth, cameras, 4)
        aside = _moved(truth, torch.tensor([0.8, 0.0, 0.0]))
        start = merge_gaussians([truth, aside])
        floor = np.stack([(t * STEP[:2]).numpy() for t in range(4)])
        config = PersistentConfig(start_iterations=30, track_iterations=10, refine_iterations=20, body_radius=0.45)
        actors = fit_persistent_actors(frames, [CharacterStart(0, floor, start)], config)
        assert actors.pruned["off_body"] >= len(aside), actors.pruned
        for t in range(4):
            off_axis = (actors.at(t).means[:, :2] - torch.as_tensor(floor[t], dtype=torch.float32)).norm(dim=-1)
            assert float(off_axis.max()) <= 0.45 + 0.05, (t, float(off_axis.max()))
        with torch.no_grad():
            seen = psnr(rasterize(actors.at(2), above).rgb[0], rasterize(_moved(truth, 2 * STEP), above).rgb[0])
        assert seen > 20, seen
