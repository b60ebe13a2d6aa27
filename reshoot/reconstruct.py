"""Stage `reshoot reconstruct WS`: the take as Gaussian splats, a static set plus actors that persist.

1. **Static set** (`reshoot/static_set.py`): dense plane-sweep stereo of every production camera's
   still plate (per pixel the colour most frames agree on; pixels without such agreement masked) and
   every registered survey photo gives the surfaces the views agree on; fitting (`train_splats`)
   starts from flat surfels on them and keeps them surfaces: the floor (z = 0) and the walls found in
   the stereo points pull nearby Gaussians onto them, needles are penalised, no Gaussian grows wider
   than a tenth of the scene, an opacity cost lets Gaussians no view needs fade, and each view has an
   affine colour correction that renders into new cameras leave out. Gaussians in the free space of
   the views (in front of the surfaces they observe) or far from every stereo point are pruned at
   each refinement, and those fewer than two views see at its end; at the end of fitting, Gaussians in
   the fitted environment's colour that no view's image needs (the void beyond the floor's open edge,
   painted as floor) are pruned. Images are undistorted and downsampled.
2. **Actors**: each camera's foreground (frame vs clean plate) is carved into a visual hull per frame
   (hidden behind the set counts as unseen); characters are found in it and tracked
   (`reshoot/characters.py`). Each tracked character is one set of Gaussians for the whole take
   (`fit_persistent_actors`): started from its hull at its first frame, carried along its track and
   fitted to every camera frame by frame with rigidity between neighbours and held near its track's
   vertical axis (a body, not the hull's spread along the cameras' rays), then refined over all
   frames with its colour, scale and opacity shared, ghosts of the hull pruned. Without any tracked
   character (nothing walks), each frame's hull is fitted on its own (`fit_actors`), as a fallback.

Resumable: work in progress lives in `WS/splats.work/` (a checkpoint of the set every few hundred
steps, the finished set); a rerun with the same settings and inputs continues from there, other
settings start over. When everything is done `WS/splats/` is replaced at once: background.ply,
actors/NNNNNN.ply (take frame numbers), log.json (training curves) and reconstruction.json (settings,
seed, per-camera PSNR, what was pruned).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from reshoot.background import PreparedPlate, foreground_mask, lingering, prepared_image, prepared_plates
from reshoot.characters import CharacterOptions, CharacterTracker, character_search, detect_characters, floor_found
from reshoot.datasets.footage import VIDEO_SUFFIXES, image_files, probe_video
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.carving import carve, check_voxel_grid, grid_views
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.splats.actors import (
    ActorConfig,
    ActorView,
    actor_points_gaussians,
    colors_at,
    fit_actors,
    merge_gaussians,
)
from reshoot.geometry.splats.gaussians import Gaussians, select_gaussians
from reshoot.geometry.splats.persistent import CharacterStart, FrameViews, PersistentConfig, fit_persistent_actors
from reshoot.geometry.splats.ply import read_splat_ply, write_splat_ply
from reshoot.geometry.splats.render import render_each
from reshoot.geometry.splats.surfaces import nearest_distance, surfel_gaussians
from reshoot.geometry.splats.train import TrainConfig, TrainingView, psnr, train_splats
from reshoot.geometry.stereo import (
    DensePoints,
    DepthMap,
    FusedDepth,
    StereoConfig,
    StereoView,
    fuse_depths,
    view_depth,
    voxel_downsampled,
)
from reshoot.stage_options import ReconstructOptions
from reshoot.static_set import (
    SET_SH_DEGREE,
    SURFEL_THICKNESS,
    initial_set,
    read_sparse_points,
    scene_box,
    stereo_surfaces,
)
from reshoot.workspace import SplatsPaths, Workspace, load_workspace

log = logging.getLogger(__name__)

PLATE_MOVING_SHARE = (
    0.2  # median-plate pixels moving more often than this are not trusted (what the set learned before the still plate)
)
SET_SUPPORT = 0.4  # the set learns a still-plate pixel where at least this share of the sampled frames agree
COVERAGE_WEIGHT = 0.05  # of the planes' coverage seen square-on, beside the photometric L1 (0.2 blurred the floor)
SET_MAX_SCALE = 0.1  # of the scene scale: the largest Gaussian 3DGS keeps (gsplat's default prune_scale3d)
ENVIRONMENT_TOLERANCE = 0.03  # colour units: the set's Gaussians this close to the environment's may be void
ACTOR_CULL_VIEWS = 0  # 1 hides an actor Gaussian in a frame one of its views sees through (measured better; not on yet)
ACTOR_TRAVEL = 0.15  # metres an actor's Gaussian may lie outside the next frame's hull and be kept (fallback)
ACTOR_STEREO = StereoConfig(fronto_planes=32, horizontal_planes=0)  # within a character's hull: a short range


@dataclass(frozen=True)
class ReconstructSummary:
    """What `reconstruct` did.

    Attributes:
        set_gaussians: Gaussians in the static set.
        set_psnr: per production camera, dB of the set render vs its still plate (where the set learned it).
        frames: take frames with actors.
        actor_psnr: per production camera, mean dB over frames of set + actors vs the frame.
        pruned: Gaussians pruned, by reason: the set's "free_space", "off_surface", "unseen" (fewer
            than two views see it), "environment" (the environment's colour over nothing), the actors'
            "ghost", "off_body" (beyond the body radius about their track) and "faint".
        characters: characters followed as persistent actors (0: per-frame hulls were fitted).
        plates: where the clean plates came from ("shot plates" or "temporal median") and, for a
            temporal median, per camera where something moving lingered (`lingering`).
        seconds: wall time of this run (a resumed run counts only its own part).
        seconds_set, seconds_actors: of which fitting the set and the actors (0 for parts reused).
        resumed_from: "set" when work in progress was reused, else None.
        out: the splats folder written.
    """

    set_gaussians: int
    set_psnr: dict[str, float]
    frames: list[int]
    actor_psnr: dict[str, float]
    pruned: dict[str, int]
    characters: int
    plates: dict
    seconds: float
    seconds_set: float
    seconds_actors: float
    resumed_from: str | None
    out: Path


def set_train_config(options: ReconstructOptions, surfels: bool) -> TrainConfig:
    """The static set's training settings for these options (schedules scaled to the step count): the
    3DGS recipe with the surface priors, pruning and per-view colour correction; surfels stay flat."""
    n = options.set_iterations
    return TrainConfig(
        iterations=n,
        views_per_step=2,
        sh_degree=SET_SH_DEGREE,
        sh_degree_interval=max(n // 4, 1),
        refine_start=min(500, n // 5),
        refine_stop=int(n * 0.7),
        reset_every=10 * n,
        grow_grad2d=6e-4,
        seed=options.seed,
        backend=options.backend,
        thickness=SURFEL_THICKNESS if surfels else None,
        min_surfel_scale=options.surfel_spacing / 8,
        max_scale=SET_MAX_SCALE,
        plane_weight=1.0,
        elongation_weight=0.1,
        coverage_weight=COVERAGE_WEIGHT,
        coverage_pixel=options.surfel_spacing / 8,
        coverage_cell=options.surfel_spacing,
        opacity_weight=0.01,
        appearance=True,
        learn_background=True,
        free_space_votes=2,
        surface_reach=0.15 if surfels else None,
        min_views=2,
        environment_tolerance=ENVIRONMENT_TOLERANCE,
    )


def reconstruct(
    workspace: str | Path, options: ReconstructOptions | None = None, progress: ProgressFn | None = None
) -> ReconstructSummary:
    """Fit the static set and the actors of every frame; write `WS/splats/`.

    Raises:
        InputError: no registration yet, unknown cameras or frames, a survey photo gone missing.
    """
    options = options or ReconstructOptions()
    report = progress or no_progress
    started = time.perf_counter()
    root = Path(workspace)
    settings = load_workspace(root)
    ws = Workspace(root)
    if not ws.cameras.is_file():
        raise InputError(f"{root}: no registration yet ({ws.cameras} is missing). Run `reshoot register {root}` first.")
    cameras = read_cameras_json(ws.cameras).cameras
    if options.cameras is not None:
        unknown = sorted(set(options.cameras) - set(cameras.names))
        if unknown:
            raise InputError(
                f"reconstruct: cameras {unknown} are not registered; registered are {list(cameras.names)}."
            )
        cameras = cameras.select(list(options.cameras))
    frames = _frames(options.frames, settings.first_frame, settings.frames)
    check_voxel_grid(*character_search(ws, cameras, CharacterOptions()).bounds, options.voxel_size)  # before any work
    torch.manual_seed(options.seed)

    work = ws.splats_work
    resumed = _prepare_work_dir(work, options, ws)
    footage = settings.open_footage()
    try:
        training = cameras.scaled(options.downscale).pinhole()
        plates = prepared_plates(
            footage, cameras, options.downscale, options.samples, report, settings.open_plates(footage), still=True
        )
        plate_report = {
            "from": "shot plates" if settings.plates else "temporal median",
            "lingering": {} if settings.plates else {n: lingering(plates[n].moving) for n in cameras.names},
        }

        set_started = time.perf_counter()
        fitted = fit_static_set(work, ws, settings, cameras, training, plates, options, report)
        set_seconds = time.perf_counter() - set_started
        actors_started = time.perf_counter()
        set_renders = render_each(fitted.background, training, options.backend, fitted.environment)
        set_scores = {
            name: round(psnr(set_renders[i].rgb[0], plates[name].still, _set_trust(plates[name])), 3)
            for i, name in enumerate(training.names)
        }
        views = []
        for k, frame in enumerate(frames):
            views.append(
                _frame_views(
                    footage, frame, cameras, training, plates, set_renders, fitted.appearance, options.downscale
                )
            )
            report("frames", k + 1, len(frames))
        actors, actor_log, pruned, characters = _actors(ws, training, views, options, report)
        actor_seconds = time.perf_counter() - actors_started
    finally:
        footage.close()

    actor_psnr = {n: float(np.mean([e["psnr"][n] for e in actor_log])) for n in cameras.names}
    pruned = {**fitted.pruned, **pruned}
    seconds = time.perf_counter() - started
    out = ws.splats
    with atomic_directory(out, overwrite=True) as staging:
        tmp = SplatsPaths(staging)
        shutil.copyfile(work / "background.ply", tmp.set)
        tmp.actors.mkdir()
        for frame, gaussians in zip(frames, actors):
            write_splat_ply(tmp.actors / f"{frame:06d}.ply", gaussians)
        write_json_document(tmp.log, "splats-log", 1, {"set": fitted.log, "actors": actor_log})
        write_json_document(
            tmp.reconstruction,
            "reconstruction",
            1,
            {
                "options": _jsonable(asdict(options)),
                "set_training": _jsonable(asdict(set_train_config(options, fitted.surfels))),
                "cameras": list(cameras.names),
                "frames": frames,
                "set_gaussians": len(fitted.background),
                "plates": plate_report,
                "set_start": fitted.start,
                "planes": fitted.planes,
                "pruned": pruned,
                "environment": fitted.environment.tolist(),
                "characters": characters,
                "set_psnr_db": set_scores,
                "actor_psnr_db": actor_psnr,
                "seconds": round(seconds, 1),
                "seconds_set": round(set_seconds, 1),
                "seconds_actors": round(actor_seconds, 1),
                "resolution": {
                    n: [int(training.width[i]), int(training.height[i])] for i, n in enumerate(cameras.names)
                },
            },
        )
    shutil.rmtree(work, ignore_errors=True)
    return ReconstructSummary(
        len(fitted.background),
        set_scores,
        frames,
        actor_psnr,
        pruned,
        characters,
        plate_report,
        seconds,
        set_seconds,
        actor_seconds,
        "set" if resumed else None,
        out,
    )


def _frames(span: tuple[int, int] | None, first: int, count: int) -> list[int]:
    take = range(first, first + count)
    if span is None:
        return list(take)
    start, stop = span
    if start >= stop or start < take.start or stop > take.stop:
        raise InputError(
            f"reconstruct: frames {start}:{stop} are not inside the take (frames {take.start} to "
            f"{take.stop - 1}; give A:B with B after A, B excluded)."
        )
    return list(range(start, stop))


def _prepare_work_dir(work: Path, options: ReconstructOptions, ws: Workspace) -> bool:
    """Keep `work` when it was made by the same settings and inputs, else empty it. True when kept."""
    digest = hashlib.sha256()
    for path in (ws.cameras, ws.survey_cameras, ws.points):
        if path.is_file():
            digest.update(path.read_bytes())
    # The set's resolved training settings too: a work dir left by another version of the stage starts over.
    fingerprint = {
        "options": _jsonable(asdict(options)),
        "registration": digest.hexdigest(),
        "set_training": _jsonable(asdict(set_train_config(options, True))),
    }
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


def _survey_views(settings, ws: Workspace, downscale: int) -> list[TrainingView]:
    """The registered survey photos with their cameras (none when the workspace has no survey)."""
    path = ws.survey_cameras
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
                raise InputError(
                    f"{source}: survey photo {name!r} was registered but is missing; restore it or "
                    "fit without the survey (--no-survey)."
                )
            import imageio.v3 as iio

            image = np.asarray(iio.imread(by_stem[name]))[..., :3].astype(np.float32) / 255.0
        else:
            image = video.read(int(name))
        camera = survey.select(i)
        views.append(TrainingView(camera.scaled(downscale).pinhole(), prepared_image(image, camera, downscale)))
    if not source.is_dir():
        video.close()
    return views


@dataclass(frozen=True)
class _FittedSet:
    """The static set and how it was made (see `fit_static_set`)."""

    background: Gaussians
    log: list[dict]
    appearance: torch.Tensor  # [V, 3, 4] per production camera
    pruned: dict[str, int]
    surfels: bool
    start: dict
    planes: list[dict]
    environment: torch.Tensor  # [3] colour behind the set, in [0, 1]

    @staticmethod
    def read(work: Path) -> _FittedSet:
        """The set as `fit_static_set` left it in the work dir (background.ply and set.json)."""
        record = json.loads((work / "set.json").read_text())
        return _FittedSet(
            read_splat_ply(work / "background.ply"),
            record["log"],
            torch.tensor(record["appearance"]),
            record["pruned"],
            record["surfels"],
            record["start"],
            record["planes"],
            torch.tensor(record.get("environment", [0.0, 0.0, 0.0])),
        )  # older work dirs: fitted on black


def fit_static_set(
    work: Path,
    ws: Workspace,
    settings,
    cameras: Camera,
    training: Camera,
    plates: dict,
    options: ReconstructOptions,
    report: ProgressFn,
    train_config: Callable[[ReconstructOptions, bool], TrainConfig] = set_train_config,
) -> _FittedSet:
    """Fit (or resume, or reuse from the work dir) the static set: background.ply and set.json in `work`.

    Args:
        ws: the (registered) workspace; settings: its `load_workspace`.
        cameras: the production cameras to fit; training: the same at the fitting resolution (pinhole).
        plates: per camera its `PreparedPlate`, with the still plate: the set learns the still plate
            where at least SET_SUPPORT of the sampled frames agree on it.
        train_config: the training settings for (options, whether the set starts from surfels);
            benchmarks pass variants of `set_train_config`.
    """
    done, record_path = work / "background.ply", work / "set.json"
    if done.is_file() and record_path.is_file():
        return _FittedSet.read(work)
    views = []
    for i, name in enumerate(cameras.names):
        trusted = -torch.nn.functional.max_pool2d(-_set_trust(plates[name])[None, None], 5, 1, 2)[0, 0]  # eroded
        views.append(TrainingView(training.select(i), plates[name].still, trusted))
    if options.use_survey:
        views += _survey_views(settings, ws, options.downscale)
    points, colors = read_sparse_points(ws.points)
    if len(points) < 4:
        raise InputError(f"{ws.points} holds {len(points)} points; rerun `reshoot register`.")
    floor = floor_found(ws)
    stereo = stereo_surfaces(
        views,
        scene_box(points, cameras),
        options.stereo_downscale,
        options.surfel_spacing,
        report,
        StereoConfig(fronto_planes=options.stereo_planes),
    )
    init, planes = initial_set(
        stereo, points, colors, training, views[: len(cameras)], options.surfel_spacing, floor, options.seed
    )
    surfels = planes is not None
    result = train_splats(
        views,
        init,
        train_config(options, surfels),
        progress=report,
        log_every=max(options.set_iterations // 20, 1),
        checkpoint=work / "set_checkpoint.safetensors",
        checkpoint_every=options.checkpoint_every,
        planes=planes or [],
        observed=stereo.observed if surfels else None,
    )
    record = {
        "log": result.log,
        "appearance": result.appearance[: len(cameras)].tolist(),
        "pruned": result.pruned,
        "surfels": surfels,
        "planes": [asdict(p) for p in planes or []],
        "environment": result.background.tolist(),
        "start": {
            "stereo_points": len(stereo.observed.points),
            "gaussians": len(init),
            "plane_fill": len(init) - len(stereo.points) if surfels else 0,
            "from": "stereo surfels" if surfels else "sparse points and seeds",
        },
    }
    write_splat_ply(done, result.gaussians)
    record_path.write_text(json.dumps(record))
    (work / "set_checkpoint.safetensors").unlink(missing_ok=True)
    # What follows reads the set as a resumed run would (the file, the JSON record): the same bytes out.
    return _FittedSet.read(work)


def _set_trust(plate: PreparedPlate) -> torch.Tensor:
    """[H, W] float 1 where the set learns the camera's still plate: enough frames agree there."""
    if plate.still is None or plate.support is None:
        raise ValueError("the static set learns still plates: call prepared_plates(..., still=True)")
    return (plate.support >= SET_SUPPORT).float()


@dataclass(frozen=True)
class _Frame:
    """One take frame at the fitting resolution: the views over the set and their foreground."""

    frame: int
    views: list[ActorView]
    foreground: torch.Tensor  # [V, H, W] bool


def _frame_views(
    footage,
    frame: int,
    cameras: Camera,
    training: Camera,
    plates: dict,
    set_renders: list,
    appearance: torch.Tensor,
    downscale: int,
) -> _Frame:
    """The cameras at `frame`: image, the set's render (in the camera's colours: its correction
    applied) and the foreground (frame vs clean plate)."""
    views, masks = [], []
    for i, name in enumerate(cameras.names):
        image = prepared_image(footage.source(name).read(frame), cameras.select(i), downscale)
        render = set_renders[i]
        correction = appearance[i]
        set_rgb = render.rgb[0] @ correction[:, :3].T + correction[:, 3]
        views.append(ActorView(training.select(i), image, set_rgb, render.depth[0], render.alpha[0]))
        masks.append(foreground_mask(image, plates[name].rgb))
    return _Frame(frame, views, torch.stack(masks))


def _actors(
    ws: Workspace, training: Camera, frames: list[_Frame], options: ReconstructOptions, report: ProgressFn
) -> tuple[list[Gaussians], list[dict], dict[str, int], int]:
    """The actors of every frame: persistent characters where characters are tracked, else per-frame
    hulls. Returns (Gaussians per frame, log per frame, pruned counts, characters followed)."""
    search = character_search(ws, training, CharacterOptions(voxel_size=options.voxel_size))
    occluders = torch.stack([v.set_depth for v in frames[0].views])
    hulls = []
    tracker = CharacterTracker(search.options)
    grid = grid_views(training, *search.bounds, options.voxel_size, occluder_depth=occluders)
    for k, f in enumerate(frames):
        hull = carve(grid, f.foreground)
        hulls.append(hull)
        tracker.update(
            f.frame,
            detect_characters(
                f.frame,
                hull,
                training,
                f.foreground,
                [v.image for v in f.views],
                search.options,
                tracker.expected(f.frame),
                occluders,
            ),
        )
        report("characters", k + 1, len(frames))
    tracks = tracker.tracks(len(frames))
    if not tracks:
        log.info("no character is tracked: fitting each frame's visual hull on its own")
        return _hull_actors(training, frames, hulls, options, report)
    first_frame = frames[0].frame
    generator = torch.Generator().manual_seed(options.seed)
    starts = []
    for track in tracks:
        numbers = sorted(track.detections)
        first = track.detections[numbers[0]]
        span = np.arange(numbers[0], numbers[-1] + 1)
        known = np.array(numbers)
        floors = np.stack([track.detections[n].floor for n in numbers])
        floor = np.stack([np.interp(span, known, floors[:, 0]), np.interp(span, known, floors[:, 1])], -1)
        starts.append(
            CharacterStart(
                numbers[0] - first_frame,
                floor,
                _character_gaussians(first.voxels, frames[numbers[0] - first_frame], training, options, generator),
            )
        )
    config = PersistentConfig(
        start_iterations=options.first_actor_iterations,
        track_iterations=options.actor_iterations,
        refine_iterations=options.refine_actor_iterations,
        cull_views=ACTOR_CULL_VIEWS,
        seed=options.seed,
    )
    fitted = fit_persistent_actors(
        [FrameViews(f.frame, f.views, list(f.foreground)) for f in frames], starts, config, report
    )
    per_frame = [fitted.at(t) for t in range(len(frames))]
    entries = [
        {
            "frame": f.frame,
            "gaussians": len(g),
            "characters": sorted(set(fitted.characters_at(t).tolist())),
            "psnr": {n: round(p, 3) for n, p in zip(training.names, fitted.psnr[t])},
            "psnr_set_only": {n: round(psnr(v.set_rgb, v.image), 3) for n, v in zip(training.names, f.views)},
        }
        for t, (f, g) in enumerate(zip(frames, per_frame))
    ]
    return per_frame, entries, fitted.pruned, len(tracks)


def _actor_surfaces(frame: _Frame, near_voxels: torch.Tensor, reduce: int) -> tuple[list[StereoView], FusedDepth]:
    """Dense stereo of the moving things at one frame: each camera's foreground matched against the
    other cameras at 1/`reduce` of the fitting size, over the depths of `near_voxels` [M, 3] (the
    frame's visual hull); what two cameras agree on."""
    views = [StereoView(v.camera, v.image, mask).reduced(reduce) for v, mask in zip(frame.views, frame.foreground)]
    depths = []
    for i, view in enumerate(views):
        depth = view.camera.project(near_voxels).depth[0]
        depth = depth[depth > 0]
        sources = [views[j] for j in range(len(views)) if j != i]
        if not sources or len(depth) == 0:
            h, w = view.image.shape[:2]
            depths.append(DepthMap(torch.zeros(h, w), torch.zeros(h, w, 3), torch.zeros(h, w)))
            continue
        near, far = max(float(depth.min()) - 0.1, 0.05), float(depth.max()) + 0.1
        depths.append(view_depth(view, sources, near, far, 0.0, ACTOR_STEREO))
    return views, fuse_depths(views, depths, ACTOR_STEREO)


def _character_gaussians(
    voxels: np.ndarray, frame: _Frame, training: Camera, options: ReconstructOptions, generator: torch.Generator
) -> Gaussians:
    """A character's Gaussians at its first frame: surfels on the surface the cameras' stereo agrees
    on inside its hull (a hull from few cameras is far larger than the body along their common viewing
    direction: the stereo finds where in it the body is), and isotropic Gaussians on the hull's surface
    voxels no stereo point is near (parts fewer than two cameras see). At most `max_new_points`."""
    centres = torch.from_numpy(voxels)
    points = _actor_surfaces(frame, centres, options.stereo_downscale)[1].points
    inside = nearest_distance(points.points, centres) < options.voxel_size
    surface = voxel_downsampled(
        DensePoints(points.points[inside], points.colors[inside], points.normals[inside], points.support[inside]),
        options.voxel_size / 2,
    )
    hull = centres[_surface(voxels, options.voxel_size)].float()
    unseen = hull[nearest_distance(hull, surface.points) > 2 * options.voxel_size]
    budget = max(options.max_new_points - len(surface.points), 0)
    if len(unseen) > budget:
        unseen = unseen[torch.randperm(len(unseen), generator=generator)[:budget].sort().values]
    colors = colors_at(unseen, training, [v.image for v in frame.views], list(frame.foreground))
    sh_degree = PersistentConfig().sh_degree
    parts = [actor_points_gaussians(unseen, colors, options.voxel_size, sh_degree)]
    if len(surface.points):
        parts.append(
            surfel_gaussians(
                surface.points,
                surface.colors,
                surface.normals,
                options.voxel_size / 2,
                options.voxel_size / 4,
                sh_degree,
                opacity=0.5,
            )
        )
    return merge_gaussians(parts)


def _surface(voxels: np.ndarray, size: float) -> np.ndarray:
    """[N] bool: voxels [N, 3] (centres of a grid of edge `size`) with a free 6-neighbour among them."""
    cells = np.round(voxels / size).astype(np.int64)
    occupied = {tuple(c) for c in cells}
    steps = ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))
    return np.array(
        [any((c[0] + a, c[1] + b, c[2] + d) not in occupied for a, b, d in steps) for c in cells.tolist()], dtype=bool
    )


