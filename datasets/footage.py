"""One reader for a take: the per-camera footage of one performance, on one frame clock.

A take folder holds one source per camera, named after the camera:

```
take/
  cam_0.mp4            a video (.mp4 .mov .avi .mkv); camera name = file stem
  witness/             an image sequence: .png/.jpg/.jpeg frames, in name order
    000001.png ...
  calibration.json     optional: reshoot/cameras (or caliscope's camera_array.toml)
  anything_else.csv    ignored, as are folders without images
```

Frames are numbered on the take's clock (DESIGN.md §3 "Time"): frame `i` of a camera shows take frame
`i + offset`. A rig of mixed rates runs at the highest, and a variable-frame-rate video is placed by its
timestamps: at each take frame such a camera shows its own frame nearest in time. Nothing is decoded when a take is opened (only headers are read and frames counted);
each camera decodes the frames asked for, keeping one ffmpeg reader open so that sequential reads
cost one frame each.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError
from reshoot.geometry.validation import check_name

from .calibration import (
    CALIBRATION_UNITS,
    UNITS_TO_METRES,
    in_metres,
    load_calibration,
    median_spacing,
    sniff_units,
)

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CALIBRATION_FILES = ("calibration.json", "camera_array.toml")  # looked for in this order
# H.264 / HEVC code pictures in 16-pixel blocks and crop the padding off the right and bottom: a phone's
# 1080-wide video is a 1088-wide picture cropped, and a calibration made on 1088-wide frames fits it.
CODING_BLOCK = 16
DEFAULT_IMAGE_FPS = 24.0
FPS_RELATIVE_TOLERANCE = 1e-3  # 29.97 and 30000/1001 are the same rate
MAX_SKIP_FRAMES = 48  # jumping further ahead than this re-opens the video with a seek
# ffmpeg's pipe output repeats and drops frames to hold the nominal rate unless told not to: a
# variable-frame-rate video would then have more or fewer frames than it holds (40 became 59).
PASSTHROUGH = ["-fps_mode", "passthrough"]
VFR_TOLERANCE = 0.1  # frame intervals further than this share from their median: a variable frame rate

SourceKind = Literal["video", "images"]


# --------------------------------------------------------------------------------------------------
# Video decoding (ffmpeg through imageio-ffmpeg)


def _ffmpeg_reason(text: str) -> str:
    """The line of an ffmpeg log that says what went wrong, for an error message."""
    # ffmpeg prefixes lines with its component and address, e.g. "[in#0 @ 0x55be88e2b040] ".
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", line.strip()) for line in str(text).splitlines() if line.strip()]
    for hint in ("moov atom not found", "Invalid data found", "No such file", "End of file", "error", "Error"):
        for line in lines:
            if hint in line:
                return line
    return lines[-1] if lines else "no output from ffmpeg"


def _open_video_stream(path: Path, start: int, seconds: float) -> Iterator[Any]:
    """An ffmpeg process decoding `path` to RGB24 from frame `start` on, which plays at `seconds`.

    Yields the header dict first, then one `bytes` of H*W*3 per frame. ffmpeg's input seek (`-ss`
    before `-i`) is frame-accurate when decoding (it decodes from the previous keyframe and drops what
    comes before the time); the caller aims half a frame early, so that frame `start` is the first kept.
    """
    import imageio_ffmpeg

    params = ["-ss", f"{seconds:.6f}"] if start > 0 else []
    return imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", input_params=params, output_params=PASSTHROUGH)


class _VideoCursor:
    """Sequential access to one video, re-opening it (with a seek) for jumps back or far ahead."""

    def __init__(self, path: Path, fps: float, width: int, height: int, times: tuple[float, ...] = ()) -> None:
        self.path, self.fps, self.width, self.height, self.times = path, fps, width, height, times
        self._stream: Iterator[Any] | None = None
        self._next = 0  # index of the frame the open stream yields next

    def read(self, index: int) -> np.ndarray:
        """Frame `index` (0-based, in the file) as [H, W, 3] uint8 RGB."""
        if self._stream is None or index < self._next or index > self._next + MAX_SKIP_FRAMES:
            self._open(index)
        assert self._stream is not None
        data = b""
        while self._next <= index:
            try:
                data = next(self._stream)
            except StopIteration:
                self.close()
                raise InputError(
                    f"{self.path}: the video ends before frame {index}; it may be truncated. "
                    "Re-export or re-copy the file."
                ) from None
            except RuntimeError as exc:
                self.close()
                raise InputError(
                    f"{self.path}: cannot decode frame {index} ({_ffmpeg_reason(str(exc))}). "
                    "The file may be damaged; re-export or re-copy it."
                ) from None
            self._next += 1
        return np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3)

    def _open(self, index: int) -> None:
        self.close()
        if self.times:  # variable frame rate: half-way back to the frame before
            seek = self.times[index] - 0.5 * (self.times[index] - self.times[max(index - 1, 0)])
        else:
            seek = (index - 0.5) / self.fps
        stream = _open_video_stream(self.path, index, seek)
        try:
            meta = next(stream)
        except (OSError, RuntimeError, StopIteration) as exc:
            raise InputError(f"{self.path}: cannot open the video ({_ffmpeg_reason(str(exc))}).") from None
        if tuple(meta["size"]) != (self.width, self.height):
            stream.close()
            raise InputError(
                f"{self.path}: the video changed while reading (frame size {meta['size']}, expected "
                f"{(self.width, self.height)}). Re-open the take."
            )
        self._stream, self._next = stream, index

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()  # imageio-ffmpeg stops its ffmpeg process when the generator closes
        self._stream = None


# --------------------------------------------------------------------------------------------------
# Images


def _natural_key(name: str) -> list[Any]:
    """Sort key that orders frame_2 before frame_10 (and zero-padded names as plain sorting does)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def image_files(folder: Path) -> list[Path]:
    """The image files of a folder (not hidden ones), in natural name order (frame_2 before frame_10)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted((p for p in files if not p.name.startswith(".")), key=lambda p: _natural_key(p.name))


def check_survey_names(folder: Path) -> list[Path]:
    """The survey photos of `folder` (`image_files`), each named by the name rule: their names become
    camera names (registration/survey_cameras.json).

    Raises:
        InputError: a photo's name (without its extension) breaks the rule (a space, say).
    """
    files = image_files(folder)
    for photo in files:
        check_name(photo.stem, f"{photo}: survey photo name", "rename the photo (its name becomes a camera name)")
    return files


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: cannot be read as an image ({exc}). Replace or remove the file.") from None


def _to_rgb_float(image: np.ndarray, path: Path) -> np.ndarray:
    """Any decoded image → [H, W, 3] float32 in [0, 1] (grey is repeated, alpha dropped)."""
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{path}: unsupported image layout {image.shape}; expected grey, RGB or RGBA.")
    if image.shape[2] in (1, 2):  # grey (+ alpha)
        image = np.repeat(image[..., :1], 3, axis=2)
    image = image[..., :3]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(image.astype(np.float32), 0.0, 1.0)
    raise InputError(f"{path}: unsupported pixel type {image.dtype}; use 8- or 16-bit PNG or JPEG.")


# --------------------------------------------------------------------------------------------------
# Public types


@dataclass(frozen=True, eq=False)
class CameraFootage:
    """The footage of one camera of a take.

    Attributes:
        name: camera name (the video's file stem or the image folder's name).
        path: the video file or the image folder.
        kind: "video" or "images".
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frames per second (a variable-rate video's mean).
        num_frames: number of frames in the source.
        offset: where the footage starts on the take's clock: its first frame shows take frame `offset`
            (at the take's rate, frame `i` shows take frame `i + offset`).
        frame_paths: for "images", the frame files in order; empty for "video".
        take_fps: the rate of the take's clock when it is not this camera's own (a rig of mixed rates
            runs at its highest); None: the camera's. Take frame t then shows the frame nearest in time.
        timestamps: for a variable-frame-rate video, each frame's time in seconds from the first (from
            the container); empty for constant rates.
        decode: applied to every frame read ([H, W, 3] float32 → the same): the camera's colour
            encoding turned into the take's (`reshoot.colour.ColourPipeline.decoder`); None: as recorded.
    """

    name: str
    path: Path
    kind: SourceKind
    width: int
    height: int
    fps: float
    num_frames: int
    offset: int = 0
    frame_paths: tuple[Path, ...] = field(default=(), repr=False)
    take_fps: float | None = None
    timestamps: tuple[float, ...] = field(default=(), repr=False)
    decode: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)
    _cursor: _VideoCursor | None = field(default=None, init=False, repr=False, compare=False)
    _times: np.ndarray = field(init=False, repr=False, compare=False)
    _span: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "video":
            cursor = _VideoCursor(self.path, self.fps, self.width, self.height, self.timestamps)
            object.__setattr__(self, "_cursor", cursor)
        # Computed once: `read` asks for them at every frame.
        times = np.asarray(self.timestamps) if self.timestamps else np.arange(self.num_frames) / self.fps
        object.__setattr__(self, "_times", times)
        rate = self.take_fps or self.fps
        span = self.num_frames if self.on_its_own_clock else int(math.floor(times[-1] * rate + 1e-6)) + 1
        object.__setattr__(self, "_span", span)

    @property
    def on_its_own_clock(self) -> bool:
        """Take frames are this camera's frames (one rate, constant)."""
        return not self.timestamps and (self.take_fps is None or abs(self.take_fps - self.fps) <= 1e-9 * self.fps)

    def frame_times(self) -> np.ndarray:
        """[num_frames] each frame's time in seconds from the first."""
        return self._times

    @property
    def frames(self) -> range:
        """The take frame numbers this camera shows."""
        return range(self.offset, self.offset + self._span)

    def source_index(self, frame: int) -> int:
        """The index in the source of the frame take frame `frame` shows: the one nearest in time."""
        if self.on_its_own_clock:
            return frame - self.offset
        seconds = (frame - self.offset) / (self.take_fps or self.fps)
        if not self.timestamps:
            return min(int(round(seconds * self.fps)), self.num_frames - 1)
        times = self._times
        after = int(np.searchsorted(times, seconds))
        if after == 0:
            return 0
        if after >= len(times):
            return len(times) - 1
        return after if times[after] - seconds < seconds - times[after - 1] else after - 1

    def read(self, frame: int) -> np.ndarray:
        """One frame.

        Args:
            frame: take frame number, in `self.frames`.

        Returns:
            [H, W, 3] float32 RGB in [0, 1].

        Raises:
            InputError: the frame is outside this camera's footage, or cannot be decoded.
        """
        frame = int(frame)
        if frame not in self.frames:
            raise InputError(
                f"camera {self.name}: take frame {frame} is outside its footage (frames "
                f"{self.frames.start} to {self.frames.stop - 1}, offset {self.offset})."
            )
        index = self.source_index(frame)
        if self._cursor is not None:
            image = self._cursor.read(index).astype(np.float32) / 255.0
        else:
            image = self._read_image(self.frame_paths[index])
        return self.decode(image) if self.decode is not None else image

    def iter_frames(self, start: int | None = None, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Frames in order, decoded one at a time.

        Args:
            start: first take frame (default: this camera's first).
            stop: take frame to stop before (default: after this camera's last).

        Yields:
            (take frame number, [H, W, 3] float32 RGB in [0, 1]).
        """
        start = self.frames.start if start is None else int(start)
        stop = self.frames.stop if stop is None else int(stop)
        for frame in range(start, stop):
            yield frame, self.read(frame)

    def close(self) -> None:
        """Stop the open decoder, if any (reading again re-opens it)."""
        if self._cursor is not None:
            self._cursor.close()

    def _read_image(self, path: Path) -> np.ndarray:
        import imageio.v3 as iio

        try:
            image = _to_rgb_float(np.asarray(iio.imread(path)), path)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot be read as an image ({exc}). Replace the file.") from None
        if image.shape[:2] != (self.height, self.width):
            raise InputError(
                f"{path}: is {image.shape[1]}x{image.shape[0]} but camera {self.name}'s frames are "
                f"{self.width}x{self.height}. All frames of a sequence must have one size."
            )
        return image


@dataclass(frozen=True, eq=False)
class Footage:
    """A take: every camera's footage on one frame clock, with an optional calibration.

    Attributes:
        root: the take folder.
        sources: one per camera, sorted by camera name.
        fps: frames per second of the take's clock: the cameras' rate, or the highest of mixed rates.
        num_frames: length of the take (frames that every camera shows).
        first_frame: the take's first frame number (0 unless offsets shift the cameras).
        calibration: the cameras, ordered like `sources`, translations in metres, or None.
        calibration_units: how the calibration's length unit was found: {"unit": "m" | "cm" | "mm",
            "source": "declared" | "sniffed", "median_spacing_m": float}, or None without a calibration.
    """

    root: Path
    sources: tuple[CameraFootage, ...]
    fps: float
    num_frames: int
    first_frame: int
    calibration: Camera | None = None
    calibration_units: dict[str, Any] | None = None

    @property
    def camera_names(self) -> tuple[str, ...]:
        """Names of the cameras, in the order of `sources`."""
        return tuple(s.name for s in self.sources)

    @property
    def frames(self) -> range:
        """The take frame numbers that every camera shows."""
        return range(self.first_frame, self.first_frame + self.num_frames)

    def source(self, name: str) -> CameraFootage:
        """The footage of the camera called `name`."""
        for s in self.sources:
            if s.name == name:
                return s
        raise InputError(f"{self.root}: no camera named {name!r}; the cameras are {list(self.camera_names)}.")

    def close(self) -> None:
        """Stop every open decoder."""
        for s in self.sources:
            s.close()

    def __enter__(self) -> Footage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# Opening a take


def _discover(folder: Path) -> list[tuple[str, Path, SourceKind]]:
    """(camera name, path, kind) of every footage source in `folder`, sorted by name.

    Raises:
        InputError: a camera name (file stem or folder name) is not safe as a file name (a space, say,
            which registration cannot take either), or two sources share a name.
    """
    found: dict[str, tuple[Path, SourceKind]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            name, kind = entry.stem, "video"
        elif entry.is_dir() and image_files(entry):
            name, kind = entry.name, "images"
        else:
            continue
        check_name(
            name,
            f"{entry}: camera name",
            f"rename the {'file' if kind == 'video' else 'folder'} "
            "(the camera is named after it, and the name becomes file and folder names)",
        )
        if name in found:
            raise InputError(
                f"{folder}: camera {name!r} has two sources, {found[name][0].name} and {entry.name}. "
                "Keep one and move the other out of the take folder."
            )
        found[name] = (entry, kind)  # type: ignore[assignment]
    return [(name, *found[name]) for name in sorted(found, key=_natural_key)]


def probe_video(name: str, path: Path) -> CameraFootage:
    """One video as a camera's footage: size, rate and exact frame count, without keeping any frame.

    Raises:
        InputError: the file is empty, truncated, not a video, or has no frames or frame rate.
    """
    import imageio_ffmpeg

    if path.stat().st_size == 0:
        raise InputError(f"{path}: the video file of camera {name} is empty. Re-copy or re-export it.")
    stream = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(stream)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise InputError(
            f"{path}: camera {name}'s video cannot be read ({_ffmpeg_reason(str(exc))}). The file may be "
            "truncated or not a video; re-copy or re-export it."
        ) from None
    finally:
        stream.close()
    try:
        # ffmpeg decodes the whole video once, to nowhere (no frame is kept): exact where container
        # metadata can be wrong, at the cost of one pass over the file.
        num_frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    except RuntimeError as exc:
        raise InputError(
            f"{path}: camera {name}'s video cannot be decoded ({_ffmpeg_reason(str(exc))}). Re-copy or re-export it."
        ) from None
    if not num_frames:
        raise InputError(f"{path}: camera {name}'s video has no frames. Re-copy or re-export it.")
    fps = float(meta.get("fps") or 0.0)
    if not (math.isfinite(fps) and fps > 0):
        fps = num_frames / seconds if seconds else 0.0
    if not fps > 0:
        raise InputError(f"{path}: camera {name}'s video has no frame rate. Re-export it with one.")
    width, height = (int(v) for v in meta["size"])
    times = _frame_times(path)
    if times is not None and len(times) == num_frames and num_frames > 2:
        intervals = np.diff(times)
        median = float(np.median(intervals))
        if median > 0 and float(np.max(np.abs(intervals - median))) > VFR_TOLERANCE * median:
            logger.info(
                "%s: variable frame rate (frames %.1f to %.1f ms apart); frames are placed by their timestamps",
                path, 1000 * intervals.min(), 1000 * intervals.max(),
            )  # fmt: skip
            fps = (num_frames - 1) / times[-1]
            return CameraFootage(name, path, "video", width, height, fps, int(num_frames), timestamps=times)
    return CameraFootage(name, path, "video", width, height, fps, int(num_frames))


def _frame_times(path: Path) -> tuple[float, ...] | None:
    """Each frame's presentation time in seconds from the first, from the container's packets (read
    with PyAV, nothing decoded); None when the container does not say."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stamps = sorted(packet.pts for packet in container.demux(stream) if packet.pts is not None)
            base = stream.time_base
    except (av.error.FFmpegError, OSError, IndexError):
        return None
    if not stamps or base is None:
        return None
    return tuple(float((stamp - stamps[0]) * base) for stamp in stamps)


def open_plates(folder: str | os.PathLike, sizes: Mapping[str, tuple[int, int]]) -> dict[str, CameraFootage]:
    """Clean plates as a crew shoots them: per camera, a video or image folder of the empty set, named
    after the camera like the footage. Frames are numbered from 0; their count and rate are free.

    Args:
        folder: the plates folder.
        sizes: camera name -> (width, height) of its footage; every camera needs a plate of that size.

    Raises:
        InputError: no such folder, a camera without a plate or with a plate of another size, or a
            plate for a camera the take does not have.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"{folder}: no such plates folder. Give a folder with one video or image folder per camera "
            "of the empty set, named after the camera."
        )
    found = {name: (path, kind) for name, path, kind in _discover(folder)}
    unknown = sorted(set(found) - set(sizes))
    missing = [n for n in sizes if n not in found]
    if unknown or missing:
        raise InputError(
            f"{folder}: "
            + "; ".join(
                ([f"no plate for camera(s) {missing}"] if missing else [])
                + ([f"plate(s) {unknown} match no camera of the take ({sorted(sizes)})"] if unknown else [])
            )
            + ". Name each plate after its camera, as in the footage folder."
        )
    plates = {}
    for name, size in sizes.items():
        path, kind = found[name]
        plate = probe_video(name, path) if kind == "video" else _probe_images(name, path, 1.0)
        if (plate.width, plate.height) != tuple(size):
            raise InputError(
                f"{path}: camera {name}'s plate is {plate.width}x{plate.height} but its footage is "
                f"{size[0]}x{size[1]}. Shoot (or export) the plate at the footage's size."
            )
        plates[name] = plate
    return plates


def _probe_images(name: str, folder: Path, fps: float) -> CameraFootage:
    """Size and frame list of an image sequence; every frame must have the same size."""
    files = image_files(folder)
    width, height = _image_size(files[0])
    for path in files[1:]:
        size = _image_size(path)
        if size != (width, height):
            raise InputError(
                f"{path}: is {size[0]}x{size[1]} but {files[0].name} (the first frame of camera {name}) is "
                f"{width}x{height}. All frames of a sequence must have one size; resize or remove it."
            )
    return CameraFootage(name, folder, "images", width, height, fps, len(files), frame_paths=tuple(files))


def _check_offsets(offsets: Mapping[str, int], names: list[str], folder: Path) -> dict[str, int]:
    unknown = sorted(set(offsets) - set(names))
    if unknown:
        raise InputError(f"{folder}: offsets name cameras without footage {unknown}; the cameras are {names}.")
    checked = {}
    for name, value in offsets.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"camera {name}: offset must be a whole number of frames, got {value!r}.")
        checked[name] = int(value)
    return checked


def take_rate(probes: Sequence[CameraFootage]) -> float:
    """The rate of a take's clock: its cameras' one rate, or the highest of a rig of mixed rates (each
    camera then shows, at every take frame, its own frame nearest in time)."""
    return max(p.fps for p in probes)


def mixed_rates(probes: Sequence[CameraFootage]) -> bool:
    """Whether the cameras run at different rates (29.97 and 30000/1001 are one), or one at a variable rate."""
    highest = take_rate(probes)
    return any(abs(p.fps - highest) > FPS_RELATIVE_TOLERANCE * highest or p.timestamps for p in probes)


def take_frame_counts(probes: Sequence[CameraFootage]) -> dict[str, int]:
    """Camera name → the number of frames of the take's clock (`take_rate`) it shows."""
    rate = take_rate(probes)
    return {p.name: len(replace(p, take_fps=rate).frames) for p in probes}


def same_length(probes: Sequence[CameraFootage]) -> bool:
    """Whether the cameras show as many frames of the take's clock; cameras of different rates may
    differ by one (where each one's last frame falls between take frames)."""
    counts = take_frame_counts(probes).values()
    return max(counts) - min(counts) <= (1 if mixed_rates(probes) else 0)


def _take_range(probes: list[CameraFootage], offsets: dict[str, int] | None, folder: Path) -> tuple[int, int]:
    """(first frame, number of frames) of the take.

    Without offsets the cameras must be of one length (`same_length`), and the take is the frames all
    of them show.
    """
    counts = take_frame_counts(probes)
    if offsets is None:
        if not same_length(probes):
            listed = ", ".join(f"{n} {c}" for n, c in counts.items())
            raise InputError(
                f"{folder}: the cameras have different frame counts ({listed}"
                + (f", at the take's {take_rate(probes):g} fps" if mixed_rates(probes) else "")
                + "). Trim them to the same length, sync them (reshoot init --sync timecode|audio|motion), or give "
                "per-camera offsets so the take is the frames all cameras cover."
            )
        return 0, min(counts.values())
    first = max(offsets.get(p.name, 0) for p in probes)
    stop = min(offsets.get(p.name, 0) + counts[p.name] for p in probes)
    if stop <= first:
        listed = ", ".join(
            f"{p.name} {offsets.get(p.name, 0)}..{offsets.get(p.name, 0) + counts[p.name] - 1}" for p in probes
        )
        raise InputError(
            f"{folder}: with these offsets no take frame is shown by every camera (frames: {listed}). "
            "Check the offsets."
        )
    return first, stop - first


def _find_calibration(folder: Path, calibration: str | os.PathLike | Camera | None) -> tuple[Camera | None, str]:
    """The calibration to attach and where it came from (for messages)."""
    if isinstance(calibration, Camera):
        return calibration, "the given calibration"
    if calibration is not None:
        return load_calibration(calibration), str(calibration)
    for name in CALIBRATION_FILES:
        if (folder / name).is_file():
            logger.info("%s: using the calibration in %s", folder, name)
            return load_calibration(folder / name), str(folder / name)
    return None, ""


def _match_calibration(camera: Camera, where: str, probes: list[CameraFootage]) -> Camera:
    """The calibration reordered like the footage, after checking that they describe the same cameras.

    A calibration whose cameras are only numbered 0..N-1 (an OpenCV file without names) is taken in the
    footage's (name) order when it has as many cameras, with a warning.
    """
    names = [p.name for p in probes]
    numbered = tuple(str(i) for i in range(len(camera)))
    if camera.names == numbered and len(camera) == len(names) and set(names) != set(numbered):
        logger.warning(
            "%s: its cameras are numbered, not named; taken in the footage's order: %s. Name them (a camera_names "
            "sequence in an OpenCV file) if that is not the order they were calibrated in.",
            where, ", ".join(f"{i} = {n}" for i, n in enumerate(names)),
        )  # fmt: skip
        camera = camera.renamed(names)
    extra = [n for n in camera.names if n not in names]
    if extra:
        raise InputError(
            f"{where}: calibrates cameras {extra} that have no footage (the footage cameras are {names}). "
            "Add their videos, or remove them from the calibration."
        )
    missing = [n for n in names if n not in camera.names]
    if missing:
        raise InputError(
            f"{where}: has no entry for cameras {missing} that have footage. Add them to the calibration "
            "or move their files out of the take folder."
        )
    ordered = camera.select(names)
    matched = []
    for i, p in enumerate(probes):
        size = (int(ordered.width[i]), int(ordered.height[i]))
        if size != (p.width, p.height):
            if not all(0 <= d < CODING_BLOCK for d in (size[0] - p.width, size[1] - p.height)):
                raise InputError(
                    f"{where}: camera {p.name} is calibrated at {size[0]}x{size[1]} but its footage "
                    f"{p.path.name} is {p.width}x{p.height}. Use the calibration made for this resolution."
                )
            logger.warning(
                "%s: camera %s is calibrated at %dx%d and its footage %s is %dx%d: taken as the picture's top-left "
                "part (a video codec's crop of its %d-pixel coding blocks), with the same K.",
                where, p.name, *size, p.path.name, p.width, p.height, CODING_BLOCK,
            )  # fmt: skip
        matched.append(ordered.select(i).cropped(0, 0, p.width, p.height))
    return Camera.cat(matched)


def probe_cameras(folder: str | os.PathLike, fps: float | None = None) -> list[CameraFootage]:
    """Every camera's footage in a take folder, probed (size, rate, frame count), offsets 0, sorted by
    camera name: what `open_footage` and sync (`reshoot.datasets.sync`) start from.

    Args:
        folder: the take folder.
        fps: frame rate of image sequences (default 24); videos carry their own.

    Raises:
        InputError: the folder is missing or has no footage, fps is not a positive number, a video is
            empty, truncated or unreadable, or an image sequence mixes sizes.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such folder. Give the folder that holds the take's videos.")
    if not folder.is_dir():
        raise InputError(f"{folder}: is a file; give the folder that holds the take's per-camera videos.")
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number of frames per second, got {fps!r}.")
    found = _discover(folder)
    if not found:
        raise InputError(
            f"{folder}: no footage found. Put one video per camera in it (<camera>{'/'.join(VIDEO_SUFFIXES)}) "
            f"or one folder of frames per camera (<camera>/ with {'/'.join(IMAGE_SUFFIXES)} files)."
        )
    image_fps = DEFAULT_IMAGE_FPS if fps is None else float(fps)
    return [
        probe_video(name, path) if kind == "video" else _probe_images(name, path, image_fps)
        for name, path, kind in found
    ]


def open_footage(
    folder: str | os.PathLike,
    calibration: str | os.PathLike | Camera | None = None,
    offsets: Mapping[str, int] | None = None,
    fps: float | None = None,
    calibration_units: str = "auto",
    probed: Sequence[CameraFootage] | None = None,
    decoders: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> Footage:
    """Open a take folder lazily: headers are read and frames counted, nothing is kept in memory.

    Args:
        folder: the take folder (see the module docstring for its layout).
        calibration: a calibration file or COLMAP model folder (`load_calibration`), or a Camera; by
            default `folder/calibration.json` or `folder/camera_array.toml` if present.
            It must describe exactly the cameras with footage, at the footage's image size.
        offsets: camera name → frames; frame `i` of that camera shows take frame `i + offset`
            (missing cameras: 0). With offsets the take is the frame range every camera covers;
            without (None or empty), every camera must have the same number of frames.
        fps: frame rate of image sequences (default 24); videos carry their own. Cameras of different
            rates make a take at the highest (`take_rate`).
        calibration_units: the calibration's length unit, "m", "cm" or "mm", or "auto" to tell it from
            how far apart its cameras stand (`sniff_units`; a unit other than metres is warned about).
            Its translations are converted to metres.
        probed: the folder's cameras as `probe_cameras(folder, fps)` gave them, so that they are not
            probed again (probing decodes every video once).
        decoders: camera name → its `CameraFootage.decode` (cameras not named: none).

    Returns:
        The Footage, sources sorted by camera name, calibration in the same order.

    Raises:
        InputError: the folder is missing or has no footage; a video is empty, truncated or
            unreadable; the cameras (without offsets) show different numbers of take frames; the
            offsets leave no common frame; the calibration misses a camera, names one without
            footage, or has another image size; an image sequence mixes sizes.
    """
    folder = Path(folder)
    probes = list(probed) if probed is not None else probe_cameras(folder, fps)
    names = [p.name for p in probes]
    checked_offsets = _check_offsets(offsets, names, folder) if offsets else None  # {} is no offsets too
    take_fps = take_rate(probes)
    if mixed_rates(probes):
        logger.info(
            "%s: mixed frame rates (%s): the take runs at %g fps",
            folder, ", ".join(f"{p.name} {p.fps:g}" for p in probes), take_fps,
        )  # fmt: skip
    first_frame, num_frames = _take_range(probes, checked_offsets, folder)
    if calibration_units not in CALIBRATION_UNITS:
        raise InputError(f"calibration units {calibration_units!r}: choose one of {', '.join(CALIBRATION_UNITS)}.")
    camera, where = _find_calibration(folder, calibration)
    ordered = None if camera is None else _match_calibration(camera, where, probes)
    units = None
    if ordered is not None:
        unit = sniff_units(ordered) if calibration_units == "auto" else calibration_units
        if calibration_units == "auto" and unit != "m":
            logger.warning(
                "%s: its cameras stand a median %.4g units apart, not a film set in metres: taken as %s (%.3g m). "
                "Pass --calibration-units m (or cm, mm) if that is wrong.",
                where, median_spacing(ordered), {"cm": "centimetres", "mm": "millimetres"}[unit],
                median_spacing(ordered) * UNITS_TO_METRES[unit],
            )  # fmt: skip
        ordered = in_metres(ordered, unit)
        units = {
            "unit": unit,
            "source": "sniffed" if calibration_units == "auto" else "declared",
            "median_spacing_m": round(median_spacing(ordered), 4),
        }
    decoders = decoders or {}
    sources = tuple(
        replace(p, offset=(checked_offsets or {}).get(p.name, 0), take_fps=take_fps, decode=decoders.get(p.name))
        for p in probes
    )
    logger.info(
        "%s: %d cameras, %d frames from %d at %g fps%s",
        folder,
        len(sources),
        num_frames,
        first_frame,
        take_fps,
        ", calibrated" if ordered is not None else "",
    )
    return Footage(folder, sources, take_fps, num_frames, first_frame, ordered, units)
