"""Putting a take's cameras on one clock: their offsets from timecode, sound or motion.

Cameras on a set start rolling at different moments. An offset says where a camera's footage lies on the
take's clock: its frame i shows take frame i + offset (DESIGN.md §3 "Time"). Three witnesses give them:

- **timecode**: the start timecode each video carries (the container's or a stream's `timecode` tag, read
  with PyAV); exact, when the cameras were jammed to one clock.
- **audio**: the sound every camera recorded (a clapper, or any shared sound). Each pair of cameras is
  cross-correlated with GCC-PHAT (the phase transform whitens the spectra, so the peak is as sharp as the
  shared sound allows); the peak is refined to a fraction of a sample.
- **motion**: how the moving foreground's motion rises and falls (dense optical flow on small grey
  frames, mean speed of what moves, on a log scale, slow trends removed), correlated per pair; the
  offsets are the joint best over all pairs (`joint_offsets`), since one pair's curve can peak at a
  wrong lag that the others do not share.

Each pair gives the difference of two offsets on its own (`PairLag`, reported), with a peak and how far
it stands above the best lag a beat away; the largest disagreement around a triangle of cameras
(`closure_frames`) says whether the pairs tell one story. Sound's offsets are the weighted
least-squares fit of the confident pairs. A method that cannot tell refuses, names the cameras and says
what to do, rather than guess.

Offsets come out normalised so that take frame 0 is the first frame every camera shows (the last camera
to start has offset 0). Sub-frame offsets are kept; frames are sampled at the nearest whole offset and
the residual is recorded.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from reshoot.datasets.footage import PASSTHROUGH, same_length, take_rate
from reshoot.geometry.errors import InputError

logger = logging.getLogger(__name__)

SYNC_MODES: tuple[str, ...] = ("auto", "timecode", "audio", "motion", "none")

AUDIO_RATE = 16000  # sound is compared at this rate (Hz), mono
MOTION_WIDTH = 160  # frames are compared at this width (pixels), grey
MOTION_THRESHOLD_PX = 1.0  # flow slower than this (pixels per frame at MOTION_WIDTH) is noise
MOTION_DETREND_S = 0.5  # trends slower than this (seconds) are removed from the motion signal
MOTION_LOG_FLOOR = 0.02  # of the median speed: added before the log, so that stillness is a floor
MIN_MOTION_CONTRAST = 2.5  # log ratio: a camera's motion must swing 12-fold (something starts or stops)
MIN_AGREEING_PAIRS = 2  # of each camera's pairs (3 cameras or more): their own lag must fit the offsets
MIN_OVERLAP = 0.5  # a lag is tried only where the two clips still overlap by this share of the shorter
MIN_PEAK = {"audio": 0.05, "motion": 0.5}  # a pair below this normalised peak is not confident
MIN_MARGIN = {"audio": 2.0, "motion": 0.05}  # nor one whose peak does not stand out (ratio / difference)
TIMECODE = re.compile(r"^(\d{1,2})[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})$")
DROP_FRAME_SEPARATORS = ";."  # before the frames field: a drop-frame timecode


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PairLag:
    """What one pair of cameras says: `b`'s offset minus `a`'s, in frames.

    Attributes:
        a, b: camera names.
        lag_frames: offset of b minus offset of a, sub-frame: one instant is a's frame k and b's frame
            k - lag.
        peak: the normalised correlation at the lag (motion: -1..1; audio: GCC-PHAT's peak value).
        margin: how far the peak stands out (motion: peak minus the best lag a beat away; audio: their
            ratio).
        confident: peak and margin clear the method's thresholds (MIN_PEAK, MIN_MARGIN); sound's
            offsets fit only confident pairs.
    """

    a: str
    b: str
    lag_frames: float
    peak: float
    margin: float
    confident: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "lag_frames": round(float(self.lag_frames), 4),
            "peak": round(float(self.peak), 4),
            "margin": round(float(self.margin), 4),
            "confident": bool(self.confident),
        }


@dataclass(frozen=True)
class SyncResult:
    """The cameras' offsets and where they came from.

    Attributes:
        source: "timecode", "audio", "motion", "none" (all 0: taken as in sync) or "user" (--offset).
        offsets: camera name → offset in frames, sub-frame (camera frame i shows take frame i + offset).
        confidence: 1 for timecode, user and none; audio: the weakest confident pair's peak; motion:
            the pairs' mean correlation at the offsets (weighted as in `joint_offsets`).
        closure_frames: audio: the largest |lag_ab + lag_bc - lag_ac| over triangles of confident
            pairs; motion: over triangles of all pairs' own lags (0 with fewer than 3 cameras).
        pairs: every pair measured.
        note: one line for the user (why this source, what was assumed).
        extra: more for the record (timecode: each camera's; motion: the lead and each camera's
            `motion_contrast`; user: what a named method measured).
    """

    source: str
    offsets: dict[str, float]
    confidence: float = 1.0
    closure_frames: float = 0.0
    pairs: tuple[PairLag, ...] = ()
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_offsets(self) -> dict[str, int]:
        """The whole-frame offsets frames are sampled with."""
        return {name: int(round(value)) for name, value in self.offsets.items()}

    @property
    def residuals(self) -> dict[str, float]:
        """Offset minus whole-frame offset, per camera (frames, -0.5..0.5)."""
        whole = self.frame_offsets
        return {name: value - whole[name] for name, value in self.offsets.items()}

    def to_dict(self, fps: float) -> dict[str, Any]:
        """The record kept in reshoot.toml's [footage.sync] (offsets also in milliseconds)."""
        doc: dict[str, Any] = {
            "source": self.source,
            "confidence": round(float(self.confidence), 4),
            "closure_frames": round(float(self.closure_frames), 4),
            "offsets_frames": {n: round(float(v), 4) for n, v in self.offsets.items()},
            "offsets_ms": {n: round(1000.0 * float(v) / fps, 3) for n, v in self.offsets.items()},
            "residual_frames": {n: round(float(v), 4) for n, v in self.residuals.items()},
        }
        if self.note:
            doc["note"] = self.note
        if self.pairs:
            doc["pairs"] = [p.to_dict() for p in self.pairs]
        doc.update(self.extra)
        return doc


def normalised(offsets: dict[str, float]) -> dict[str, float]:
    """Offsets shifted so that the largest whole-frame offset is 0 (take frame 0 = the first frame every
    camera shows, given clips that end together or later)."""
    shift = max(int(round(v)) for v in offsets.values())
    return {name: value - shift for name, value in offsets.items()}


# --------------------------------------------------------------------------------------------------
# Timecode


def timecode_to_frames(timecode: str, fps: float) -> int:
    """Frames since midnight of a SMPTE timecode HH:MM:SS:FF.

    A `;` or `.` before the frames means drop-frame (29.97 and 59.94 fps: frame numbers 0 and 1 (0-3 at
    59.94) are skipped each minute except every tenth), the rest non-drop-frame at the rounded rate.

    Raises:
        InputError: not a timecode, its frames field is not below the rate, or drop-frame at a rate other
            than 29.97 or 59.94 fps.
    """
    match = TIMECODE.match(timecode.strip())
    if match is None:
        raise InputError(f"timecode {timecode!r} is not HH:MM:SS:FF.")
    hh, mm, ss, separator, ff = match.groups()
    rate = int(round(fps))
    hours, minutes, seconds, frames = int(hh), int(mm), int(ss), int(ff)
    if frames >= rate or minutes >= 60 or seconds >= 60:
        raise InputError(f"timecode {timecode!r} does not exist at {fps:g} fps.")
    count = ((hours * 60 + minutes) * 60 + seconds) * rate + frames
    if separator in DROP_FRAME_SEPARATORS:
        dropped = _dropped_per_minute(rate, f"timecode {timecode!r}")
        if frames < dropped and seconds == 0 and minutes % 10:
            raise InputError(f"timecode {timecode!r} is a frame number drop-frame timecode skips.")
        total_minutes = hours * 60 + minutes
        count -= dropped * (total_minutes - total_minutes // 10)
    return count


def is_drop_frame(timecode: str) -> bool:
    """Whether `timecode` is written drop-frame (`;` or `.` before the frames, as HH:MM:SS;FF)."""
    match = TIMECODE.match(timecode.strip())
    return match is not None and match.group(4) in DROP_FRAME_SEPARATORS


def _dropped_per_minute(rate: int, what: str) -> int:
    """Frame numbers drop-frame timecode skips each minute (but every tenth) at a rounded `rate`.

    Raises:
        InputError: the rate has no drop-frame timecode (only 29.97 and 59.94 fps do); `what` names it.
    """
    if rate not in (30, 60):
        raise InputError(
            f"{what}: drop-frame timecode (HH:MM:SS;FF) exists at 29.97 and 59.94 fps only, not at {rate} fps; "
            "write it HH:MM:SS:FF."
        )
    return rate // 15


def frames_to_timecode(count: int, fps: int, drop_frame: bool = False) -> str:
    """HH:MM:SS:FF of a frame count at a whole-number rate, wrapping at 24 hours.

    With `drop_frame` (rates 30 and 60 only: 29.97 and 59.94 fps) HH:MM:SS;FF, the frame numbers
    `timecode_to_frames` skips left out, so that the timecode keeps to the wall clock.

    Raises:
        InputError: `drop_frame` at a rate other than 30 or 60.
    """
    separator = ":"
    if drop_frame:
        dropped = _dropped_per_minute(fps, "a drop-frame timecode")
        per_ten_minutes, per_minute = 600 * fps - 9 * dropped, 60 * fps - dropped
        count %= 24 * 6 * per_ten_minutes
        tens, rest = divmod(count, per_ten_minutes)
        count += 9 * dropped * tens + dropped * (max(rest - dropped, 0) // per_minute)
        separator = ";"
    count %= 24 * 3600 * fps
    seconds, frames = divmod(count, fps)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{separator}{frames:02d}"


def read_timecode(path) -> str | None:
    """The start timecode a video carries (container, then video or data stream `timecode` tag), or None."""
    import av

    try:
        with av.open(str(path)) as container:
            for tags in [container.metadata] + [s.metadata for s in container.streams]:
                if tags.get("timecode"):
                    return str(tags["timecode"])
    except (av.error.FFmpegError, OSError):
        return None
    return None


def take_timecode(footage) -> str | None:
    """The timecode of the take's first frame, from the first camera (in take order) at the take's rate whose
    video carries a start timecode (drop-frame where that camera's is, else non-drop-frame at the rounded
    rate), or None where none does.

    Args:
        footage: an open `Footage` (its sources' offsets put their frame 0 on the take's clock).
    """
    rate = int(round(footage.fps))
    for source in footage.sources:
        if source.kind != "video" or int(round(source.fps)) != rate:
            continue
        start = read_timecode(source.path)
        if start is None:
            continue
        try:  # the camera's frame 0 shows take frame `offset`
            count = timecode_to_frames(start, source.fps) + footage.first_frame - source.offset
            return frames_to_timecode(count, rate, is_drop_frame(start))
        except InputError:
            logger.warning(
                "camera %s: start timecode %r is not HH:MM:SS:FF at %g fps; ignored", source.name, start, source.fps
            )
    return None


def sync_by_timecode(sources: Sequence) -> SyncResult:
    """Offsets from each video's start timecode.

    Raises:
        InputError: a camera is an image sequence or its video carries no timecode.
    """
    starts = {}
    for s in sources:
        timecode = read_timecode(s.path) if s.kind == "video" else None
        if timecode is None:
            raise InputError(
                f"camera {s.name}: {s.path.name} carries no start timecode. Sync by --sync audio or motion, "
                "or give --offset CAMERA=FRAMES."
            )
        starts[s.name] = (timecode, timecode_to_frames(timecode, s.fps) / round(s.fps))  # seconds
    rate = take_rate(sources)
    offsets = normalised({name: seconds * rate for name, (_, seconds) in starts.items()})
    return SyncResult(
        "timecode",
        offsets,
        note="start timecodes " + ", ".join(f"{n} {tc}" for n, (tc, _) in starts.items()),
        extra={"timecodes": {n: tc for n, (tc, _) in starts.items()}},
    )


# --------------------------------------------------------------------------------------------------
# Pairwise lags and the offsets that fit them


def _parabolic_peak(values: np.ndarray, index: int) -> float:
    """Sub-sample position of the peak at `index` (a parabola through it and its neighbours)."""
    if index <= 0 or index >= len(values) - 1:
        return float(index)
    left, centre, right = values[index - 1], values[index], values[index + 1]
    denominator = left - 2 * centre + right
    return float(index) if denominator >= 0 else index + 0.5 * (left - right) / denominator


def solve_offsets(names: Sequence[str], pairs: Sequence[PairLag]) -> tuple[dict[str, float], float]:
    """Offsets (frames, first camera 0) fitting the confident pairs by weighted least squares, and the
    largest triangle closure among them.

    Raises:
        InputError: the confident pairs do not link every camera (the message names the ones left out).
    """
    used = [p for p in pairs if p.confident]
    index = {name: i for i, name in enumerate(names)}
    linked = {names[0]}
    changed = True
    while changed:
        changed = False
        for p in used:
            if (p.a in linked) != (p.b in linked):
                linked |= {p.a, p.b}
                changed = True
    unlinked = [n for n in names if n not in linked]
    if unlinked:
        raise InputError(
            f"cannot sync camera(s) {unlinked}: no confident match to the others (see the pairs above). Give "
            "their offsets with --offset CAMERA=FRAMES, or try another --sync method."
        )
    rows = np.zeros((len(used) + 1, len(names)))
    target = np.zeros(len(used) + 1)
    weights = np.ones(len(used) + 1)
    for row, p in enumerate(used):
        rows[row, index[p.b]], rows[row, index[p.a]] = 1.0, -1.0
        target[row], weights[row] = p.lag_frames, max(p.peak, 1e-3)
    rows[-1, 0] = 1.0  # the first camera at 0
    solution = np.linalg.lstsq(rows * weights[:, None], target * weights, rcond=None)[0]
    lag = {(p.a, p.b): p.lag_frames for p in used} | {(p.b, p.a): -p.lag_frames for p in used}
    closure = 0.0
    for a, b, c in itertools.combinations(names, 3):
        if (a, b) in lag and (b, c) in lag and (a, c) in lag:
            closure = max(closure, abs(lag[a, b] + lag[b, c] - lag[a, c]))
    return {name: float(solution[index[name]]) for name in names}, closure


# --------------------------------------------------------------------------------------------------
# Audio


def read_sound(path) -> tuple[np.ndarray, float] | None:
    """A video's sound as mono float32 at AUDIO_RATE, and the video time (seconds) of its first sample
    (the sound stream's start minus the video stream's); None when the file has no sound track."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        video = container.streams.video[0] if container.streams.video else None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        chunks, first_time = [], None
        for frame in container.decode(stream):
            if first_time is None and frame.pts is not None and frame.time_base is not None:
                first_time = float(frame.pts * frame.time_base)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
        video_start = 0.0
        if video is not None and video.start_time is not None and video.time_base is not None:
            video_start = float(video.start_time * video.time_base)
    if not chunks:
        return None
    return np.concatenate(chunks).astype(np.float32), (first_time or 0.0) - video_start


def _gcc_phat(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[float, float, float]:
    """Lag (samples, sub-sample) maximising the phase-transform cross-correlation sum_t a[t + lag] b[t],
    |lag| <= max_lag, with the peak's value and its ratio to the best value 1 ms or more away."""
    n = 1 << int(math.ceil(math.log2(len(a) + len(b))))
    spectrum = np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n))
    spectrum /= np.maximum(np.abs(spectrum), 1e-12)
    correlation = np.fft.irfft(spectrum, n)
    window = np.concatenate([correlation[-max_lag:], correlation[: max_lag + 1]])  # lags -max_lag..max_lag
    best = int(np.argmax(window))
    guard = max(1, AUDIO_RATE // 1000)
    rest = np.concatenate([window[: max(best - guard, 0)], window[best + guard + 1 :]])
    second = float(rest.max()) if rest.size else 0.0
    lag = _parabolic_peak(window, best) - max_lag
    return lag, float(window[best]), float(window[best]) / max(second, 1e-9)


def sync_by_audio(sources: Sequence) -> SyncResult:
    """Offsets from the sound all cameras recorded (GCC-PHAT per pair, least squares over pairs).

    Raises:
        InputError: a camera has no sound track, or the sound links no pair confidently.
    """
    sounds = {}
    for s in sources:
        sound = read_sound(s.path) if s.kind == "video" else None
        if sound is None or not np.any(sound[0]):
            raise InputError(
                f"camera {s.name}: {s.path.name} has {'a silent' if sound is not None else 'no'} sound track. Sync by "
                "--sync timecode or motion, or give --offset CAMERA=FRAMES."
            )
        sounds[s.name] = sound
    fps = take_rate(sources)
    pairs = []
    for a, b in itertools.combinations([s.name for s in sources], 2):
        (wave_a, start_a), (wave_b, start_b) = sounds[a], sounds[b]
        max_lag = int(MIN_OVERLAP * min(len(wave_a), len(wave_b)))
        lag, peak, ratio = _gcc_phat(wave_a, wave_b, max_lag)
        seconds = (
            lag / AUDIO_RATE + start_a - start_b
        )  # the same sound at a's time s_a and b's s_b: o_b - o_a = s_a - s_b
        confident = peak >= MIN_PEAK["audio"] and ratio >= MIN_MARGIN["audio"]
        pairs.append(PairLag(a, b, seconds * fps, peak, ratio, confident))
        logger.info(
            "sync by audio: %s→%s %+.3f frames (peak %.3f, margin %.1f%s)",
            a, b, seconds * fps, peak, ratio, "" if confident else ", not confident",
        )  # fmt: skip
    offsets, closure = solve_offsets([s.name for s in sources], pairs)
    weakest = min(p.peak for p in pairs if p.confident)
    return SyncResult("audio", normalised(offsets), weakest, closure, tuple(pairs))


# --------------------------------------------------------------------------------------------------
# Motion


def _grey_frames(source) -> np.ndarray:
    """[T, H, MOTION_WIDTH] uint8 grey frames of a camera (video scaled by ffmpeg, images by Pillow)."""
    height = max(2, 2 * int(round(source.height * MOTION_WIDTH / source.width / 2)))
    if source.kind == "video":
        import imageio_ffmpeg

        stream = imageio_ffmpeg.read_frames(
            str(source.path),
            pix_fmt="gray",
            bpp=1,
            output_params=["-vf", f"scale={MOTION_WIDTH}:{height}", *PASSTHROUGH],
        )
        header_logger = logging.getLogger("imageio_ffmpeg")
        level = header_logger.level
        header_logger.setLevel(logging.ERROR)  # it warns that the scaled size is not the source's: asked for
        try:
            next(stream)  # the header
        finally:
            header_logger.setLevel(level)
        return np.stack([np.frombuffer(data, np.uint8).reshape(height, MOTION_WIDTH) for data in stream])
    from PIL import Image

    frames = []
    for path in source.frame_paths:
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("L").resize((MOTION_WIDTH, height), Image.Resampling.BILINEAR)))
    return np.stack(frames)


