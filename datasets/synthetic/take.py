"""Write a synthetic take: the same on-disk footage as a real take, plus ground truth.

```
OUT/
  take.json                   reshoot/synthetic-take: settings, seed, set size, camera roles
  footage/<camera>.mp4        production cameras, H.264 (+ AAC sound with `audio`, a start timecode with
                              `timecode`); with `offsets` each starts at its own moment, all stop together
  survey/NNNNNN.png           photos of a survey walk around the empty set (unless survey_frames = 0)
  plates/<camera>.mp4         with `plates`: clean plates, each production camera rolling on the empty set
  gt/cameras.json             reshoot/cameras: every camera, production and ground-truth-only
  gt/entities.json            reshoot/layout: every character and prop, per frame
  gt/maps/<camera>.npz        depth [T, H, W] float32 metres (0 = no surface),
                              entity_ids [T, H, W] int32 (-1 = none), frames [T] int64
  gt/frames/<camera>/NNNNNN.png   RGB of the ground-truth-only cameras (overhead, high_angle)
  gt/survey_cameras.json      reshoot/cameras: the survey photos' cameras, named by file stem
```

Ground truth is on the take's clock: frames 0 .. frames-1, the frames every camera shows. take.json's
`offsets` say where each camera's footage lies on it (its frame i shows take frame i + offset).
"""

from __future__ import annotations

import logging
import subprocess
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np

from reshoot.datasets.sync import frames_to_timecode, timecode_to_frames
from reshoot.geometry.cameras_io import write_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, foreign_entries, read_json_document, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress

from .config import SynthConfig
from .render import SetRenderer
from .scene import FilmSet, build_film_set

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TakePaths:
    """Where each file of a synthetic take lives (the layout in the module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def footage(self) -> Path:
        return self.root / "footage"

    @property
    def survey(self) -> Path:
        return self.root / "survey"

    @property
    def gt(self) -> Path:
        """gt/: the ground truth."""
        return self.root / "gt"

    @property
    def cameras(self) -> Path:
        """gt/cameras.json: every camera, production and ground-truth-only."""
        return self.gt / "cameras.json"

    @property
    def entities(self) -> Path:
        """gt/entities.json: every character and prop, per frame (reshoot/layout)."""
        return self.gt / "entities.json"

    def maps(self, camera: str) -> Path:
        """gt/maps/<camera>.npz: depth, entity_ids and frames."""
        return self.gt / "maps" / f"{camera}.npz"

    def frames(self, camera: str) -> Path:
        """gt/frames/<camera>/: the RGB frames of a ground-truth-only camera."""
        return self.gt / "frames" / camera

    def frame(self, camera: str, frame: int) -> Path:
        return self.frames(camera) / frame_file_name(frame)


@dataclass(frozen=True)
class TakeSummary:
    """What `generate_take` wrote.

    Attributes:
        root: the take folder.
        production_cameras: names of the cameras with footage.
        ground_truth_cameras: names of the ground-truth-only cameras.
        frames: frames per camera.
        seconds: wall time spent.
    """

    root: Path
    production_cameras: tuple[str, ...]
    ground_truth_cameras: tuple[str, ...]
    frames: int
    seconds: float


def frame_file_name(frame: int) -> str:
    """`NNNNNN.png` for a take frame number."""
    return f"{frame:06d}.png"


# zlib level of the take's PNGs: 1 writes a 640x360 frame in 24 ms where the default 6 takes 65 ms, for
# 6 % more bytes (`make demo` writes 120 of them).
PNG_COMPRESSION = 1


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _scene_frame(config: SynthConfig, take_frame: int) -> int:
    """The scene frame (at `config.base_fps`) of a take frame."""
    return (take_frame + config.spread) * config.steps_per_take_frame


def _recorded(config: SynthConfig, camera: str) -> range:
    """The scene frames a production camera records: from its start (its offset) to the common cut, its
    first frame at or after the take's last, one every `base_fps / its rate`."""
    step = int(round(config.base_fps / config.rate(camera)))
    return range(_scene_frame(config, config.take_offset(camera)), _scene_frame(config, config.frames - 1) + step, step)


