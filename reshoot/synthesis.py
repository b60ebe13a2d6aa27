"""`reshoot synthesize WS SHOT`: the unified video model turns a shot's conditioning into its frames.

Reads `shots/SHOT/shot.json` and `shots/SHOT/conditioning/` (made by `reshoot shoot` or
`reshoot condition`) and the production cameras' footage; writes
    shots/SHOT/frames/NNNNNN.png      one 8-bit PNG per shot frame (take frame numbers), sRGB display
    shots/SHOT/SHOT.mp4               the same frames as H.264 at the take's fps, BT.709, start timecode
    shots/SHOT/exr/SHOT.NNNN.exr      the deliverable: scene-linear layered EXRs numbered from 1001
                                      (reshoot/deliverable.py)
    shots/SHOT/SHOT.otio, SHOT.edl    the editorial timeline (reshoot/editorial.py)
    shots/SHOT/synthesis.json         checkpoint, its config, shot revision, timings, the deliverable's
                                      numbers and timecodes, the filmed share of every frame
each written beside its final place and renamed into it, so a failed run loses nothing.
Colour: the model works on footage-encoded values; the workspace's OCIO pipeline (reshoot/colour.py)
turns its output into the working space for the EXRs and into sRGB display values for PNG and mp4.
Frames are made in overlapping windows of the model's `window` frames, blended; source views are
every production camera at each window's middle frame.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.conditioning import conditioning_revision, read_conditioning_frame, read_deliverable_passes
from reshoot.datasets.sync import frames_to_timecode, read_timecode
from reshoot.deliverable import deliverable_numbers, write_shot_exr
from reshoot.editorial import SourceClip, shot_timeline, write_timeline
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, atomic_path, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.video import write_mp4
from reshoot.model.checkpoint import checkpoint_files, from_pretrained
from reshoot.model.inference import blend_weights, correction, plan_windows, resize_passes, upsampled, working_size
from reshoot.model.inputs import make_window, posed_frames, resized_camera
from reshoot.model.network import UnifiedVideoModel
from reshoot.model.training import resolve_device
from reshoot.shot_io import existing_shot, read_shot_document
from reshoot.stage_options import DEFAULT_CHECKPOINT
from reshoot.workspace import Workspace, load_workspace


def _source_clip(camera, frames: list[int], settings) -> SourceClip:
    """The span of the take frames `frames` in one production camera's footage (a `CameraFootage`), with that
    camera's own start timecode (its video's; else the take's timecode of its first frame, where the camera
    runs at the take's rate; else 00:00:00:00)."""
    first, last = camera.source_index(frames[0]), camera.source_index(frames[-1])
    start = read_timecode(camera.path) if camera.kind == "video" else None
    if start is None:
        rate = int(round(camera.fps))
        start = settings.timecode_of(camera.offset) if rate == int(round(settings.fps)) else frames_to_timecode(0, rate)
    return SourceClip(camera.name, camera.path, float(camera.fps), start, first, last - first + 1, camera.num_frames)


@dataclass(frozen=True)
class SynthesisSummary:
    """What `synthesize` wrote: the frames folder, the video, frame numbers, seconds per frame of the model."""

    frames_folder: Path
    video: Path
    frames: list[int]
    seconds_per_frame: float


