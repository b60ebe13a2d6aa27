"""The CPU rasterizer (C++ kernel) against its pure-torch twin, and the twin against the rules.

gsplat's `rasterize_to_pixels` semantics: tile membership, depth order, the 1/255 and 0.999 alpha rules,
exclusive early termination at T <= 1e-4, backgrounds; gradients of render and alpha w.r.t. means2d,
conics, colors and opacities. Kernel tests skip (with the reason) when the kernel is not built.
"""

from __future__ import annotations

import math

import pytest
import torch

from reshoot.geometry.splats import rasterize_cpu
from reshoot.geometry.splats.build import BUILD_DIR_ENV, load_prebuilt
from reshoot.geometry.splats.rasterize_cpu import cpu_kernel_available, rasterize_to_pixels
from reshoot.geometry.splats.rasterize_reference import (
    ALPHA_MAX,
    ALPHA_MIN,
    TRANSMITTANCE_MIN,
    _rasterize,
    rasterize_to_pixels_reference,
    tile_ranges,
)

needs_kernel = pytest.mark.skipif(
    not cpu_kernel_available(), reason="C++ rasterizer not built (python -m reshoot.geometry.splats.build)"
)
SIZES = [(17, 13), (64, 48), (100, 75)]  # none a multiple of 16
DIFFERENTIABLE = ("means2d", "conics", "colors", "opacities")


def random_scene(
    cameras: int,
    n: int,
    width: int,
    height: int,
    channels: int = 3,
    dtype=torch.float64,
    seed: int = 0,
    max_sigma: float = 6.0,
    culled: float = 0.1,
    min_ratio: float = 0.2,
) -> dict[str, torch.Tensor]:
    """2D Gaussians, some partly or fully off-screen, some culled (radius 0), anisotropic (minor / major
    axis >= min_ratio) and rotated."""
    g = torch.Generator().manual_seed(seed)

    def u(*shape):
        return torch.rand(*shape, generator=g, dtype=dtype)

    size = torch.tensor([width, height], dtype=dtype)
    means = u(cameras, n, 2) * size * 1.4 - 0.2 * size
    s_major = 0.5 + (max_sigma - 0.5) * u(cameras, n)
    s_minor = s_major * (min_ratio + (1 - min_ratio) * u(cameras, n))
    theta = u(cameras, n) * math.pi
    cos, sin = torch.cos(theta), torch.sin(theta)
    xx = cos**2 * s_major**2 + sin**2 * s_minor**2
    yy = sin**2 * s_major**2 + cos**2 * s_minor**2
    xy = cos * sin * (s_major**2 - s_minor**2)
    det = xx * yy - xy**2
    radii = torch.ceil(3 * s_major).to(torch.int32)
    radii[u(cameras, n) < culled] = 0
    return {
        "means2d": means,
        "conics": torch.stack([yy / det, -xy / det, xx / det], dim=-1),
        "colors": u(cameras, n, channels),
        "opacities": 0.05 + 0.9 * u(cameras, n),
        "depths": 0.5 + 10 * u(cameras, n),
        "radii": radii,
    }


def heavy_scene(width: int, height: int, n: int = 120, dtype=torch.float64, seed: int = 1) -> dict[str, torch.Tensor]:
    """Many opaque, wide Gaussians piled on the image centre: most pixels stop early."""
    scene = random_scene(1, n, width, height, dtype=dtype, seed=seed, max_sigma=8.0, culled=0.0)
    g = torch.Generator().manual_seed(seed + 1)
    centre = torch.tensor([width / 2, height / 2], dtype=dtype)
    scene["means2d"] = centre + (torch.rand(1, n, 2, generator=g, dtype=dtype) - 0.5) * 12
    scene["opacities"] = 0.6 + 0.35 * torch.rand(1, n, generator=g, dtype=dtype)
    return scene


