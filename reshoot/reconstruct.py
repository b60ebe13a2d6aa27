"""Stage `reshoot reconstruct WS`: the take as Gaussian splats, a static set plus moving actors per frame.

1. **Static set**: fitted (3DGS recipe, `train_splats`) to every production camera's clean plate with
   its moving pixels masked, and to every registered survey photo; initialized from the
   registration's sparse points. Images are undistorted (splats render pinhole) and downsampled.
2. **Actors**, frame by frame: each camera's foreground (frame vs clean plate) is carved into a visual
   hull (hidden behind the set counts as unseen, not as background); the previous frame's actor
   Gaussians near the hull are kept, new hull surface points added, and the lot is fitted to all
   cameras at that instant over the frozen set (`fit_actors`).

Resumable: work in progress lives in `WS/splats.work/` (a checkpoint of the set every few hundred
steps, one .ply per finished frame); a rerun with the same settings and inputs continues from there,
other settings start over. When everything is done `WS/splats/` is replaced at once: background.ply,
actors/NNNNNN.ply (take frame numbers), log.json (training curves) and reconstruction.json (settings,
seed, per-camera PSNR).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.background import foreground_mask, prepared_image, prepared_plates
from reshoot.datasets.footage import VIDEO_SUFFIXES, image_files, probe_video
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.carving import carve_visual_hull
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.splats.actors import (
    ActorConfig, ActorView, actor_points_gaussians, colors_at, fit_actors, merge_gaussians, nearest_distance,
    select_gaussians,
)
from reshoot.geometry.splats.gaussians import Gaussians
from reshoot.geometry.splats.ply import read_splat_ply, write_splat_ply
from reshoot.geometry.splats.render import rasterize
from reshoot.geometry.splats.train import TrainConfig, TrainingView, initial_gaussians, psnr, train_splats
from reshoot.workspace import load_workspace

log = logging.getLogger(__name__)

PLATE_MOVING_SHARE = 0.2  # plate pixels covered by action more often than this are not trusted
ACTOR_TRAVEL = 0.15  # metres an actor's Gaussian may lie outside the next frame's hull and be kept
CEILING_MARGIN = 1.3  # the carving box reaches this factor above the highest camera
MIN_SPARSE_POINTS = 2000  # with fewer registration points the set's initialization is seeded (see _seeded)
SEED_POINTS = 20000


@dataclass(frozen=True)
class ReconstructOptions:
    """Settings of `reshoot reconstruct`.

    Attributes:
        downscale: images are fitted at 1/downscale resolution (integer).
        set_iterations: optimizer steps of the static set.
        actor_iterations: steps per frame for the actors (warm-started from the previous frame).
        first_actor_iterations: steps for the first frame (no warm start).
        voxel_size: visual-hull voxel edge in world units (metres when the scale is known).
        max_new_points: at most this many new actor Gaussians per frame (hull surface subsampled).
        frames: (first, stop) take frames to reconstruct actors for, half-open; None = the whole take.
        cameras: production cameras to fit (others are left out, e.g. held out); None = all.
        use_survey: fit the set to the registered survey photos too.
        samples: frames per camera for the clean plate.
        seed: every random choice.
        checkpoint_every: steps between checkpoints of the static set.
        backend: rasterizer backend ("auto", "cpu", "reference", "gsplat").
    """

    downscale: int = 2
    set_iterations: int = 2000
    actor_iterations: int = 40
    first_actor_iterations: int = 200
    voxel_size: float = 0.04
    max_new_points: int = 8000
    frames: tuple[int, int] | None = None
    cameras: tuple[str, ...] | None = None
    use_survey: bool = True
    samples: int = 24
    seed: int = 0
    checkpoint_every: int = 250
    backend: str = "auto"

    def __post_init__(self) -> None:
        for name in ("downscale", "set_iterations", "actor_iterations", "first_actor_iterations", "samples",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"reconstruct: {name} must be at least 1, got {getattr(self, name)}.")
        if not self.voxel_size > 0:
            raise InputError(f"reconstruct: the voxel size must be positive, got {self.voxel_size}.")


@dataclass(frozen=True)
class ReconstructSummary:
    """What `reconstruct` did.

    Attributes:
        set_gaussians: Gaussians in the static set.
        set_psnr: per production camera, dB of the set render vs its clean plate (unmasked pixels).
        frames: take frames with actors.
        actor_psnr: per production camera, mean dB over frames of set + actors vs the frame.
        seconds: wall time of this run (a resumed run counts only its own part).
        seconds_set, seconds_actors: of which fitting the set and the actors (0 for parts reused).
        resumed_from: "set" or "frame N" when work in progress was reused, else None.
        out: the splats folder written.
    """

    set_gaussians: int
    set_psnr: dict[str, float]
    frames: list[int]
    actor_psnr: dict[str, float]
    seconds: float
    seconds_set: float
    seconds_actors: float
    resumed_from: str | None
    out: Path


def set_train_config(options: ReconstructOptions) -> TrainConfig:
    """The static set's training settings for these options (schedules scaled to the step count)."""
    n = options.set_iterations
    return TrainConfig(iterations=n, views_per_step=2, sh_degree_interval=max(n // 4, 1),
                       refine_start=min(500, n // 5), refine_stop=int(n * 0.7), reset_every=10 * n,
                       grow_grad2d=4e-4, seed=options.seed, backend=options.backend)


def reconstruct(workspace: str | Path, options: ReconstructOptions | None = None,
                progress: ProgressFn | None = None) -> ReconstructSummary:
    """Fit the static set and the actors of every frame; write `WS/splats/`.

    Raises:
        InputError: no registration yet, unknown cameras or frames, a survey photo gone missing.
    """
    options = options or ReconstructOptions()
    report = progress or no_progress
    started = time.perf_counter()
    root = Path(workspace)
    settings = load_workspace(root)
    registration = root / "registration"
    if not (registration / "cameras.json").is_file():
        raise InputError(f"{root}: no registration yet ({registration / 'cameras.json'} is missing). "
                         f"Run `reshoot register {root}` first.")
    cameras = read_cameras_json(registration / "cameras.json").cameras
    if options.cameras is not None:
        unknown = sorted(set(options.cameras) - set(cameras.names))
        if unknown:
            raise InputError(f"reconstruct: cameras {unknown} are not registered; registered are {list(cameras.names)}.")
        cameras = cameras.select(list(options.cameras))
    frames = _frames(options.frames, settings.first_frame, settings.frames)
    torch.manual_seed(options.seed)

    work = root / "splats.work"
    resumed = _prepare_work_dir(work, options, registration)
    footage = settings.open_footage()
    try:
        training = cameras.scaled(options.downscale).pinhole()
        plates = prepared_plates(footage, cameras, options.downscale, options.samples, report)

        set_started = time.perf_counter()
        background, set_log = _static_set(work, root, settings, cameras, training, plates, options, report)
        set_seconds = time.perf_counter() - set_started
        actors_started = time.perf_counter()
        set_renders = render_set(background, training, options.backend)
        set_scores = {name: round(psnr(set_renders[i][0], plates[name][0], (plates[name][1] < PLATE_MOVING_SHARE).float()), 3)
                      for i, name in enumerate(training.names)}

        resumed_frame = None
        actor_log = []
        previous = None
        bounds = carving_bounds(registration, cameras)
        actors_dir = work / "actors"
        actors_dir.mkdir(exist_ok=True)
        for k, frame in enumerate(frames):
            path = actors_dir / f"{frame:06d}.ply"
            entry_path = actors_dir / f"{frame:06d}.json"
            if path.is_file() and entry_path.is_file():
                previous = read_splat_ply(path)
                actor_log.append(json.loads(entry_path.read_text()))
                resumed_frame = frame
                report("actors", k + 1, len(frames))
                continue
            views = []
            for i, name in enumerate(cameras.names):
                image = prepared_image(footage.source(name).read(frame), cameras.select(i), options.downscale)
                views.append(ActorView(training.select(i), image, *set_renders[i]))
            foreground = torch.stack([foreground_mask(v.image, plates[n][0]) for v, n in zip(views, cameras.names)])
            hull = carve_visual_hull(training, foreground, *bounds, options.voxel_size,
                                     occluder_depth=torch.stack([v.set_depth for v in views]))
            init = _actor_init(previous, hull, training, views, foreground, options.voxel_size,
                               options.max_new_points, torch.Generator().manual_seed(options.seed * 100_003 + frame))
            iterations = options.first_actor_iterations if previous is None or len(previous) == 0 else options.actor_iterations
            fit = fit_actors(views, init, ActorConfig(iterations=iterations))
            write_splat_ply(path, fit.gaussians)
            entry = {"frame": frame, "hull_voxels": len(hull.centres), "gaussians": len(fit.gaussians),
                     "iterations": iterations, "loss": fit.loss,
                     "psnr": {n: round(p, 3) for n, p in zip(cameras.names, fit.psnr)},
                     "psnr_set_only": {n: round(psnr(v.set_rgb, v.image), 3) for n, v in zip(cameras.names, views)}}
            entry_path.write_text(json.dumps(entry))
            actor_log.append(entry)
            previous = fit.gaussians
            report("actors", k + 1, len(frames))
        actor_seconds = time.perf_counter() - actors_started
    finally:
        footage.close()

    actor_psnr = {n: float(np.mean([e["psnr"][n] for e in actor_log])) for n in cameras.names}
    seconds = time.perf_counter() - started
    out = root / "splats"
    with atomic_directory(out, overwrite=True) as tmp:
        shutil.copyfile(work / "background.ply", tmp / "background.ply")
        (tmp / "actors").mkdir()
        for frame in frames:
            shutil.copyfile(actors_dir / f"{frame:06d}.ply", tmp / "actors" / f"{frame:06d}.ply")
        write_json_document(tmp / "log.json", "splats-log", 1, {"set": set_log, "actors": actor_log})
        write_json_document(tmp / "reconstruction.json", "reconstruction", 1, {
            "options": _jsonable(asdict(options)), "set_training": _jsonable(asdict(set_train_config(options))),
            "cameras": list(cameras.names), "frames": frames, "set_gaussians": len(background),
            "set_psnr_db": set_scores, "actor_psnr_db": actor_psnr, "seconds": round(seconds, 1),
            "seconds_set": round(set_seconds, 1), "seconds_actors": round(actor_seconds, 1),
            "resolution": {n: [int(training.width[i]), int(training.height[i])] for i, n in enumerate(cameras.names)},
        })
    shutil.rmtree(work, ignore_errors=True)
    resumed_from = f"frame {resumed_frame}" if resumed_frame is not None else ("set" if resumed else None)
    return ReconstructSummary(len(background), set_scores, frames, actor_psnr, seconds, set_seconds, actor_seconds,
                              resumed_from, out)


def _frames(span: tuple[int, int] | None, first: int, count: int) -> list[int]:
    take = range(first, first + count)
    if span is None:
        return list(take)
    start, stop = span
    if start >= stop or start < take.start or stop > take.stop:
        raise InputError(f"reconstruct: frames {start}:{stop} are not inside the take (frames {take.start} to "
                         f"{take.stop - 1}; give A:B with B after A, B excluded).")
    return list(range(start, stop))


def _prepare_work_dir(work: Path, options: ReconstructOptions, registration: Path) -> bool:
    """Keep `work` when it was made by the same settings and inputs, else empty it. True when kept."""
    digest = hashlib.sha256()
    for name in ("cameras.json", "survey_cameras.json", "points.ply"):
        if (registration / name).is_file():
            digest.update((registration / name).read_bytes())
    fingerprint = {"options": _jsonable(asdict(options)), "registration": digest.hexdigest()}
    marker = work / "settings.json"
    if marker.is_file():
        try:
            same = json.loads(marker.read_text()) == fingerprint
        except ValueError:
            same = False
        if same:
            log.info("resuming the reconstruction in %s", work)
            return True
        log.info("%s was made with other settings or inputs; starting over", work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    marker.write_text(json.dumps(fingerprint))
    return False


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _survey_views(settings, registration: Path, downscale: int) -> list[TrainingView]:
    """The registered survey photos with their cameras (none when the workspace has no survey)."""
    path = registration / "survey_cameras.json"
    if settings.survey is None or not path.is_file():
        return []
    survey = read_cameras_json(path).cameras
    source = settings.survey
    if source.is_dir():
        by_stem = {p.stem: p for p in image_files(source)}
    elif source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        video = probe_video("survey", source)
    else:
        raise InputError(f"{source}: the workspace's survey is gone; restore it or fit without it (--no-survey).")
    views = []
    for i, name in enumerate(survey.names):
        if source.is_dir():
            if name not in by_stem:
                raise InputError(f"{source}: survey photo {name!r} was registered but is missing; restore it or "
                                 "fit without the survey (--no-survey).")
            import imageio.v3 as iio

            image = np.asarray(iio.imread(by_stem[name]))[..., :3].astype(np.float32) / 255.0
        else:
            image = video.read(int(name))
        camera = survey.select(i)
        views.append(TrainingView(camera.scaled(downscale).pinhole(), prepared_image(image, camera, downscale)))
    if not source.is_dir():
        video.close()
    return views


def _static_set(work: Path, root: Path, settings, cameras: Camera, training: Camera, plates: dict,
                options: ReconstructOptions, report: ProgressFn) -> tuple[Gaussians, list[dict]]:
    """Fit (or resume, or reuse from the work dir) the static set."""
    done, log_path = work / "background.ply", work / "set_log.json"
    if done.is_file() and log_path.is_file():
        return read_splat_ply(done), json.loads(log_path.read_text())
    import open3d as o3d

    registration = root / "registration"
    views = []
    for i, name in enumerate(cameras.names):
        rgb, moving = plates[name]
        trusted = (moving < PLATE_MOVING_SHARE).float()
        trusted = -torch.nn.functional.max_pool2d(-trusted[None, None], 5, 1, 2)[0, 0]  # erode: distrust edges
        views.append(TrainingView(training.select(i), rgb, trusted))
    if options.use_survey:
        views += _survey_views(settings, registration, options.downscale)
    cloud = o3d.io.read_point_cloud(str(registration / "points.ply"))
    if len(cloud.points) < 4:
        raise InputError(f"{registration / 'points.ply'} holds {len(cloud.points)} points; rerun `reshoot register`.")
    points, colors = _seeded(np.asarray(cloud.points), np.asarray(cloud.colors), training, views[:len(cameras)],
                             options.seed)
    init = initial_gaussians(points, colors, sh_degree=3)
    result = train_splats(views, init, set_train_config(options), progress=report,
                          log_every=max(options.set_iterations // 20, 1), checkpoint=work / "set_checkpoint.safetensors",
                          checkpoint_every=options.checkpoint_every)
    write_splat_ply(done, result.gaussians)
    log_path.write_text(json.dumps(result.log))
    (work / "set_checkpoint.safetensors").unlink(missing_ok=True)
    return result.gaussians, result.log


def _seeded(points: np.ndarray, colors: np.ndarray, training: Camera, plates: list[TrainingView],
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse points, plus (when they are few, as with calibrated cameras that see little texture) seeds:
    half on the floor (z = 0, which the world frame guarantees) and half spread through the box over it,
    each coloured by the plates it projects into. Seeds in empty space fade and are pruned in training,
    as in 3DGS's random initialization."""
    if len(points) >= MIN_SPARSE_POINTS:
        return points, colors
    rng = np.random.default_rng(seed)
    footprint = np.concatenate([points[:, :2], training.centers[:, :2].numpy()])
    lo, hi = footprint.min(0), footprint.max(0)
    top = float(training.centers[:, 2].max())
    n = SEED_POINTS // 2
    floor = np.column_stack([rng.uniform(lo, hi, (n, 2)), np.zeros(n)])
    volume = np.column_stack([rng.uniform(lo, hi, (n, 2)), rng.uniform(0, top, n)])
    seeds = torch.from_numpy(np.concatenate([floor, volume]))
    masks = [torch.ones(v.image.shape[:2], dtype=torch.bool) for v in plates]
    seen = (training.project(seeds).depth > 0).any(0)
    seed_colors = colors_at(seeds[seen].float(), training, [v.image for v in plates], masks)
    return (np.concatenate([points, seeds[seen].numpy()]), np.concatenate([colors, seed_colors.numpy()]))


@torch.no_grad()
def render_set(background: Gaussians, training: Camera, backend: str = "auto") -> list[tuple[torch.Tensor, ...]]:
    """Per camera: (rgb [H, W, 3], depth [H, W], alpha [H, W]) of the frozen set."""
    renders = []
    for i in range(len(training)):
        out = rasterize(background, training.select(i), backend=backend)
        renders.append((out.rgb[0], out.depth[0], out.alpha[0]))
    return renders


def carving_bounds(registration: Path, cameras: Camera) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The box actors can be in: over the set's footprint (the sparse points' 2nd-98th percentiles joined
    with the cameras' positions, which surround or face the action), from the floor (or the lowest
    points, should the floor estimate sit above some of them) to a bit above the highest camera or
    point."""
    import open3d as o3d

    points = np.asarray(o3d.io.read_point_cloud(str(registration / "points.ply")).points)
    centres = cameras.centers.numpy()
    lo = np.minimum(np.percentile(points, 2, axis=0), centres.min(0))
    hi = np.maximum(np.percentile(points, 98, axis=0), centres.max(0))
    bottom = min(-0.05, float(lo[2]))
    top = max(float(centres[:, 2].max()) * CEILING_MARGIN, float(hi[2]), 0.5)
    return (float(lo[0]), float(lo[1]), bottom), (float(hi[0]), float(hi[1]), top)


def _actor_init(previous: Gaussians | None, hull, training: Camera, views: list[ActorView],
                foreground: torch.Tensor, voxel_size: float, max_new: int, generator: torch.Generator) -> Gaussians:
    """The previous frame's actors that stay near the hull, plus up to `max_new` hull surface points not
    yet covered (a random subset when there are more)."""
    surface = hull.centres[hull.surface]
    kept = None
    if previous is not None and len(previous):
        kept = select_gaussians(previous, nearest_distance(previous.means, hull.centres) < ACTOR_TRAVEL)
    if kept is not None and len(kept):
        surface = surface[nearest_distance(surface, kept.means) > 1.5 * voxel_size]
    if len(surface) > max_new:
        surface = surface[torch.randperm(len(surface), generator=generator)[:max_new].sort().values]
    colors = colors_at(surface, training, [v.image for v in views], list(foreground))
    fresh = actor_points_gaussians(surface, colors, voxel_size, sh_degree=ActorConfig().sh_degree)
    return fresh if kept is None or len(kept) == 0 else merge_gaussians([kept, fresh])