def synthesize_frames(
    model: UnifiedVideoModel,
    cameras: Camera,
    frames: list[int],
    rgb: torch.Tensor,
    depth: torch.Tensor,
    alpha: torch.Tensor,
    entity_ids: torch.Tensor,
    sources: Camera,
    source_frames: Callable[[int], tuple[torch.Tensor, int]],
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, float]:
    """The model's frames of a shot, window by window (overlaps blended), at the render's full size.

    The model reads each window at its working size; its correction is upsampled and added to the
    full-resolution render, so what the reconstruction got right keeps its detail.

    Args:
        model: the unified model.
        cameras: T pinhole cameras, one posed camera per shot frame, of the render's size.
        frames: [T] take frame numbers.
        rgb, depth, alpha, entity_ids: the conditioning passes, [T, H, W, 3] / [T, H, W] (depth in world units).
        sources: V production cameras.
        source_frames: take frame → ([V, h, w, 3] float frames of the sources in [0, 1], the frame they show).
        progress: callback.

    Returns:
        ([T, H, W, 3] frames in [0, 1], seconds spent in the model).
    """
    report = progress or no_progress
    config = model.config
    height, width = rgb.shape[1:3]
    work_w, work_h = working_size(width, height, config.working_pixels)
    work_cameras = resized_camera(cameras, work_w, work_h)
    small = resize_passes(rgb, depth, alpha, entity_ids, (work_w, work_h))
    total = torch.zeros(rgb.shape, dtype=torch.float64)
    weights = torch.zeros(len(frames), dtype=torch.float64)
    model_seconds = 0.0
    windows = plan_windows(len(frames), config.window, config.overlap)
    for k, indices in enumerate(windows):
        source_rgb, shown = source_frames(frames[indices[len(indices) // 2]])
        window = make_window(
            work_cameras.select(indices),
            *(p[indices] for p in small),
            torch.tensor([frames[i] for i in indices], dtype=torch.float64),
            sources,
            source_rgb,
            torch.full((len(sources),), float(shown), dtype=torch.float64),
            config.source_scale,
        )
        started = time.perf_counter()
        fix = correction(model, window)
        model_seconds += time.perf_counter() - started
        out = (rgb[indices] + upsampled(fix, width, height)).clamp(0, 1)
        w = torch.from_numpy(blend_weights(len(indices)))
        total[indices] += w[:, None, None, None] * out
        weights[indices] += w
        report("synthesizing", k + 1, len(windows))
    return (total / weights[:, None, None, None]).float(), model_seconds


def synthesize(
    workspace: str | Path,
    name: str,
    checkpoint: str | Path | None = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
) -> SynthesisSummary:
    """Write the frames of shot `name` made by the model in `checkpoint` (the repository's tiny one by default).

    Raises:
        InputError: the shot, its conditioning or the checkpoint is missing, or the conditioning is of an
            older revision of the shot than shot.json.
    """
    import imageio.v3 as iio

    report = progress or no_progress
    root = Path(workspace)
    existing_shot(root, name)
    shot = Workspace(root).shot(name)
    conditioning = shot.conditioning
    rendered = conditioning_revision(conditioning)
    if rendered is False:
        raise InputError(f"shot {name!r} has no conditioning renders yet; run `reshoot condition {root} {name}`.")
    document = read_shot_document(root, name)
    revision = document.extra.get("shot", {}).get("revision")
    if rendered != revision:
        raise InputError(
            f"the conditioning of shot {name!r} is of revision {rendered}, the shot is at revision "
            f"{revision}; run `reshoot condition {root} {name}` first."
        )
    checkpoint = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    weights, _ = checkpoint_files(checkpoint)
    if not weights.is_file():
        raise InputError(
            f"{checkpoint}: no model checkpoint there. Train one with `reshoot train` or pass --checkpoint DIR."
        )
    model = from_pretrained(checkpoint, resolve_device(device))
    with open(weights, "rb") as handle:
        weights_sha1 = hashlib.file_digest(handle, "sha1").hexdigest()
    config = model.config
    camera = document.cameras.select(0).pinhole()
    path = document.paths[name]
    frames = [int(f) for f in path.frames]
    width, height = int(camera.width[0]), int(camera.height[0])

    settings = load_workspace(root)
    colour = settings.colour_pipeline()
    read_deliverable_passes(conditioning, frames[0])  # an older conditioning is refused before the model runs
    registered = read_cameras_json(Workspace(root).cameras)
    production = registered.names_with_role("production", default="production")
    passes = [read_conditioning_frame(conditioning, f) for f in frames]
    posed = posed_frames(camera, path.cam_from_world)
    with settings.open_footage() as footage:
        take = footage.frames

        def source_frames(frame: int) -> tuple[torch.Tensor, int]:
            nearest = min(max(frame, take.start), take.stop - 1)
            return torch.from_numpy(np.stack([footage.source(n).read(nearest) for n in production])), nearest

        frames_out, model_seconds = synthesize_frames(
            model,
            posed,
            frames,
            torch.from_numpy(np.stack([p.rgb for p in passes])),
            torch.from_numpy(np.stack([p.depth for p in passes])),
            torch.from_numpy(np.stack([p.alpha for p in passes])),
            torch.from_numpy(np.stack([p.entity_ids for p in passes])),
            registered.cameras.select(production),
            source_frames,
            report,
        )
        sources = [_source_clip(footage.source(n), frames, settings) for n in production]
    work_w, work_h = working_size(width, height, config.working_pixels)
    if not bool(torch.isfinite(frames_out).all()):  # never replace good frames with black ones
        raise InputError(
            f"{checkpoint}: the model wrote NaN or infinite pixels for shot {name!r}; nothing was "
            "written. Use another checkpoint (`--checkpoint`) or train again."
        )
    linear = colour.to_working(frames_out.numpy())
    result = colour.to_8bit(linear)
    numbers = deliverable_numbers(frames, settings.deliverable_start)
    timecodes = [settings.timecode_of(f) for f in frames]
    timeline = shot_timeline(
        name, settings.fps, timecodes[0], len(frames), numbers[0], shot.exr.name, shot.video.name, sources
    )
    filmed_share = []

    # Frames, deliverable and video are written beside their places first; synthesis.json, the record of a
    # finished run, goes before they are renamed in and comes back last: an interrupted run never leaves a
    # record that vouches for frames or a video of another run.
    video = shot.video
    with (
        atomic_directory(shot.frames, overwrite=True) as frames_tmp,
        atomic_directory(shot.exr, overwrite=True) as exr_tmp,
        atomic_path(video) as video_tmp,
    ):
        for i, (frame, image) in enumerate(zip(frames, result)):
            iio.imwrite(frames_tmp / f"{frame:06d}.png", image)
            extra = read_deliverable_passes(conditioning, frame)
            filmed_share.append(round(float(extra.filmed.mean()), 4))
            write_shot_exr(
                shot.exr_frame(numbers[i], exr_tmp),
                linear[i],
                passes[i].depth,
                passes[i].alpha,
                extra,
                settings.fps,
                timecodes[i],
                {**colour.exr_attributes, "reshoot/takeFrame": str(frame), "reshoot/shot": name},
            )
            report("writing", i + 1, len(frames))
        write_mp4(video_tmp, result, settings.fps, timecode=timecodes[0])
        shot.synthesis.unlink(missing_ok=True)
    edl_written = write_timeline(timeline, shot.timeline, shot.edl)
    write_json_document(
        shot.synthesis,
        "synthesis",
        1,
        {
            "shot": name,
            "revision": revision,
            "frames": frames,
            "checkpoint": str(checkpoint),
            "weights_sha1": weights_sha1,
            "config": config.to_dict(),
            "device": str(next(model.parameters()).device),
            "working_size": [work_w, work_h],
            "model_seconds_per_frame": round(model_seconds / max(len(frames), 1), 4),
            "deliverable": {
                "exr": f"{shot.exr.name}/{name}.%04d.exr",
                "numbers": [numbers[0], numbers[-1]],
                "timecodes": [timecodes[0], timecodes[-1]],
                "working_space": colour.settings.working_space,
                "ocio_config": colour.settings.config,
                "timeline": shot.timeline.name,
                "edl": shot.edl.name if edl_written else None,  # None: not a SMPTE timecode rate
            },
            "filmed_share": filmed_share,
        },
    )
    return SynthesisSummary(shot.frames, video, frames, model_seconds / max(len(frames), 1))
