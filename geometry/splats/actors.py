"""Moving actors: Gaussians per frame, fitted on top of a frozen static set (after Dynamic 3D Gaussians).

Static cameras and a frozen set mean the set's render in every training camera is the same all take
long, so it is rendered once (rgb, depth, alpha) and each step renders only the actors' few thousand
Gaussians and composites them over it with a per-pixel depth test: an actor pixel is kept where it is
nearer than the set's surface (plus a margin) or where the set is not opaque. That is the joint
render wherever an actor is wholly in front of or wholly behind the set along a ray, which is the
case for people on a floor among props, and costs a fraction of rendering set + actors each step.
`reshoot render` draws set and actors jointly (`merge_gaussians`), with no such shortcut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..camera import Camera
from ..progress import ProgressFn, no_progress
from .gaussians import Gaussians, select_gaussians
from .render import SplatRender, rasterize
from .sh import rgb_to_sh_dc
from .train import masked_loss, psnr


@dataclass(frozen=True)
class ActorView:
    """One camera at one instant, with the frozen set's render in it.

    Attributes:
        camera: one camera (V = 1), pinhole.
        image: [H, W, 3] float32 in [0, 1], the frame.
        set_rgb: [H, W, 3] the static set's render.
        set_depth: [H, W] its z-depth in metres (0 where it covers nothing).
        set_alpha: [H, W] its coverage in [0, 1].
    """

    camera: Camera
    image: torch.Tensor
    set_rgb: torch.Tensor
    set_depth: torch.Tensor
    set_alpha: torch.Tensor


@dataclass(frozen=True)
class ActorConfig:
    """Settings of per-frame actor fitting.

    Attributes:
        iterations: optimizer steps for a frame (all cameras every step).
        sh_degree: SH degree fitted (actors are seen briefly from few cameras; 1 keeps them stable).
        lr_means: position learning rate in metres per step.
        lr_scales, lr_quats, lr_opacities, lr_sh0, lr_shN: the other learning rates (3DGS's).
        ssim_weight: weight of (1 - SSIM) in the loss.
        depth_margin: metres an actor may lie behind the set's surface and still be drawn over it.
        prune_opacity: Gaussians fainter than this are dropped after the frame.
    """

    iterations: int = 60
    sh_degree: int = 1
    lr_means: float = 2e-3
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 5e-3
    lr_shN: float = 2.5e-4
    ssim_weight: float = 0.2
    depth_margin: float = 0.05
    prune_opacity: float = 0.02


@dataclass(frozen=True)
class ActorFit:
    """One frame's actors and how well set + actors match the frames.

    Attributes:
        gaussians: the actor Gaussians (float32).
        psnr: per view, dB, composite vs frame over all pixels.
        loss: the last step's loss.
    """

    gaussians: Gaussians
    psnr: list[float] = field(default_factory=list)
    loss: float = math.nan


def actor_points_gaussians(
    points: torch.Tensor, colors: torch.Tensor, spacing: float, sh_degree: int, opacity: float = 0.5
) -> Gaussians:
    """Isotropic Gaussians on points (e.g. a visual hull's surface voxels).

    Args:
        points: [N, 3] world metres; colors: [N, 3] in [0, 1]; spacing: their distance, metres.
    """
    n = len(points)
    sh = torch.zeros(n, (sh_degree + 1) ** 2, 3)
    sh[:, 0] = rgb_to_sh_dc(colors.float())
    return Gaussians(
        points.float(),
        torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        torch.full((n, 3), math.log(spacing * 0.6)),
        torch.full((n,), math.log(opacity / (1 - opacity))),
        sh,
    )


def merge_gaussians(parts: Sequence[Gaussians]) -> Gaussians:
    """Concatenate Gaussians, zero-padding SH to the highest degree among them."""
    k = max(g.sh.shape[1] for g in parts)

    def padded(sh: torch.Tensor) -> torch.Tensor:
        return torch.cat([sh, sh.new_zeros(sh.shape[0], k - sh.shape[1], 3)], 1)

    return Gaussians(
        torch.cat([g.means for g in parts]),
        torch.cat([g.quats_wxyz for g in parts]),
        torch.cat([g.log_scales for g in parts]),
        torch.cat([g.logit_opacities for g in parts]),
        torch.cat([padded(g.sh) for g in parts]),
    )


def composite_over_set(
    actors_rgb: torch.Tensor,
    actors_alpha: torch.Tensor,
    actors_depth: torch.Tensor,
    set_rgb: torch.Tensor,
    set_depth: torch.Tensor,
    set_alpha: torch.Tensor,
    depth_margin: float,
) -> torch.Tensor:
    """Actors over the set with a per-pixel depth test.

    Args:
        actors_rgb: [B, H, W, 3] premultiplied (rendered on black); actors_alpha, actors_depth: [B, H, W].
        set_rgb: [B, H, W, 3]; set_depth, set_alpha: [B, H, W].

    Returns:
        [B, H, W, 3].
    """
    visible = ((set_alpha < 0.5) | (actors_depth < set_depth + depth_margin)).to(actors_rgb.dtype).detach()
    return actors_rgb * visible[..., None] + (1 - actors_alpha * visible)[..., None] * set_rgb


def fit_actors(
    views: Sequence[ActorView], init: Gaussians, config: ActorConfig = ActorConfig(), progress: ProgressFn | None = None
) -> ActorFit:
    """Fit one frame's actor Gaussians to every camera's frame over the frozen set.

    Args:
        views: the cameras at this instant (grouped by image size into batched renders).
        init: starting actors (the previous frame's, plus new points), SH of degree >= config.sh_degree
            (extra coefficients are fitted too and used by renders).
    """
    report = progress or no_progress
    if len(init) == 0:
        return ActorFit(init, [_psnr_no_actors(v) for v in views], math.nan)
    params = {
        "means": init.means,
        "quats": init.quats_wxyz,
        "scales": init.log_scales,
        "opacities": init.logit_opacities,
        "sh0": init.sh[:, :1],
        "shN": init.sh[:, 1:],
    }
    params = {k: torch.nn.Parameter(v.detach().clone()) for k, v in params.items()}
    rates = {
        "means": config.lr_means,
        "scales": config.lr_scales,
        "quats": config.lr_quats,
        "opacities": config.lr_opacities,
        "sh0": config.lr_sh0,
        "shN": config.lr_shN,
    }
    optimizer = torch.optim.Adam([{"params": [params[k]], "lr": rates[k]} for k in params], eps=1e-15)
    groups = [[views[i] for i in group] for group in group_by_size(views)]
    loss = torch.tensor(math.nan)
    for step in range(config.iterations):
        gaussians = Gaussians(
            params["means"],
            params["quats"],
            params["scales"],
            params["opacities"],
            torch.cat([params["sh0"], params["shN"]], 1),
        )
        loss = sum(_group_loss(gaussians, group, config) * len(group) for group in groups) / len(views)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        report("fitting actors", step + 1, config.iterations)
    fitted = Gaussians(
        *(p.detach() for p in (params["means"], params["quats"], params["scales"], params["opacities"])),
        torch.cat([params["sh0"], params["shN"]], 1).detach(),
    )
    fitted = select_gaussians(fitted, fitted.opacities > config.prune_opacity)
    with torch.no_grad():
        scores = [
            psnr(composite, target)
            for group in groups
            for composite, target in zip(
                render_over_set(fitted, group, config.sh_degree, config.depth_margin)[1], stacked(group, "image")
            )
        ]
    return ActorFit(fitted, scores, float(loss.detach()))


def group_by_size(views: Sequence[ActorView]) -> list[list[int]]:
    """Indices of the views in groups of one image size (one batched render each), in order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, v in enumerate(views):
        groups.setdefault(tuple(v.image.shape[:2]), []).append(i)
    return list(groups.values())


def stacked(group: Sequence[ActorView], name: str) -> torch.Tensor:
    """[B, H, W, ...] the attribute `name` ("image", "set_rgb", "set_depth", "set_alpha") of a group."""
    return torch.stack([getattr(v, name) for v in group])


def render_over_set(
    gaussians: Gaussians, group: Sequence[ActorView], sh_degree: int, depth_margin: float
) -> tuple[SplatRender, torch.Tensor]:
    """Render the actors into B views of one image size in one batched call, composited over the set.

    Returns:
        The actors' render (rgb [B, H, W, 3] on black, alpha and depth [B, H, W]) and the composite
        [B, H, W, 3] (`composite_over_set` with `depth_margin`, metres).
    """
    cameras = Camera.cat([v.camera.renamed([f"v{i}"]) for i, v in enumerate(group)])
    out = rasterize(gaussians, cameras, sh_degree=min(sh_degree, gaussians.sh_degree))
    composite = composite_over_set(
        out.rgb,
        out.alpha,
        out.depth,
        stacked(group, "set_rgb"),
        stacked(group, "set_depth"),
        stacked(group, "set_alpha"),
        depth_margin,
    )
    return out, composite


def _group_loss(gaussians: Gaussians, group: Sequence[ActorView], config: ActorConfig) -> torch.Tensor:
    _, composite = render_over_set(gaussians, group, config.sh_degree, config.depth_margin)
    target = stacked(group, "image")
    return masked_loss(composite, target, torch.ones(target.shape[:3]), config.ssim_weight)


def _psnr_no_actors(view: ActorView) -> float:
    return psnr(view.set_rgb, view.image)


def colors_at(
    points: torch.Tensor, cameras: Camera, images: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Mean colour of points over the cameras whose mask is set at their projection.

    Args:
        points: [N, 3] world; images: V × [H, W, 3]; masks: V × [H, W] bool.

    Returns:
        [N, 3] in [0, 1] (grey where no camera's mask holds).
    """
    hits = cameras.pixel_hits(points)
    total = torch.zeros(len(points), 3)
    count = torch.zeros(len(points), 1)
    for v, (image, mask) in enumerate(zip(images, masks)):
        rows, cols = hits.rows[v], hits.cols[v]
        ok = hits.inside[v] & mask[rows, cols]
        total += image[rows, cols] * ok[:, None]
        count += ok[:, None].float()
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, 0.5))
