"""The `render` engine: the conditioning's render as it is, the baseline every other engine is measured
against."""

from __future__ import annotations

import torch

from reshoot.engines.contract import EngineOptions, ShotConditioning, ShotFrames
from reshoot.geometry.progress import ProgressFn


class RenderEngine:
    """The reconstruction's render, nothing generated."""

    name = "render"
    stochastic = False

    def check_inputs(self, options: EngineOptions) -> None:
        """Takes any options; it has no weights."""

    def synthesize(self, conditioning: ShotConditioning, options: EngineOptions, progress: ProgressFn) -> ShotFrames:
        progress("synthesizing", 1, 1)
        return ShotFrames(
            conditioning.rgb.clone(), torch.zeros(conditioning.alpha.shape), {"model_seconds_per_frame": 0.0}
        )
