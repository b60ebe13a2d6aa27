"""`reshoot synthesize WS SHOT [--engine NAME]`: a synthesis engine turns a shot's conditioning into its frames.

Reads `shots/SHOT/shot.json` and `shots/SHOT/conditioning/` (made by `reshoot shoot` or
`reshoot condition`) and the production cameras' footage, builds the engines' `ShotConditioning`
(reshoot/engines/contract.py), runs the engine (`unified` by default; reshoot/engines/registry.py), keeps
the render where a production camera filmed the surface and agrees with it (reshoot/engines/keep.py;
`keep_filmed=False` to take the engine's pixels everywhere), and writes
    shots/SHOT/frames/NNNNNN.png      one 8-bit PNG per shot frame (take frame numbers), sRGB display
    shots/SHOT/SHOT.mp4               the same frames as H.264 at the take's fps, BT.709, start timecode
    shots/SHOT/exr/SHOT.NNNN.exr      the deliverable: scene-linear layered EXRs numbered from 1001
                                      (reshoot/deliverable.py)
    shots/SHOT/SHOT.otio, SHOT.edl    the editorial timeline (reshoot/editorial.py), SHOT.CAMERA.edl per camera
    shots/SHOT/synthesis.json         the engine, its options and record (weights and their digest, seed,
                                      windows, memory), the shot revision, the deliverable's numbers and
                                      timecodes, and per frame the filmed, kept and generated shares
each written beside its final place and renamed into it, so a failed run loses nothing.
Colour: engines work on footage-encoded values; the workspace's OCIO pipeline (reshoot/colour.py) turns
their output into the working space for the EXRs and into sRGB display values for PNG and mp4.
"""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.conditioning import (
    conditioning_entities,
    conditioning_revision,
    read_conditioning_frame,
    read_deliverable_passes,
    read_filmed_mask,
)
from reshoot.datasets.sync import frames_to_timecode, read_timecode
from reshoot.deliverable import deliverable_numbers, write_shot_exr
from reshoot.editorial import SourceClip, shot_timeline, write_timeline
from reshoot.engines import DEFAULT_ENGINE, EngineOptions, ShotConditioning, ShotFrames, load_engine
from reshoot.engines.keep import colour_disagreement, composite, keep_weights
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, atomic_path, read_json_document, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.video import write_mp4
from reshoot.model.inputs import posed_frames
from reshoot.shot_io import existing_shot, read_shot_document
from reshoot.stage import DigestCache
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
    """What `synthesize` wrote: the frames folder, the video, frame numbers, seconds per frame of the engine,
    the engine's name."""

    frames_folder: Path
    video: Path
    frames: list[int]
    seconds_per_frame: float
    engine: str = DEFAULT_ENGINE


def _same_size(images: list[np.ndarray]) -> list[np.ndarray]:
    """The cameras' frames [h_v, w_v, 3] at the first one's size (area-resized): a rig may mix sizes, an
    engine reads them as one [V, h, w, 3] batch."""
    import cv2

    height, width = images[0].shape[:2]
    return [
        image
        if image.shape[:2] == (height, width)
        else cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        for image in images
    ]


def shot_description(description: str | None, entities: dict[int, str]) -> str:
    """The shot in words for a text-conditioned engine: its shot-language description and what is in it."""
    words = description or "a shot of the set"
    if entities:
        words += ". In view: " + ", ".join(sorted(set(entities.values())))
    return words


def _checked_frames(made: ShotFrames, conditioning: ShotConditioning, engine: str) -> None:
    """Refuse an engine's output of the wrong shape or with non-finite pixels: nothing is written then."""
    count, (width, height) = len(conditioning.frames), conditioning.size
    if tuple(made.frames.shape) != (count, height, width, 3) or tuple(made.generated.shape) != (count, height, width):
        raise InputError(
            f"--engine {engine}: it returned frames {tuple(made.frames.shape)} and generated "
            f"{tuple(made.generated.shape)} for a shot of {count} frames of {width}×{height}; nothing was written."
        )
    if not bool(torch.isfinite(made.frames).all()):  # never replace good frames with black ones
        raise InputError(
            f"--engine {engine}: it wrote NaN or infinite pixels for shot {conditioning.name!r}; nothing was "
            "written. Use other weights or another engine."
        )


