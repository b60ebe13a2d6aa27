"""Moving actors over a frozen set: depth-tested compositing and per-frame fitting."""

from __future__ import annotations

import math

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.geometry.splats.actors import (
    ActorConfig,
    ActorView,
    composite_over_set,
    fit_actors,
    merge_gaussians,
)
from reshoot.geometry.splats.gaussians import Gaussians, select_gaussians
from reshoot.geometry.splats.render import rasterize
from reshoot.geometry.splats.train import psnr


def _cameras(n: int, size=(64, 48)) -> Camera:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eyes = [(2.5 * np.cos(a), 2.5 * np.sin(a), 1.4) for a in angles]
    K = torch.tensor([[60.0, 0, (size[0] - 1) / 2], [0, 60.0, (size[1] - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    return Camera.create(
        [f"c{i}" for i in range(n)],
        K.expand(n, 3, 3),
        np.stack([look_at(e, (0, 0, 0.3)).numpy() for e in eyes]),
        [size[0]] * n,
        [size[1]] * n,
    )


def _gaussians(means: torch.Tensor, rgb: torch.Tensor, scale: float, degree: int = 0) -> Gaussians:
    n = len(means)
    sh = torch.zeros(n, (degree + 1) ** 2, 3)
    sh[:, 0] = (rgb - 0.5) / 0.28209479177387814
    return Gaussians(
        means.float(),
        torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        torch.full((n, 3), math.log(scale)),
        torch.full((n,), 4.0),
        sh,
    )


def _floor() -> Gaussians:
    g = torch.Generator().manual_seed(0)
    xy = torch.stack(torch.meshgrid(torch.linspace(-2, 2, 40), torch.linspace(-2, 2, 40), indexing="ij"), -1).reshape(
        -1, 2
    )
    return _gaussians(torch.cat([xy, torch.zeros(len(xy), 1)], 1), torch.rand(len(xy), 3, generator=g), 0.06, degree=3)


def _actor(offset=(0.0, 0.0)) -> Gaussians:
    g = torch.Generator().manual_seed(1)
    means = torch.randn(80, 3, generator=g) * torch.tensor([0.12, 0.12, 0.3]) + torch.tensor(
        [offset[0], offset[1], 0.6]
    )
    return _gaussians(means, torch.tensor([0.9, 0.2, 0.1]).expand(80, 3) + 0.05 * torch.rand(80, 3, generator=g), 0.06)


def test_compositing_hides_actors_behind_the_set_and_shows_them_in_front():
    ones = torch.ones(1, 1, 2)
    actor_rgb = torch.tensor([1.0, 0.0, 0.0]).expand(1, 1, 2, 3)
    set_rgb = torch.tensor([0.0, 0.0, 1.0]).expand(1, 1, 2, 3)
    actor_depth = torch.tensor([[[1.0, 3.0]]])
    out = composite_over_set(actor_rgb, ones, actor_depth, set_rgb, torch.full((1, 1, 2), 2.0), ones, 0.05)
    assert out[0, 0, 0].tolist() == [1.0, 0.0, 0.0] and out[0, 0, 1].tolist() == [0.0, 0.0, 1.0]
    # Where the set covers nothing the actor is drawn whatever its depth.
    out = composite_over_set(actor_rgb, ones, actor_depth, set_rgb * 0, torch.zeros(1, 1, 2), ones * 0, 0.05)
    assert out[0, 0, 1].tolist() == [1.0, 0.0, 0.0]


def test_fitting_recovers_an_actor_over_the_frozen_set():
    cameras = _cameras(4)
    floor, truth = _floor(), _actor()
    with torch.no_grad():
        frames = rasterize(merge_gaussians([floor, truth]), cameras).rgb  # the joint render, not the shortcut
        backdrop = rasterize(floor, cameras)
    views = [
        ActorView(cameras.select(i), frames[i], backdrop.rgb[i], backdrop.depth[i], backdrop.alpha[i]) for i in range(4)
    ]
    # Start from the right place with the wrong colour, size and opacity, and one metre of clutter.
    g = torch.Generator().manual_seed(2)
    start = _gaussians(truth.means + 0.05 * torch.randn(80, 3, generator=g), torch.full((80, 3), 0.5), 0.03)
    start = Gaussians(start.means, start.quats_wxyz, start.log_scales, torch.zeros(80), start.sh)
    without = [psnr(v.set_rgb, v.image) for v in views]
    fit = fit_actors(views, start, ActorConfig(iterations=250, sh_degree=0))
    assert min(fit.psnr) > 32 and min(a - b for a, b in zip(fit.psnr, without)) > 12, (without, fit.psnr)
    w = fit.gaussians.opacities[:, None]
    centre = (fit.gaussians.means * w).sum(0) / w.sum()
    assert float((centre - truth.means.mean(0)).norm()) < 0.05, "the actor drifted"


def test_selecting_and_merging_keep_parameters_and_pad_sh():
    a, b = _floor(), _actor()
    merged = merge_gaussians([a, b])
    assert merged.sh.shape[1] == 16 and len(merged) == len(a) + len(b)
    assert torch.equal(merged.sh[len(a) :, 1:], torch.zeros(len(b), 15, 3))
    back = select_gaussians(merged, torch.arange(len(merged)) >= len(a))
    assert torch.equal(back.means, b.means) and torch.equal(back.sh[:, :1], b.sh)
