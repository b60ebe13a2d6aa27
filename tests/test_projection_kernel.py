"""The fused CPU projection (C++ kernel) against its pure-torch twin, `projection.project_gaussians`.

Scenes mix Gaussians in view, partly off-screen (clamped Jacobian), behind the near plane and far off
screen (culled), with random rotations and anisotropic scales, seen by several cameras. Kernel tests skip
(with the reason) when the kernel is not built.
"""

from __future__ import annotations

import pytest
import torch

from reshoot.geometry.conventions import look_at
from reshoot.geometry.splats import projection_cpu
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.projection import project_gaussians
from reshoot.geometry.splats.projection_cpu import _ProjectGaussians, project_gaussians_cpu
from reshoot.geometry.splats.rasterize_cpu import cpu_kernel_available

needs_kernel = pytest.mark.skipif(
    not cpu_kernel_available(), reason="C++ kernels not built (python -m reshoot.geometry.splats.build)"
)
WIDTH, HEIGHT = 96, 64
SETTINGS = (WIDTH, HEIGHT, 0.01, 0.3)  # width, height, near plane, eps2d (the twin's defaults)


def cameras(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Three cameras around the origin: viewmats [3, 4, 4], Ks [3, 3, 3]."""
    eyes = [(4.0, 0.0, 1.0), (0.0, 3.0, 2.0), (1.0, 1.0, 0.5)]
    viewmats = torch.stack([look_at(eye, (0.0, 0.0, 0.0)) for eye in eyes]).to(dtype)
    K = torch.tensor([[100.0, 0, 47.5], [0, 100.0, 31.5], [0, 0, 1]], dtype=dtype)
    return viewmats, K.expand(3, 3, 3).contiguous()


def scene(n: int = 400, dtype=torch.float64, seed: int = 0, spread: float = 1.5) -> Gaussians:
    """Random Gaussians; with spread 1.5 some fall behind a camera or off its screen."""
    g = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=g, dtype=dtype) * spread,
        quats_wxyz=torch.randn(n, 4, generator=g, dtype=dtype) * 3,  # any norm
        log_scales=torch.randn(n, 3, generator=g, dtype=dtype) * 0.5 - 2,
        logit_opacities=torch.zeros(n, dtype=dtype),
        sh=torch.zeros(n, 1, 3, dtype=dtype),
    )


def with_leaves(g: Gaussians) -> tuple[Gaussians, list[torch.Tensor]]:
    leaves = [t.clone().requires_grad_(True) for t in (g.means, g.quats_wxyz, g.log_scales)]
    return Gaussians(*leaves, g.logit_opacities, g.sh), leaves


def loss_of(projected, weights) -> torch.Tensor:
    return sum((getattr(projected, name) * w).sum() for name, w in weights.items())


def random_weights(n: int, dtype, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "means2d": torch.randn(3, n, 2, generator=g, dtype=dtype),
        "conics": torch.randn(3, n, 3, generator=g, dtype=dtype),
        "depths": torch.randn(3, n, generator=g, dtype=dtype),
    }


@needs_kernel
class TestProjectGaussiansCpu:
    def test_matches_the_twin_float64(self):
        viewmats, Ks = cameras()
        gaussians, leaves = with_leaves(scene())
        twin_g, twin_leaves = with_leaves(scene())
        ours = project_gaussians_cpu(gaussians, viewmats, Ks, WIDTH, HEIGHT)
        twin = project_gaussians(twin_g.means, twin_g.covariances(), viewmats, Ks, WIDTH, HEIGHT)
        drawn = twin.radii > 0
        # the scene has every case: drawn, culled behind, culled off screen, drawn with a clamped Jacobian
        assert 0.2 < drawn.float().mean() < 0.9
        assert torch.equal(ours.radii, twin.radii)
        for name in ("means2d", "conics", "depths"):
            assert torch.allclose(getattr(ours, name), getattr(twin, name), rtol=1e-10, atol=1e-10), name
        weights = random_weights(len(scene()), torch.float64)
        loss_of(ours, weights).backward()
        loss_of(twin, weights).backward()
        for name, a, b in zip(("means", "quats", "log_scales"), leaves, twin_leaves):
            assert torch.allclose(a.grad, b.grad, rtol=1e-9, atol=1e-9), name
            assert a.grad.abs().max() > 0, name

    def test_matches_the_twin_float32(self):
        viewmats, Ks = cameras(torch.float32)
        gaussians, leaves = with_leaves(scene(dtype=torch.float32))
        twin_g, twin_leaves = with_leaves(scene(dtype=torch.float32))
        ours = project_gaussians_cpu(gaussians, viewmats, Ks, WIDTH, HEIGHT)
        twin = project_gaussians(twin_g.means, twin_g.covariances(), viewmats, Ks, WIDTH, HEIGHT)
        # a radius is a ceil: a rounding on the other side of an integer moves it by one pixel
        assert (ours.radii - twin.radii).abs().max() <= 1 and (ours.radii != twin.radii).float().mean() < 0.01
        drawn = (ours.radii > 0) & (twin.radii > 0)
        for name in ("means2d", "conics", "depths"):
            assert torch.allclose(getattr(ours, name)[drawn], getattr(twin, name)[drawn], rtol=1e-4, atol=1e-4), name
        weights = random_weights(len(scene()), torch.float32)
        loss_of(ours, weights).backward()
        loss_of(twin, weights).backward()
        for name, a, b in zip(("means", "quats", "log_scales"), leaves, twin_leaves):
            assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-3 * float(b.grad.abs().max())), name

    def test_gradcheck_float64(self):
        viewmats, Ks = cameras()
        g = scene(n=12, spread=0.4, seed=2)  # all in front of every camera and on screen
        args = [t.clone().requires_grad_(True) for t in (g.means, g.quats_wxyz, g.log_scales)]
        radii = _ProjectGaussians.apply(*args, viewmats, Ks, SETTINGS)[3]
        assert bool((radii > 0).all())

        def fn(means, quats, log_scales):
            return _ProjectGaussians.apply(means, quats, log_scales, viewmats, Ks, SETTINGS)[:3]

        assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6)

    def test_a_culled_gaussian_gets_no_gradient_from_that_camera(self):
        viewmats, Ks = cameras()
        # in front of camera 0 only (behind cameras 1 and 2), and a second one far off every screen
        g = scene(n=2, seed=3)
        means = torch.tensor([[1.0, 0.2, 0.3], [0.0, 0.0, 80.0]], dtype=torch.float64)
        for project in (
            lambda gs: project_gaussians_cpu(gs, viewmats, Ks, WIDTH, HEIGHT),
            lambda gs: project_gaussians(gs.means, gs.covariances(), viewmats, Ks, WIDTH, HEIGHT),
        ):
            gaussians, leaves = with_leaves(Gaussians(means, g.quats_wxyz, g.log_scales, g.logit_opacities, g.sh))
            out = project(gaussians)
            assert out.radii[:, 1].eq(0).all() and out.radii[0, 0] > 0
            culled = out.radii == 0
            loss = (out.means2d * culled[..., None]).sum() + (out.conics * culled[..., None]).sum()
            loss = loss + (out.depths * culled).sum()
            loss.backward()
            assert all(leaf.grad.abs().max() == 0 for leaf in leaves)

    def test_is_deterministic(self):
        viewmats, Ks = cameras(torch.float32)
        runs = []
        for _ in range(2):
            gaussians, leaves = with_leaves(scene(n=5000, dtype=torch.float32))
            out = project_gaussians_cpu(gaussians, viewmats, Ks, WIDTH, HEIGHT)
            loss_of(out, random_weights(5000, torch.float32)).backward()
            runs.append([out.means2d, out.conics, *[leaf.grad for leaf in leaves]])
        assert all(torch.equal(a, b) for a, b in zip(*runs))

    def test_bad_shapes_are_rejected(self):
        viewmats, Ks = cameras()
        g = scene(n=5)
        module = projection_cpu.extension()
        with pytest.raises(RuntimeError, match="quats must be"):
            module.project_forward(g.means, g.quats_wxyz[:3], g.log_scales, viewmats, Ks, *SETTINGS)
        with pytest.raises(RuntimeError, match="one float dtype"):
            module.project_forward(g.means, g.quats_wxyz.float(), g.log_scales, viewmats, Ks, *SETTINGS)
        with pytest.raises(RuntimeError, match="Ks must be"):
            module.project_forward(g.means, g.quats_wxyz, g.log_scales, viewmats, Ks[:2], *SETTINGS)


def test_falls_back_to_the_twin_without_the_kernel(monkeypatch):
    monkeypatch.setattr(projection_cpu, "extension", lambda: None)
    viewmats, Ks = cameras()
    g = scene(n=50)
    ours = project_gaussians_cpu(g, viewmats, Ks, WIDTH, HEIGHT)
    twin = project_gaussians(g.means, g.covariances(), viewmats, Ks, WIDTH, HEIGHT)
    assert torch.equal(ours.means2d, twin.means2d) and torch.equal(ours.radii, twin.radii)