def _write_frames(
    frames_dir: Path,
    exr_dir: Path,
    video: Path,
    linear: np.ndarray,
    generated: np.ndarray,
    passes: list,
    colour,
    settings,
    shot,
    frames: list[int],
    numbers: list[int],
    timecodes: list[str],
    conditioning_folder: Path,
    report: ProgressFn,
) -> None:
    """One result of a shot written out: PNG frames (sRGB display), the layered EXR deliverable and the mp4.

    Args:
        linear: [T, H, W, 3] the frames, scene-linear in the working space.
        generated: [T, H, W] how much of each pixel the engine made.
        passes: the T `ConditioningFrame`s (depth, coverage for the EXR).
        shot: the shot's `ShotPaths`; frames: [T] take frame numbers; numbers: [T] deliverable numbers.
    """
    import imageio.v3 as iio

    display = colour.to_8bit(linear)
    frames_dir.mkdir(parents=True, exist_ok=True)
    exr_dir.mkdir(parents=True, exist_ok=True)
    for i, (frame, image) in enumerate(zip(frames, display)):
        iio.imwrite(frames_dir / f"{frame:06d}.png", image)
        write_shot_exr(
            shot.exr_frame(numbers[i], exr_dir),
            linear[i],
            passes[i].depth,
            passes[i].alpha,
            read_deliverable_passes(conditioning_folder, frame),
            generated[i],
            settings.fps,
            timecodes[i],
            {**colour.exr_attributes, "reshoot/takeFrame": str(frame), "reshoot/shot": shot.name},
        )
        report("writing", i + 1, len(display))
    write_mp4(video, display, settings.fps, timecode=timecodes[0])


