"""Preparing a bench take once: its footage, a registered, reconstructed and laid-out workspace, and
one conditioned shot per task (the target camera, with its true frames beside it).

A prepared take lives in `CACHE/NAME-DIGEST/` (`take/` the generator's output, `footage/` + `calibration.json`
for real footage, `ws/` the workspace) and is reused while its spec, its tasks and the reshoot version
are the same (`prepared.json`, written last, records them; the digest names the folder). Methods write only their own
shots into it (`runner.method_shot`), so any number of them can run on one prepared take at once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from reshoot import __version__
from reshoot.bench.methods import eight_bit
from reshoot.bench.suite import TakeSpec, TaskSpec
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, write_text_atomic
from reshoot.geometry.progress import ProgressFn, no_progress

PREPARED_FILE = "prepared.json"


def take_digest(take: TakeSpec, tasks: Sequence[TaskSpec]) -> str:
    """12 hex digits over the take's spec, its tasks' targets and the reshoot version."""
    blob = json.dumps(
        {"take": asdict(take), "tasks": sorted(t.shot for t in tasks), "reshoot": __version__}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def prepared_folder(cache: Path, take: TakeSpec, tasks: Sequence[TaskSpec]) -> Path:
    return cache / f"{take.name}-{take_digest(take, tasks)}"


def prepare_take(
    take: TakeSpec, tasks: Sequence[TaskSpec], cache: Path, data: Path, progress: ProgressFn | None = None
) -> Path:
    """The prepared workspace of `take` with a conditioned shot per task (made now unless cached).

    Args:
        take: the take.
        tasks: the tasks on it (each gets shot `task.shot`, conditioned, with `truth/` frames).
        cache: where prepared takes live.
        data: the shared real-footage folder (`../shared/data`).

    Raises:
        InputError: real footage missing from `data`, or a stage refused the take (nothing is cached then).
    """
    folder = prepared_folder(cache, take, tasks)
    if (folder / PREPARED_FILE).is_file():
        return folder / "ws"
    report = progress or no_progress
    # Made in place (the reports and manifests inside name their real paths) and marked done last; a
    # half-made folder (a failed or interrupted run) is removed, here or by the next run.
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        if take.source == "synthetic":
            _prepare_synthetic(take, tasks, folder, report)
        else:
            _prepare_held_out(take, tasks, folder, data, report)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    record = {"take": asdict(take), "tasks": [t.shot for t in tasks], "reshoot": __version__}
    write_text_atomic(folder / PREPARED_FILE, json.dumps(record, indent=1) + "\n")
    return folder / "ws"


def _overrides(take: TakeSpec) -> list[str]:
    """The take's stage settings as `--set STAGE.FIELD=VALUE` texts (reconstruct's frames and downscale
    from the take's own fields)."""
    stages = {name: dict(values) for name, values in take.stages.items()}
    reconstruct = stages.setdefault("reconstruct", {})
    reconstruct["downscale"] = take.downscale
    if take.frames is not None:
        reconstruct["frames"] = f"{take.frames[0]}:{take.frames[1]}"
    return [f"{stage}.{k}={v}" for stage, values in stages.items() for k, v in values.items()]


def _run_until_layout(ws: Path, overrides: list[str], report: ProgressFn) -> None:
    from reshoot.pipeline import run_pipeline
    from reshoot.workspace import Workspace

    run_pipeline(Workspace(ws), overrides=overrides, until="layout", progress=report)


def _prepare_synthetic(take: TakeSpec, tasks: Sequence[TaskSpec], folder: Path, report: ProgressFn) -> None:
    from reshoot.conditioning import render_conditioning
    from reshoot.datasets.synthetic import SynthConfig, generate_take
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import ground_truth_shot
    from reshoot.workspace import init_workspace

    made = folder / "take"
    generate_take(made, SynthConfig(**take.synth), report)
    ws = folder / "ws"
    init_workspace(ws, made / "footage", survey=made / "survey")
    # Registered through the survey, with the scale a crew measures on set: the wide camera's height (the
    # generator's truth). (A calibration of these small 320×180 cameras alone triangulates no static point.)
    truth = read_cameras_json(made / "gt" / "cameras.json").cameras
    height = float(truth.select("a_wide").centers[0, 2])
    _run_until_layout(ws, [f"register.camera_height={{a_wide = {height:.4f}}}", *_overrides(take)], report)
    for task in tasks:
        ground_truth_shot(ws, made, task.camera, task.shot, overwrite=True)
        render_conditioning(ws, task.shot, progress=report)


