"""Fitting Gaussian splats to posed images: the 3DGS recipe on any backend.

Adam with per-parameter learning rates, loss (1 - w) L1 + w (1 - SSIM) on the pixels a mask keeps,
the SH degree raised step by step, and densification / pruning by gsplat's `DefaultStrategy` (it
runs on CPU given the projected means' gradients and radii, so we reuse it rather than rewrite it).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..camera import Camera
from ..errors import InputError
from ..files import atomic_path
from ..progress import ProgressFn, no_progress
from .gaussians import Gaussians
from .render import rasterize
from .sh import rgb_to_sh_dc


@dataclass(frozen=True)
class TrainingView:
    """One posed image to fit.

    Attributes:
        camera: one camera (V = 1).
        image: [H, W, 3] float32 in [0, 1].
        mask: [H, W] float32 in [0, 1], 1 where the pixel counts (e.g. 0 on moving actors), or None.
    """

    camera: Camera
    image: torch.Tensor
    mask: torch.Tensor | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Settings of splat fitting (3DGS defaults, learning rates of positions scaled by the scene).

    Attributes:
        iterations: optimizer steps.
        views_per_step: images rendered per step (sharing one image size).
        sh_degree: highest SH degree; one more degree is enabled every `sh_degree_interval` steps.
        ssim_weight: weight of (1 - SSIM) in the loss.
        lr_means: learning rate of positions per metre of scene scale.
        lr_scales, lr_quats, lr_opacities, lr_sh0, lr_shN: learning rates of the other parameters.
        densify: grow, split and prune with gsplat's DefaultStrategy.
        refine_start, refine_stop, refine_every, reset_every: its schedule (steps).
        grow_grad2d: mean screen-space position gradient above which a Gaussian is split or cloned.
        background: colour behind the splats.
        backend: rasterizer backend ("auto", "cpu", "reference", "gsplat").
        seed: for view order and densification's random samples.
    """

    iterations: int = 3000
    views_per_step: int = 1
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    ssim_weight: float = 0.2
    lr_means: float = 1.6e-4
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    densify: bool = True
    refine_start: int = 500
    refine_stop: int = 15000
    refine_every: int = 100
    reset_every: int = 3000
    grow_grad2d: float = 2e-4
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    backend: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class TrainResult:
    """The fitted splats and the training log (one entry per logged step: step, loss, psnr, count)."""

    gaussians: Gaussians
    log: list[dict] = field(default_factory=list)