def synthesize(
    workspace: str | Path,
    name: str,
    engine: str = DEFAULT_ENGINE,
    options: EngineOptions | None = None,
    keep_filmed: bool = True,
    progress: ProgressFn | None = None,
    samples: int = 1,
) -> SynthesisSummary:
    """Write the frames of shot `name` made by the engine `engine` (module docstring).

    With `samples` > 1 the engine runs that many times (seeds `options.seed` + K), sample K is written to
    `shots/SHOT/samples/K/` (frames/, exr/, SHOT.mp4) and sample 0 is also the shot's frames, deliverable and
    video, until `pick_sample` chooses another.

    Raises:
        InputError: the shot, its conditioning or the engine's weights are missing, the engine is unknown,
            the conditioning is of an older revision of the shot than shot.json, or the engine's frames are
            not the shot's (shape, non-finite pixels).
    """
    report = progress or no_progress
    options = options or EngineOptions()
    # 1. Check inputs: everything that can be refused is refused before footage or weights are read.
    root = Path(workspace)
    existing_shot(root, name)
    shot = Workspace(root).shot(name)
    conditioning_folder = shot.conditioning
    rendered = conditioning_revision(conditioning_folder)
    if rendered is False:
        raise InputError(f"shot {name!r} has no conditioning renders yet; run `reshoot condition {root} {name}`.")
    document = read_shot_document(root, name)
    shot_record = document.extra.get("shot", {})
    revision = shot_record.get("revision")
    if rendered != revision:
        raise InputError(
            f"the conditioning of shot {name!r} is of revision {rendered}, the shot is at revision "
            f"{revision}; run `reshoot condition {root} {name}` first."
        )
    synthesizer = load_engine(engine)
    if samples < 1:
        raise InputError(f"--samples {samples}: use at least 1.")
    if samples > 1 and not getattr(synthesizer, "stochastic", True):
        raise InputError(
            f"--samples {samples}: the {engine} engine makes the same frames whatever the seed, so its samples "
            "would all be alike; use a sampling engine (--engine diffusers) or --samples 1."
        )
    synthesizer.check_inputs(options)
    camera = document.cameras.select(0).pinhole()
    path = document.paths[name]
    frames = [int(f) for f in path.frames]
    settings = load_workspace(root)
    colour = settings.colour_pipeline()
    registered = read_cameras_json(Workspace(root).cameras)
    production = registered.names_with_role("production", default="production")
    sources = registered.cameras.select(production)

    # 2. The conditioning: passes, filmed masks, and what of the render is kept.
    passes = [read_conditioning_frame(conditioning_folder, f) for f in frames]
    # An older conditioning, without the deliverable passes of every frame, is refused here.
    filmed = np.stack([read_filmed_mask(conditioning_folder, f) for f in frames])
    entities = conditioning_entities(conditioning_folder)
    posed = posed_frames(camera, path.cam_from_world)
    with settings.open_footage() as footage:
        take = footage.frames

        def footage_at(frame: int) -> tuple[list[np.ndarray], int]:
            """Each production camera's frame at its own size, at the nearest take frame it has."""
            nearest = min(max(frame, take.start), take.stop - 1)
            return [footage.source(n).read(nearest) for n in production], nearest

        def source_frames(frame: int) -> tuple[torch.Tensor, int]:
            images, nearest = footage_at(frame)
            return torch.from_numpy(np.stack(_same_size(images))), nearest

        keep = np.zeros(filmed.shape, np.float32)
        if keep_filmed:
            disagreement = np.empty(filmed.shape, np.float32)
            for i, (frame, p) in enumerate(zip(frames, passes)):
                disagreement[i] = colour_disagreement(
                    torch.from_numpy(p.rgb),
                    torch.from_numpy(p.depth),
                    posed.select([i]),
                    sources,
                    [torch.from_numpy(image) for image in footage_at(frame)[0]],
                ).numpy()
                report("comparing the render with the footage", i + 1, len(frames))
            keep = keep_weights(filmed, np.stack([p.alpha for p in passes]), disagreement)
        conditioning = ShotConditioning(
            name=name,
            description=shot_description(shot_record.get("description"), entities),
            frames=frames,
            fps=settings.fps,
            cameras=posed,
            rgb=torch.from_numpy(np.stack([p.rgb for p in passes])),
            depth=torch.from_numpy(np.stack([p.depth for p in passes])),
            alpha=torch.from_numpy(np.stack([p.alpha for p in passes])),
            entity_ids=torch.from_numpy(np.stack([p.entity_ids for p in passes])),
            entities=entities,
            filmed=torch.from_numpy(filmed),
            keep=torch.from_numpy(keep),
            sources=sources,
            source_frames=source_frames,
        )

        # 3. The engine, once per sample (seeds seed, seed + 1, ...), each sample written as it is made.
        clips = [_source_clip(footage.source(n), frames, settings) for n in production]
        numbers = deliverable_numbers(frames, settings.deliverable_start)
        timecodes = [settings.timecode_of(f) for f in frames]
        timeline = shot_timeline(
            name, settings.fps, timecodes[0], len(frames), numbers[0], shot.exr.name, shot.video.name, clips
        )
        made_samples: list[dict] = []
        # Frames, deliverable, video and samples are written beside their places first; synthesis.json, the
        # record of a finished run, goes before they are renamed in and comes back last: an interrupted run
        # never leaves a record that vouches for frames or a video of another run.
        with ExitStack() as stack:
            chosen = [stack.enter_context(atomic_directory(p, overwrite=True)) for p in (shot.frames, shot.exr)]
            chosen.append(stack.enter_context(atomic_path(shot.video)))
            samples_tmp = stack.enter_context(atomic_directory(shot.samples, overwrite=True)) if samples > 1 else None
            for k in range(samples):
                made = synthesizer.synthesize(conditioning, dataclasses.replace(options, seed=options.seed + k), report)
                _checked_frames(made, conditioning, engine)
                # 4. Filmed pixels kept, then the hand-off's colour.
                frames_out, generated = composite(
                    conditioning.rgb, made.frames.clamp(0, 1), made.generated, conditioning.keep
                )
                linear = colour.to_working(frames_out.numpy())
                places = ([tuple(chosen)] if k == 0 else []) + (
                    [shot.sample(k, samples_tmp)] if samples_tmp is not None else []
                )
                for frames_dir, exr_dir, video_path in places:
                    _write_frames(
                        frames_dir, exr_dir, video_path, linear, generated.numpy(), passes, colour, settings, shot,
                        frames, numbers, timecodes, conditioning_folder, report,
                    )  # fmt: skip
                made_samples.append(
                    {
                        "seed": options.seed + k,
                        "record": made.record,
                        "generated_share": [round(float(g.mean()), 4) for g in generated],
                    }
                )
            shot.synthesis.unlink(missing_ok=True)
    if samples == 1 and shot.samples.exists():
        shutil.rmtree(shot.samples)  # an earlier run's samples are not this run's
    edls = write_timeline(timeline, shot.timeline, shot.edl, shot.camera_edl)
    first = made_samples[0]["record"]
    weights = first.get("checkpoint") or first.get("weights")
    digests = DigestCache(Workspace(root))  # by size and modification time: a model folder is read once
    weights_digest = digests.of(Path(weights)) if weights else None
    digests.save()
    write_json_document(
        shot.synthesis,
        "synthesis",
        1,
        {
            "shot": name,
            "revision": revision,
            "frames": frames,
            "engine": engine,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(options).items()},
            "weights_digest": weights_digest,
            "keep_filmed": keep_filmed,
            **first,
            "deliverable": {
                "exr": f"{shot.exr.name}/{name}.%04d.exr",
                "numbers": [numbers[0], numbers[-1]],
                "timecodes": [timecodes[0], timecodes[-1]],
                "working_space": colour.settings.working_space,
                "ocio_config": colour.settings.config,
                "timeline": shot.timeline.name,
                "edl": shot.edl.name if edls else None,  # None: not a SMPTE timecode rate
                "camera_edls": {track: path.name for track, path in edls.items() if path != shot.edl},
            },
            "filmed_share": [round(float(f.mean()), 4) for f in filmed],
            "kept_share": [round(float(k.mean()), 4) for k in keep],
            "generated_share": made_samples[0]["generated_share"],
            "samples": {
                "count": samples,
                "chosen": 0,
                "seeds": [s["seed"] for s in made_samples],
                "generated_share": [s["generated_share"] for s in made_samples],
            },
        },
    )
    seconds = float(first.get("model_seconds_per_frame", 0.0))
    return SynthesisSummary(shot.frames, shot.video, frames, seconds, engine)


