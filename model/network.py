"""The unified video model: every modality as tokens in one sequence, one transformer, a patch head.

Sequence of one window (B windows batched):
    [source tokens of V views] + [target tokens of T frames]
Source token  = Linear(patch of rgb + Plücker rays) + 2D patch position + time(t_v) + modality "source".
Target token  = Linear(patch of render rgb + inverse depth + alpha + entity embedding + Plücker rays)
                + 2D patch position + time(t) + modality "target".
All tokens attend to all (no separate towers); the target tokens' outputs are unpatchified into
per-pixel features, and a two-layer 3×3 refiner (which also sees the render and its coverage) writes
a correction that is added to the render (scaled by the config's `correction_scale`; with
`keep_exposure`, less its mean over the frame). The last layer starts at zero, so an untrained model
returns the render itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .inputs import ShotWindow

SOURCE, TARGET = 0, 1


def sincos(values: torch.Tensor, dim: int, period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of scalars: [...] → [..., dim] (dim even)."""
    half = dim // 2
    freqs = torch.exp(-math.log(period) * torch.arange(half, dtype=torch.float32, device=values.device) / half)
    angles = values.float()[..., None] * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def patch_positions(rows: int, cols: int, dim: int, device) -> torch.Tensor:
    """Fixed 2D sin-cos position of each patch, [rows * cols, dim]; coordinates in units of the grid size
    (so a larger image at inference keeps the same spread of positions)."""
    r, c = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
    scale = 64.0 / max(rows, cols)
    return torch.cat(
        [sincos(r.reshape(-1) * scale, dim // 2, 256.0), sincos(c.reshape(-1) * scale, dim // 2, 256.0)], dim=-1
    )


def patchify(images: torch.Tensor, patch: int) -> tuple[torch.Tensor, int, int]:
    """[N, C, H, W] → ([N, rows * cols, C * patch²], rows, cols), zero-padding H and W up to the patch."""
    n, c, h, w = images.shape
    rows, cols = -(-h // patch), -(-w // patch)
    images = F.pad(images, (0, cols * patch - w, 0, rows * patch - h))
    tokens = images.reshape(n, c, rows, patch, cols, patch).permute(0, 2, 4, 1, 3, 5)
    return tokens.reshape(n, rows * cols, c * patch * patch), rows, cols


def unpatchify(tokens: torch.Tensor, rows: int, cols: int, patch: int, height: int, width: int) -> torch.Tensor:
    """[N, rows * cols, C * patch²] → [N, C, height, width] (padding cropped)."""
    n, _, d = tokens.shape
    c = d // (patch * patch)
    images = tokens.reshape(n, rows, cols, c, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return images.reshape(n, c, rows * patch, cols * patch)[:, :, :height, :width]


class UnifiedVideoModel(nn.Module):
    """Reads a `ShotWindow`, writes the target frames [B, T, 3, H, W] (not clamped; clamp for display)."""

    TARGET_CHANNELS = 3 + 1 + 1 + 6  # rgb, inverse depth, alpha, Plücker (+ entity_dim)
    SOURCE_CHANNELS = 3 + 6

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        p, d = config.patch, config.dim
        self.entity_embedding = nn.Embedding(config.entity_slots, config.entity_dim)
        self.target_embed = nn.Linear((self.TARGET_CHANNELS + config.entity_dim) * p * p, d)
        self.source_embed = nn.Linear(self.SOURCE_CHANNELS * p * p, d)
        self.modality = nn.Parameter(torch.zeros(2, d))
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        layer = nn.TransformerEncoderLayer(
            d,
            config.heads,
            int(d * config.mlp_ratio),
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.backbone = nn.TransformerEncoder(layer, config.depth, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.head = nn.Linear(d, config.head_features * p * p)
        self.refine = nn.Sequential(
            nn.Conv2d(config.head_features + 4, config.refine_channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(config.refine_channels, 3, 3, padding=1),
        )
        nn.init.normal_(self.modality, std=0.02)
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def _entity_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Entity id → embedding row: none (-1) is row 0, id k is row 1 + k mod (slots - 1)."""
        slots = self.config.entity_slots
        if slots == 1:
            return torch.zeros_like(ids)
        return torch.where(ids < 0, torch.zeros_like(ids), 1 + ids.clamp_min(0) % (slots - 1))

    def _tokens(self, images: torch.Tensor, times: torch.Tensor, embed: nn.Linear, modality: int):
        """[B, N, C, H, W] images and [B, N] times → ([B, N * rows * cols, dim], rows, cols)."""
        b, n, c, h, w = images.shape
        tokens, rows, cols = patchify(images.reshape(b * n, c, h, w), self.config.patch)
        tokens = embed(tokens) + patch_positions(rows, cols, self.config.dim, images.device)
        tokens = tokens + self.time_mlp(sincos(times.reshape(b * n), self.config.dim, 64.0))[:, None, :]
        tokens = tokens + self.modality[modality]
        return tokens.reshape(b, n * rows * cols, -1), rows, cols

    def forward(self, window: ShotWindow) -> torch.Tensor:
        """Args: a ShotWindow. Returns: [B, T, 3, H, W] frames (render + correction)."""
        b, t, _, h, w = window.render_rgb.shape
        depth = window.render_depth
        inverse_depth = torch.where(depth > 0, 1.0 / (1.0 + depth.clamp_min(0)), torch.zeros_like(depth))
        entities = self.entity_embedding(self._entity_rows(window.entity_ids)).permute(0, 1, 4, 2, 3)
        target = torch.cat([window.render_rgb, inverse_depth, window.render_alpha, entities, window.target_rays], dim=2)
        source = torch.cat([window.source_rgb, window.source_rays], dim=2)
        target_tokens, rows, cols = self._tokens(target, window.target_time, self.target_embed, TARGET)
        source_tokens, _, _ = self._tokens(source, window.source_time, self.source_embed, SOURCE)
        sequence = self.backbone(torch.cat([source_tokens, target_tokens], dim=1))
        out = self.head(sequence[:, source_tokens.shape[1] :])  # [B, T * rows * cols, F * p²]
        features = unpatchify(out.reshape(b * t, rows * cols, -1), rows, cols, self.config.patch, h, w)
        render = window.render_rgb.reshape(b * t, 3, h, w)
        alpha = window.render_alpha.reshape(b * t, 1, h, w)
        correction = self.refine(torch.cat([features, render, alpha], dim=1))
        if self.config.keep_exposure:
            correction = correction - correction.mean(dim=(2, 3), keepdim=True)
        return (render + self.config.correction_scale * correction).reshape(b, t, 3, h, w)