def motion_speed(frames: np.ndarray) -> np.ndarray:
    """[T - 1] how fast the picture moves between consecutive frames: the mean optical-flow speed over the
    frame, in pixels per frame at MOTION_WIDTH; pixels slower than MOTION_THRESHOLD_PX count as still, so
    codec noise and flicker stay out.

    Args:
        frames: [T, H, W] uint8 grey frames.
    """
    import cv2

    speeds = []
    for previous, current in zip(frames[:-1], frames[1:]):
        flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 9, 3, 5, 1.1, 0)
        speed = np.hypot(flow[..., 0], flow[..., 1])
        speeds.append(float(np.where(speed > MOTION_THRESHOLD_PX, speed, 0.0).mean()))
    return np.asarray(speeds)


def _log_speed(speed: np.ndarray) -> np.ndarray:
    """The speed on a log scale (a camera that sees the action small rises and falls by the same factors
    as one that sees it large), stillness floored at MOTION_LOG_FLOOR of the median moving speed."""
    return np.log(speed + MOTION_LOG_FLOOR * float(np.median(speed[speed > 0])))


def _moving_average(signal: np.ndarray, half: int) -> np.ndarray:
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    return np.convolve(np.pad(signal, half, mode="edge"), kernel, mode="valid")


def _on_the_take_clock(source, speed: np.ndarray, rate: float) -> np.ndarray:
    """A camera's per-frame-step speed [T - 1] resampled at the take's `rate` (linear in time), so that
    cameras of mixed or variable rates correlate frame for frame; as it is where the rates agree."""
    clocked = replace(source, take_fps=rate)
    if clocked.on_its_own_clock:
        return speed
    times = source.frame_times()
    steps = 0.5 * (times[:-1] + times[1:])  # when each step between frames happens
    grid = (np.arange(len(clocked.frames) - 1) + 0.5) / rate  # the take's steps, from this camera's start
    return np.interp(grid, steps, speed)  # held at the ends


