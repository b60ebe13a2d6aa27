"""Actors that persist through the take (after Dynamic 3D Gaussians, Luiten et al. 2024).

Each character is one set of Gaussians that lives from its first frame to its last: colour, scale
and opacity are shared over time, position and rotation are per frame. Every frame therefore borrows
what the other frames saw, and a body keeps its shape where a frame's cameras do not see it.

Fitting, over the frozen static set (actors composited over its render, as `fit_actors` does):
1. **Start**: at its first frame a character's Gaussians (from its visual hull) are fitted whole.
2. **Track**: each next frame starts where the motion so far leads (its track's floor displacement
   on its second frame, constant velocity after) and fits positions and rotations only, held together by local rigidity (a
   neighbour's offset, seen in a Gaussian's own frame, stays what it was a frame before), rotation
   similarity (neighbours turn alike) and isometry (neighbours keep their distances from the first
   frame), D3DGS's three losses.
3. **Refine**: random frames, all parameters. Gaussians whose centre falls on background (outside
   every foreground silhouette, where the set does not hide it) in too many of the views that see
   them, or that fewer than MIN_VIEWS views see at all, are ghosts of the hull and are pruned before,
   and faint ones after. Also before, each frame hides the Gaussians that `cull_views` of its views
   see through (outside their silhouettes): that frame only.

A character is a body about its track: the start's Gaussians farther than `body_radius` from the
track's vertical axis are dropped, a body loss (metres beyond that radius) holds the others near it in
every phase, and those beyond it in most of their frames are pruned. Few cameras leave a body free to
spread along their rays (anything along a ray that shows the body's colour in one view and hides
behind it in the others fits them all); the track, placed under the head from every view, is where
the body is.

Losses: photometric ((1 - w) L1 + w (1 - SSIM) of the composite against the frame) and silhouette (L1
between the actors' coverage and the foreground mask, where the set does not stand in front).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import Camera
from ..progress import ProgressFn, no_progress
from .actors import ActorView, group_by_size, render_over_set, stacked
from .gaussians import Gaussians, rotation_matrices, select_gaussians
from .train import masked_loss, psnr

MIN_VIEWS = 2  # an actor Gaussian needs at least this many views (over all frames) that see it


@dataclass(frozen=True)
class FrameViews:
    """The cameras at one take frame.

    Attributes:
        frame: the take frame number.
        views: the V cameras with their image and the frozen set's render (may be empty: the frame is
            then only carried along the tracks).
        foreground: V x [H, W] bool, pixels that differ from the clean plate (moving things).
    """

    frame: int
    views: list[ActorView]
    foreground: list[torch.Tensor]


@dataclass(frozen=True)
class CharacterStart:
    """One character to follow.

    Attributes:
        first: index (into the frames) of its first frame.
        floor: [T_c, 2] its floor position (world x, y) in its frames first, first + 1, ...: the track.
        gaussians: its Gaussians at its first frame (e.g. on its visual hull's surface).
    """

    first: int
    floor: np.ndarray
    gaussians: Gaussians

    @property
    def last(self) -> int:
        """Index of its last frame."""
        return self.first + len(self.floor) - 1

    def within(self, radius: float) -> CharacterStart:
        """This start without the Gaussians farther than `radius` metres (horizontally) from the track's
        vertical axis at its first frame."""
        offset = self.gaussians.means[:, :2].double() - torch.as_tensor(self.floor[0], dtype=torch.float64)
        keep = offset.norm(dim=-1) <= radius
        return CharacterStart(self.first, self.floor, select_gaussians(self.gaussians, keep))


@dataclass(frozen=True)
class PersistentConfig:
    """Settings of `fit_persistent_actors`.

    Attributes:
        start_iterations: steps that fit a character whole at its first frame.
        track_iterations: steps per frame that fit positions and rotations.
        refine_iterations: steps over random frames that fit everything.
        sh_degree: SH degree fitted.
        lr_means: position learning rate (metres per step); lr_quats, lr_scales, lr_opacities, lr_sh0,
            lr_shN: the others (3DGS's).
        ssim_weight: weight of (1 - SSIM) in the photometric loss (0: L1 alone; SSIM's windowed sums
            cost twice the rendering on the CPU).
        silhouette_weight: weight of the silhouette loss.
        opacity_weight: weight of the mean opacity in the loss (Gaussians no view needs fade).
        rigidity_weight, rotation_weight, isometry_weight: weights of D3DGS's losses.
        body_radius: metres from its track's vertical axis within which a character's Gaussians are
            expected (a standing or walking body); a start's Gaussians beyond it are dropped, those that
            move beyond it are pulled back by the body loss and, beyond it in more than `ghost_share` of
            their frames, pruned as ghosts.
        body_weight: weight of the body loss (mean over Gaussians of metres beyond `body_radius`).
        neighbours: neighbours per Gaussian in those losses (k nearest at the character's first frame).
        depth_margin: metres an actor may lie behind the set's surface and still be drawn over it.
        ghost_share: Gaussians outside the silhouettes in more than this share of the views that see
            them are pruned, and those beyond `body_radius` in more than this share of their frames.
        cull_views: after the frame-by-frame pass (with the ghost rule, before the refine steps), a
            Gaussian is hidden in each frame where at least this many views see its centre outside
            their (slightly grown) silhouettes, unhidden by the set: that frame's views see through it
            (0: never hidden this way).
        prune_opacity: Gaussians fainter than this are pruned at the end.
        crop_margin: pixels around each view's foreground that the losses look at (the rest of the
            picture is the set's, the same whatever the actors do, and is not rendered while fitting).
        seed: the refine pass's frame order.
    """

    start_iterations: int = 200
    track_iterations: int = 30
    refine_iterations: int = 400
    sh_degree: int = 1
    lr_means: float = 2e-3
    lr_quats: float = 1e-3
    lr_scales: float = 5e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 5e-3
    lr_shN: float = 2.5e-4
    ssim_weight: float = 0.0
    silhouette_weight: float = 0.5
    opacity_weight: float = 0.01
    rigidity_weight: float = 4.0
    rotation_weight: float = 4.0
    isometry_weight: float = 2.0
    body_radius: float = 0.45
    body_weight: float = 1.0
    neighbours: int = 8
    depth_margin: float = 0.05
    ghost_share: float = 0.5
    cull_views: int = 0
    prune_opacity: float = 0.02
    crop_margin: int = 24
    seed: int = 0


@dataclass(frozen=True)
class PersistentActors:
    """Actors through the take.

    Attributes:
        shared: N Gaussians holding the shared parameters (sh, scales, opacities; means and rotations
            of their first frame).
        character: [N] int64, the index of the character (into the starts) each Gaussian belongs to.
        means: [T, N, 3] world positions per frame.
        quats_wxyz: [T, N, 4] rotations per frame.
        alive: [T, N] bool, whether a Gaussian exists in a frame (its character's frames).
        psnr: per frame, per view, dB of set + actors against the frame (fitting resolution).
        pruned: Gaussians removed by reason ("ghost", "off_body": beyond the body radius, "faint").
    """

    shared: Gaussians
    character: torch.Tensor
    means: torch.Tensor
    quats_wxyz: torch.Tensor
    alive: torch.Tensor
    psnr: list[list[float]] = field(default_factory=list)
    pruned: dict[str, int] = field(default_factory=dict)

    def at(self, index: int) -> Gaussians:
        """The actors of frame `index` (into the frames), as Gaussians."""
        keep = self.alive[index]
        return Gaussians(
            self.means[index][keep],
            self.quats_wxyz[index][keep],
            self.shared.log_scales[keep],
            self.shared.logit_opacities[keep],
            self.shared.sh[keep],
        )

    def characters_at(self, index: int) -> torch.Tensor:
        """[N_alive] the character index of each Gaussian of `at(index)`."""
        return self.character[self.alive[index]]


class _Neighbours:
    """k nearest neighbours within each character (at its first frame) and their weights."""

    def __init__(self, means: torch.Tensor, character: torch.Tensor, k: int):
        from scipy.spatial import cKDTree

        n = len(means)
        index = torch.zeros(n, k, dtype=torch.long)
        weight = torch.zeros(n, k)
        for c in torch.unique(character).tolist():
            members = torch.nonzero(character == c).flatten()
            if len(members) < 2:
                continue
            kk = min(k, len(members) - 1)
            distance, found = cKDTree(means[members].double().numpy()).query(means[members].double().numpy(), kk + 1)
            distance, found = torch.from_numpy(distance[:, 1:]).float(), torch.from_numpy(found[:, 1:])
            sigma2 = float(distance.square().median().clamp_min(1e-8))
            index[members, :kk] = members[found]
            weight[members, :kk] = torch.exp(-distance.square() / (2 * sigma2))
        self.index, self.weight = index, weight
        self.rest = (means[index] - means[:, None]).norm(dim=-1)  # [N, k] distances at the first frame


def _gathered(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [N, D] at index [M, k] → [M, k, D]. `values[index]` would do, but its backward on the CPU
    accumulates repeated indices with atomic adds in parallel (a different sum each run); the backward
    of `index_select` adds them in order, so the stage gives the same bytes every run."""
    return values.index_select(0, index.flatten()).view(*index.shape, values.shape[-1])


def _quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def rigidity_losses(
    means: torch.Tensor,
    quats: torch.Tensor,
    previous_means: torch.Tensor,
    previous_quats: torch.Tensor,
    neighbours: _Neighbours,
    members: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D3DGS's local rigidity, rotation similarity and isometry losses of the Gaussians `members`.

    Args:
        means, quats: [N, 3], [N, 4] this frame; previous_means, previous_quats: the frame before (constants).
        neighbours: the neighbour graph; members: [M] indices of the Gaussians to score (alive in both frames).

    Returns:
        (rigidity, rotation, isometry), each a weighted mean over member-neighbour pairs (metres, or
        quaternion distance).
    """
    if len(members) == 0:
        zero = means.sum() * 0
        return zero, zero, zero
    j = neighbours.index[members]  # [M, k]
    w = neighbours.weight[members]
    total = w.sum().clamp_min(1e-8)
    offset = _gathered(means, j) - means[members, None]  # [M, k, 3]
    previous_offset = previous_means[j] - previous_means[members, None]
    # The neighbour's offset seen in the Gaussian's own frame stays what it was: R_prev R_now^T offset.
    relative = rotation_matrices(previous_quats[members]) @ rotation_matrices(quats[members]).transpose(-1, -2)
    rigidity = (w * (previous_offset - offset @ relative.transpose(-1, -2)).norm(dim=-1)).sum() / total
    q = quats / quats.norm(dim=-1, keepdim=True)
    q_previous = previous_quats / previous_quats.norm(dim=-1, keepdim=True)
    conjugate = q_previous * torch.tensor([1.0, -1.0, -1.0, -1.0])
    turn = _quat_multiply(q, conjugate)  # [N, 4] rotation since the frame before
    rotation = (w * (_gathered(turn, j) - turn[members, None]).norm(dim=-1)).sum() / total
    isometry = (w * (offset.norm(dim=-1) - neighbours.rest[members]).abs()).sum() / total
    return rigidity, rotation, isometry


def _frame_loss(gaussians: Gaussians, frame: FrameViews, config: PersistentConfig) -> tuple[torch.Tensor, list]:
    """Photometric + silhouette loss of one frame (mean over views of each view's mean over its pixels),
    and the composites per view. The views of one image size (after `cropped`, all that have
    foreground) are rendered in one batched call: one projection and one rasterization instead of one
    per view, and a few large tensor ops instead of many small ones."""
    loss = gaussians.means.sum() * 0
    composites: list[torch.Tensor] = [torch.empty(0)] * len(frame.views)
    for group in group_by_size(frame.views):
        views = [frame.views[i] for i in group]
        out, composite = render_over_set(gaussians, views, config.sh_degree, config.depth_margin)
        set_depth, set_alpha = stacked(views, "set_depth"), stacked(views, "set_alpha")
        target = stacked(views, "image")
        foreground = torch.stack([frame.foreground[i] for i in group])
        photometric = masked_loss(composite, target, torch.ones(target.shape[:3]), config.ssim_weight)
        unhidden = ((set_alpha < 0.5) | (out.depth < set_depth + config.depth_margin) | ~foreground).float().detach()
        silhouette = ((out.alpha - foreground.float()).abs() * unhidden).mean()
        loss = loss + len(group) * (photometric + config.silhouette_weight * silhouette)
        for i, image in zip(group, composite):
            composites[i] = image
    loss = loss / max(len(frame.views), 1)
    return loss + config.opacity_weight * gaussians.opacities.mean(), composites


def cropped(frame: FrameViews, margin: int) -> FrameViews:
    """The frame with each view cut down to a window around its foreground: the foreground's bounding
    box grown by `margin` pixels, then to the largest such box among the views of its image size
    (centred on its own box, moved inside the picture), so that those views render in one batched call.
    A view without foreground keeps its whole picture."""
    boxes: list[tuple[int, int, int, int] | None] = []
    for foreground in frame.foreground:
        rows = torch.nonzero(foreground.any(1)).flatten()
        cols = torch.nonzero(foreground.any(0)).flatten()
        if len(rows) == 0:
            boxes.append(None)
            continue
        h, w = foreground.shape
        top, bottom = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, h)
        left, right = max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, w)
        boxes.append((top, bottom, left, right))
    sizes: dict[tuple[int, ...], tuple[int, int]] = {}  # image size -> window size
    for foreground, box in zip(frame.foreground, boxes):
        if box is not None:
            height, width = sizes.get(tuple(foreground.shape), (0, 0))
            sizes[tuple(foreground.shape)] = (max(height, box[1] - box[0]), max(width, box[3] - box[2]))
    views, masks = [], []
    for view, foreground, box in zip(frame.views, frame.foreground, boxes):
        if box is None:
            views.append(view)
            masks.append(foreground)
            continue
        (h, w), (height, width) = foreground.shape, sizes[tuple(foreground.shape)]
        top = min(max((box[0] + box[1] - height) // 2, 0), h - height)
        left = min(max((box[2] + box[3] - width) // 2, 0), w - width)
        bottom, right = top + height, left + width
        window = (slice(top, bottom), slice(left, right))
        views.append(
            ActorView(
                view.camera.cropped(left, top, right - left, bottom - top),
                view.image[window],
                view.set_rgb[window],
                view.set_depth[window],
                view.set_alpha[window],
            )
        )
        masks.append(foreground[window])
    return FrameViews(frame.frame, views, masks)


class _Fit:
    """The parameters being fitted: shared appearance and per-frame motion, each with its own Adam."""

    def __init__(self, starts: Sequence[CharacterStart], frames: int, config: PersistentConfig):
        parts = [s.gaussians for s in starts]
        k = (config.sh_degree + 1) ** 2
        sh = torch.cat(
            [torch.cat([g.sh[:, :k], g.sh.new_zeros(len(g), max(k - g.sh.shape[1], 0), 3)], 1) for g in parts]
        )
        self.character = torch.cat([torch.full((len(g),), c, dtype=torch.long) for c, g in enumerate(parts)])
        n = len(self.character)
        self.alive = torch.zeros(frames, n, dtype=torch.bool)
        offset = 0
        for s in starts:
            self.alive[s.first : s.last + 1, offset : offset + len(s.gaussians)] = True
            offset += len(s.gaussians)
        # [T, C, 2] each track's floor point (float64 as given; NaN outside the character's frames)
        self.axes = torch.full((frames, len(starts), 2), float("nan"), dtype=torch.float64)
        for c, s in enumerate(starts):
            self.axes[s.first : s.last + 1, c] = torch.as_tensor(s.floor, dtype=torch.float64)
        self.first_means = torch.cat([g.means for g in parts]).float()
        self.first_quats = torch.cat([g.quats_wxyz for g in parts]).float()
        self.shared = {
            "sh0": sh[:, :1],
            "shN": sh[:, 1:],
            "scales": torch.cat([g.log_scales for g in parts]),
            "opacities": torch.cat([g.logit_opacities for g in parts]),
        }
        self.shared = {name: torch.nn.Parameter(v.detach().clone().float()) for name, v in self.shared.items()}
        rates = {
            "sh0": config.lr_sh0,
            "shN": config.lr_shN,
            "scales": config.lr_scales,
            "opacities": config.lr_opacities,
        }
        self.shared_optimizer = torch.optim.Adam(
            [{"params": [p], "lr": rates[k]} for k, p in self.shared.items()], eps=1e-15
        )
        self.means = [torch.nn.Parameter(self.first_means.clone()) for _ in range(frames)]
        self.quats = [torch.nn.Parameter(self.first_quats.clone()) for _ in range(frames)]
        self.motion_optimizers = [
            torch.optim.Adam(
                [{"params": [m], "lr": config.lr_means}, {"params": [q], "lr": config.lr_quats}], eps=1e-15
            )
            for m, q in zip(self.means, self.quats)
        ]

    def gaussians(self, t: int) -> Gaussians:
        keep = self.alive[t]
        return Gaussians(
            self.means[t][keep],
            self.quats[t][keep],
            self.shared["scales"][keep],
            self.shared["opacities"][keep],
            torch.cat([self.shared["sh0"], self.shared["shN"]], 1)[keep],
        )

    def off_axis(self, t: int) -> torch.Tensor:
        """[N_alive] horizontal distance (metres) of each Gaussian alive at frame t from its track's axis."""
        keep = self.alive[t]
        return (self.means[t][keep][:, :2] - self.axes[t, self.character[keep]].float()).norm(dim=-1)

    def floor_step(self, t: int, character: torch.Tensor) -> torch.Tensor:
        """[M, 3] the track's floor displacement from frame t - 1 to t of each character in `character`
        [M] (zero where a track does not span both frames)."""
        step = (self.axes[t] - self.axes[t - 1]).nan_to_num(0.0).float()  # [C, 2]
        return torch.nn.functional.pad(step, (0, 1))[character]

    def step_all(self, t: int) -> None:
        """One optimizer step of the shared parameters and of frame `t`'s motion, gradients cleared."""
        for optimizer in (self.shared_optimizer, self.motion_optimizers[t]):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the Gaussians where `mask` [N] is False, everywhere (optimizer state restarts)."""
        self.character, self.alive = self.character[mask], self.alive[:, mask]
        self.first_means, self.first_quats = self.first_means[mask], self.first_quats[mask]
        rates = [g["lr"] for g in self.shared_optimizer.param_groups]
        self.shared = {k: torch.nn.Parameter(v.detach()[mask]) for k, v in self.shared.items()}
        self.shared_optimizer = torch.optim.Adam(
            [{"params": [p], "lr": r} for p, r in zip(self.shared.values(), rates)], eps=1e-15
        )
        lrs = [g["lr"] for g in self.motion_optimizers[0].param_groups]
        self.means = [torch.nn.Parameter(m.detach()[mask]) for m in self.means]
        self.quats = [torch.nn.Parameter(q.detach()[mask]) for q in self.quats]
        self.motion_optimizers = [
            torch.optim.Adam([{"params": [m], "lr": lrs[0]}, {"params": [q], "lr": lrs[1]}], eps=1e-15)
            for m, q in zip(self.means, self.quats)
        ]


def fit_persistent_actors(
    frames: Sequence[FrameViews],
    starts: Sequence[CharacterStart],
    config: PersistentConfig = PersistentConfig(),
    progress: ProgressFn | None = None,
) -> PersistentActors:
    """Fit characters that persist through the take (see the module docstring).

    Args:
        frames: T frames in take order, each with its views over the frozen set and foreground masks.
        starts: the characters: first frame, track, initial Gaussians.

    Returns:
        The actors, with every frame's positions and rotations.
    """
    report = progress or no_progress
    full_frames, frames = frames, [cropped(f, config.crop_margin) for f in frames]
    off_body_start = sum(len(s.gaussians) for s in starts)
    starts = [s.within(config.body_radius) for s in starts]
    off_body_start -= sum(len(s.gaussians) for s in starts)
    fit = _Fit(starts, len(frames), config)
    total = len(frames) * config.track_iterations + len(starts) * config.start_iterations + config.refine_iterations
    done = 0
    neighbours: _Neighbours | None = None
    for t, frame in enumerate(frames):
        starting = [c for c, s in enumerate(starts) if s.first == t]
        with torch.no_grad():  # the frame starts where the motion so far leads (constant velocity, as D3DGS)
            if t > 0:
                carried = fit.alive[t] & fit.alive[t - 1]
                steady = carried & (fit.alive[t - 2] if t > 1 else torch.zeros_like(carried))
                fresh = carried & ~steady
                fit.means[t][fresh] = fit.means[t - 1][fresh] + fit.floor_step(t, fit.character[fresh])
                fit.quats[t][fresh] = fit.quats[t - 1][fresh]
                fit.means[t][steady] = 2 * fit.means[t - 1][steady] - fit.means[t - 2][steady]
                fit.quats[t][steady] = torch.nn.functional.normalize(
                    2 * fit.quats[t - 1][steady] - fit.quats[t - 2][steady], dim=-1
                )
        if starting and frame.views:
            new = torch.isin(fit.character, torch.tensor(starting))
            for _ in range(config.start_iterations):
                loss, _ = _frame_loss(fit.gaussians(t), frame, config)
                loss = loss + config.body_weight * _body_loss(fit, t, config)
                loss.backward()
                _mask_shared_grads(fit, new)
                fit.step_all(t)
                done += 1
                report("fitting actors", done, total)
            with torch.no_grad():
                fit.first_means[new] = fit.means[t][new]
                fit.first_quats[new] = fit.quats[t][new]
        if starting or neighbours is None:
            neighbours = _Neighbours(fit.first_means, fit.character, config.neighbours)
        tracked = fit.alive[t] & (fit.alive[t - 1] if t > 0 else torch.zeros_like(fit.alive[t]))
        members = torch.nonzero(tracked).flatten()
        for _ in range(config.track_iterations if frame.views and t > 0 else 0):
            loss = _motion_loss(fit, frame, t, members, neighbours, config)
            loss.backward()
            fit.motion_optimizers[t].step()
            fit.motion_optimizers[t].zero_grad(set_to_none=True)
            done += 1
            report("fitting actors", done, total)

    seen, outside = _silhouette_counts(fit, full_frames, config)
    ghosts, off_body = _ghosts(seen, outside, config), _off_body(fit, config)
    kept = ~(ghosts | off_body)
    fit.keep(kept)
    if config.cull_views > 0:
        culled = (outside[:, kept] >= config.cull_views) & fit.alive
        fit.alive &= ~culled
    neighbours = _Neighbours(fit.first_means, fit.character, config.neighbours)
    rng = np.random.default_rng(config.seed)
    with_views = [t for t, f in enumerate(frames) if f.views and bool(fit.alive[t].any())]
    for _ in range(config.refine_iterations if with_views else 0):
        t = int(rng.choice(with_views))
        members = torch.nonzero(
            fit.alive[t] & (fit.alive[t - 1] if t > 0 else torch.zeros_like(fit.alive[t]))
        ).flatten()
        loss = _motion_loss(fit, frames[t], t, members, neighbours, config)
        loss.backward()
        fit.step_all(t)
        done += 1
        report("fitting actors", done, total)

    faint = torch.sigmoid(fit.shared["opacities"].detach()) <= config.prune_opacity
    fit.keep(~faint)
    scores = []
    with torch.no_grad():
        for t, frame in enumerate(full_frames):
            _, composites = _frame_loss(fit.gaussians(t), frame, config)
            scores.append([psnr(c, v.image) for c, v in zip(composites, frame.views)])
    shared = Gaussians(
        fit.first_means,
        fit.first_quats,
        fit.shared["scales"].detach(),
        fit.shared["opacities"].detach(),
        torch.cat([fit.shared["sh0"], fit.shared["shN"]], 1).detach(),
    )
    return PersistentActors(
        shared,
        fit.character,
        torch.stack([m.detach() for m in fit.means]),
        torch.stack([q.detach() for q in fit.quats]),
        fit.alive,
        scores,
        {
            "ghost": int((ghosts & ~off_body).sum()),
            "off_body": off_body_start + int(off_body.sum()),
            "faint": int(faint.sum()),
            **({"culled_frames": int(culled.sum())} if config.cull_views > 0 else {}),
        },
    )


def _mask_shared_grads(fit: _Fit, keep: torch.Tensor) -> None:
    """Only the Gaussians `keep` [N] learn their appearance now (the others' was fitted before)."""
    for p in fit.shared.values():
        if p.grad is not None:
            p.grad[~keep] = 0


def _motion_loss(
    fit: _Fit, frame: FrameViews, t: int, members: torch.Tensor, neighbours: _Neighbours, config: PersistentConfig
) -> torch.Tensor:
    loss, _ = _frame_loss(fit.gaussians(t), frame, config)
    loss = loss + config.body_weight * _body_loss(fit, t, config)
    if t > 0 and len(members):
        rigidity, rotation, isometry = rigidity_losses(
            fit.means[t], fit.quats[t], fit.means[t - 1].detach(), fit.quats[t - 1].detach(), neighbours, members
        )
        loss = (
            loss
            + config.rigidity_weight * rigidity
            + config.rotation_weight * rotation
            + config.isometry_weight * isometry
        )
    return loss


def _body_loss(fit: _Fit, t: int, config: PersistentConfig) -> torch.Tensor:
    """Mean over the Gaussians alive at frame t of the metres they lie beyond the body radius."""
    beyond = (fit.off_axis(t) - config.body_radius).clamp_min(0)
    return beyond.mean() if len(beyond) else beyond.sum()


@torch.no_grad()
def _off_body(fit: _Fit, config: PersistentConfig) -> torch.Tensor:
    """[N] bool: Gaussians beyond the body radius in more than `ghost_share` of their frames."""
    beyond = torch.zeros(len(fit.character))
    for t in range(len(fit.alive)):
        beyond[fit.alive[t]] += (fit.off_axis(t) > config.body_radius).float()
    return beyond > config.ghost_share * fit.alive.sum(0).clamp_min(1)


@torch.no_grad()
def _silhouette_counts(
    fit: _Fit, frames: Sequence[FrameViews], config: PersistentConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame and Gaussian, the views that see its centre unhidden by the set, and of those the views
    where it lands outside the (slightly grown) silhouette: ([T, N], [T, N]) int64."""
    seen = torch.zeros(fit.alive.shape, dtype=torch.int64)
    outside = torch.zeros(fit.alive.shape, dtype=torch.int64)
    for t, frame in enumerate(frames):
        alive = torch.nonzero(fit.alive[t]).flatten()
        if not frame.views or len(alive) == 0:
            continue
        cameras = Camera.cat([v.camera.renamed([f"v{i}"]) for i, v in enumerate(frame.views)])
        hits = cameras.pixel_hits(fit.means[t][alive])
        for v, (view, foreground) in enumerate(zip(frame.views, frame.foreground)):
            rows, cols, inside = hits.rows[v], hits.cols[v], hits.inside[v]
            grown = torch.nn.functional.max_pool2d(foreground[None, None].float(), 5, 1, 2)[0, 0] > 0
            set_depth = view.set_depth[rows, cols]
            hidden = (view.set_alpha[rows, cols] >= 0.5) & (hits.depth[v] > set_depth + config.depth_margin)
            counted = inside & ~hidden
            seen[t, alive] += counted.long()
            outside[t, alive] += (counted & ~grown[rows, cols]).long()
    return seen, outside


def _ghosts(seen: torch.Tensor, outside: torch.Tensor, config: PersistentConfig) -> torch.Tensor:
    """[N] bool: Gaussians that fewer than MIN_VIEWS views see over all frames, or whose centre lands
    outside the silhouettes in more than `ghost_share` of the views that see it (`_silhouette_counts`
    [T, N] each)."""
    seen, outside = seen.sum(0), outside.sum(0)
    return (seen < MIN_VIEWS) | (outside > config.ghost_share * seen.clamp_min(1))
