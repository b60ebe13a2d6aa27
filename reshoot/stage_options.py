"""The settings of the workspace-wide stages, register, reconstruct and layout: frozen dataclasses with
their defaults and checks, and nothing heavy imported, so that `reshoot run` / `status` compare them and
the CLI builds its options from them without loading torch. (The shot stages' settings are in
`reshoot.pipeline`.) Each stage's module re-exports its own.

A field with `metadata={"affects_output": False}` (a backend) never makes a stage stale.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from reshoot.geometry.errors import InputError
from reshoot.geometry.scale_hint import ScaleHint
from reshoot.geometry.validation import check_number

CALIBRATION_MODES = ("auto", "poses", "intrinsics", "none")

_MODEL_PACKAGE = importlib.util.find_spec("reshoot.model")  # found, not imported (that loads torch)
assert _MODEL_PACKAGE is not None and _MODEL_PACKAGE.submodule_search_locations
DEFAULT_CHECKPOINT = Path(_MODEL_PACKAGE.submodule_search_locations[0]).resolve() / "weights" / "tiny"
"""The tiny model trained by the repository's own command (docs/model.md), shipped with the package: what
`reshoot synthesize` runs without `--checkpoint`."""


@dataclass(frozen=True)
class RegistrationOptions:
    """Settings of `reshoot register`.

    Attributes:
        survey: survey photos folder or video; None uses the workspace's (if any).
        no_survey: ignore any survey.
        scale: what the user knows about scale.
        calibration_mode: with a calibration file: "auto"/"poses" use its poses (no estimation),
            "intrinsics" uses only its intrinsics as priors, "none" ignores it.
        samples: frames per camera for the clean plate.
        instants: synchronized frames per camera used besides the plate (unmasked: moving content
            seen by several cameras at one instant is valid evidence); None = 6 in calibrated mode
            (more matches to measure the calibration with), 12 from the plates alone (no survey, no
            calibrated poses: the action seen at one instant by several cameras is most of what ties
            them together), else 0.
        max_survey_images: survey photos used at most (evenly spread).
        seed: RANSAC and mapper seed.
    """

    survey: Path | None = None
    no_survey: bool = False
    scale: ScaleHint | None = None
    calibration_mode: str = "auto"
    samples: int = 24
    instants: int | None = None
    max_survey_images: int = 80
    seed: int = 0

    def __post_init__(self) -> None:
        if self.calibration_mode not in CALIBRATION_MODES:
            raise InputError(f"calibration mode must be one of {CALIBRATION_MODES}, got {self.calibration_mode!r}.")
        if self.instants is not None and not 0 <= self.instants <= 50:
            raise InputError(f"instants must be 0 to 50 frames per camera, got {self.instants}.")
        if self.samples < 3:
            raise InputError(f"samples must be at least 3 frames per camera, got {self.samples}.")


@dataclass(frozen=True)
class ReconstructOptions:
    """Settings of `reshoot reconstruct`.

    Attributes:
        downscale: images are fitted at 1/downscale resolution (integer).
        set_iterations: optimizer steps of the static set.
        stereo_downscale: dense stereo runs at 1/stereo_downscale of the fitting resolution.
        stereo_planes: depth hypotheses facing the camera in the set's dense stereo, even in inverse depth
            (48 found only the lowest metre of a wall 8 m away: at that depth they were 1.9 m apart).
        surfel_spacing: one starting surfel per voxel of this edge (world units).
        actor_iterations: steps per frame that carry the actors along (positions and rotations).
        first_actor_iterations: steps that fit a character whole at its first frame.
        refine_actor_iterations: steps over random frames that fit the actors whole.
        voxel_size: visual-hull voxel edge in world units (metres when the scale is known).
        max_new_points: at most this many starting Gaussians per character (hull surface subsampled).
        frames: (first, stop) take frames to reconstruct actors for, half-open; None = the whole take.
        cameras: production cameras to fit (others are left out, e.g. held out); None = all.
        use_survey: fit the set to the registered survey photos too.
        samples: frames per camera for the clean plate.
        seed: every random choice.
        checkpoint_every: steps between checkpoints of the static set.
        backend: rasterizer backend ("auto", "cpu", "reference", "gsplat").
    """

    downscale: int = 2
    set_iterations: int = 1500
    stereo_downscale: int = 2
    stereo_planes: int = 128
    surfel_spacing: float = 0.08
    actor_iterations: int = 30
    first_actor_iterations: int = 200
    refine_actor_iterations: int = 400
    voxel_size: float = 0.04
    max_new_points: int = 8000
    frames: tuple[int, int] | None = None
    cameras: tuple[str, ...] | None = None
    use_survey: bool = True
    samples: int = 24
    seed: int = 0
    checkpoint_every: int = 250
    backend: str = field(default="auto", metadata={"affects_output": False})

    def __post_init__(self) -> None:
        for name in (
            "downscale",
            "set_iterations",
            "stereo_downscale",
            "stereo_planes",
            "actor_iterations",
            "first_actor_iterations",
            "samples",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"reconstruct: {name} must be at least 1, got {getattr(self, name)}.")
        if self.refine_actor_iterations < 0:
            raise InputError(
                f"reconstruct: refine_actor_iterations must be 0 or more, got {self.refine_actor_iterations}."
            )
        for name in ("voxel_size", "surfel_spacing"):
            if not getattr(self, name) > 0:
                raise InputError(f"reconstruct: {name} must be positive, got {getattr(self, name)}.")


@dataclass(frozen=True)
class CharacterOptions:
    """Settings of finding and tracking characters.

    Attributes:
        voxel_size: visual-hull voxel edge (world units, metres when the scale is known).
        min_height: a character's hull reaches at least this high (metres).
        max_floor_gap: and starts at most this far above the floor (metres).
        min_extent: and is at least this tall (metres; all that is asked where registration found no floor).
        min_explained: share of a candidate's foreground pixels that no accepted candidate explains yet,
            below which it is a ghost.
        min_explaining_views: cameras in which a candidate must explain that share of its own foreground
            pixels; below, it is a ghost (one camera's false foreground crossed with another's character).
            2 removed such a phantom on one take but lost frames of a real character on another
            (docs/benchmarks.md, layout over other seeds).
        gate: metres a character may be from its track's predicted position and still be linked.
        appearance_weight: metres of cost per unit of colour-histogram distance (Hellinger, 0 to 1).
        max_gap: frames a track survives unseen.
        min_track_share: tracks seen in fewer than this share of the frames are dropped.
    """

    voxel_size: float = 0.05
    min_height: float = 0.8
    max_floor_gap: float = 0.3
    min_extent: float = 0.3
    min_explained: float = 0.3
    min_explaining_views: int = 1
    gate: float = 0.6
    appearance_weight: float = 0.5
    max_gap: int = 8
    min_track_share: float = 0.2


@dataclass(frozen=True)
class LayoutOptions(CharacterOptions):
    """Settings of `reshoot layout`: those of finding and tracking characters (`CharacterOptions`), and

    Attributes:
        downscale: foreground masks at 1/downscale resolution.
        samples: frames per camera for the clean plate.
    """

    downscale: int = 2
    samples: int = 24

    def __post_init__(self) -> None:
        if isinstance(self.downscale, bool) or not isinstance(self.downscale, int) or not 1 <= self.downscale <= 16:
            raise InputError(f"layout: --downscale must be a whole number from 1 to 16, got {self.downscale!r}.")
        if not 3 <= self.samples <= 1000:
            raise InputError(f"layout: samples must be 3 to 1000 frames per camera, got {self.samples!r}.")
        check_number(self.voxel_size, "layout: --voxel-size", 0, 1, low_open=True)
        if isinstance(self.min_explaining_views, bool) or self.min_explaining_views not in range(1, 65):
            raise InputError(
                f"layout: min_explaining_views must be a whole number of cameras from 1 to 64, got "
                f"{self.min_explaining_views!r}."
            )
