"""A method's frames against the truth: pixels by region, and `reshoot check`'s reasoning scores.

Pixel metrics (frames and truth as written, display-encoded, in [0, 1]), each over all pixels, the
filmed pixels (the conditioning's `filmed` pass: a production camera saw that surface at that frame)
and the generated ones (the rest):
    psnr (dB), ssim (mean of the SSIM map), flip (mean FLIP error, lower is better).
From `reshoot check --truth` on the method's own frames (reshoot/check.py, docs/checks.md):
    placement_px / placement_m  per entity the median distance between where the locator finds it in
                                the method's frames and where the layout puts it; the mean over entities;
    found_share                 share of (entity, frame) pairs where the entity is found at all;
    entity_iou                  mean IoU of the entities as found against the true entity masks (synthetic
                                takes only);
    cross_view                  the check's cross-view agreement with the production footage (share of
                                seen pixels within its colour tolerance);
    temporal                    mean change of static pixels between consecutive frames;
    continuity                  the check's continuity verdict (pass / warn / fail).
A metric that cannot be measured (no pixel in the region, no entity measured) is None.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PIXEL_METRICS = ("psnr", "ssim", "flip")
REGIONS = ("", "_filmed", "_generated")


def _mean(values) -> float | None:
    kept = [float(v) for v in values if v is not None and np.isfinite(v)]
    return round(float(np.mean(kept)), 4) if kept else None


def pixel_scores(made: np.ndarray, truth: np.ndarray, filmed: np.ndarray) -> dict[str, float | None]:
    """PSNR / SSIM / FLIP overall, over filmed and over generated pixels.

    Args:
        made: [T, H, W, 3] float in [0, 1], the method's frames.
        truth: [T, H, W, 3] float in [0, 1].
        filmed: [T, H, W] bool.
    """
    from reshoot.image_metrics import flip_map, psnr, ssim_map

    ssim = np.stack([ssim_map(m, t) for m, t in zip(made, truth)])
    flip = np.stack([flip_map(m, t) for m, t in zip(made, truth)])
    out: dict[str, float | None] = {}
    for suffix, mask in (("", np.ones_like(filmed)), ("_filmed", filmed), ("_generated", ~filmed)):
        if not mask.any():
            out.update({f"{m}{suffix}": None for m in PIXEL_METRICS})
            continue
        out[f"psnr{suffix}"] = round(psnr(made, truth, mask), 3)
        out[f"ssim{suffix}"] = round(float(ssim[mask].mean()), 4)
        out[f"flip{suffix}"] = round(float(flip[mask].mean()), 4)
    return out


def check_scores(body: dict) -> dict[str, float | str | None]:
    """The reasoning scores of a `check.json` body (see the module docstring)."""
    entities = body["entities"]
    measured = sum(e["frames_measured"] for e in entities)
    found = sum(e["frames_found"] for e in entities)
    truth = body.get("ground_truth") or {}
    return {
        "placement_px": _mean(e["placement_error_px"] for e in entities),
        "placement_m": _mean(e["placement_error_m"] for e in entities),
        "found_share": round(found / measured, 4) if measured else None,
        "entity_iou": _mean(e.get("iou") for e in truth.get("entities", [])),
        "cross_view": body["cross_view"]["agreement"],
        "temporal": body["temporal"]["mean_change"],
        "continuity": body["continuity"]["verdict"],
    }


def score_shot(workspace: Path, shot: str, made: np.ndarray, truth: Path, frames: tuple[int, ...]) -> dict:
    """Every metric of shot `shot`'s frames `made` ([T, H, W, 3] uint8, as written into its frames/)
    against the true frames in `truth` (NNNNNN.png, and entity/NNNNNN.png where known). Runs `reshoot
    check` on the shot (writes its check.json)."""
    import imageio.v3 as iio

    from reshoot.check import check_shot
    from reshoot.conditioning import read_filmed_mask
    from reshoot.workspace import Workspace

    paths = Workspace(workspace).shot(shot)
    true = np.stack([iio.imread(truth / f"{f:06d}.png")[..., :3] / 255.0 for f in frames])
    filmed = np.stack([read_filmed_mask(paths.conditioning, f) for f in frames])
    summary = check_shot(workspace, shot, truth=truth)
    return {**pixel_scores(made / 255.0, true, filmed), **check_scores(summary.document)}