def _prepare_held_out(take: TakeSpec, tasks: Sequence[TaskSpec], folder: Path, data: Path, report: ProgressFn) -> None:
    """Real footage with `take.held_out` out of every stage: the workspace has the other cameras' footage
    and calibration only; the held-out camera joins as the task's shot camera (moved into the
    registration's frame by the cameras both know) and its undistorted, downscaled frames as the truth."""
    from reshoot.conditioning import render_conditioning
    from reshoot.datasets.calibration import load_calibration
    from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
    from reshoot.ground_truth import cameras_in_registration_frame
    from reshoot.shots import shoot
    from reshoot.workspace import Workspace, init_workspace

    source = data / take.source
    calibration_file = source / "camera_array.toml"
    videos = source / "calibration" / "extrinsic"
    if not calibration_file.is_file() or not videos.is_dir():
        raise InputError(f"{source}: no real footage for bench take {take.name!r} (need {calibration_file}).")
    calibration = load_calibration(calibration_file)
    if take.held_out not in calibration.names:
        raise InputError(f"bench take {take.name!r}: {source} has no camera {take.held_out!r}.")
    kept = [n for n in calibration.names if n != take.held_out]
    footage = folder / "footage"
    footage.mkdir()
    if take.clip is None and take.source_downscale == 1:
        for name in kept:
            shutil.copyfile(videos / f"{name}.mp4", footage / f"{name}.mp4")
    else:
        _write_clip(videos, calibration, kept, take, footage)
    write_cameras_json(folder / "calibration.json", calibration.select(kept).scaled(take.source_downscale))
    ws = folder / "ws"
    init_workspace(ws, footage, calibration=folder / "calibration.json")
    _run_until_layout(ws, _overrides(take), report)

    registered = read_cameras_json(Workspace(ws).cameras).cameras
    held = cameras_in_registration_frame(calibration, registered).select([take.held_out])
    target = held.scaled(take.source_downscale * take.downscale).pinhole()
    write_cameras_json(folder / "held_out.json", target)
    for task in tasks:
        result = shoot(ws, None, task.shot, folder / "held_out.json", frames=take.frames, overwrite=True)
        render_conditioning(ws, task.shot, progress=report)
        _write_held_out_truth(videos, calibration, held, take, Workspace(ws).shot(result.name).truth)


def _averaged(image: np.ndarray, factor: int) -> np.ndarray:
    """[H, W, 3] averaged over factor × factor blocks (sizes floored), as `Camera.scaled(factor)` sees it."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return image[: h * factor, : w * factor].reshape(h, factor, w, factor, -1).mean((1, 3))


def _write_clip(videos: Path, calibration, names: Sequence[str], take: TakeSpec, out: Path) -> None:
    """Source frames `take.clip` (all without one) of each named camera, averaged down by
    `take.source_downscale`, as image sequences `out/NAME/NNNNNN.png` (lossless from here on)."""
    import imageio.v3 as iio

    from reshoot.datasets.footage import open_footage

    with open_footage(videos, calibration) as footage:
        frames = range(*take.clip) if take.clip else footage.frames
        for name in names:
            (out / name).mkdir()
            for k, frame in enumerate(frames):
                image = _averaged(footage.source(name).read(frame), take.source_downscale)
                iio.imwrite(out / name / f"{k:06d}.png", eight_bit(image))


def _write_held_out_truth(videos: Path, calibration, held, take: TakeSpec, out: Path) -> None:
    """The held-out camera's real frames, undistorted with its lens and averaged down to the shot's size
    (renders are pinhole): `out/NNNNNN.png`."""
    import imageio.v3 as iio
    import torch

    from reshoot.datasets.footage import open_footage
    from reshoot.geometry.camera import undistort_image

    factor, camera = take.source_downscale * take.downscale, str(take.held_out)
    first = take.clip[0] if take.clip else 0  # take frame 0 is this frame of the source videos
    with open_footage(videos, calibration) as footage, atomic_directory(out, overwrite=True) as tmp:
        frames = range(*take.frames) if take.frames else range(len(footage.frames) - first)
        for frame in frames:
            real = undistort_image(torch.from_numpy(footage.source(camera).read(first + frame)), held).numpy()
            iio.imwrite(tmp / f"{frame:06d}.png", eight_bit(_averaged(real, factor)))