def motion_signal(speed: np.ndarray, fps: float) -> np.ndarray:
    """[T - 1] how the motion rises and falls: the log speed minus its moving average over
    MOTION_DETREND_S either side. All zeros when nothing moves.

    Args:
        speed: [T - 1] `motion_speed`.
        fps: the frame rate (sets the window).
    """
    if not (speed > 0).any():
        return np.zeros_like(speed)
    log_speed = _log_speed(speed)
    return log_speed - _moving_average(log_speed, max(1, int(round(MOTION_DETREND_S * fps))))


def motion_contrast(speed: np.ndarray, fps: float) -> float:
    """How far the camera's motion level swings (natural log of the ratio between its 95th and 5th
    percentiles, over a quarter of a second): large where something starts or stops in view, small
    where the same motion goes on throughout (a walk whose strides repeat can then be matched at many
    offsets). 0 when nothing moves."""
    if not (speed > 0).any():
        return 0.0
    level = _moving_average(_log_speed(speed), max(1, int(round(0.25 * fps))))
    return float(np.percentile(level, 95) - np.percentile(level, 5))


def lag_curve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of a[t] with b[t - lag] for every lag at which the two overlap by at least
    MIN_OVERLAP of the shorter (and 8 samples).

    Returns:
        lags: [L] int, b's offset minus a's (a's frame t and b's frame t - lag are one instant);
        scores: [L] in -1..1 (-1 where either side is constant over the overlap).
    """
    min_overlap = max(8, int(MIN_OVERLAP * min(len(a), len(b))))
    lags = np.arange(-(len(b) - min_overlap), len(a) - min_overlap + 1)
    scores = np.full(len(lags), -1.0)
    for i, lag in enumerate(lags):
        x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
        n = min(len(x), len(y))
        x, y = x[:n] - x[:n].mean(), y[:n] - y[:n].mean()
        scale = math.sqrt(float((x * x).sum() * (y * y).sum()))
        if scale > 0:
            scores[i] = float((x * y).sum() / scale)
    return lags, scores


def _peak(lags: np.ndarray, scores: np.ndarray, beat: int) -> tuple[float, float, float]:
    """(lag, peak, margin) of a lag curve: sub-frame lag of its maximum, the maximum, and its lead over
    the best score more than `beat` lags away."""
    best = int(np.argmax(scores))
    rest = np.concatenate([scores[: max(best - beat, 0)], scores[best + beat + 1 :]])
    margin = float(scores[best] - (rest.max() if rest.size else -1.0))
    return _parabolic_peak(scores, best) + float(lags[0]), float(scores[best]), max(margin, 0.0)


def joint_offsets(
    names: Sequence[str],
    curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
    weights: dict[tuple[str, str], float],
    beat: int,
) -> tuple[dict[str, int], float, float]:
    """Whole-frame offsets (first camera 0) maximising sum_ab w_ab * score_ab(o_b - o_a) over all pairs.

    `curves` and `weights` are keyed by every pair (a, b) with a before b in `names` (`lag_curve`).

    One pair's curve can peak at a wrong lag (motion one view shows and another hides); the others then
    disagree with it, and the joint maximum follows the lags that agree. Found by coordinate ascent (each
    camera's offset in turn set to its best given the others) from every combination of the first
    camera's pairs' three highest peaks (the best peak alone past 6 cameras).

    Returns:
        offsets, the objective there per unit weight (the agreement, -1..1), and its lead: over all
        cameras, the least drop of the objective (per unit weight) when that camera alone is moved more
        than `beat` frames away from its offset.
    """

    def score(a: str, b: str, lag: np.ndarray) -> np.ndarray:
        lags, scores = curves[a, b]
        index = lag - lags[0]
        inside = (index >= 0) & (index < len(lags))
        return np.where(inside, scores[np.clip(index, 0, len(lags) - 1)], -1.0)

    def objective(name: str, offsets: dict[str, int]) -> np.ndarray:
        """The objective over `candidates` for camera `name`'s offset, the others' fixed."""
        values = np.zeros(len(candidates))
        for (a, b), w in weights.items():
            if name == b:
                values += w * score(a, b, candidates - offsets[a])
            elif name == a:
                values += w * score(a, b, offsets[b] - candidates)
        return values

    def total(offsets: dict[str, int]) -> float:
        return sum(w * float(score(a, b, np.array(offsets[b] - offsets[a]))) for (a, b), w in weights.items())

    first, others = names[0], list(names[1:])
    span = max(len(curves[key][0]) for key in curves)
    candidates = np.arange(-span, span + 1)
    top = 3 if len(names) <= 6 else 1
    choices = []
    for name in others:
        lags, scores = curves[first, name]
        choices.append([int(lags[i]) for i in np.argsort(-scores)[:top]])
    solutions = {}
    for start in itertools.product(*choices):
        offsets = {first: 0} | dict(zip(others, start))
        for _ in range(20):
            changed = False
            for name in others:
                chosen = int(candidates[int(np.argmax(objective(name, offsets)))])
                if chosen != offsets[name]:
                    offsets[name], changed = chosen, True
            if not changed:
                break
        solutions[tuple(offsets[n] for n in names)] = total(offsets)
    best_key = max(solutions, key=lambda key: solutions[key])
    best = dict(zip(names, best_key))
    weight = max(sum(weights.values()), 1e-9)
    leads = []
    for name in names:
        values = objective(name, best)
        away = np.abs(candidates - best[name]) > beat
        leads.append((solutions[best_key] - float(values[away].max())) / weight if away.any() else 0.0)
    return best, solutions[best_key] / weight, min(leads)


def sync_by_motion(sources: Sequence) -> SyncResult:
    """Offsets from how the moving foreground's motion rises and falls, correlated between cameras.

    Each pair's lag curve gives its own lag (reported, with the triangles' closure); the offsets are
    the joint best over all pairs weighted by how clearly each pair peaks (`joint_offsets`).

    It refuses rather than guess: where a camera sees no motion start or stop (`motion_contrast`), and
    where fewer than MIN_AGREEING_PAIRS of a camera's pairs peak (within 1.5 frames) at the lag the
    offsets give it. On synthetic takes this kept the answers within a frame or refused
    (docs/benchmarks.md, "Sync").

    Raises:
        InputError: nothing moves, a camera sees no motion start or stop, or the pairs do not agree on
            a camera's offset; the message names the cameras and says what to do.
    """
    fps = take_rate(sources)
    names = [s.name for s in sources]
    speeds = {s.name: _on_the_take_clock(s, motion_speed(_grey_frames(s)), fps) for s in sources}
    still = [n for n, speed in speeds.items() if not (speed > 0).any()]
    if still:
        raise InputError(
            f"cannot sync by motion: nothing moves in camera(s) {still}. Sync by --sync timecode or audio, "
            "or give --offset CAMERA=FRAMES."
        )
    contrast = {n: motion_contrast(speed, fps) for n, speed in speeds.items()}
    steady = [f"{n} ({contrast[n]:.1f})" for n in names if contrast[n] < MIN_MOTION_CONTRAST]
    if steady:
        raise InputError(
            f"cannot sync by motion: in camera(s) {', '.join(steady)} nothing starts or stops moving (their motion "
            f"level swings by a log ratio under {MIN_MOTION_CONTRAST}), so their clips fit the others at many "
            "offsets. Give --offset CAMERA=FRAMES, sync by --sync timecode or audio, or roll those cameras "
            "before the action starts."
        )
    signals = {n: motion_signal(speed, fps) for n, speed in speeds.items()}
    beat = max(2, int(round(MOTION_DETREND_S * fps)))
    curves, weights, pairs = {}, {}, []
    for a, b in itertools.combinations(names, 2):
        curves[a, b] = lag_curve(signals[a], signals[b])
        lag, peak, margin = _peak(*curves[a, b], beat)
        weights[a, b] = margin
        pairs.append(PairLag(a, b, lag, peak, margin, peak >= MIN_PEAK["motion"] and margin >= MIN_MARGIN["motion"]))
        logger.info("sync by motion: %s→%s %+.2f frames (peak %.3f, margin %.3f)", a, b, lag, peak, margin)
    offsets, agreement, lead = joint_offsets(names, curves, weights, beat)
    fits = {(p.a, p.b): abs(p.lag_frames - (offsets[p.b] - offsets[p.a])) <= 1.5 for p in pairs}
    needed = min(MIN_AGREEING_PAIRS, len(names) - 1)
    unsupported = [n for n in names if sum(fit for key, fit in fits.items() if n in key) < needed]
    if len(names) == 2 and not pairs[0].confident:
        unsupported = list(names)
    if unsupported:
        raise InputError(
            f"cannot sync camera(s) {unsupported} by motion: fewer than {needed} of their camera pairs peak at the "
            f"offsets that fit the others best ({offsets}; the pairs are logged). Give their offsets with --offset "
            "CAMERA=FRAMES, or sync by --sync timecode or audio."
        )
    pair_lags = {(p.a, p.b): p.lag_frames for p in pairs} | {(p.b, p.a): -p.lag_frames for p in pairs}
    closure = max(
        (abs(pair_lags[a, b] + pair_lags[b, c] - pair_lags[a, c]) for a, b, c in itertools.combinations(names, 3)),
        default=0.0,
    )
    return SyncResult(
        "motion",
        normalised({n: float(v) for n, v in offsets.items()}),
        agreement,
        closure,
        tuple(pairs),
        extra={"lead": round(lead, 4), "motion_contrast": {n: round(c, 3) for n, c in contrast.items()}},
    )


def synchronize(sources: Sequence, mode: str = "auto") -> SyncResult:
    """The cameras' offsets by `mode` (see the module docstring).

    "auto" takes timecode when every camera is a video that carries one, else sound when every camera
    has a sound track that links them, else (cameras of one length: taken as already in sync) none, else
    motion, else (motion refused, with a warning saying why) none: cameras of different lengths are then
    refused by `open_footage`, which says how to sync them.

    Args:
        sources: the take's `CameraFootage` (offsets 0), one rate.
        mode: one of SYNC_MODES.

    Raises:
        InputError: an unknown mode, or the chosen method cannot sync (the message says what to do).
    """
    if mode not in SYNC_MODES:
        raise InputError(f"--sync {mode!r}: choose one of {', '.join(SYNC_MODES)}.")
    names = [s.name for s in sources]
    if mode == "none" or len(sources) == 1:
        return SyncResult("none", dict.fromkeys(names, 0.0), note="offsets 0: the cameras are taken as in sync")
    if mode == "timecode":
        return sync_by_timecode(sources)
    if mode == "audio":
        return sync_by_audio(sources)
    if mode == "motion":
        return sync_by_motion(sources)
    videos = all(s.kind == "video" for s in sources)
    if videos and all(read_timecode(s.path) for s in sources):
        return sync_by_timecode(sources)
    if videos and all(_has_sound(s.path) for s in sources):
        try:
            return sync_by_audio(sources)
        except InputError as exc:
            logger.warning("sync: the sound does not link the cameras (%s); trying the next method", exc)
    if same_length(sources):
        return SyncResult(
            "none",
            dict.fromkeys(names, 0.0),
            note="no timecode or sound on every camera, and all have the same length: taken as in sync "
            "(use --sync motion to measure it)",
        )
    try:
        return sync_by_motion(sources)
    except InputError as exc:
        logger.warning("sync: %s", exc)
        return SyncResult(
            "none", dict.fromkeys(names, 0.0), note=f"no timecode or sound, and motion could not tell: {exc}"
        )


def _has_sound(path) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False
