"""Settings of the synthetic film-set generator."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from reshoot.geometry.errors import InputError
from reshoot.geometry.validation import MAX_IMAGE_SIDE


@dataclass(frozen=True)
class SynthConfig:
    """A synthetic take: one procedural set, its action, and the cameras that film it.

    Attributes:
        cameras: production cameras (footage). 4 = wide, two mediums, a reverse; more add mediums.
        frames: frames in the take.
        width: image width in pixels (even: H.264 4:2:0 needs it).
        height: image height in pixels (even).
        characters: walking characters, 1 to 3.
        props: props standing on the floor, 2 to 6.
        seed: everything (set, action, cameras, textures) follows from it.
        fps: frame rate of the take.
        distortion: give production lenses mild radial distortion (OpenCV k1 k2), recorded in gt/.
        antialias: supersamples per axis on the static set and at moving edges (1 = none).
        texels_per_m: texture resolution of set surfaces.
        video_crf: H.264 constant rate factor of the footage (lower = better; 17 is visually lossless).
        survey_frames: photos of a survey walk around the empty set (0 = no survey).
        extra_views: more ground-truth-only cameras (`view_1`, ...) at random high positions looking at
            the action, drawn from their own random stream (the rest of the take does not change);
            training episodes for the video model use them as targets.
    """

    cameras: int = 4
    frames: int = 48
    width: int = 640
    height: int = 360
    characters: int = 2
    props: int = 4
    seed: int = 0
    fps: float = 24.0
    distortion: bool = False
    antialias: int = 2
    texels_per_m: float = 110.0
    video_crf: int = 17
    survey_frames: int = 24
    extra_views: int = 0

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.cameras <= 8, f"cameras must be 1 to 8, got {self.cameras}"),
            (1 <= self.frames <= 10000, f"frames must be 1 to 10000, got {self.frames}"),
            (
                32 <= self.width <= MAX_IMAGE_SIDE and 32 <= self.height <= MAX_IMAGE_SIDE,
                f"size must be 32x32 to {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}, got {self.width}x{self.height}",
            ),
            (
                self.width % 2 == 0 and self.height % 2 == 0,
                f"width and height must be even (H.264 needs it), got {self.width}x{self.height}",
            ),
            (1 <= self.characters <= 3, f"characters must be 1 to 3, got {self.characters}"),
            (2 <= self.props <= 6, f"props must be 2 to 6, got {self.props}"),
            (0 < self.fps <= 1000, f"fps must be more than 0 and at most 1000, got {self.fps}"),
            (1 <= self.antialias <= 5, f"antialias must be 1 to 5, got {self.antialias}"),
            (0 <= self.video_crf <= 51, f"video_crf must be 0 to 51, got {self.video_crf}"),
            (self.texels_per_m > 0, "texels_per_m must be positive"),
            (
                self.survey_frames == 0 or 8 <= self.survey_frames <= 500,
                f"survey_frames must be 0 (no survey) or 8 to 500, got {self.survey_frames}",
            ),
            (0 <= self.extra_views <= 64, f"extra_views must be 0 to 64, got {self.extra_views}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"synthetic take: {message}.")

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings, as saved beside the take."""
        return asdict(self)
