"""Background models of static cameras: the clean plate (the set without the action).

A static camera sees the same set in every frame; the temporal median of frames spread over the take
removes whatever moves through it. The share of frames that differ from the median marks moving
pixels, which registration masks out and layout uses as foreground evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reshoot.datasets.footage import CameraFootage

MOVING_DIFFERENCE = 0.08  # a frame differs from the plate at a pixel by more than this (RGB in [0, 1])
BLANK_STD = 0.01  # a plate with less contrast than this is a blank or black video


@dataclass(frozen=True)
class CleanPlate:
    """The static background of one camera.

    Attributes:
        rgb: [H, W, 3] float32 in [0, 1], temporal median of the sampled frames.
        moving: [H, W] float32 in [0, 1], share of the sampled frames that differ from the plate.
        frames: take frame numbers sampled.
    """

    rgb: np.ndarray
    moving: np.ndarray
    frames: tuple[int, ...]

    @property
    def is_blank(self) -> bool:
        """True for a black or blank (featureless) picture."""
        return float(self.rgb.std()) < BLANK_STD


def sample_frames(first: int, count: int, samples: int) -> tuple[int, ...]:
    """Up to `samples` take frames spread evenly over [first, first + count)."""
    if count <= samples:
        return tuple(range(first, first + count))
    return tuple(int(round(x)) for x in np.linspace(first, first + count - 1, samples))


def clean_plate(source: CameraFootage, frames: tuple[int, ...]) -> CleanPlate:
    """Temporal median and moving share of one camera over `frames` (decoded one at a time, kept 8-bit)."""
    stack = np.stack([(source.read(f) * 255 + 0.5).astype(np.uint8) for f in frames])
    plate = np.median(stack, axis=0).astype(np.float32) / 255.0
    moving = (np.abs(stack.astype(np.float32) / 255.0 - plate[None]).max(axis=-1) > MOVING_DIFFERENCE).mean(axis=0)
    return CleanPlate(plate, moving.astype(np.float32), tuple(frames))