def initial_gaussians(points: np.ndarray, colors: np.ndarray, sh_degree: int = 3, opacity: float = 0.1) -> Gaussians:
    """Gaussians on sparse points (as 3DGS): isotropic, scale = mean distance to the 3 nearest points.

    Args:
        points: [N, 3] world metres; colors: [N, 3] in [0, 1].
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    k = min(4, len(points))
    distances, _ = cKDTree(points).query(points, k=k)
    spacing = np.clip(distances[:, 1:].mean(axis=1) if k > 1 else np.full(len(points), 0.01), 1e-4, None)
    n = len(points)
    sh = torch.zeros(n, (sh_degree + 1) ** 2, 3)
    sh[:, 0] = rgb_to_sh_dc(torch.as_tensor(colors, dtype=torch.float32))
    return Gaussians(
        means=torch.as_tensor(points, dtype=torch.float32),
        quats_wxyz=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        log_scales=torch.log(torch.as_tensor(spacing, dtype=torch.float32))[:, None].repeat(1, 3),
        logit_opacities=torch.full((n,), math.log(opacity / (1 - opacity))),
        sh=sh,
    )


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of images [B, H, W, 3] (kornia, 11x11 Gaussian window)."""
    from kornia.metrics import ssim as kornia_ssim

    return kornia_ssim(a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2), 11).mean()


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB of [..., H, W, 3] images in [0, 1], over the pixels where mask [..., H, W] > 0.5."""
    err = (a - b).square().mean(-1)
    mse = err.mean() if mask is None else err[mask > 0.5].mean()
    return float(-10 * torch.log10(mse.clamp_min(1e-12)))


def _parameters(g: Gaussians) -> dict[str, torch.nn.Parameter]:
    # gsplat's names and layout, which its DefaultStrategy edits in place.
    return {
        "means": torch.nn.Parameter(g.means.clone()), "scales": torch.nn.Parameter(g.log_scales.clone()),
        "quats": torch.nn.Parameter(g.quats_wxyz.clone()), "opacities": torch.nn.Parameter(g.logit_opacities.clone()),
        "sh0": torch.nn.Parameter(g.sh[:, :1].clone()), "shN": torch.nn.Parameter(g.sh[:, 1:].clone()),
    }


def _gaussians(p: dict[str, torch.nn.Parameter]) -> Gaussians:
    return Gaussians(p["means"], p["quats"], p["scales"], p["opacities"], torch.cat([p["sh0"], p["shN"]], 1))


def train_splats(views: Sequence[TrainingView], init: Gaussians, config: TrainConfig = TrainConfig(),
                 progress: ProgressFn | None = None, log_every: int = 50, checkpoint: Path | None = None,
                 checkpoint_every: int = 500) -> TrainResult:
    """Fit splats to posed images.

    Every step's randomness (view choice, densification's samples) is drawn from (seed, step), so a
    run resumed from a checkpoint ends exactly where an uninterrupted one does.

    Args:
        views: the images with their cameras; one image size per step (views are grouped by size).
        init: starting Gaussians (e.g. `initial_gaussians` on the registration's points).
        checkpoint: a safetensors file to resume from when it exists and to save to every
            `checkpoint_every` steps (parameters, Adam moments, densification statistics, log).

    Raises:
        InputError: the checkpoint was written by a run with other settings.
    """
    from gsplat.strategy import DefaultStrategy

    report = progress or no_progress
    params = _parameters(init)
    centres = torch.stack([v.camera.centers[0] for v in views]).float()
    scene_scale = float((centres - centres.mean(0)).norm(dim=-1).max().clamp_min(1e-3)) * 1.1
    rates = {"means": config.lr_means * scene_scale, "scales": config.lr_scales, "quats": config.lr_quats,
             "opacities": config.lr_opacities, "sh0": config.lr_sh0, "shN": config.lr_shN}
    optimizers = {k: torch.optim.Adam([params[k]], lr=rates[k], eps=1e-15) for k in params}
    strategy = DefaultStrategy(refine_start_iter=config.refine_start, refine_stop_iter=config.refine_stop,
                               refine_every=config.refine_every, reset_every=config.reset_every,
                               grow_grad2d=config.grow_grad2d)
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=scene_scale)
    background = torch.tensor(config.background)
    # Exponential decay of the position learning rate to 1 % over training, as 3DGS.
    decay = 0.01 ** (1.0 / max(config.iterations, 1))
    log: list[dict] = []
    first_step = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        first_step, log = _load_checkpoint(Path(checkpoint), config, params, optimizers, state)
    for step in range(first_step, config.iterations):
        for group in optimizers["means"].param_groups:
            group["lr"] = rates["means"] * decay**step
        rng = np.random.default_rng([config.seed, step])
        batch = [views[i] for i in rng.choice(len(views), size=min(config.views_per_step, len(views)), replace=False)]
        batch = [v for v in batch if v.image.shape == batch[0].image.shape]
        cameras = Camera.cat([v.camera.renamed([f"v{i}"]) for i, v in enumerate(batch)]) if len(batch) > 1 else batch[0].camera
        target = torch.stack([v.image for v in batch])
        mask = torch.stack([v.mask if v.mask is not None else torch.ones(v.image.shape[:2]) for v in batch])
        degree = min(config.sh_degree, step // config.sh_degree_interval)
        out = rasterize(_gaussians(params), cameras, sh_degree=degree, background=background, backend=config.backend)
        info = {"means2d": out.means2d, "width": target.shape[2], "height": target.shape[1],
                "n_cameras": len(batch), "radii": torch.stack([out.radii, out.radii], -1), "gaussian_ids": None}
        strategy.step_pre_backward(params, optimizers, state, step, info)
        loss = masked_loss(out.rgb, target, mask, config.ssim_weight)
        loss.backward()
        for optimizer in optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if config.densify:
            torch.manual_seed(config.seed * 1_000_003 + step)  # splits sample from torch's global generator
            strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        if step % log_every == 0 or step == config.iterations - 1:
            log.append({"step": step, "loss": float(loss.detach()), "psnr": psnr(out.rgb.detach(), target, mask),
                        "gaussians": len(params["means"])})
        report("fitting splats", step + 1, config.iterations)
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < config.iterations:
            _save_checkpoint(Path(checkpoint), step + 1, config, params, optimizers, state, log)
    final = _gaussians({k: v.detach() for k, v in params.items()})
    return TrainResult(final, log)


def masked_loss(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """(1 - w) L1 + w (1 - SSIM) over the pixels a mask keeps.

    Args:
        rendered, target: [B, H, W, 3] in [0, 1]; mask: [B, H, W] in [0, 1].
    """
    weight = mask[..., None]
    l1 = ((rendered - target).abs() * weight).sum() / (weight.sum() * 3).clamp_min(1.0)
    kept = rendered * weight + target * (1 - weight)  # masked pixels do not count in SSIM either
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim(kept, target))


def _config_fingerprint(config: TrainConfig) -> str:
    return json.dumps(asdict(config), sort_keys=True)


def _save_checkpoint(path: Path, step: int, config: TrainConfig, params: dict, optimizers: dict, state: dict,
                     log: list[dict]) -> None:
    """Everything a resumed run needs, as one safetensors file (tensors + JSON metadata)."""
    from safetensors.torch import save_file

    tensors = {f"param.{k}": v.detach().contiguous() for k, v in params.items()}
    for k, optimizer in optimizers.items():
        moments = optimizer.state[optimizer.param_groups[0]["params"][0]]
        for name in ("exp_avg", "exp_avg_sq", "step"):
            tensors[f"adam.{k}.{name}"] = torch.as_tensor(moments[name]).detach().contiguous()
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            tensors[f"strategy.{k}"] = v.contiguous()
    metadata = {"step": str(step), "config": _config_fingerprint(config), "log": json.dumps(log)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _load_checkpoint(path: Path, config: TrainConfig, params: dict, optimizers: dict,
                     state: dict) -> tuple[int, list[dict]]:
    """Restore a checkpoint in place (parameters are replaced: densification changed their count)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("config") != _config_fingerprint(config):
            raise InputError(f"{path}: this checkpoint was written with other training settings; delete it "
                             "to start over, or resume with the settings it was made with.")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for k in params:
        params[k] = torch.nn.Parameter(tensors[f"param.{k}"])
        optimizer = optimizers[k]
        optimizer.param_groups[0]["params"] = [params[k]]
        optimizer.state.clear()
        optimizer.state[params[k]] = {name: tensors[f"adam.{k}.{name}"] for name in ("exp_avg", "exp_avg_sq", "step")}
    for k in list(state):
        if f"strategy.{k}" in tensors:
            state[k] = tensors[f"strategy.{k}"]
    return int(metadata["step"]), json.loads(metadata["log"])
