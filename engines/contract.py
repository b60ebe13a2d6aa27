"""The one contract between a shot's conditioning and whatever makes its frames.

`reshoot synthesize WS SHOT --engine NAME` builds a `ShotConditioning` from what `reshoot shoot` /
`reshoot condition` wrote, hands it to the engine registered as NAME (reshoot/engines/registry.py) with
the run's `EngineOptions`, and gets `ShotFrames` back: the frames and, per pixel, how much of each the
engine made. Then, unless told not to, it keeps the render where a production camera filmed the surface
and agrees with it (reshoot/engines/keep.py), whatever the engine wrote there.

Images follow the module-boundary convention (DESIGN.md §3): channel-last float32 in [0, 1], colour
footage-encoded (the values a production camera recorded, before the hand-off turns them scene-linear).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError
from reshoot.geometry.progress import ProgressFn
from reshoot.scaleout import EXECUTORS, check_ranges

MEMORY_TIERS = ("high", "medium", "low")
"""`--memory`: how much of the engine lives on the accelerator (engines without tiers ignore it)."""


@dataclass(frozen=True)
class ShotConditioning:
    """Everything an engine may read of one shot (T frames of H × W).

    Attributes:
        name: the shot's name.
        description: the shot in words (its shot-language description, and what is in view), the prompt of
            a text-conditioned engine.
        frames: [T] take frame numbers.
        fps: the take's frame rate.
        cameras: T pinhole cameras of size W × H, the shot camera posed at each frame (target rays).
        rgb: [T, H, W, 3] the reconstruction rendered into the shot camera.
        depth: [T, H, W] its z-depth in world units, 0 where nothing was rendered.
        alpha: [T, H, W] its coverage in [0, 1].
        entity_ids: [T, H, W] int32 layout entity id, -1 for none.
        entities: layout entity id → name.
        filmed: [T, H, W] bool, a production camera filmed the pixel's surface at that frame (geometry).
        keep: [T, H, W] float32 in [0, 1], how much of the render is kept over the engine's pixel: filmed,
            covered and agreeing in colour with the camera that filmed it, feathered (engines/keep.py);
            all 0 when the run keeps nothing.
        sources: V production cameras (with their lens distortion: their footage's own cameras).
        source_frames: take frame → ([V, h, w, 3] the sources' footage at the nearest frame they have, every
            camera at the first one's size, that frame's number).
    """

    name: str
    description: str
    frames: list[int]
    fps: float
    cameras: Camera
    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    entity_ids: torch.Tensor
    entities: dict[int, str]
    filmed: torch.Tensor
    keep: torch.Tensor
    sources: Camera
    source_frames: Callable[[int], tuple[torch.Tensor, int]]

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the shot's frames."""
        return int(self.rgb.shape[2]), int(self.rgb.shape[1])


@dataclass(frozen=True)
class EngineOptions:
    """How to run an engine. Engines read what applies to them and record what they used.

    Attributes:
        weights: the engine's weights (a checkpoint folder, a pretrained model's folder); None = its default.
        device: "auto", "cpu" or "cuda".
        seed: the seed of every random draw (same seed, same options, same frames).
        memory: "high" (all on the accelerator), "medium" (model offload), "low" (sequential offload and
            tiled decoding).
        steps: sampling steps of a sampling engine; None = its default.
        window: frames per window of an engine that makes a shot window by window; None = its default.
        prompt: replaces the conditioning's description as the prompt; None keeps it.
        adapter: a LoRA adapter folder of the weights (`reshoot train --engine diffusers --adapt WS`); None: none.
        ranges: a windowed engine splits the shot into this many frame ranges, a job each (1: none).
        executor: where the range jobs run: "serial" (here) or "ray" (reshoot/scaleout.py).
    """

    weights: Path | None = None
    device: str = "auto"
    seed: int = 0
    memory: str = "medium"
    steps: int | None = None
    window: int | None = None
    prompt: str | None = None
    adapter: Path | None = None
    ranges: int = 1
    executor: str = "serial"

    def __post_init__(self) -> None:
        if self.memory not in MEMORY_TIERS:
            raise InputError(f"--memory {self.memory!r}: use one of {', '.join(MEMORY_TIERS)}.")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--steps {self.steps}: use at least 1.")
        if self.window is not None and self.window < 2:
            raise InputError(f"--window {self.window}: use at least 2 frames.")
        check_ranges(self.ranges)
        if self.executor not in EXECUTORS:
            raise InputError(f"--executor {self.executor!r}: use one of {', '.join(EXECUTORS)}.")


@dataclass(frozen=True)
class ShotFrames:
    """What an engine made.

    Attributes:
        frames: [T, H, W, 3] float32 in [0, 1], footage-encoded, at the conditioning's size.
        generated: [T, H, W] float32 in [0, 1], how much of each pixel the engine made rather than took from
            the render (0: the render as it is).
        record: what the run used, for synthesis.json (weights and their digest, windows, memory, timings).
    """

    frames: torch.Tensor
    generated: torch.Tensor
    record: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """A synthesis engine: registered by name, made with no arguments, run once per shot (once per sample
    with `--samples N`, seeds seed + K).

    An engine whose frames do not depend on the seed sets a class attribute `stochastic = False`, and
    `--samples N > 1` is refused for it (an engine without the attribute is taken to sample).
    """

    name: str

    def check_inputs(self, options: EngineOptions) -> None:
        """Refuse options this engine cannot run (weights missing, a model family it does not know) with an
        `InputError` that says what to do, before anything heavy happens."""

    def synthesize(self, conditioning: ShotConditioning, options: EngineOptions, progress: ProgressFn) -> ShotFrames:
        """The shot's frames (see `ShotFrames`)."""