def run(
    fn, scene: dict[str, torch.Tensor], width: int, height: int, backgrounds=None, tile_size: int = 16, weights=None
):
    """Forward, then gradients of sum(w_r * render) + sum(w_a * alpha) w.r.t. the differentiable inputs."""
    leaves = {k: (v.clone().requires_grad_() if k in DIFFERENTIABLE else v) for k, v in scene.items()}
    out = fn(**leaves, width=width, height=height, tile_size=tile_size, backgrounds=backgrounds)
    if weights is None:
        g = torch.Generator().manual_seed(7)
        weights = (
            torch.randn(out.render.shape, generator=g, dtype=out.render.dtype),
            torch.randn(out.alpha.shape, generator=g, dtype=out.alpha.dtype),
        )
    loss = (out.render * weights[0]).sum() + (out.alpha * weights[1]).sum()
    grads = torch.autograd.grad(loss, [leaves[k] for k in DIFFERENTIABLE])
    return out, dict(zip(DIFFERENTIABLE, grads))


def assert_mostly_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    atol: float,
    what: str,
    max_fraction: float = 2e-3,
    max_error: float = 0.05,
) -> None:
    """float32 comparison: the kernel's exp differs from torch's in the last bit, which may flip the 1/255
    threshold of a rare pixel; allow a few such elements, bounded."""
    err = (actual - expected).abs()
    fraction = (err > atol + atol * expected.abs()).double().mean().item()
    assert fraction <= max_fraction, f"{what}: {fraction:.2%} of elements differ (max {err.max().item():.3g})"
    assert err.max().item() <= max_error, f"{what}: max error {err.max().item():.3g}"


def assert_grads_close(actual: dict, expected: dict, rtol: float) -> None:
    for name in DIFFERENTIABLE:
        scale = expected[name].norm().item() + 1e-12
        rel = (actual[name] - expected[name]).norm().item() / scale
        assert rel <= rtol, f"d/d{name}: relative error {rel:.3g}"


@pytest.fixture(params=["best", "baseline"])
def isa(request):
    """Run kernel tests with the CPU's best instruction set and with the portable baseline."""
    if not cpu_kernel_available():
        pytest.skip("C++ rasterizer not built (python -m reshoot.geometry.splats.build)")
    ext = rasterize_cpu._EXTENSION
    if request.param != "best" and request.param not in ext.supported_isas():
        pytest.skip(f"CPU lacks {request.param}")
    ext.set_isa(request.param)
    yield ext.get_isa()
    ext.set_isa("best")


# ----------------------------------------------------------------------------------------------------
# The twin against the rules, written as plain loops.


