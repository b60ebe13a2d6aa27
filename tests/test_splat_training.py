"""Fitting splats: the 3DGS recipe recovers a scene from its renders, with densification on CPU."""

from __future__ import annotations

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.render import rasterize
from reshoot.geometry.splats.train import TrainConfig, TrainingView, initial_gaussians, psnr, train_splats


def _cameras(n: int, size=(64, 48)) -> Camera:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eyes = [(2.5 * np.cos(a), 2.5 * np.sin(a), 1.2) for a in angles]
    K = torch.tensor([[70.0, 0, (size[0] - 1) / 2], [0, 70.0, (size[1] - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    return Camera.create(
        [f"c{i}" for i in range(n)],
        K.expand(n, 3, 3),
        np.stack([look_at(e, (0, 0, 0.3)).numpy() for e in eyes]),
        [size[0]] * n,
        [size[1]] * n,
    )


def _truth(seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    n = 150
    sh = torch.zeros(n, 1, 3)
    sh[:, 0] = (torch.rand(n, 3, generator=g) - 0.5) / 0.282
    return Gaussians(
        (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([1.2, 1.2, 0.8]) + torch.tensor([0, 0, 0.3]),
        torch.randn(n, 4, generator=g),
        torch.log(torch.rand(n, 3, generator=g) * 0.08 + 0.03),
        torch.full((n,), 2.0),
        sh,
    )


def test_fitting_recovers_a_scene_from_its_renders():
    """12 cameras on a circle, 9 to train on, every 4th held out: the fit must generalize."""
    cameras = _cameras(12)
    truth = _truth()
    with torch.no_grad():
        images = rasterize(truth, cameras, background=torch.zeros(3)).rgb
    held = [3, 7, 11]
    train = [TrainingView(cameras.select(i), images[i]) for i in range(12) if i not in held]

    rng = np.random.default_rng(1)
    points = truth.means.numpy() + rng.normal(0, 0.05, (150, 3))
    init = initial_gaussians(points, np.full((150, 3), 0.5), sh_degree=1)
    with torch.no_grad():
        before = [psnr(rasterize(init, cameras.select(i)).rgb[0], images[i]) for i in held]
    config = TrainConfig(
        iterations=400,
        views_per_step=2,
        sh_degree=1,
        sh_degree_interval=200,
        refine_start=100,
        refine_every=50,
        reset_every=10_000,
        lr_means=1.6e-3,
    )
    result = train_splats(train, init, config, log_every=100)
    with torch.no_grad():
        after = [psnr(rasterize(result.gaussians, cameras.select(i)).rgb[0], images[i]) for i in held]
    assert result.log[-1]["psnr"] > 28, result.log
    assert min(after) > 24 and min(a - b for a, b in zip(after, before)) > 6, (before, after)
    assert len(result.gaussians) > 150, "densification grew the splats"


def test_masked_pixels_do_not_count():
    cameras = _cameras(2)
    truth = _truth(seed=2)
    with torch.no_grad():
        images = rasterize(truth, cameras).rgb.clone()
    images[:, :, :32] = torch.tensor([1.0, 0.0, 1.0])  # a magenta "actor" over the left half
    mask = torch.ones(48, 64)
    mask[:, :32] = 0
    init = initial_gaussians(truth.means.numpy(), np.full((150, 3), 0.5), sh_degree=0)
    config = TrainConfig(iterations=150, views_per_step=2, sh_degree=0, densify=False)
    views = [TrainingView(cameras.select(i), images[i], mask) for i in range(2)]
    fitted = train_splats(views, init, config).gaussians
    with torch.no_grad():
        render = rasterize(fitted, cameras).rgb
    magenta = (render[..., 0] > 0.8) & (render[..., 1] < 0.2) & (render[..., 2] > 0.8)
    assert magenta[:, :, :32].float().mean() < 0.01, "the masked actor leaked into the splats"


def test_a_learned_background_explains_the_void_and_no_gaussians_paint_it():
    """The scene stands before a uniform grey void. Fitted on black, Gaussians turn grey to paint the void
    around the scene and a held-out camera sees them as a haze over it; with the background fitted, it comes
    out the void's colour and the held-out render is the better one."""
    void = torch.tensor([0.35, 0.45, 0.55])
    cameras = _cameras(8)
    truth = _truth(seed=4)
    with torch.no_grad():
        images = rasterize(truth, cameras, background=void).rgb
        truth_alpha = rasterize(truth, cameras).alpha
    held = [2, 6]
    train = [TrainingView(cameras.select(i), images[i]) for i in range(8) if i not in held]
    init = initial_gaussians(truth.means.numpy(), np.full((150, 3), 0.5), sh_degree=0)
    results = {}
    for learn in (False, True):
        config = TrainConfig(
            iterations=250,
            views_per_step=2,
            sh_degree=0,
            refine_start=50,
            refine_every=50,
            reset_every=10_000,
            lr_means=1.6e-3,
            learn_background=learn,
        )
        results[learn] = train_splats(train, init, config)
    learned = results[True].background
    assert (learned - void).abs().max() < 0.03, learned
    assert torch.equal(results[False].background, torch.zeros(3)), "a fixed background is returned as configured"
    scores, haze = {}, {}
    with torch.no_grad():
        for learn, result in results.items():
            renders = [rasterize(result.gaussians, cameras.select(i), background=result.background) for i in held]
            scores[learn] = min(psnr(r.rgb[0], images[i]) for r, i in zip(renders, held))
            haze[learn] = max(float(r.alpha[0][truth_alpha[i] < 0.01].mean()) for r, i in zip(renders, held))
    assert scores[True] > scores[False] + 1.0, scores
    assert haze[True] < 0.1 < haze[False], haze


def test_a_fitted_background_pushed_out_of_range_can_come_back():
    """The background is used clamped to [0, 1] but keeps its gradient there: a plain clamp would leave a
    colour that one early step pushed below black stuck at black (it did on caliscope_4cam)."""
    from reshoot.geometry.splats.train import _in_range

    colour = torch.tensor([-0.2, 0.5, 1.3], requires_grad=True)
    used = _in_range(colour)
    assert torch.equal(used.detach(), torch.tensor([0.0, 0.5, 1.0]))
    (used * torch.tensor([-1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(colour.grad, torch.tensor([-1.0, 2.0, 3.0]))


class _Interrupted(Exception):
    pass


def test_a_resumed_fit_ends_exactly_where_an_uninterrupted_one_does(tmp_path):
    import pytest

    from reshoot.geometry.errors import InputError

    cameras = _cameras(4)
    truth = _truth(seed=3)
    with torch.no_grad():
        images = rasterize(truth, cameras).rgb
    views = [TrainingView(cameras.select(i), images[i]) for i in range(4)]
    init = initial_gaussians(truth.means.numpy(), np.full((150, 3), 0.5), sh_degree=1)
    config = TrainConfig(
        iterations=120,
        views_per_step=2,
        sh_degree=1,
        sh_degree_interval=60,
        refine_start=20,
        refine_every=20,
        reset_every=10_000,
        lr_means=1.6e-3,
        seed=5,
        learn_background=True,
    )
    whole = train_splats(views, init, config)

    def stop_at_70(what, done, total):
        if done == 70:
            raise _Interrupted

    checkpoint = tmp_path / "fit.safetensors"
    with pytest.raises(_Interrupted):
        train_splats(views, init, config, progress=stop_at_70, checkpoint=checkpoint, checkpoint_every=30)
    assert checkpoint.is_file()
    resumed = train_splats(views, init, config, checkpoint=checkpoint, checkpoint_every=30)
    assert len(resumed.gaussians) == len(whole.gaussians) > 150, "densification ran and resumed"
    for name in ("means", "log_scales", "logit_opacities", "sh"):
        assert torch.allclose(getattr(resumed.gaussians, name), getattr(whole.gaussians, name), atol=1e-5), name
    assert torch.allclose(resumed.background, whole.background, atol=1e-6), "the fitted background resumed too"
    assert [e["step"] for e in resumed.log] == [e["step"] for e in whole.log]
    with pytest.raises(InputError, match="other training settings"):
        train_splats(views, init, TrainConfig(iterations=130), checkpoint=checkpoint)