def pick_sample(workspace: str | Path, name: str, k: int) -> dict:
    """Make sample `k` of a shot synthesized with `--samples N` its frames, deliverable and video (`reshoot pick`).

    Sample K's frames/, exr/ and mp4 are copied into the shot's places (each written beside its place and
    renamed in) and synthesis.json records the choice; the samples stay, so another pick is possible.

    Returns:
        the new synthesis.json body.

    Raises:
        InputError: the shot was not synthesized, has no sample `k`, or its samples are gone.
    """
    root = Path(workspace)
    existing_shot(root, name)
    shot = Workspace(root).shot(name)
    if not shot.synthesis.is_file():
        raise InputError(f"shot {name!r} is not synthesized yet; run `reshoot synthesize {root} {name} --samples N`.")
    record = read_json_document(shot.synthesis, "synthesis", 1)
    count = record.get("samples", {}).get("count", 1)
    if not 0 <= k < count or count == 1:
        raise InputError(
            f"shot {name!r} has {count} sample{'s' if count > 1 else ''}"
            + (f" (0 to {count - 1}); pick one of those." if count > 1 else "; synthesize it with --samples N first.")
        )
    frames_dir, exr_dir, video = shot.sample(k)
    if not (frames_dir.is_dir() and exr_dir.is_dir() and video.is_file()):
        raise InputError(f"{shot.samples / str(k)}: sample {k} is incomplete or gone; synthesize the shot again.")
    with (
        atomic_directory(shot.frames, overwrite=True) as frames_tmp,
        atomic_directory(shot.exr, overwrite=True) as exr_tmp,
        atomic_path(shot.video) as video_tmp,
    ):
        for source, target in ((frames_dir, frames_tmp), (exr_dir, exr_tmp)):
            for item in sorted(source.iterdir()):
                shutil.copy2(item, target / item.name)
        shutil.copy2(video, video_tmp)
    record = {key: value for key, value in record.items() if key not in ("format", "version")}
    record["samples"]["chosen"] = k
    record["generated_share"] = record["samples"]["generated_share"][k]
    write_json_document(shot.synthesis, "synthesis", 1, record)
    return record
