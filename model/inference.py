"""Running the model over a whole shot: overlapping windows, blended, at the model's working scale."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .inputs import ShotWindow, area_resized
from .network import UnifiedVideoModel


def plan_windows(count: int, window: int, overlap: int) -> list[list[int]]:
    """Index lists of consecutive windows covering 0..count-1, consecutive ones sharing `overlap` frames
    (the last window is moved back to stay full when it can)."""
    if count <= window:
        return [list(range(count))]
    step = window - overlap
    starts = list(range(0, count - window + 1, step))
    if starts[-1] + window < count:
        starts.append(count - window)
    return [list(range(s, s + window)) for s in starts]


def blend_weights(length: int) -> np.ndarray:
    """[length] weights of a window's frames when overlapping windows are averaged: highest in the middle,
    so each frame leans on the window where it has the most context on both sides."""
    i = np.arange(length, dtype=np.float64)
    return 1.0 + np.minimum(i, length - 1 - i)


def working_size(width: int, height: int, working_pixels: int) -> tuple[int, int]:
    """(w, h) at which the model reads a frame of width × height: unchanged up to working_pixels, else scaled
    down to about that many pixels, aspect kept."""
    if width * height <= working_pixels:
        return width, height
    factor = (working_pixels / (width * height)) ** 0.5
    return max(1, round(width * factor)), max(1, round(height * factor))


def resize_passes(
    rgb: torch.Tensor, depth: torch.Tensor, alpha: torch.Tensor, entity_ids: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, ...]:
    """Conditioning passes [T, H, W(, 3)] at size (w, h): colour and coverage averaged over the area, depth and
    entity ids sampled at the nearest pixel (averaging would invent depths and ids between surfaces)."""
    w, h = size
    if (rgb.shape[2], rgb.shape[1]) == (w, h):
        return rgb, depth, alpha, entity_ids
    nearest = lambda x: F.interpolate(x, size=(h, w), mode="nearest-exact")  # noqa: E731
    return (
        area_resized(rgb, size),
        nearest(depth[:, None])[:, 0],
        area_resized(alpha[..., None], size)[..., 0],
        nearest(entity_ids[:, None].double())[:, 0].long(),
    )


@torch.no_grad()
def correction(model: UnifiedVideoModel, window: ShotWindow) -> torch.Tensor:
    """What the model adds to the render: [T, H, W, 3] (window of B = 1, on the model's device)."""
    device = next(model.parameters()).device
    window = window.to(device)
    return (model(window) - window.render_rgb)[0].permute(0, 2, 3, 1).cpu()


def upsampled(correction_: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[T, h, w, 3] → [T, height, width, 3], bilinear."""
    if correction_.shape[1:3] == (height, width):
        return correction_
    return F.interpolate(
        correction_.permute(0, 3, 1, 2), size=(height, width), mode="bilinear", align_corners=False
    ).permute(0, 2, 3, 1)