def loop_rasterize(scene, width, height, tile_size, backgrounds=None):
    """Pixel by pixel, Gaussian by Gaussian: the rules as stated, for tiny scenes."""
    means, conics, colors = scene["means2d"], scene["conics"], scene["colors"]
    opac, depths, radii = scene["opacities"], scene["depths"], scene["radii"]
    cams, n, d = colors.shape
    render = torch.zeros(cams, height, width, d, dtype=colors.dtype)
    alpha_out = torch.zeros(cams, height, width, dtype=colors.dtype)
    for c in range(cams):
        order = sorted(range(n), key=lambda k: (depths[c, k].item(), k))
        for i in range(height):
            for j in range(width):
                tx, ty = j // tile_size, i // tile_size
                t, out = 1.0, torch.zeros(d, dtype=colors.dtype)
                for k in order:
                    r = radii[c, k].item()
                    mx, my = means[c, k].tolist()
                    lo_x, hi_x = math.floor((mx - r) / tile_size), math.ceil((mx + r) / tile_size)
                    lo_y, hi_y = math.floor((my - r) / tile_size), math.ceil((my + r) / tile_size)
                    if r <= 0 or not (lo_x <= tx < hi_x and lo_y <= ty < hi_y):
                        continue
                    dx, dy = mx - (j + 0.5), my - (i + 0.5)
                    a, b, cc = conics[c, k].tolist()
                    sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
                    if sigma < 0:
                        continue
                    alpha = min(ALPHA_MAX, opac[c, k].item() * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    if t * (1 - alpha) <= TRANSMITTANCE_MIN:
                        break
                    out += colors[c, k] * alpha * t
                    t *= 1 - alpha
                render[c, i, j] = out + (t * backgrounds[c] if backgrounds is not None else 0)
                alpha_out[c, i, j] = 1 - t
    return render, alpha_out


@pytest.mark.parametrize("tile_size", [4, 16])
def test_reference_follows_the_rules_pixel_by_pixel(tile_size):
    scene = random_scene(2, 14, 11, 9, seed=3, max_sigma=3.0)
    scene["opacities"][0, :5] = 0.95  # some opaque ones, so the 0.999 cap and termination take part
    backgrounds = torch.rand(2, 3, dtype=torch.float64)
    out = rasterize_to_pixels_reference(**scene, width=11, height=9, tile_size=tile_size, backgrounds=backgrounds)
    render, alpha = loop_rasterize(scene, 11, 9, tile_size, backgrounds)
    torch.testing.assert_close(out.render, render, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out.alpha, alpha, rtol=1e-10, atol=1e-12)


def test_reference_early_termination_is_exclusive():
    scene = heavy_scene(24, 20)
    render, transmittance, terminated = _rasterize(
        *(scene[k] for k in ("means2d", "conics", "colors", "opacities", "depths", "radii")), 24, 20, 16, None, 1 << 22
    )
    assert terminated.any(), "the heavy scene must make some pixels stop early"
    # The stopping Gaussian is not added, so T never reaches the threshold.
    assert transmittance.min().item() > TRANSMITTANCE_MIN
    loop_render, _ = loop_rasterize(scene, 24, 20, 16)
    torch.testing.assert_close(render, loop_render, rtol=1e-10, atol=1e-12)


def test_tile_ranges_follow_gsplat():
    means = torch.tensor([[[20.0, 20.0], [15.9, 0.5], [-30.0, 5.0], [40.0, 40.0]]])
    radii = torch.tensor([[4, 1, 10, 0]], dtype=torch.int32)
    lo, hi = tile_ranges(means, radii, 64, 48, 16)
    assert lo[0, 0].tolist() == [1, 1] and hi[0, 0].tolist() == [2, 2]  # [16, 24] in tile 1 only
    assert lo[0, 1].tolist() == [0, 0] and hi[0, 1].tolist() == [2, 1]  # [14.9, 16.9] touches tiles 0 and 1
    assert (hi[0, 2] - lo[0, 2])[0].item() == 0  # entirely left of the image
    assert torch.equal(lo[0, 3], hi[0, 3])  # culled


def test_membership_is_per_tile():
    """A Gaussian reaching beyond its radius is cut at the edge of its tiles, as in gsplat."""
    scene = {
        "means2d": torch.tensor([[[8.0, 8.0]]], dtype=torch.float64),
        "conics": torch.tensor([[[1 / 100, 0.0, 1 / 100]]], dtype=torch.float64),  # sigma 10 px
        "colors": torch.ones(1, 1, 1, dtype=torch.float64),
        "opacities": torch.full((1, 1), 0.9, dtype=torch.float64),
        "depths": torch.ones(1, 1, dtype=torch.float64),
        "radii": torch.full((1, 1), 4, dtype=torch.int32),
    }
    out = rasterize_to_pixels_reference(**scene, width=40, height=40)
    assert out.alpha[0, :16, :16].min() > 0.5 and out.alpha[0, 16:, :].max() == 0 and out.alpha[0, :, 16:].max() == 0
    if cpu_kernel_available():
        torch.testing.assert_close(rasterize_to_pixels(**scene, width=40, height=40).alpha, out.alpha)


def test_reference_gradcheck_float64():
    scene = random_scene(1, 6, 10, 8, seed=5, max_sigma=3.0, culled=0.0)
    backgrounds = torch.rand(1, 3, dtype=torch.float64, requires_grad=True)
    inputs = [scene[k].clone().requires_grad_() for k in DIFFERENTIABLE]

    def fn(means2d, conics, colors, opacities, bg):
        out = rasterize_to_pixels_reference(
            means2d, conics, colors, opacities, scene["depths"], scene["radii"], 10, 8, tile_size=4, backgrounds=bg
        )
        return out.render, out.alpha

    assert torch.autograd.gradcheck(fn, (*inputs, backgrounds), eps=1e-6, atol=1e-7, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------
# The kernel against the twin.


@needs_kernel
def test_kernel_gradcheck_float64(isa):
    scene = random_scene(2, 8, 12, 9, seed=6, max_sigma=3.0, culled=0.0)
    backgrounds = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    inputs = [scene[k].clone().requires_grad_() for k in DIFFERENTIABLE]

    def fn(means2d, conics, colors, opacities, bg):
        out = rasterize_to_pixels(
            means2d, conics, colors, opacities, scene["depths"], scene["radii"], 12, 9, tile_size=4, backgrounds=bg
        )
        return out.render, out.alpha

    assert torch.autograd.gradcheck(fn, (*inputs, backgrounds), eps=1e-6, atol=1e-7, rtol=1e-5)


@needs_kernel
@pytest.mark.parametrize("width,height", SIZES)
def test_kernel_matches_reference_float64(isa, width, height):
    scene = random_scene(2, 300, width, height, channels=4, seed=width)
    backgrounds = torch.rand(2, 4, dtype=torch.float64)
    out_k, grads_k = run(rasterize_to_pixels, scene, width, height, backgrounds)
    out_t, grads_t = run(rasterize_to_pixels_reference, scene, width, height, backgrounds)
    torch.testing.assert_close(out_k.render, out_t.render, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(out_k.alpha, out_t.alpha, rtol=1e-9, atol=1e-11)
    for name in DIFFERENTIABLE:
        torch.testing.assert_close(grads_k[name], grads_t[name], rtol=1e-7, atol=1e-9, msg=f"d/d{name}")
    assert (grads_t["means2d"] != 0).any(), "the scene must have gradients to compare"


@needs_kernel
@pytest.mark.parametrize("width,height", SIZES)
def test_kernel_matches_reference_float32(isa, width, height):
    scene = {
        k: (v.float() if v.is_floating_point() else v)
        for k, v in random_scene(3, 400, width, height, seed=width + 1).items()
    }
    backgrounds = torch.rand(3, 3)
    out_k, grads_k = run(rasterize_to_pixels, scene, width, height, backgrounds)
    out_t, grads_t = run(rasterize_to_pixels_reference, scene, width, height, backgrounds)
    assert_mostly_close(out_k.render, out_t.render, 1e-5, "render")
    assert_mostly_close(out_k.alpha, out_t.alpha, 1e-5, "alpha")
    assert_grads_close(grads_k, grads_t, rtol=1e-3)


@needs_kernel
def test_kernel_thin_and_opaque_gaussians(isa):
    """Needle-thin, tiny and near-opaque Gaussians: the kernel's per-Gaussian pixel bounds must keep
    every pixel the twin keeps."""
    scene = random_scene(2, 300, 64, 48, seed=21, max_sigma=12.0, min_ratio=0.002)
    scene["opacities"] = 0.9 + 0.099 * torch.rand(
        2, 300, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    scene["conics"][:, :40] *= 30.0  # sub-pixel Gaussians
    out_k, grads_k = run(rasterize_to_pixels, scene, 64, 48)
    out_t, grads_t = run(rasterize_to_pixels_reference, scene, 64, 48)
    torch.testing.assert_close(out_k.render, out_t.render, rtol=1e-9, atol=1e-11)
    for name in DIFFERENTIABLE:
        torch.testing.assert_close(grads_k[name], grads_t[name], rtol=1e-7, atol=1e-9, msg=f"d/d{name}")


@needs_kernel
def test_kernel_no_gaussians():
    scene = {k: v[:, :0] for k, v in random_scene(2, 3, 20, 10).items()}
    backgrounds = torch.rand(2, 3, dtype=torch.float64)
    out = rasterize_to_pixels(**scene, width=20, height=10, backgrounds=backgrounds)
    assert out.alpha.abs().max() == 0
    torch.testing.assert_close(out.render, backgrounds[:, None, None, :].expand(2, 10, 20, 3))


@needs_kernel
def test_kernel_early_termination_matches(isa):
    scene = heavy_scene(40, 30)
    _, _, terminated = _rasterize(
        *(scene[k] for k in ("means2d", "conics", "colors", "opacities", "depths", "radii")), 40, 30, 16, None, 1 << 22
    )
    assert terminated.sum() > 50, "most covered pixels must stop early"
    out_k, grads_k = run(rasterize_to_pixels, scene, 40, 30)
    out_t, grads_t = run(rasterize_to_pixels_reference, scene, 40, 30)
    assert out_k.alpha.max().item() < 1 - TRANSMITTANCE_MIN
    torch.testing.assert_close(out_k.render, out_t.render, rtol=1e-9, atol=1e-11)
    for name in DIFFERENTIABLE:
        torch.testing.assert_close(grads_k[name], grads_t[name], rtol=1e-7, atol=1e-9, msg=f"d/d{name}")


@needs_kernel
@pytest.mark.parametrize("which", ["render", "alpha"])
def test_kernel_single_output_loss(which):
    """Only one output in the loss: autograd hands the backward None for the other."""
    scene = random_scene(1, 50, 30, 20, seed=9)
    grads = {}
    for fn in (rasterize_to_pixels, rasterize_to_pixels_reference):
        leaves = {k: (v.clone().requires_grad_() if k in DIFFERENTIABLE else v) for k, v in scene.items()}
        getattr(fn(**leaves, width=30, height=20), which).square().sum().backward()
        grads[fn] = {k: leaves[k].grad for k in DIFFERENTIABLE}
    for name in DIFFERENTIABLE:
        expected = grads[rasterize_to_pixels_reference][name]
        actual = grads[rasterize_to_pixels][name]
        if which == "alpha" and name == "colors":
            assert expected is None or not expected.any()
            assert actual is None or not actual.any()
            continue
        torch.testing.assert_close(actual, expected, rtol=1e-7, atol=1e-9, msg=f"d/d{name}")


@needs_kernel
def test_kernel_other_tile_size_and_background_gradient():
    scene = random_scene(2, 120, 37, 29, seed=11)
    backgrounds = torch.rand(2, 3, dtype=torch.float64)
    results = []
    for fn in (rasterize_to_pixels, rasterize_to_pixels_reference):
        bg = backgrounds.clone().requires_grad_()
        out = fn(**scene, width=37, height=29, tile_size=8, backgrounds=bg)
        (out.render.sin().sum() + out.alpha.sum()).backward()
        results.append((out.render, bg.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-9, atol=1e-11)


@needs_kernel
def test_kernel_culled_and_offscreen_gaussians_contribute_nothing():
    scene = random_scene(1, 40, 32, 24, seed=12)
    backgrounds = torch.rand(1, 3, dtype=torch.float64)
    culled = dict(scene, radii=torch.zeros_like(scene["radii"]))
    out, grads = run(rasterize_to_pixels, culled, 32, 24, backgrounds)
    assert out.alpha.abs().max() == 0
    torch.testing.assert_close(out.render, backgrounds[:, None, None, :].expand_as(out.render))
    assert all(not g.any() for g in grads.values())
    far = dict(scene, means2d=scene["means2d"] + 1000.0)
    assert rasterize_to_pixels(**far, width=32, height=24).alpha.abs().max() == 0


@needs_kernel
def test_kernel_depth_order_and_ties():
    """The nearer Gaussian covers the farther one; at equal depth the lower index is in front."""
    means = torch.tensor([[[8.0, 8.0], [8.0, 8.0]]], dtype=torch.float64)
    conics = torch.tensor([[[0.1, 0.0, 0.1]] * 2], dtype=torch.float64)
    colors = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    opacities = torch.full((1, 2), 0.99, dtype=torch.float64)
    radii = torch.full((1, 2), 8, dtype=torch.int32)
    for depths, front in (([2.0, 1.0], 1), ([1.0, 2.0], 0), ([1.0, 1.0], 0)):
        d = torch.tensor([depths], dtype=torch.float64)
        out = rasterize_to_pixels(means, conics, colors, opacities, d, radii, 16, 16)
        ref = rasterize_to_pixels_reference(means, conics, colors, opacities, d, radii, 16, 16)
        torch.testing.assert_close(out.render, ref.render)
        assert out.render[0, 7, 7, front] > 0.9, (depths, out.render[0, 7, 7])


@needs_kernel
def test_kernel_tile_lists_match_gsplat_isect_tiles():
    """The kernel's per-tile lists are gsplat's intersections: same (tile, Gaussian) pairs, depth order."""
    isect = pytest.importorskip("gsplat.cuda._torch_impl")._isect_tiles
    scene = {k: (v.float() if v.is_floating_point() else v) for k, v in random_scene(2, 40, 64, 48, seed=15).items()}
    keys = ("means2d", "conics", "colors", "opacities", "depths", "radii")
    outs = rasterize_cpu._EXTENSION.rasterize_forward(*(scene[k].contiguous() for k in keys), None, 64, 48, 16)
    tile_offsets, gauss_ids = outs[4], outs[5]
    radii2 = torch.stack([scene["radii"], scene["radii"]], dim=-1)
    _, isect_ids, flatten_ids = isect(scene["means2d"], radii2, scene["depths"], 16, 4, 3)
    tiles = 4 * 3
    for cam in range(2):
        for tile in range(tiles):
            ours = gauss_ids[tile_offsets[cam, tile] : tile_offsets[cam, tile + 1]].tolist()
            key = (isect_ids >> 32) == (cam << (tiles.bit_length())) | tile
            theirs = (flatten_ids[key] - cam * 40).tolist()
            assert ours == theirs, (cam, tile)
    assert len(gauss_ids) == len(flatten_ids) > 0


@needs_kernel
def test_kernel_is_deterministic():
    scene = {k: (v.float() if v.is_floating_point() else v) for k, v in random_scene(2, 500, 64, 48, seed=13).items()}
    first = run(rasterize_to_pixels, scene, 64, 48)
    second = run(rasterize_to_pixels, scene, 64, 48)
    assert torch.equal(first[0].render, second[0].render)
    for name in DIFFERENTIABLE:
        assert torch.equal(first[1][name], second[1][name]), name


def test_fallback_to_reference_without_kernel(monkeypatch):
    monkeypatch.setattr(rasterize_cpu, "_EXTENSION", None)
    assert not rasterize_cpu.cpu_kernel_available()
    scene = random_scene(1, 30, 20, 15, seed=14)
    out, grads = run(rasterize_to_pixels, scene, 20, 15)
    ref, ref_grads = run(rasterize_to_pixels_reference, scene, 20, 15)
    assert torch.equal(out.render, ref.render) and torch.equal(grads["conics"], ref_grads["conics"])


def test_bad_shapes_are_rejected():
    scene = random_scene(1, 5, 8, 8)
    with pytest.raises(ValueError, match="conics"):
        rasterize_to_pixels(**dict(scene, conics=scene["conics"][:, :4]), width=8, height=8)
    with pytest.raises(ValueError, match="radii must be an integer"):
        rasterize_to_pixels(**dict(scene, radii=scene["radii"].double()), width=8, height=8)
    with pytest.raises(ValueError, match="backgrounds"):
        rasterize_to_pixels(**scene, width=8, height=8, backgrounds=torch.zeros(1, 2, dtype=torch.float64))


def test_stale_or_missing_build_is_not_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv(BUILD_DIR_ENV, str(tmp_path))
    assert load_prebuilt() is None  # nothing built there
    (tmp_path / "reshoot_splats_cpu.so").write_bytes(b"not a library")
    (tmp_path / "reshoot-build.stamp").write_text("not the fingerprint\n")
    assert load_prebuilt() is None  # stale: never imported
