"""Sizes of the unified video model (DESIGN.md §5): one frozen config per size."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reshoot.geometry.errors import InputError


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a `UnifiedVideoModel`; saved beside every checkpoint as `config.json`.

    Attributes:
        name: the size's name ("tiny", "small", "base" or a custom one).
        patch: side of a square token patch in pixels (target and source frames alike).
        dim: width of every token in the backbone.
        depth: transformer blocks of the backbone.
        heads: attention heads per block (dim must divide by it).
        mlp_ratio: hidden width of each block's MLP as a multiple of dim.
        window: target frames generated jointly in one pass.
        overlap: frames shared by consecutive windows (blended), less than window.
        source_scale: source frames enter at this fraction of the target's size (fewer tokens).
        entity_slots: rows of the entity-id embedding; an id uses row id % entity_slots (none has its own).
        entity_dim: channels of the per-pixel entity embedding.
        head_features: per-pixel features the token head writes before the pixel refiner.
        refine_channels: width of the two-layer 3×3 pixel refiner after the head.
        working_pixels: frames larger than this (width × height) are read at this many pixels (the scale the
            model was trained at) and the model's correction is upsampled onto the full-resolution render.
        correction_scale: the network's correction is multiplied by this before it is added to the render
            (0 returns the render itself). 1 after synthetic training; per-scene adaptation sets it to what
            served best on production cameras it did not train on. Not part of the architecture.
        keep_exposure: remove the correction's mean over each frame, per channel, so that the output keeps
            the render's mean colour (its exposure and white balance). Per-scene adaptation turns it on:
            each real camera has its own exposure, which the other cameras cannot teach. Not part of the
            architecture.
    """

    name: str = "tiny"
    patch: int = 16
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 3.0
    window: int = 4
    overlap: int = 1
    source_scale: float = 0.5
    entity_slots: int = 32
    entity_dim: int = 4
    head_features: int = 12
    refine_channels: int = 24
    working_pixels: int = 320 * 180
    correction_scale: float = 1.0
    keep_exposure: bool = False

    def __post_init__(self) -> None:
        for field in (
            "patch",
            "dim",
            "depth",
            "heads",
            "window",
            "entity_slots",
            "entity_dim",
            "head_features",
            "refine_channels",
            "working_pixels",
        ):
            if getattr(self, field) < 1:
                raise InputError(f"model config: {field} must be at least 1, got {getattr(self, field)}.")
        if self.dim % self.heads:
            raise InputError(f"model config: dim {self.dim} must be a multiple of heads {self.heads}.")
        if not 0 <= self.overlap < self.window:
            raise InputError(f"model config: overlap must be 0 to window-1 ({self.window - 1}), got {self.overlap}.")
        if not 0 < self.source_scale <= 1:
            raise InputError(f"model config: source_scale must be in (0, 1], got {self.source_scale}.")
        if not 0 <= self.correction_scale <= 1:
            raise InputError(f"model config: correction_scale must be in [0, 1], got {self.correction_scale}.")

    def architecture(self) -> ModelConfig:
        """This config with the settings of how the correction is applied at their defaults: two configs
        whose weights are interchangeable have the same architecture."""
        return dataclasses.replace(self, correction_scale=1.0, keep_exposure=False)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Rebuild a config; unknown keys are an error (a checkpoint from another version)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"model config: unknown settings {unknown}; this checkpoint was written by a "
                f"different version of reshoot."
            )
        return cls(**values)


CONFIGS: dict[str, ModelConfig] = {
    # Trains on 2 CPU cores; the tests and `make demo` use it.
    "tiny": ModelConfig(),
    # For one GPU.
    "small": ModelConfig(
        name="small",
        patch=16,
        dim=384,
        depth=8,
        heads=6,
        mlp_ratio=4.0,
        window=6,
        overlap=2,
        head_features=16,
        refine_channels=32,
    ),
    # For a large GPU.
    "base": ModelConfig(
        name="base",
        patch=8,
        dim=768,
        depth=12,
        heads=12,
        mlp_ratio=4.0,
        window=8,
        overlap=2,
        source_scale=0.5,
        head_features=16,
        refine_channels=48,
        working_pixels=640 * 360,
    ),
}


def config_named(name: str) -> ModelConfig:
    """The config of a named size."""
    if name not in CONFIGS:
        raise InputError(f"unknown model size {name!r}; choose one of {sorted(CONFIGS)}.")
    return CONFIGS[name]
