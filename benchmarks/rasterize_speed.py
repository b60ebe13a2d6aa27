"""Speed of the CPU splat kernels: forward + backward iterations per second, C++ kernel vs pure-torch twin.

The bar (issue "Gaussian-splat reconstruction"): 4 views x 320x240 with 50k Gaussians, the kernel at
>= 30x the twin and >= 2 it/s on 2 cores. The scene is random but realistic: radii 1-20 px, anisotropic
and rotated, opacities 0.05-0.95, some Gaussians partly off-screen, D = 4 channels (rgb + depth, as the
renderer composites them). The twin is slow, so it runs fewer iterations.

The same run times the projection that feeds the rasterizer (3D Gaussians to 2D, fwd + bwd), the fused
C++ kernel vs its torch twin (`project_gaussians` on `Gaussians.covariances()`), on as many Gaussians
spread in front of the same number of cameras. Writes JSON.

    .venv/bin/python benchmarks/rasterize_speed.py [--iters 10] [--twin-iters 1] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import torch

from reshoot.geometry.conventions import look_at
from reshoot.geometry.splats import rasterize_cpu
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.projection import project_gaussians
from reshoot.geometry.splats.projection_cpu import project_gaussians_cpu
from reshoot.geometry.splats.rasterize_cpu import cpu_kernel_available, rasterize_to_pixels
from reshoot.geometry.splats.rasterize_reference import rasterize_to_pixels_reference

BAR_RATIO = 30.0
BAR_ITS = 2.0


def random_scene(cameras: int, n: int, width: int, height: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-camera 2D Gaussians: means [C, N, 2], conics [C, N, 3], colors [C, N, 4], opacities, depths, radii."""
    g = torch.Generator().manual_seed(seed)
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    radius = 1.0 + 19.0 * u(cameras, n)  # 3-sigma radius of the major axis, px
    margin = 10.0  # some centres just outside the image: partly visible Gaussians
    means = torch.stack(
        [u(cameras, n) * (width + 2 * margin) - margin, u(cameras, n) * (height + 2 * margin) - margin], dim=-1
    )
    s_major = radius / 3.0
    s_minor = s_major * (0.3 + 0.7 * u(cameras, n))
    theta = u(cameras, n) * math.pi
    cos, sin = torch.cos(theta), torch.sin(theta)
    # Covariance R diag(s²) Rᵀ, then its inverse (the conic).
    xx = cos**2 * s_major**2 + sin**2 * s_minor**2
    yy = sin**2 * s_major**2 + cos**2 * s_minor**2
    xy = cos * sin * (s_major**2 - s_minor**2)
    det = xx * yy - xy**2
    conics = torch.stack([yy / det, -xy / det, xx / det], dim=-1)
    depths = 1.0 + 9.0 * u(cameras, n)
    colors = torch.cat([u(cameras, n, 3), depths[..., None]], dim=-1)
    return {
        "means2d": means,
        "conics": conics,
        "colors": colors,
        "opacities": 0.05 + 0.9 * u(cameras, n),
        "depths": depths,
        "radii": torch.ceil(radius).to(torch.int32),
    }


def iterations_per_second(
    fn, scene: dict[str, torch.Tensor], width: int, height: int, iters: int, warmup: int
) -> float:
    """fwd + bwd of a loss on render and alpha, `iters` timed runs after `warmup` untimed ones."""
    leaves = {k: v.clone().requires_grad_(k in ("means2d", "conics", "colors", "opacities")) for k, v in scene.items()}

    def step() -> None:
        out = fn(**leaves, width=width, height=height)
        loss = out.render.square().mean() + out.alpha.mean()
        loss.backward()

    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(iters):
        step()
    return iters / (time.perf_counter() - started)


def projection_iterations_per_second(twin: bool, cameras: int, n: int, width: int, height: int, iters: int) -> float:
    """fwd + bwd of the projection of n random Gaussians (1.5 m around the origin) into cameras on a
    circle 4 m out, `iters` timed runs after one untimed one."""
    g = torch.Generator().manual_seed(0)
    leaves = [
        (torch.randn(n, 3, generator=g) * 1.5).requires_grad_(True),
        torch.randn(n, 4, generator=g).requires_grad_(True),
        (torch.randn(n, 3, generator=g) * 0.5 - 3).requires_grad_(True),
    ]
    angles = torch.arange(cameras) * 2 * math.pi / cameras
    viewmats = torch.stack(
        [look_at((4 * math.cos(a), 4 * math.sin(a), 1.5), (0.0, 0.0, 0.0)) for a in angles.tolist()]
    ).float()
    K = torch.tensor([[0.8 * width, 0, width / 2], [0, 0.8 * width, height / 2], [0, 0, 1]]).expand(cameras, 3, 3)

    def step() -> None:
        gaussians = Gaussians(*leaves, torch.zeros(n), torch.zeros(n, 1, 3))
        if twin:
            out = project_gaussians(gaussians.means, gaussians.covariances(), viewmats, K, width, height)
        else:
            out = project_gaussians_cpu(gaussians, viewmats, K, width, height)
        (out.means2d.square().mean() + out.conics.mean() + out.depths.mean()).backward()

    step()
    started = time.perf_counter()
    for _ in range(iters):
        step()
    return iters / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--gaussians", type=int, default=50_000)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--twin-iters", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rasterize_speed.json"))
    args = parser.parse_args()
    if not cpu_kernel_available():
        raise SystemExit("the C++ rasterizer is not built: run `python -m reshoot.geometry.splats.build -v`")

    scene = random_scene(args.cameras, args.gaussians, args.width, args.height)
    kernel = iterations_per_second(rasterize_to_pixels, scene, args.width, args.height, args.iters, warmup=2)
    twin = iterations_per_second(
        rasterize_to_pixels_reference, scene, args.width, args.height, args.twin_iters, warmup=0
    )
    ratio = kernel / twin
    projection = {
        "kernel_its": projection_iterations_per_second(
            False, args.cameras, args.gaussians, args.width, args.height, 5 * args.iters
        ),
        "twin_its": projection_iterations_per_second(
            True, args.cameras, args.gaussians, args.width, args.height, 5 * args.iters
        ),
    }
    projection["ratio"] = projection["kernel_its"] / projection["twin_its"]
    result = {
        "benchmark": "rasterize_speed",
        "workload": f"{args.cameras} views x {args.width}x{args.height}, {args.gaussians} Gaussians, D=4, "
        "fwd + bwd (loss on render and alpha)",
        "kernel_its": kernel,
        "twin_its": twin,
        "ratio": ratio,
        "kernel_iters": args.iters,
        "twin_iters": args.twin_iters,
        "bar_ratio": BAR_RATIO,
        "bar_its": BAR_ITS,
        "meets_bar": ratio >= BAR_RATIO and kernel >= BAR_ITS,
        "projection": projection,
        "instruction_set": rasterize_cpu._EXTENSION.get_isa(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"rasterize fwd+bwd, {result['workload']}: kernel {kernel:.2f} it/s, twin {twin:.4f} it/s, "
        f"ratio {ratio:.0f}x (bar >= {BAR_RATIO:.0f}x and >= {BAR_ITS:.0f} it/s) on {torch.get_num_threads()} "
        f"threads, {result['instruction_set']}\n"
        f"projection fwd+bwd, {args.cameras} cameras, {args.gaussians} Gaussians: fused kernel "
        f"{projection['kernel_its']:.1f} it/s, torch twin {projection['twin_its']:.1f} it/s, "
        f"ratio {projection['ratio']:.1f}x -> {args.out}"
    )


if __name__ == "__main__":
    main()