def _video_writer(path: Path, config: SynthConfig, fps: float):
    return imageio_v2.get_writer(
        path,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        quality=None,
        pixelformat="yuv420p",
        macro_block_size=2,
        ffmpeg_log_level="error",
        # Deterministic output: one encoder thread, no encoder/muxer version strings.
        ffmpeg_params=[
            "-crf",
            str(config.video_crf),
            "-preset",
            "medium",
            "-threads",
            "1",
            "-bitexact",
            "-fflags",
            "+bitexact",
            "-map_metadata",
            "-1",
        ],
    )


def _entities_document(film_set: FilmSet, config: SynthConfig) -> dict:
    """Every entity per take frame 0 .. frames-1 (`_scene_frame`); props once."""
    entities = []
    for entity in film_set.entities:
        take_frames = [None] if entity.kind == "prop" else range(config.frames)
        records = []
        for frame in take_frames:
            lo, hi = film_set.entity_box(entity, _scene_frame(config, 0 if frame is None else frame))
            records.append(
                {
                    "frame": frame,
                    "position": [round(float(x), 6) for x in (lo + hi) / 2],
                    "box_min": [round(float(x), 6) for x in lo],
                    "box_max": [round(float(x), 6) for x in hi],
                    "confidence": 1.0,
                }
            )
        entities.append({"id": entity.id, "name": entity.name, "kind": entity.kind, "frames": records})
    return {"entities": entities}


def _write_survey(root: Path, renderer: SetRenderer, survey, report: ProgressFn) -> None:
    """Survey photos of the empty set (one ray per pixel: stills for registration, not for viewing)."""
    (root / "survey").mkdir()
    for i, name in enumerate(survey.names):
        view, _ = renderer.render_static(survey.select(i), antialias=1)
        iio.imwrite(root / "survey" / f"{name}.png", _to_uint8(view.rgb), compress_level=PNG_COMPRESSION)
        report("rendering the survey", i + 1, len(survey))
    write_cameras_json(root / "gt" / "survey_cameras.json", survey, extra={"images": "survey/<name>.png"})


AUDIO_RATE = 48000  # samples per second of the footage's sound
CLAP_DECAY_S = 0.012  # the clap: a burst of noise decaying with this time constant
ROOM_TONE = 0.004  # each camera's own background noise (amplitude, full scale 1)


PLATE_FRAMES = 4  # frames of each clean plate (the empty set does not change: a short roll)


def _write_plates(folder: Path, renderer: SetRenderer, config: SynthConfig, production: tuple[str, ...]) -> None:
    """Each production camera rolling on the empty set for PLATE_FRAMES frames (the footage's own render
    of the static set, encoded as its footage)."""
    folder.mkdir()
    for name in production:
        writer = _video_writer(folder / f"{name}.mp4", config, config.rate(name))
        try:
            image = _to_uint8(renderer.static_view(renderer.film_set.cameras.names.index(name)).rgb)
            for _ in range(PLATE_FRAMES):
                writer.append_data(image)
        finally:
            writer.close()


def clap_time(config: SynthConfig) -> float:
    """Take time (seconds) of the clap: somewhere in the middle of the take, off the frame grid."""
    rng = np.random.default_rng([config.seed, 3])
    return float(rng.uniform(0.25, 0.6) * config.frames / config.take_fps)