def _hull_actors(
    training: Camera, frames: list[_Frame], hulls: list, options: ReconstructOptions, report: ProgressFn
) -> tuple[list[Gaussians], list[dict], dict[str, int], int]:
    """Each frame's visual hull fitted on its own, warm-started from the previous frame's actors."""
    generator = torch.Generator()
    previous = None
    per_frame, entries = [], []
    for k, (f, hull) in enumerate(zip(frames, hulls)):
        generator.manual_seed(options.seed * 100_003 + f.frame)
        init = _hull_init(previous, hull, training, f, options, generator)
        iterations = (
            options.first_actor_iterations if previous is None or len(previous) == 0 else options.actor_iterations
        )
        fit = fit_actors(f.views, init, ActorConfig(iterations=iterations))
        per_frame.append(fit.gaussians)
        entries.append(
            {
                "frame": f.frame,
                "hull_voxels": len(hull.centres),
                "gaussians": len(fit.gaussians),
                "iterations": iterations,
                "loss": fit.loss,
                "psnr": {n: round(p, 3) for n, p in zip(training.names, fit.psnr)},
                "psnr_set_only": {n: round(psnr(v.set_rgb, v.image), 3) for n, v in zip(training.names, f.views)},
            }
        )
        previous = fit.gaussians
        report("actors", k + 1, len(frames))
    return per_frame, entries, {}, 0


def _hull_init(
    previous: Gaussians | None,
    hull,
    training: Camera,
    frame: _Frame,
    options: ReconstructOptions,
    generator: torch.Generator,
) -> Gaussians:
    """The previous frame's actors that stay near the hull, plus up to `max_new_points` hull surface
    points not yet covered (a random subset when there are more)."""
    surface = hull.centres[hull.surface]
    kept = None
    if previous is not None and len(previous):
        kept = select_gaussians(previous, nearest_distance(previous.means, hull.centres) < ACTOR_TRAVEL)
    if kept is not None and len(kept):
        surface = surface[nearest_distance(surface, kept.means) > 1.5 * options.voxel_size]
    if len(surface) > options.max_new_points:
        surface = surface[torch.randperm(len(surface), generator=generator)[: options.max_new_points].sort().values]
    colors = colors_at(surface, training, [v.image for v in frame.views], list(frame.foreground))
    fresh = actor_points_gaussians(surface, colors, options.voxel_size, sh_degree=ActorConfig().sh_degree)
    return fresh if kept is None or len(kept) == 0 else merge_gaussians([kept, fresh])
