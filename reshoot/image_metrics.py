"""Full-reference image metrics: PSNR, SSIM (kornia), FLIP (NVIDIA's `flip-evaluator`), mask IoU.

One place for them, so that `reshoot check`, the benchmarks and the tests score images the same way.
Images are float in [0, 1], channel-last `[..., H, W, 3]` (numpy); masks are bool `[..., H, W]`.
"""

from __future__ import annotations

import numpy as np
import torch

SSIM_WINDOW = 11


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB (peak 1) of `a` against `b`, over all pixels or those of `mask`.

    Args:
        a, b: [..., H, W, 3] float in [0, 1].
        mask: [..., H, W] bool, or None for every pixel.

    Returns:
        dB; NaN where the mask is empty; capped at 120 dB for identical images.
    """
    error = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean(axis=-1)
    if mask is not None:
        if not mask.any():
            return float("nan")
        error = error[mask]
    return float(10 * np.log10(1.0 / max(float(error.mean()), 1e-12)))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (kornia, 11×11 Gaussian window, channels averaged).

    Args:
        a, b: [H, W, 3] or [T, H, W, 3] float in [0, 1].

    Returns:
        [H, W] or [T, H, W] float32 in [-1, 1].
    """
    from kornia.metrics import ssim

    single = a.ndim == 3
    ta, tb = (
        torch.from_numpy(np.asarray(x, np.float32)).reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2) for x in (a, b)
    )
    out = ssim(ta, tb, SSIM_WINDOW).mean(dim=1).numpy()
    return out[0] if single else out


def mean_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM over all pixels or those of `mask` ([..., H, W] bool); NaN where the mask is empty."""
    values = ssim_map(a, b)
    if mask is not None:
        if not mask.any():
            return float("nan")
        values = values[mask]
    return float(values.mean())


def flip_map(test: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-pixel FLIP error of an LDR (sRGB) image against its reference (NVIDIA's evaluator, default
    67 pixels per degree).

    Args:
        test, reference: [H, W, 3] float in [0, 1].

    Returns:
        [H, W] float32 in [0, 1] (0 = indistinguishable).
    """
    import flip_evaluator

    error, _, _ = flip_evaluator.evaluate(
        np.ascontiguousarray(reference, np.float32),
        np.ascontiguousarray(test, np.float32),
        "LDR",
        applyMagma=False,
        computeMeanError=False,
    )
    return np.asarray(error, np.float32).reshape(test.shape[:2])


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks; NaN when both are empty."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")