def _camera_sound(config: SynthConfig, camera_index: int, offset: int, samples: int) -> np.ndarray:
    """[samples] float32 sound of one camera that started at take frame `offset` (at the take's rate):
    the clap where it falls on this camera's clock, over room tone of its own."""
    rng = np.random.default_rng([config.seed, 4, camera_index])
    sound = rng.normal(0.0, ROOM_TONE, samples)
    burst_length = int(8 * CLAP_DECAY_S * AUDIO_RATE)
    burst = np.random.default_rng([config.seed, 3, 1]).normal(0.0, 0.25, burst_length)
    burst *= np.exp(-np.arange(burst_length) / (CLAP_DECAY_S * AUDIO_RATE))
    start = int(round((clap_time(config) - offset / config.take_fps) * AUDIO_RATE))
    stop = min(start + burst_length, samples)
    if 0 <= start < samples:
        sound[start:stop] += burst[: stop - start]
    return np.clip(sound, -1.0, 1.0).astype(np.float32)


def _write_wav(path: Path, sound: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(AUDIO_RATE)
        f.writeframes((sound * 32767.0).astype("<i2").tobytes())


def _add_sound_and_timecode(video: Path, sound: Path | None, timecode: str | None) -> None:
    """Re-mux `video` in place with an AAC track from `sound` and/or a start timecode (a tmcd track)."""
    import imageio_ffmpeg

    muxed = video.with_name(video.stem + ".muxed.mp4")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(video)]
    if sound is not None:
        command += ["-i", str(sound), "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "160k"]
    command += ["-c:v", "copy", "-bitexact", "-fflags", "+bitexact", "-map_metadata", "-1"]
    if timecode is not None:
        command += ["-timecode", timecode]
    done = subprocess.run([*command, str(muxed)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not mux {video.name}: {done.stderr.strip()[-400:]}")
    muxed.replace(video)


TAKE_ENTRIES = ("take.json", "footage", "survey", "gt", "plates")
"""Everything `generate_take` writes at the top of a take folder."""


def _not_a_take(folder: Path) -> str | None:
    """Why `folder` is not a synthetic take that `generate_take` may replace (None when it is one): it must
    hold a reshoot/synthetic-take take.json and nothing else than a take has."""
    try:
        read_json_document(folder / "take.json", "synthetic-take", 1)
    except InputError:
        return "it has no reshoot/synthetic-take take.json"
    foreign = foreign_entries(folder, lambda name: name in TAKE_ENTRIES)
    if foreign:
        return f"it also holds {', '.join(foreign[:5])}, which a synthetic take does not have"
    return None


def generate_take(
    out: str | Path, config: SynthConfig, progress: ProgressFn | None = None, overwrite: bool = False
) -> TakeSummary:
    """Build, render and write a synthetic take (see the module docstring for the layout).

    The take is written into a temporary folder beside `out` and moved into place at the end, so an
    interrupted run leaves nothing half-written and an existing take is only replaced on success.

    Raises:
        InputError: `out` exists and is not empty and `overwrite` is False, or it is not a synthetic take
            (`--overwrite` replaces only a folder with a take.json and nothing a take does not have).
    """
    started = time.perf_counter()
    out = Path(out)
    report = progress or no_progress
    with atomic_directory(out, overwrite=overwrite, replaceable=_not_a_take, command="reshoot synth") as tmp:
        report("building the set", 0, 1)
        film_set = build_film_set(config)
        cameras = film_set.cameras
        production = tuple(n for n in cameras.names if film_set.roles[n] == "production")
        ground_truth = tuple(n for n in cameras.names if film_set.roles[n] == "ground_truth")
        renderer = SetRenderer(film_set, config.antialias)

        write_cameras_json(
            tmp / "gt" / "cameras.json",
            cameras,
            attributes={n: {"role": film_set.roles[n]} for n in cameras.names},
            extra={"fps": config.take_fps, "frames": config.frames},
        )
        write_json_document(tmp / "gt" / "entities.json", "layout", 1, _entities_document(film_set, config))
        (tmp / "footage").mkdir()
        for name in ground_truth:
            (tmp / "gt" / "frames" / name).mkdir(parents=True)

        shape = (config.frames, config.height, config.width)
        depth = {n: np.zeros(shape, np.float32) for n in cameras.names}
        entity_ids = {n: np.full(shape, -1, np.int32) for n in cameras.names}
        writers = {n: _video_writer(tmp / "footage" / f"{n}.mp4", config, config.rate(n)) for n in production}
        offsets = {n: config.take_offset(n) for n in production}  # in take frames
        recorded = {n: _recorded(config, n) for n in production}
        take_frames = {_scene_frame(config, t): t for t in range(config.frames)}
        try:
            for scene_frame in range(config.scene_frames):
                frame = take_frames.get(scene_frame, -1)  # on the take's clock
                in_take = frame >= 0
                rolling = [n for n in production if scene_frame in recorded[n]]
                if not in_take and not rolling:
                    continue
                scene = renderer.frame_scene(scene_frame)
                for index, name in enumerate(cameras.names):
                    if not in_take and name not in rolling:
                        continue
                    view = renderer.render(index, scene_frame, scene)
                    if in_take:
                        depth[name][frame] = view.depth
                        entity_ids[name][frame] = view.entity_ids
                    if name in rolling:
                        writers[name].append_data(_to_uint8(view.rgb))
                    elif name not in writers:
                        iio.imwrite(
                            tmp / "gt" / "frames" / name / frame_file_name(frame),
                            _to_uint8(view.rgb),
                            compress_level=PNG_COMPRESSION,
                        )
                report("rendering frames", scene_frame + 1, config.scene_frames)
        finally:
            for writer in writers.values():
                writer.close()
        if config.plates:
            _write_plates(tmp / "plates", renderer, config, production)
        for index, name in enumerate(production):
            sound = None
            if config.audio:
                sound = tmp / f"{name}.wav"
                samples = int(round(len(recorded[name]) / config.rate(name) * AUDIO_RATE))
                _write_wav(sound, _camera_sound(config, index, offsets[name], samples))
            timecode = None
            if config.timecode is not None:  # each camera's at its own rate, to its nearest frame
                take_rate, rate = int(config.take_fps), int(config.rate(name))
                seconds = timecode_to_frames(config.timecode, take_rate) / take_rate + offsets[name] / take_rate
                timecode = frames_to_timecode(int(round(seconds * rate)), rate)
            if sound is not None or timecode is not None:
                _add_sound_and_timecode(tmp / "footage" / f"{name}.mp4", sound, timecode)
            if sound is not None:
                sound.unlink()

        if film_set.survey is not None:
            _write_survey(tmp, renderer, film_set.survey, report)

        (tmp / "gt" / "maps").mkdir()
        frame_numbers = np.arange(config.frames, dtype=np.int64)
        for i, name in enumerate(cameras.names):
            np.savez_compressed(
                tmp / "gt" / "maps" / f"{name}.npz",
                depth=depth[name],
                entity_ids=entity_ids[name],
                frames=frame_numbers,
            )
            report("writing ground truth", i + 1, len(cameras.names))

        write_json_document(
            tmp / "take.json",
            "synthetic-take",
            1,
            {
                "generator": "reshoot.datasets.synthetic",
                "config": config.to_dict(),
                "seed": config.seed,
                "fps": config.take_fps,
                "frames": config.frames,
                "first_frame": 0,
                "camera_fps": {n: config.rate(n) for n in production},
                "offsets": offsets,
                "timecode": config.timecode,
                "clap_seconds": clap_time(config) if config.audio else None,
                "floor_size": [float(s) for s in film_set.floor_size],
                "walls": film_set.walls,
                "production_cameras": list(production),
                "ground_truth_cameras": list(ground_truth),
                "survey_frames": config.survey_frames,
            },
        )
    seconds = time.perf_counter() - started
    log.info("synthetic take written to %s in %.1f s", out, seconds)
    return TakeSummary(out, production, ground_truth, config.frames, seconds)
