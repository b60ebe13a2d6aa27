"""Settings of the synthetic film-set generator."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from reshoot.geometry.errors import InputError
from reshoot.geometry.validation import MAX_IMAGE_SIDE

PRODUCTION_LAYOUT = ("a_wide", "b_medium", "c_medium", "d_reverse", "e_medium", "f_medium", "g_medium", "h_medium")
"""Names of the production cameras, in the order `cameras` adds them."""
PACES = ("steady", "varied")
TIMECODE = re.compile(r"^(\d{2}):([0-5]\d):([0-5]\d):(\d{2})$")


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
        fps: frame rate of the cameras not named in `camera_fps`.
        distortion: give production lenses mild radial distortion (OpenCV k1 k2), recorded in gt/.
        antialias: supersamples per axis on the static set and at moving edges (1 = none).
        texels_per_m: texture resolution of set surfaces.
        video_crf: H.264 constant rate factor of the footage (lower = better; 17 is visually lossless).
        survey_frames: photos of a survey walk around the empty set (0 = no survey).
        extra_views: more ground-truth-only cameras (`view_1`, ...) at random high positions looking at
            the action, drawn from their own random stream (the rest of the take does not change);
            training episodes for the video model use them as targets.
        offsets: production camera name → frames it started rolling late (negative: early), against
            the cameras not named (0). Every camera rolls until one common cut, so the cameras' clips
            differ in length and the frames all of them show are exactly the take's `frames`.
        audio: mix a clap (and each camera's own room tone) into every camera's footage, with its offset.
        timecode: the start timecode HH:MM:SS:FF of take frame 0; each video carries its own start
            timecode (take start + its offset). Needs a whole-number fps.
        pace: "steady" (constant-speed walks) or "varied" (walks with stops and starts, drawn from their
            own random stream: the set, props and cameras stay those of the seed).
        camera_fps: production camera name → its own frame rate, for a rig of mixed rates (whole
            numbers, as `fps` then). The take runs at the highest rate (`take_fps`): `frames` and
            `offsets` count its frames, and the ground truth is written at it.
        plates: also write clean plates, as crews shoot them: each production camera rolling on the
            empty set (`plates/<camera>.mp4`, encoded as its footage), for `reshoot init --plates`.
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
    offsets: dict[str, int] = field(default_factory=dict)
    audio: bool = False
    timecode: str | None = None
    pace: str = "steady"
    camera_fps: dict[str, float] = field(default_factory=dict)
    plates: bool = False

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
            (self.pace in PACES, f"pace must be one of {', '.join(PACES)}, got {self.pace!r}"),
            (
                self.timecode is None or bool(TIMECODE.match(self.timecode)),
                f"timecode must be HH:MM:SS:FF, got {self.timecode!r}",
            ),
            (
                self.timecode is None or float(self.fps).is_integer(),
                f"a timecode needs a whole-number fps (24, 25, 30 ...), got {self.fps:g}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"synthetic take: {message}.")
        names = PRODUCTION_LAYOUT[: self.cameras]
        for name, rate in self.camera_fps.items():
            if name not in names:
                raise InputError(
                    f"synthetic take: fps names {name!r}, which is not a camera; the cameras are {list(names)}."
                )
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1000:
                raise InputError(
                    f"synthetic take: camera {name}'s fps must be more than 0 and at most 1000, got {rate!r}."
                )
        if self.camera_fps and not all(float(r).is_integer() for r in (self.fps, *self.camera_fps.values())):
            raise InputError(
                "synthetic take: a rig of mixed rates needs whole-number rates (24, 25, 30 ...: they share one "
                f"time base), got {self.fps:g} and {self.camera_fps}."
            )
        for name, value in self.offsets.items():
            if name not in names:
                raise InputError(
                    f"synthetic take: offsets name {name!r}, which is not a camera; the cameras are {list(names)}."
                )
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > self.frames * 4:
                raise InputError(
                    f"synthetic take: camera {name}'s offset must be a whole number of frames within "
                    f"±{self.frames * 4} (4 takes' length), got {value!r}."
                )

    def rate(self, camera: str) -> float:
        """A production camera's frame rate."""
        return float(self.camera_fps.get(camera, self.fps))

    @property
    def take_fps(self) -> float:
        """The rate of the take's clock: the highest of the cameras' rates."""
        return max([float(self.fps), *map(float, self.camera_fps.values())])

    @property
    def base_fps(self) -> int | float:
        """The rate the action is animated at: every camera's frames fall on it (the least common
        multiple of the rates; the one rate without `camera_fps`)."""
        if not self.camera_fps:
            return self.fps
        return math.lcm(*(int(r) for r in (self.fps, *self.camera_fps.values())))

    @property
    def steps_per_take_frame(self) -> int:
        """Scene frames (at `base_fps`) per take frame."""
        return int(round(self.base_fps / self.take_fps))

    def _starts(self) -> list[int]:
        return [self.offsets.get(name, 0) for name in PRODUCTION_LAYOUT[: self.cameras]]

    @property
    def spread(self) -> int:
        """Frames between the first and the last camera to start rolling (0 without offsets)."""
        return max(self._starts()) - min(self._starts())

    @property
    def scene_frames(self) -> int:
        """Frames of action, at `base_fps`: the early cameras' pre-roll, the take, and up to the slowest
        camera's first frame after the take's last. Take frame t is scene frame (t + spread) *
        steps_per_take_frame."""
        slowest_step = int(round(self.base_fps / min([self.fps, *self.camera_fps.values()])))
        return (self.frames + self.spread - 1) * self.steps_per_take_frame + slowest_step

    def take_offset(self, camera: str) -> int:
        """The camera's offset on the take's clock: its frame i shows take frame i + offset (≤ 0; the
        last camera to start has 0, so take frame 0 is the first one every camera shows)."""
        return self.offsets.get(camera, 0) - max(self._starts())

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings, as saved beside the take."""
        return asdict(self)
