"""Fitting Gaussian splats to posed images: the 3DGS recipe on any backend.

Adam with per-parameter learning rates, loss (1 - w) L1 + w (1 - SSIM) on the pixels a mask keeps,
the SH degree raised step by step, and densification / pruning by gsplat's `DefaultStrategy` (it
runs on CPU given the projected means' gradients and radii, so we reuse it rather than rewrite it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..camera import Camera
from ..errors import InputError
from ..files import atomic_path
from ..progress import ProgressFn, no_progress
from .gaussians import Gaussians, select_gaussians
from .render import rasterize
from .sh import rgb_to_sh_dc
from .surfaces import (
    Plane,
    depth_normal_loss,
    elongation_loss,
    explained_by_environment,
    facing_normals,
    floating,
    nearest_distance,
    on_planes,
    plane_coverage_loss,
    plane_loss,
    views_seeing,
)


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
        background: colour behind the splats (the start of the fitted one with `learn_background`).
        learn_background: fit the background colour too, as one RGB for all views: what the cameras
            see where there is no surface (the night sky, a black studio) is then explained by it, and
            no Gaussians are made to paint it. Those Gaussians sit anywhere along the rays of the
            views that saw the void, and a new viewpoint sees them in front of real surfaces.
        lr_background: its learning rate (colour units; Adam moves it about this much a step).
        backend: rasterizer backend ("auto", "cpu", "reference", "gsplat").
        seed: for view order and densification's random samples.
        thickness: when set, the Gaussians are surfels: the third scale (their local z, the normal of
            `surfel_gaussians`) is held at this standard deviation (world units).
        min_surfel_scale: surfels' two scales in their surface are kept at least this (world units):
            views at grazing angles cannot see the gaps between shrunken surfels, a view from above
            looks through them.
        max_scale: when set, no Gaussian's standard deviation along any axis exceeds this share of the
            scene scale (the spread of the views' centres), held at every step. 3DGS prunes Gaussians
            larger than a tenth of the scene (gsplat's `DefaultStrategy.prune_scale3d`) only after an
            opacity reset, which a schedule without resets never reaches; unheld, a Gaussian can grow
            into a sheet metres wide that paints a dark region of a few views and, seen from a new
            angle, lies across the set.
        plane_weight, plane_distance: weight and reach (world units) of `plane_loss` (the planes are
            given to `train_splats`).
        elongation_weight, max_elongation: weight of `elongation_loss` and the ratio it allows.
        depth_normal_weight, depth_normal_start: weight of `depth_normal_loss` and the step it starts at.
        opacity_weight: weight of the mean opacity in the loss: Gaussians no view needs fade (a dark
            Gaussian in front of the dark background explains nothing the background does not).
        appearance: fit a per-view affine colour correction (3x3 matrix + offset, starting at the
            identity) applied to the render before the loss, so that views that differ in exposure or
            white balance need not bend the scene; renders into new cameras leave it out. The
            corrections are the identity on average over the views (the scene keeps the views' mean
            colours: a correction common to all views would be a change of the scene's own).
        lr_appearance, appearance_weight: its learning rate and the weight of its pull to the identity.
        coverage_weight: weight of `plane_coverage_loss`: each step one plane's Gaussians are seen
            square-on in a window of coverage_size x coverage_size pixels of coverage_pixel world units
            (centred on one of them) and pay for the gaps between them, inside the area that cells of
            edge coverage_cell (world units) holding them mark out.
        free_space_tolerance: relative depth margin of the free-space test against observed depths.
        free_space_votes: at every refinement, Gaussians in front of the observed surface in at least this
            many views (and more views than they lie on it) are pruned (`floating`; needs observed depths).
        surface_reach: at every refinement, Gaussians farther than this (world units) from every
            observed surface point are pruned (needs observations; None = no such pruning).
        min_views: at the end of refinement, Gaussians fewer views see are pruned (0 = no such pruning).
            Gaussians of a known plane (`on_planes` at the start, and their offspring, or lying now on a
            plane that `reaches_beyond_start`) are spared by this rule and by `surface_reach`: the plane
            fixes their depth, which is what these rules guard.
        environment_tolerance: with `learn_background`, at the end of fitting, Gaussians whose colour is
            the fitted background's within this (every channel) and without which no view's image would
            be rendered worse are pruned (`explained_by_environment`: a floor carried past its open
            edge, painted in the void's colour; 0 = no such pruning).
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
    learn_background: bool = False
    lr_background: float = 0.01
    backend: str = "auto"
    seed: int = 0
    thickness: float | None = None
    min_surfel_scale: float = 0.0
    max_scale: float | None = None
    plane_weight: float = 0.0
    plane_distance: float = 0.1
    elongation_weight: float = 0.0
    max_elongation: float = 4.0
    depth_normal_weight: float = 0.0
    depth_normal_start: int = 0
    opacity_weight: float = 0.0
    appearance: bool = False
    lr_appearance: float = 1e-3
    appearance_weight: float = 1.0
    coverage_weight: float = 0.0
    coverage_pixel: float = 0.01
    coverage_size: int = 128
    coverage_cell: float = 0.08
    free_space_tolerance: float = 0.05
    free_space_votes: int = 2
    surface_reach: float | None = None
    min_views: int = 0
    environment_tolerance: float = 0.0


@dataclass(frozen=True)
class ObservedSurfaces:
    """What the training views observe of the scene's surfaces (e.g. dense stereo), for pruning.

    Attributes:
        cameras: V pinhole cameras (any image size; each depth map at its camera's size).
        depths: V x [H, W] observed z-depth in world units, 0 where unknown.
        points: [M, 3] world points on the observed surfaces.
    """

    cameras: Camera
    depths: list[torch.Tensor]
    points: torch.Tensor


@dataclass(frozen=True)
class TrainResult:
    """The fitted splats and what fitting did.

    Attributes:
        gaussians: the fitted splats.
        log: one entry per logged step: step, loss, psnr, gaussians.
        appearance: [V, 3, 4] per training view, the affine colour correction (identity without
            `TrainConfig.appearance`): corrected = rgb @ A.T + b with [A | b].
        pruned: Gaussians removed by reason ("free_space", "off_surface", "unseen", "environment").
        background: [3] the colour behind the splats in [0, 1] (fitted with
            `TrainConfig.learn_background`, else the configured one); renders of the scene use it.
    """

    gaussians: Gaussians
    log: list[dict] = field(default_factory=list)
    appearance: torch.Tensor | None = None
    pruned: dict[str, int] = field(default_factory=dict)
    background: torch.Tensor | None = None


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
        "means": torch.nn.Parameter(g.means.clone()),
        "scales": torch.nn.Parameter(g.log_scales.clone()),
        "quats": torch.nn.Parameter(g.quats_wxyz.clone()),
        "opacities": torch.nn.Parameter(g.logit_opacities.clone()),
        "sh0": torch.nn.Parameter(g.sh[:, :1].clone()),
        "shN": torch.nn.Parameter(g.sh[:, 1:].clone()),
    }


def _gaussians(p: dict[str, torch.nn.Parameter]) -> Gaussians:
    return Gaussians(p["means"], p["quats"], p["scales"], p["opacities"], torch.cat([p["sh0"], p["shN"]], 1))


def train_splats(
    views: Sequence[TrainingView],
    init: Gaussians,
    config: TrainConfig = TrainConfig(),
    progress: ProgressFn | None = None,
    log_every: int = 50,
    checkpoint: Path | None = None,
    checkpoint_every: int = 500,
    planes: Sequence[Plane] = (),
    observed: ObservedSurfaces | None = None,
) -> TrainResult:
    """Fit splats to posed images.

    Every step's randomness (view choice, densification's samples) is drawn from (seed, step), so a
    run resumed from a checkpoint ends exactly where an uninterrupted one does.

    Args:
        views: the images with their cameras; one image size per step (views are grouped by size).
        init: starting Gaussians (e.g. `initial_gaussians` on the registration's points, or
            `surfel_gaussians` on dense stereo points with `config.thickness`).
        checkpoint: a safetensors file to resume from when it exists and to save to every
            `checkpoint_every` steps (parameters, Adam moments, densification statistics, log).
        planes: known planes of the scene for `plane_loss` (with `config.plane_weight`).
        observed: the surfaces the views observe, for pruning at every refinement (`floating` and
            `config.surface_reach`).

    Raises:
        InputError: the checkpoint was written by a run with other settings.
    """
    from gsplat.strategy import DefaultStrategy
    from gsplat.strategy.ops import remove

    report = progress or no_progress
    params = _parameters(init)
    centres = torch.stack([v.camera.centers[0] for v in views]).float()
    scene_scale = float((centres - centres.mean(0)).norm(dim=-1).max().clamp_min(1e-3)) * 1.1
    _hold_scales(params, config, scene_scale)
    rates = {
        "means": config.lr_means * scene_scale,
        "scales": config.lr_scales,
        "quats": config.lr_quats,
        "opacities": config.lr_opacities,
        "sh0": config.lr_sh0,
        "shN": config.lr_shN,
    }
    optimizers = {k: torch.optim.Adam([params[k]], lr=rates[k], eps=1e-15) for k in params}
    appearance = torch.nn.Parameter(torch.zeros(len(views), 3, 4))  # deviation from the identity
    appearance_optimizer = torch.optim.Adam([appearance], lr=config.lr_appearance, eps=1e-15)
    background_colour = torch.nn.Parameter(
        torch.tensor(config.background),  # used through `_in_range`
        requires_grad=config.learn_background,
    )
    background_optimizer = torch.optim.Adam([background_colour], lr=config.lr_background, eps=1e-15)
    extras = {"appearance": (appearance, appearance_optimizer), "background": (background_colour, background_optimizer)}
    strategy = DefaultStrategy(
        refine_start_iter=config.refine_start,
        refine_stop_iter=config.refine_stop,
        refine_every=config.refine_every,
        reset_every=config.reset_every,
        grow_grad2d=config.grow_grad2d,
    )
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=scene_scale)
    state["plane"] = on_planes(init, planes, config.plane_distance)  # carried through densification, pruning
    fronts = [float((centres.double() @ torch.tensor(p.normal, dtype=torch.float64) - p.offset).mean()) for p in planes]
    # Exponential decay of the position learning rate to 1 % over training, as 3DGS.
    decay = 0.01 ** (1.0 / max(config.iterations, 1))
    log: list[dict] = []
    pruned = {"free_space": 0, "off_surface": 0, "unseen": 0, "environment": 0}
    first_step = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        first_step, log, pruned = _load_checkpoint(Path(checkpoint), config, params, optimizers, state, extras)
    for step in range(first_step, config.iterations):
        for group in optimizers["means"].param_groups:
            group["lr"] = rates["means"] * decay**step
        rng = np.random.default_rng([config.seed, step])
        chosen = [int(i) for i in rng.choice(len(views), size=min(config.views_per_step, len(views)), replace=False)]
        chosen = [i for i in chosen if views[i].image.shape == views[chosen[0]].image.shape]
        batch = [views[i] for i in chosen]
        cameras = (
            Camera.cat([v.camera.renamed([f"v{i}"]) for i, v in enumerate(batch)])
            if len(batch) > 1
            else batch[0].camera
        )
        target = torch.stack([v.image for v in batch])
        mask = torch.stack([v.mask if v.mask is not None else torch.ones(v.image.shape[:2]) for v in batch])
        degree = min(config.sh_degree, step // config.sh_degree_interval)
        gaussians = _gaussians(params)
        with_normals = config.depth_normal_weight > 0 and step >= config.depth_normal_start
        background = _in_range(background_colour)
        out = rasterize(
            gaussians,
            cameras,
            features=facing_normals(gaussians, cameras) if with_normals else None,
            sh_degree=degree,
            background=background,
            backend=config.backend,
        )
        info = {
            "means2d": out.means2d,
            "width": target.shape[2],
            "height": target.shape[1],
            "n_cameras": len(batch),
            "radii": torch.stack([out.radii, out.radii], -1),
            "gaussian_ids": None,
        }
        strategy.step_pre_backward(params, optimizers, state, step, info)
        rgb = out.rgb
        if config.appearance:
            deviation = appearance - appearance.mean(0)
            correction = torch.eye(3, 4) + deviation[chosen]
            rgb = torch.einsum("bhwc,bdc->bhwd", rgb, correction[:, :, :3]) + correction[:, None, None, :, 3]
        loss = masked_loss(rgb, target, mask, config.ssim_weight)
        if config.appearance:
            loss = loss + config.appearance_weight * deviation[chosen].square().mean()
        if config.plane_weight > 0:
            loss = loss + config.plane_weight * plane_loss(
                gaussians, list(planes), config.plane_distance, owner=state["plane"]
            )
        if config.coverage_weight > 0 and planes:
            loss = loss + config.coverage_weight * _coverage(gaussians, state["plane"], planes, fronts, rng, config)
        if config.elongation_weight > 0:
            loss = loss + config.elongation_weight * elongation_loss(gaussians, config.max_elongation)
        if config.opacity_weight > 0:
            loss = loss + config.opacity_weight * gaussians.opacities.mean()
        if with_normals:
            loss = loss + config.depth_normal_weight * depth_normal_loss(out.features, out.depth, out.alpha, cameras)
        loss.backward()
        for optimizer in (*optimizers.values(), *(o for _, o in extras.values())):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if config.densify:
            torch.manual_seed(config.seed * 1_000_003 + step)  # splits sample from torch's global generator
            strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
            refining = config.refine_start <= step < config.refine_stop and step % config.refine_every == 0 and step > 0
            if refining and observed is not None:
                means = params["means"].detach()
                free = torch.zeros(len(means), dtype=torch.bool)
                if config.free_space_votes > 0:
                    free = floating(
                        means, observed.cameras, observed.depths, config.free_space_tolerance, config.free_space_votes
                    )
                    pruned["free_space"] += int(free.sum())
                if config.surface_reach is not None:
                    astray = ~free & (nearest_distance(means, observed.points) > config.surface_reach)
                    astray &= ~_on_a_plane(params, state, planes, config)
                    pruned["off_surface"] += int(astray.sum())
                    free |= astray
                remove(params, optimizers, state, free)
        if config.min_views > 0 and step == min(config.refine_stop, config.iterations - 1):
            unseen = _seen_by_fewer(params, views, config) & ~_on_a_plane(params, state, planes, config)
            remove(params, optimizers, state, unseen)
            pruned["unseen"] += int(unseen.sum())
        _hold_scales(params, config, scene_scale)
        if step % log_every == 0 or step == config.iterations - 1:
            log.append(
                {
                    "step": step,
                    "loss": float(loss.detach()),
                    "psnr": psnr(rgb.detach(), target, mask),
                    "gaussians": len(params["means"]),
                }
            )
        report("fitting splats", step + 1, config.iterations)
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < config.iterations:
            _save_checkpoint(Path(checkpoint), step + 1, config, params, optimizers, state, log, pruned, extras)
    final = _gaussians({k: v.detach() for k, v in params.items()})
    if config.learn_background and config.environment_tolerance > 0:
        void = explained_by_environment(
            final,
            [v.camera for v in views],
            [v.image for v in views],
            [v.mask for v in views],
            _in_range(background_colour).detach(),
            config.environment_tolerance,
            config.backend,
        )
        final, pruned["environment"] = select_gaussians(final, ~void), int(void.sum())
    corrections = torch.eye(3, 4) + (appearance - appearance.mean(0)).detach()
    return TrainResult(final, log, corrections, pruned, background_colour.detach().clamp(0, 1))


def _in_range(colour: torch.Tensor) -> torch.Tensor:
    """`colour` clamped to [0, 1], with the gradient of the unclamped value: a plain clamp has none
    outside the range, and a colour that one early step pushes below 0 would stay black for good."""
    return colour + (colour.clamp(0, 1) - colour).detach()


def _coverage(
    gaussians: Gaussians,
    owner: torch.Tensor,
    planes: Sequence[Plane],
    fronts: Sequence[float],
    rng: np.random.Generator,
    config: TrainConfig,
) -> torch.Tensor:
    """`plane_coverage_loss` of one plane drawn at random, in a window centred on one of its Gaussians."""
    plane = int(rng.integers(len(planes)))
    chosen = select_gaussians(gaussians, owner == plane)
    if len(chosen) == 0:
        return gaussians.means.sum() * 0
    centre = chosen.means[int(rng.integers(len(chosen)))].detach()
    return plane_coverage_loss(
        chosen,
        planes[plane],
        fronts[plane],
        centre,
        config.coverage_pixel,
        config.coverage_size,
        config.coverage_cell,
        config.backend,
    )


def _on_a_plane(
    params: dict[str, torch.nn.Parameter], state: dict, planes: Sequence[Plane], config: TrainConfig
) -> torch.Tensor:
    """[N] bool: Gaussians of a plane: from the start (or offspring of one), or lying now on a plane that
    `reaches_beyond_start`."""
    reaching = [p for p in planes if p.reaches_beyond_start]
    return (state["plane"] >= 0) | (on_planes(_gaussians(params), reaching, config.plane_distance) >= 0)


def _hold_scales(params: dict[str, torch.nn.Parameter], config: TrainConfig, scene_scale: float) -> None:
    """Surfels stay flat discs: their third log-scale is reset to the configured thickness, the other two
    kept at least `min_surfel_scale`; no scale exceeds `max_scale` x `scene_scale`."""
    with torch.no_grad():
        if config.max_scale is not None:
            params["scales"].clamp_(max=math.log(config.max_scale * scene_scale))
        if config.thickness is not None:
            params["scales"][:, 2] = math.log(config.thickness)
            if config.min_surfel_scale > 0:
                params["scales"][:, :2].clamp_(min=math.log(config.min_surfel_scale))


@torch.no_grad()
def _seen_by_fewer(
    params: dict[str, torch.nn.Parameter], views: Sequence[TrainingView], config: TrainConfig
) -> torch.Tensor:
    """[N] bool: Gaussians that fewer than `config.min_views` training views see (not hidden behind
    the rendered surface)."""
    gaussians = _gaussians({k: v.detach() for k, v in params.items()})
    count = torch.zeros(len(gaussians), dtype=torch.int64)
    for view in views:
        depth = rasterize(gaussians, view.camera, sh_degree=0, backend=config.backend).depth
        count += views_seeing(gaussians.means, view.camera, depth, config.free_space_tolerance)
    return count < config.min_views


def masked_loss(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """(1 - w) L1 + w (1 - SSIM) over the pixels a mask keeps.

    Args:
        rendered, target: [B, H, W, 3] in [0, 1]; mask: [B, H, W] in [0, 1].
    """
    weight = mask[..., None]
    l1 = ((rendered - target).abs() * weight).sum() / (weight.sum() * 3).clamp_min(1.0)
    if ssim_weight == 0:
        return l1
    kept = rendered * weight + target * (1 - weight)  # masked pixels do not count in SSIM either
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim(kept, target))


def _config_fingerprint(config: TrainConfig) -> str:
    return json.dumps(asdict(config), sort_keys=True)


def _save_checkpoint(
    path: Path,
    step: int,
    config: TrainConfig,
    params: dict,
    optimizers: dict,
    state: dict,
    log: list[dict],
    pruned: dict[str, int],
    extras: dict[str, tuple[torch.nn.Parameter, torch.optim.Optimizer]],
) -> None:
    """Everything a resumed run needs, as one safetensors file (tensors + JSON metadata).

    `extras` are the fitted tensors beside the Gaussians (appearance, background), each with its optimizer."""
    from safetensors.torch import save_file

    tensors = {f"param.{k}": v.detach().contiguous() for k, v in params.items()}
    tensors.update({f"param.{k}": v.detach().contiguous() for k, (v, _) in extras.items()})
    for k, optimizer in (*optimizers.items(), *((k, o) for k, (_, o) in extras.items())):
        moments = optimizer.state.get(optimizer.param_groups[0]["params"][0])
        if not moments:
            continue
        for name in ("exp_avg", "exp_avg_sq", "step"):
            tensors[f"adam.{k}.{name}"] = torch.as_tensor(moments[name]).detach().contiguous()
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            tensors[f"strategy.{k}"] = v.contiguous()
    metadata = {
        "step": str(step),
        "config": _config_fingerprint(config),
        "log": json.dumps(log),
        "pruned": json.dumps(pruned),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def _load_checkpoint(
    path: Path,
    config: TrainConfig,
    params: dict,
    optimizers: dict,
    state: dict,
    extras: dict[str, tuple[torch.nn.Parameter, torch.optim.Optimizer]],
) -> tuple[int, list[dict], dict[str, int]]:
    """Restore a checkpoint in place (parameters are replaced: densification changed their count)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("config") != _config_fingerprint(config):
            raise InputError(
                f"{path}: this checkpoint was written with other training settings; delete it "
                "to start over, or resume with the settings it was made with."
            )
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    names = ("exp_avg", "exp_avg_sq", "step")
    for k in params:
        params[k] = torch.nn.Parameter(tensors[f"param.{k}"])
        optimizer = optimizers[k]
        optimizer.param_groups[0]["params"] = [params[k]]
        optimizer.state.clear()
        optimizer.state[params[k]] = {name: tensors[f"adam.{k}.{name}"] for name in names}
    for k, (extra, optimizer) in extras.items():
        with torch.no_grad():
            extra.copy_(tensors[f"param.{k}"])
        if f"adam.{k}.step" in tensors:
            optimizer.state[extra] = {name: tensors[f"adam.{k}.{name}"] for name in names}
    for k in list(state):
        if f"strategy.{k}" in tensors:
            state[k] = tensors[f"strategy.{k}"]
    return int(metadata["step"]), json.loads(metadata["log"]), json.loads(metadata.get("pruned", "{}"))
