"""The `unified` engine: reshoot's own video model (DESIGN.md §5, docs/model.md), one transformer over the
source frames, camera rays, the render, depth, entity ids and time, adding a correction to the render.

Frames are made in overlapping windows of the model's `window` frames, blended; source views are every
production camera at each window's middle frame. The model reads a window at its working size; its
correction is upsampled and added to the full-resolution render, so what the reconstruction got right keeps
its detail.

A long shot can be split into frame ranges (`EngineOptions.ranges`): consecutive windows, one job each,
run serially or as Ray tasks (`EngineOptions.executor`, reshoot/scaleout.py); the reduce step blends the
windows in the same order as the single-range loop. Each range job runs the model on one thread under
either executor, so the ranges give the same frames serially and on Ray to the bit, and the frames of one
range (the model on this process's threads) to within float rounding.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import torch

from reshoot.engines.contract import EngineOptions, ShotConditioning, ShotFrames
from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.model.checkpoint import checkpoint_files, from_pretrained
from reshoot.model.inference import blend_weights, correction, plan_windows, resize_passes, upsampled, working_size
from reshoot.model.inputs import ShotWindow, make_window, resized_camera
from reshoot.model.network import UnifiedVideoModel
from reshoot.model.training import resolve_device
from reshoot.stage_options import DEFAULT_CHECKPOINT


def synthesize_frames(
    model: UnifiedVideoModel,
    cameras: Camera,
    frames: list[int],
    rgb: torch.Tensor,
    depth: torch.Tensor,
    alpha: torch.Tensor,
    entity_ids: torch.Tensor,
    sources: Camera,
    source_frames: Callable[[int], tuple[torch.Tensor, int]],
    progress: ProgressFn | None = None,
    ranges: int = 1,
    executor: str = "serial",
) -> tuple[torch.Tensor, float]:
    """The model's frames of a shot, window by window (overlaps blended), at the render's full size.

    Args:
        model: the unified model.
        cameras: T pinhole cameras, one posed camera per shot frame, of the render's size.
        frames: [T] take frame numbers.
        rgb, depth, alpha, entity_ids: the conditioning passes, [T, H, W, 3] / [T, H, W] (depth in world units).
        sources: V production cameras.
        source_frames: take frame → ([V, h, w, 3] float frames of the sources in [0, 1], the frame they show).
        progress: callback.
        ranges: split the windows into this many frame ranges, a job each (1: one loop here, on this
            process's threads); at most one range per window.
        executor: "serial" or "ray", for the range jobs.

    Returns:
        ([T, H, W, 3] frames in [0, 1], seconds spent in the model).
    """
    report = progress or no_progress
    config = model.config
    height, width = rgb.shape[1:3]
    work_w, work_h = working_size(width, height, config.working_pixels)
    work_cameras = resized_camera(cameras, work_w, work_h)
    small = resize_passes(rgb, depth, alpha, entity_ids, (work_w, work_h))
    windows = plan_windows(len(frames), config.window, config.overlap)

    def window_at(indices: list[int]) -> ShotWindow:
        source_rgb, shown = source_frames(frames[indices[len(indices) // 2]])
        rgb_k, depth_k, alpha_k, ids_k = (p[indices] for p in small)
        return make_window(
            work_cameras.select(indices),
            rgb_k,
            depth_k,
            alpha_k,
            ids_k,
            torch.tensor([frames[i] for i in indices], dtype=torch.float64),
            sources,
            source_rgb,
            torch.full((len(sources),), float(shown), dtype=torch.float64),
            config.source_scale,
        )

    if ranges <= 1:
        fixes, model_seconds = [], 0.0
        for k, indices in enumerate(windows):
            started = time.perf_counter()
            fixes.append(correction(model, window_at(indices)))
            model_seconds += time.perf_counter() - started
            report("synthesizing", k + 1, len(windows))
    else:
        fixes, model_seconds = _corrections_by_range(model, [window_at(i) for i in windows], ranges, executor, report)
    total = torch.zeros(rgb.shape, dtype=torch.float64)
    weights = torch.zeros(len(frames), dtype=torch.float64)
    for indices, fix in zip(windows, fixes):  # the reduce: the same order for any split
        out = (rgb[indices] + upsampled(fix, width, height)).clamp(0, 1)
        w = torch.from_numpy(blend_weights(len(indices)))
        total[indices] += w[:, None, None, None] * out
        weights[indices] += w
    return (total / weights[:, None, None, None]).float(), model_seconds


def range_corrections(model: UnifiedVideoModel, windows: list[ShotWindow]) -> tuple[list[torch.Tensor], float]:
    """One range job: the model's correction of each window ([T, h, w, 3] each) and the seconds it took."""
    started = time.perf_counter()
    return [correction(model, w) for w in windows], time.perf_counter() - started


def _corrections_by_range(
    model: UnifiedVideoModel, windows: list[ShotWindow], ranges: int, executor: str, report: ProgressFn
) -> tuple[list[torch.Tensor], float]:
    """The windows' corrections, computed in `ranges` jobs of consecutive windows (1 CPU, 1 thread each)."""
    from reshoot.scaleout import run_in_ranges

    values = run_in_ranges(
        range_corrections,
        len(windows),
        ranges,
        lambda a, b: (model, windows[a:b]),
        executor,
        what="windows",
        progress=lambda done, total: report("synthesizing", done, total),
    )
    return [fix for fixes, _ in values for fix in fixes], sum(seconds for _, seconds in values)


class UnifiedEngine:
    """reshoot's own model from a checkpoint folder (`--weights`/`--checkpoint`; the shipped tiny one by
    default)."""

    name = "unified"
    stochastic = False  # a regression model: the same frames whatever the seed

    def __init__(self) -> None:
        self._model: UnifiedVideoModel | None = None  # loaded by check_inputs, run by synthesize

    def check_inputs(self, options: EngineOptions) -> None:
        """Load the checkpoint: a missing, unreadable, mismatched or non-finite one is refused here."""
        weights, _ = checkpoint_files(self._checkpoint(options))
        if not weights.is_file():
            raise InputError(
                f"{self._checkpoint(options)}: no model checkpoint there. Train one with `reshoot train` or "
                "pass --checkpoint DIR."
            )
        self._model = from_pretrained(self._checkpoint(options), resolve_device(options.device))

    @staticmethod
    def _checkpoint(options: EngineOptions) -> Path:
        return Path(options.weights) if options.weights is not None else DEFAULT_CHECKPOINT

    def synthesize(self, conditioning: ShotConditioning, options: EngineOptions, progress: ProgressFn) -> ShotFrames:
        checkpoint = self._checkpoint(options)
        if self._model is None:
            self.check_inputs(options)
        model = self._model
        assert model is not None
        weights, _ = checkpoint_files(checkpoint)
        with open(weights, "rb") as handle:
            weights_sha1 = hashlib.file_digest(handle, "sha1").hexdigest()
        width, height = conditioning.size
        frames, model_seconds = synthesize_frames(
            model,
            conditioning.cameras,
            conditioning.frames,
            conditioning.rgb,
            conditioning.depth,
            conditioning.alpha,
            conditioning.entity_ids,
            conditioning.sources,
            conditioning.source_frames,
            progress,
            options.ranges,
            options.executor,
        )
        if not bool(torch.isfinite(frames).all()):  # never replace good frames with black ones
            raise InputError(
                f"{checkpoint}: the model wrote NaN or infinite pixels for shot {conditioning.name!r}; nothing "
                "was written. Use another checkpoint (`--checkpoint`) or train again."
            )
        config = model.config
        record = {
            "checkpoint": str(checkpoint),
            "weights_sha1": weights_sha1,
            "config": config.to_dict(),
            "device": str(next(model.parameters()).device),
            "working_size": list(working_size(width, height, config.working_pixels)),
            "windows": [[w[0], w[-1]] for w in plan_windows(len(conditioning.frames), config.window, config.overlap)],
            "model_seconds_per_frame": round(model_seconds / max(len(conditioning.frames), 1), 4),
            "ranges": options.ranges,
            "executor": options.executor,
        }
        return ShotFrames(frames, torch.ones(conditioning.alpha.shape), record)
