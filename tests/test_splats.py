"""Gaussian splats: SH colours, EWA projection and the render function's backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.projection import project_gaussians
from reshoot.geometry.splats.sh import rgb_to_sh_dc, sh_basis, sh_to_rgb


def _camera(width=64, height=48, eye=(0.0, -3.0, 1.0), target=(0.0, 0.0, 0.5)) -> Camera:
    K = torch.tensor([[60.0, 0, (width - 1) / 2], [0, 60.0, (height - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    return Camera.create(["cam"], K[None], look_at(eye, target)[None], [width], [height])


def _random_gaussians(n: int, seed: int, degree: int = 1, dtype=torch.float32, spread=0.6) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=(torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 2 * spread + torch.tensor([0, 0, 0.5], dtype=dtype),
        quats_wxyz=torch.randn(n, 4, generator=g, dtype=dtype),
        log_scales=torch.log(torch.rand(n, 3, generator=g, dtype=dtype) * 0.08 + 0.02),
        logit_opacities=torch.randn(n, generator=g, dtype=dtype),
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=g, dtype=dtype) * 0.5,
    )


def test_sh_basis_is_orthonormal_on_the_sphere():
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=-1, keepdim=True)
    basis = sh_basis(3, dirs)  # [M, 16]
    gram = 4 * math.pi * basis.T @ basis / len(dirs)  # Monte Carlo integral of Y_i Y_j over the sphere
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=0.03)


def test_sh_dc_round_trip_and_view_dependence():
    rgb = torch.tensor([[0.2, 0.5, 0.9]])
    sh = torch.zeros(1, 4, 3)
    sh[:, 0] = rgb_to_sh_dc(rgb)
    dirs = torch.randn(5, 3)
    assert torch.allclose(sh_to_rgb(sh.expand(5, -1, -1), dirs), rgb.expand(5, -1), atol=1e-6)
    sh[:, 3, 0] = 1.0  # degree-1 term along x changes red with the viewing direction
    left, right = sh_to_rgb(sh, torch.tensor([[-1.0, 0, 0]])), sh_to_rgb(sh, torch.tensor([[1.0, 0, 0]]))
    assert left[0, 0] > right[0, 0] + 0.5
    assert torch.allclose(sh_to_rgb(sh, torch.tensor([[1.0, 0, 0]]), degree=0), rgb, atol=1e-6)


def test_projected_means_and_depths_match_the_camera():
    cam = _camera()
    gs = _random_gaussians(50, seed=1, dtype=torch.float64)
    proj = project_gaussians(gs.means, gs.covariances(), cam.cam_from_world, cam.K, 64, 48)
    expected = cam.project(gs.means)
    assert torch.allclose(proj.means2d, expected.pixels + 0.5, atol=1e-9)  # gsplat's pixel centres
    assert torch.allclose(proj.depths, expected.depth, atol=1e-12)


def test_projected_covariance_matches_sampled_points():
    """The 2D covariance is the spread of the projected samples of the 3D Gaussian (small ones:
    the projection is then close to its linearization)."""
    cam = _camera(width=200, height=150)
    gs = Gaussians(
        torch.tensor([[0.2, 0.1, 0.6]], dtype=torch.float64),
        torch.tensor([[0.9, 0.2, -0.3, 0.1]], dtype=torch.float64),
        torch.log(torch.tensor([[0.02, 0.005, 0.01]], dtype=torch.float64)),
        torch.zeros(1, dtype=torch.float64),
        torch.zeros(1, 1, 3, dtype=torch.float64),
    )
    proj = project_gaussians(gs.means, gs.covariances(), cam.cam_from_world, cam.K, 200, 150, eps2d=0.0)
    a, b, c = proj.conics[0, 0]
    cov2d = torch.linalg.inv(torch.tensor([[a, b], [b, c]]))
    g = torch.Generator().manual_seed(2)
    samples = (
        gs.means
        + torch.randn(200_000, 3, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(gs.covariances()[0]).T
    )
    pixels = cam.project(samples).pixels[0]
    empirical = torch.cov(pixels.T)
    assert torch.allclose(cov2d, empirical, rtol=0.03, atol=0.01), (cov2d, empirical)


def test_culling_behind_and_off_screen():
    cam = _camera()
    means = torch.tensor([[0.0, 0.0, 0.5], [0.0, -5.0, 1.0], [40.0, 0.0, 0.5]], dtype=torch.float64)
    cov = torch.eye(3, dtype=torch.float64).expand(3, 3, 3) * 1e-4
    radii = project_gaussians(means, cov, cam.cam_from_world, cam.K, 64, 48).radii[0]
    assert radii[0] > 0 and radii[1] == 0 and radii[2] == 0


def test_projection_gradients():
    cam = _camera()
    gs = _random_gaussians(4, seed=3, dtype=torch.float64, spread=0.3)
    means = gs.means.clone().requires_grad_(True)
    log_scales = gs.log_scales.clone().requires_grad_(True)

    def fn(means, log_scales):
        g = Gaussians(means, gs.quats_wxyz, log_scales, gs.logit_opacities, gs.sh)
        p = project_gaussians(g.means, g.covariances(), cam.cam_from_world, cam.K, 64, 48)
        return p.means2d, p.conics

    assert torch.autograd.gradcheck(fn, (means, log_scales))


def _one_gaussian(colour=(0.9, 0.2, 0.1), opacity=0.8, at=(0.0, 0.0, 0.5), scale=0.15) -> Gaussians:
    """One round splat; the default is ~3 px wide in `_camera()`, so its peak pixel sees its full opacity."""
    sh = torch.zeros(1, 1, 3)
    sh[0, 0] = rgb_to_sh_dc(torch.tensor(colour))
    return Gaussians(
        torch.tensor([at]),
        torch.tensor([[1.0, 0, 0, 0]]),
        torch.log(torch.full((1, 3), scale)),
        torch.logit(torch.tensor([opacity])),
        sh,
    )


def test_a_single_splat_renders_where_and_how_it_should():
    from reshoot.geometry.splats.render import rasterize

    cam = _camera()
    gs = _one_gaussian()
    out = rasterize(gs, cam, backend="reference")
    peak = np.unravel_index(out.alpha[0].argmax().item(), (48, 64))
    expected = cam.project(gs.means.double()).pixels[0, 0]
    assert abs(peak[1] - expected[0].item()) <= 0.5 and abs(peak[0] - expected[1].item()) <= 0.5
    # The peak pixel's centre is off the mean by < 1/2 pixel: alpha = opacity * exp(-d^T conic d / 2).
    d = torch.tensor([peak[1] + 0.5, peak[0] + 0.5]) - out.means2d[0, 0].detach()
    a, b, c = project_gaussians(gs.means, gs.covariances(), cam.cam_from_world.float(), cam.K.float(), 64, 48).conics[
        0, 0
    ]
    expected_alpha = 0.8 * torch.exp(-0.5 * (a * d[0] ** 2 + 2 * b * d[0] * d[1] + c * d[1] ** 2))
    assert out.alpha[0].max().item() == pytest.approx(expected_alpha.item(), rel=1e-5)
    centre = out.rgb[0, peak[0], peak[1]] / out.alpha[0, peak[0], peak[1]]
    assert torch.allclose(centre, torch.tensor([0.9, 0.2, 0.1]), atol=1e-4)
    depth = float(cam.project(gs.means.double()).depth[0, 0])
    assert out.depth[0, peak[0], peak[1]].item() == pytest.approx(depth, rel=1e-5)
    assert out.alpha[0, 0, 0].item() < 1e-6 and out.depth[0, 0, 0].item() == 0.0


def test_nearer_splat_hides_the_farther_one_and_background_shows_elsewhere():
    from reshoot.geometry.splats.render import rasterize

    cam = _camera()
    near, far = (
        _one_gaussian((1.0, 0.0, 0.0), 0.99, (0.0, -1.0, 0.7)),
        _one_gaussian((0.0, 0.0, 1.0), 0.99, (0.0, 1.0, 0.5), 0.4),
    )
    both = Gaussians(
        *(
            torch.cat([getattr(near, f), getattr(far, f)])
            for f in ("means", "quats_wxyz", "log_scales", "logit_opacities", "sh")
        )
    )
    out = rasterize(both, cam, background=torch.tensor([0.0, 1.0, 0.0]), backend="reference")
    row, col = (int(round(v)) for v in cam.project(near.means.double()).pixels[0, 0].flip(0).tolist())
    assert out.rgb[0, row, col, 0] > 0.95 and out.rgb[0, row, col, 2] < 0.05
    assert torch.allclose(out.rgb[0, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-3)  # background
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = rasterize(both, cam, features=features, backend="reference")
    assert out.features[0, row, col, 0] > 0.95


def test_cpu_backend_matches_the_reference_on_full_scenes():
    from reshoot.geometry.splats.rasterize_cpu import cpu_kernel_available
    from reshoot.geometry.splats.render import rasterize

    if not cpu_kernel_available():
        pytest.skip("the C++ rasterizer is not built on this machine (the reference twin is used instead)")
    cam = Camera.cat([_camera(48, 40), _camera(48, 40, eye=(2.0, -2.0, 1.5)).renamed(["b"])])
    params = _random_gaussians(300, seed=4, degree=2)
    leaves = {
        f: getattr(params, f).clone().requires_grad_(True)
        for f in ("means", "quats_wxyz", "log_scales", "logit_opacities", "sh")
    }
    features = torch.rand(300, 2, generator=torch.Generator().manual_seed(5))
    results = {}
    for backend in ("cpu", "reference"):
        for leaf in leaves.values():
            leaf.grad = None
        out = rasterize(
            Gaussians(**leaves), cam, features=features, background=torch.tensor([0.1, 0.2, 0.3]), backend=backend
        )
        loss = out.rgb.square().sum() + out.alpha.sum() + (out.depth * out.alpha).sum() + out.features.sum()
        loss.backward()
        results[backend] = (out, {k: v.grad.clone() for k, v in leaves.items()}, out.means2d.grad.clone())
    (cpu, cpu_grads, cpu_m2d), (ref, ref_grads, ref_m2d) = results["cpu"], results["reference"]
    for name in ("rgb", "depth", "alpha", "features"):
        assert torch.allclose(getattr(cpu, name), getattr(ref, name), atol=1e-4), name
    for name in leaves:
        assert torch.allclose(cpu_grads[name], ref_grads[name], atol=1e-3, rtol=1e-3), name
    assert torch.allclose(cpu_m2d, ref_m2d, atol=1e-3, rtol=1e-3)


@pytest.mark.gpu
def test_gsplat_backend_matches_the_cpu_backend():
    from reshoot.geometry.splats.render import rasterize

    cam = _camera(96, 64)
    params = _random_gaussians(500, seed=6, degree=1)
    cpu = rasterize(params, cam, backend="cpu")
    cuda = Gaussians(
        *(getattr(params, f).cuda() for f in ("means", "quats_wxyz", "log_scales", "logit_opacities", "sh"))
    )
    gpu = rasterize(cuda, cam, backend="gsplat")
    # gsplat 1.5 bins tiles with per-axis radii, our square with the larger one: the extra tiles hold
    # only pixels beyond 3.33 sigma, where alpha < 1/255 for all but near-opaque splats.
    assert torch.allclose(gpu.rgb.cpu(), cpu.rgb, atol=5e-3)
    assert torch.allclose(gpu.alpha.cpu(), cpu.alpha, atol=5e-3)


def test_splat_ply_round_trip_in_the_3dgs_layout(tmp_path):
    from plyfile import PlyData

    from reshoot.geometry.splats.ply import read_splat_ply, write_splat_ply

    gs = _random_gaussians(20, seed=7, degree=3)
    write_splat_ply(tmp_path / "set.ply", gs)
    names = [p.name for p in PlyData.read(str(tmp_path / "set.ply"))["vertex"].properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:54] == [f"f_rest_{i}" for i in range(45)] and names[54:] == [
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]
    back = read_splat_ply(tmp_path / "set.ply")
    for field in ("means", "quats_wxyz", "log_scales", "logit_opacities", "sh"):
        assert torch.equal(getattr(back, field), getattr(gs, field)), field
    # 3DGS stores the higher SH channel-major: f_rest_0..14 are red's 15 coefficients.
    vertex = PlyData.read(str(tmp_path / "set.ply"))["vertex"]
    assert np.allclose(np.asarray(vertex["f_rest_14"]), gs.sh[:, 15, 0].numpy())
    assert np.allclose(np.asarray(vertex["f_rest_15"]), gs.sh[:, 1, 1].numpy())


def test_projection_and_sh_match_gsplats_own_torch_implementation():
    """gsplat's pure-torch reference (`gsplat.cuda._torch_impl`) runs on CPU: same numbers as ours.
    (Its rasterizer needs the CUDA extension; the `gpu` test above compares that part.)"""
    import gsplat.cuda._torch_impl as gsplat_torch

    cam = _camera(96, 64)
    gs = _random_gaussians(400, seed=6, degree=3, dtype=torch.float64, spread=1.5)
    viewmats, K = cam.cam_from_world, cam.K
    ours = project_gaussians(gs.means, gs.covariances(), viewmats, K, 96, 64)
    shifted = K.clone()
    shifted[:, :2, 2] += 0.5  # gsplat's pixel centres
    radii, means2d, depths, conics, _ = gsplat_torch._fully_fused_projection(
        gs.means, gs.covariances(), viewmats, shifted, 96, 64
    )
    visible = radii.amax(-1) > 0
    assert torch.equal(visible, ours.radii > 0)
    assert visible.sum() > 100
    assert torch.allclose(ours.means2d[visible], means2d[visible], atol=1e-9)
    assert torch.allclose(ours.conics[visible], conics[visible], rtol=1e-9, atol=1e-12)
    assert torch.allclose(ours.depths[visible], depths[visible], atol=1e-12)
    # gsplat 1.5 bins with per-axis radii; our square uses the larger one.
    assert torch.equal(ours.radii, radii.amax(-1))

    dirs = torch.randn(400, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    theirs = gsplat_torch._spherical_harmonics(3, dirs, gs.sh)
    assert torch.allclose(sh_to_rgb(gs.sh, dirs), torch.clamp_min(theirs + 0.5, 0.0), atol=1e-12)
