"""Stage `reshoot register WS`: the footage's cameras in one gravity-aligned world frame.

Static cameras see the same set all take long, so each is registered from its clean plate (moving
pixels masked), not from every frame; every frame of a camera then shares its pose. Three modes:

- **survey** (a walk-around photo set or video of the empty set, when the workspace has one): the
  survey and the plates are mapped together; the survey's overlapping views reconstruct the set and
  each production camera is registered into it by absolute pose, which is what makes wide-baseline
  A/B/C/reverse cameras register at all.
- **plates only**: incremental SfM over the plates (enough when the cameras overlap well).
- **calibrated**: with a full calibration, poses are not estimated; the plates' features are
  triangulated with the given cameras and the report says how well footage and calibration agree.

Known intrinsics (calibration file, `--calibration-mode intrinsics`) are priors in every mode.

Writes `WS/registration/` (all at once, by rename): cameras.json, survey_cameras.json, points.ply,
plates/<camera>.png, colmap/ (pycolmap binary model in the world frame), export/ (COLMAP text,
nerfstudio transforms.json) and report.json.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reshoot.background import camera_plate, sample_frames
from reshoot.geometry.alignment import rotation_angle_deg
from reshoot.geometry.camera import Camera
from reshoot.geometry.errors import InputError, ReshootError
from reshoot.geometry.files import atomic_directory, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.sfm import ImageGroup, ImageStats, build_database, incremental_sfm, triangulate_with_known_poses
from reshoot.geometry.world_frame import estimate_world_frame
from reshoot.stage_options import RegistrationOptions
from reshoot.workspace import RegistrationPaths, Workspace, load_workspace

log = logging.getLogger(__name__)

SURVEY_GROUP = "survey"
MIN_KEYPOINTS = 100
MIN_OVERLAP_MATCHES = 30


class RegistrationError(ReshootError):
    """Too few cameras could be registered; says which and why."""


@dataclass(frozen=True)
class CameraOutcome:
    """Per production camera: registered or not, and why."""

    name: str
    registered: bool
    reason: str = ""
    suggestion: str = ""
    keypoints: int = 0
    verified_matches: int = 0
    observations: int = 0
    reprojection_error_px: float = float("nan")


@dataclass(frozen=True)
class RegistrationSummary:
    """What `register` wrote and how it went."""

    folder: Path
    mode: str
    cameras: tuple[CameraOutcome, ...]
    points: int
    scale_source: str
    up_source: str
    seconds: float
    failed: tuple[CameraOutcome, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())


def _survey_images(path: Path, out: Path, limit: int) -> list[str]:
    """Copy (or decode) survey photos into `out`, at most `limit`, evenly spread. Returns their names."""
    from reshoot.datasets.footage import VIDEO_SUFFIXES, check_survey_names, probe_video

    if path.is_dir():
        files = check_survey_names(path)
        if not files:
            raise InputError(f"{path}: the survey folder holds no .png/.jpg photos.")
        picked = [files[i] for i in sample_frames(0, len(files), limit)]
        out.mkdir(parents=True)
        for p in picked:
            shutil.copyfile(p, out / p.name)
        return [p.name for p in picked]
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        source = probe_video(SURVEY_GROUP, path)
        names = []
        for f in sample_frames(0, source.num_frames, limit):
            names.append(f"{f:06d}.png")
            _write_png(out / names[-1], source.read(f))
        source.close()
        return names
    raise InputError(f"{path}: the survey must be a folder of photos or a video ({', '.join(VIDEO_SUFFIXES)}).")


def _prepare_images(
    footage,
    calibration: Camera | None,
    work: Path,
    samples: int,
    instants: int,
    report: ProgressFn,
    shot_plates: dict | None = None,
) -> tuple[list[ImageGroup], dict, set[str]]:
    """Clean plates (with moving-pixel masks; the crew's own where given) and synchronized instants of
    every camera, written under `work/images` and `work/masks`. Returns the image groups, the plates and
    the blank cameras."""
    frames = sample_frames(footage.first_frame, footage.num_frames, samples)
    instant_frames = sample_frames(footage.first_frame, footage.num_frames, instants) if instants else ()
    groups, plates, blank = [], {}, set()
    for i, source in enumerate(footage.sources):
        plate = camera_plate(source, frames, (shot_plates or {}).get(source.name), samples)
        plates[source.name] = plate
        report("clean plates", i + 1, len(footage.sources))
        if plate.is_blank:
            blank.add(source.name)
            source.close()
            continue
        prior = calibration.select(source.name) if calibration is not None else None
        name = f"cams/{source.name}/plate.png"
        _write_png(work / "images" / name, plate.rgb)
        _write_png(work / "masks" / f"{name}.png", (plate.moving < 0.25).astype(np.float32))
        # One group: a camera's plate and instants share its lens (one set of intrinsics to estimate, not
        # one per instant); the instants are not masked.
        names = tuple(f"instants/{source.name}/{f:06d}.png" for f in instant_frames)
        unmasked = np.ones(plate.moving.shape, np.float32)
        for f, n in zip(instant_frames, names):
            _write_png(work / "images" / n, source.read(f))
            _write_png(work / "masks" / f"{n}.png", unmasked)
        groups.append(ImageGroup(source.name, (name, *names), prior, masked=True))
        source.close()
    return groups, plates, blank


# A static camera's images must register within this of one another, and within this share of the rig's
# extent: gross disagreement only. On real footage (caliscope_4cam, lenses given) the three instants that
# registered of one camera spread 2.0 deg and 4 % of the rig; on synthetic takes they agree within 0.1 deg.
STATIC_ROTATION_DEG = 3.0
STATIC_CENTRE_SHARE = 0.05


@dataclass(frozen=True)
class StaticPose:
    """Where a static camera's registered images (plate, instants) put it.

    Attributes:
        images: the images that agree on one pose (empty when no majority agrees).
        registered: how many of its images registered.
        cam_from_world: [4, 4] float64, the pose of the first agreeing image (the plate when it agrees: its
            features are the static set's alone) (NaN when none agree).
    """

    images: tuple[str, ...]
    registered: int
    cam_from_world: np.ndarray


def _static_pose(images: list[str], cameras, extent: float) -> StaticPose:
    """The pose most of a static camera's images agree on (within STATIC_ROTATION_DEG and, when `extent`
    > 0, STATIC_CENTRE_SHARE of it): a static camera has one pose all take, so images of it that the mapper
    put elsewhere were registered from wrong matches. The plate comes first in `images` and wins ties; the
    pose is the plate's when it agrees (its features are the static set's alone), not a mean with the
    instants."""
    own = cameras.select(images)
    poses, centres = own.cam_from_world.double().numpy(), own.centers.double().numpy()
    agree = rotation_angle_deg(poses[:, None, :3, :3], poses[None, :, :3, :3]) <= STATIC_ROTATION_DEG
    if extent > 0:
        agree &= np.linalg.norm(centres[:, None] - centres[None], axis=-1) <= STATIC_CENTRE_SHARE * extent
    best = int(np.argmax(agree.sum(1)))
    members = np.flatnonzero(agree[best])
    if 2 * len(members) <= len(images) and len(images) > 1:
        return StaticPose((), len(images), np.full((4, 4), np.nan))
    return StaticPose(tuple(images[i] for i in members), len(images), poses[members[0]])


def _rig_extent(posed: dict[str, list[str]], cameras) -> float:
    """Largest distance between two cameras' centres (their first registered image), SfM units; 0 with one."""
    centres = np.array([cameras.select([own[0]]).centers[0].double().numpy() for own in posed.values()])
    if len(centres) < 2:
        return 0.0
    return float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=-1)))


def _camera_outcomes(
    names, groups: list[ImageGroup], result, blank: set[str], have_survey: bool
) -> tuple[list[CameraOutcome], dict[str, StaticPose]]:
    """Per production camera: registered or why not, and the pose its images agree on."""
    own_images = {name: [image for g in groups if g.name == name for image in g.images] for name in names}
    posed = {
        name: [i for i in own if i in result.stats and result.stats[i].registered] for name, own in own_images.items()
    }
    posed = {name: images for name, images in posed.items() if images}
    extent = _rig_extent(posed, result.cameras)
    outcomes, static_poses = [], {}
    for name in names:
        own = own_images[name]
        stats = [result.stats[i] for i in own if i in result.stats]
        cross = _cross_matches(set(own), result.pair_matches)
        static = _static_pose(posed[name], result.cameras, extent) if name in posed else None
        if static is not None and static.images:
            static_poses[name] = static
            outcomes.append(_registered(name, stats, cross))
        elif static is not None:
            outcomes.append(_disagreeing(name, _merged(stats, cross), static, have_survey))
        else:
            outcomes.append(_failure(name, name in blank, _merged(stats, cross), have_survey))
    return outcomes, static_poses


def _merged(stats: list[ImageStats], cross_matches: int) -> ImageStats | None:
    """One camera's statistics over its images (plate and instants).

    Keypoints: the most of any image; verified matches: `cross_matches` (with other cameras' and the
    survey's images only: matches between a static camera's own frames say nothing about overlap).
    """
    if not stats:
        return None
    observations = sum(s.observations for s in stats)
    errors = sum(s.observations * s.reprojection_error_px for s in stats if s.observations)
    return ImageStats(
        max(s.keypoints for s in stats),
        cross_matches,
        any(s.registered for s in stats),
        observations,
        errors / observations if observations else float("nan"),
    )


def _cross_matches(own: set[str], pairs: dict[tuple[str, str], int]) -> int:
    """Verified matches between images in `own` and images outside it."""
    return sum(n for (a, b), n in pairs.items() if (a in own) != (b in own))


def _registered(name: str, stats: list[ImageStats], cross_matches: int) -> CameraOutcome:
    merged = _merged(stats, cross_matches)
    return CameraOutcome(
        name,
        True,
        keypoints=merged.keypoints,
        verified_matches=merged.verified_matches,
        observations=merged.observations,
        reprojection_error_px=merged.reprojection_error_px,
    )


def _suggestion(have_survey: bool) -> str:
    if have_survey:
        return "give its calibration (reshoot init --calibration)"
    return "add a survey pass of the set (reshoot init --survey) or give its calibration (--calibration)"


def _disagreeing(name: str, stats: ImageStats, static: StaticPose, have_survey: bool) -> CameraOutcome:
    return CameraOutcome(
        name,
        False,
        f"its {static.registered} registered images (plate and instants) do not agree on one pose (no "
        f"majority within {STATIC_ROTATION_DEG:g} deg and {100 * STATIC_CENTRE_SHARE:g} % of the rig): a static "
        "camera has one, so its matches with the other cameras are not reliable",
        _suggestion(have_survey),
        stats.keypoints,
        stats.verified_matches,
    )


def _failure(name: str, blank: bool, stats, have_survey: bool) -> CameraOutcome:
    suggestion = _suggestion(have_survey)
    if blank:
        return CameraOutcome(
            name,
            False,
            "a blank or black video (no contrast in its clean plate)",
            "check the file and the camera's exposure",
        )
    if stats is None or stats.keypoints < MIN_KEYPOINTS:
        count = 0 if stats is None else stats.keypoints
        return CameraOutcome(
            name,
            False,
            f"too few features ({count} SIFT keypoints; needs {MIN_KEYPOINTS})",
            suggestion,
            keypoints=count,
        )
    if stats.verified_matches < MIN_OVERLAP_MATCHES:
        return CameraOutcome(
            name,
            False,
            f"no overlap with the other images ({stats.verified_matches} verified matches in all)",
            suggestion,
            stats.keypoints,
            stats.verified_matches,
        )
    return CameraOutcome(
        name,
        False,
        f"its pose could not be estimated ({stats.verified_matches} verified "
        "matches, too few consistent with the model)",
        suggestion,
        stats.keypoints,
        stats.verified_matches,
    )


def register(
    workspace: str | Path, options: RegistrationOptions | None = None, progress: ProgressFn | None = None
) -> RegistrationSummary:
    """Register the workspace's footage; see the module docstring.

    Raises:
        RegistrationError: fewer than two production cameras could be registered (nothing written).
        InputError: bad workspace, footage, survey or hints.
    """
    options = options or RegistrationOptions()
    report = progress or no_progress
    started = time.perf_counter()
    ws = Path(workspace)
    settings = load_workspace(ws)
    footage = settings.open_footage()
    calibration = footage.calibration if options.calibration_mode != "none" else None
    use_poses = calibration is not None and options.calibration_mode in ("auto", "poses")
    if use_poses:
        _check_metres(calibration, settings.calibration)
    survey_path = None if options.no_survey or use_poses else (options.survey or settings.survey)

    with tempfile.TemporaryDirectory(prefix=".register-", dir=ws) as tmp:
        work = Path(tmp)
        instants = options.instants if options.instants is not None else _default_instants(use_poses, survey_path)
        groups, plates, blank = _prepare_images(
            footage, calibration, work, options.samples, instants, report, settings.open_plates(footage)
        )
        survey_names: list[str] = []
        if survey_path is not None:
            survey_names = [
                f"survey/{n}"
                for n in _survey_images(Path(survey_path), work / "images" / "survey", options.max_survey_images)
            ]
            groups.append(ImageGroup(SURVEY_GROUP, tuple(survey_names)))
        if len({g.name for g in groups}) - bool(survey_names) < 2:
            raise RegistrationError(_too_few_message(footage.camera_names, blank, {}))

        report("features and matches", 0, 1)
        database = work / "database.db"
        # One thread: multi-threaded extraction and matching verify slightly different matches run to run
        # (890 vs 892 on one pair), which moved the floor and origin by centimetres; one thread gives
        # byte-identical cameras for about 6 s more on the demo take (24 s instead of 18 s).
        build_database(
            database,
            work / "images",
            groups,
            mask_root=work / "masks",
            pairs=_match_pairs(groups),
            seed=options.seed,
            threads=1,
        )
        report("features and matches", 1, 1)
        report("mapping", 0, 1)
        if use_poses:
            mode = "calibrated"
            poses = {
                image: (g.intrinsics, g.intrinsics.cam_from_world[0].numpy()) for g in groups for image in g.images
            }
            result = triangulate_with_known_poses(database, work / "images", work / "model", poses)
        else:
            mode = "survey" if survey_names else "plates"
            all_known = not survey_names and all(g.intrinsics is not None for g in groups)
            result = incremental_sfm(
                database, work / "images", work / "model", refine_intrinsics=not all_known, seed=options.seed
            )
        report("mapping", 1, 1)

        outcomes, static_poses = _camera_outcomes(footage.camera_names, groups, result, blank, bool(survey_names))
        registered = [o.name for o in outcomes if o.registered]
        if len(registered) < 2:
            raise RegistrationError(_too_few_message(footage.camera_names, blank, {o.name: o for o in outcomes}))

        production = _production_cameras(result.cameras, registered, static_poses)
        static, few_static = _set_points(result.observed_in(set(_static_images(groups))))
        frame = estimate_world_frame(
            production, result.points_xyz[static], options.scale, metric=use_poses, seed=options.seed
        )
        world_cameras = frame.apply_to_cameras(production)
        survey_cameras = None
        registered_survey = [n for n in survey_names if result.stats.get(n) and result.stats[n].registered]
        if registered_survey:
            survey_cameras = frame.apply_to_cameras(result.cameras.select(registered_survey)).renamed(
                [Path(n).stem for n in registered_survey]
            )
        points = frame.apply_to_points(result.points_xyz[static])
        observations = {n: result.observations(static_poses[n].images[0], static) for n in registered}
        check = None
        if footage.calibration is not None and not use_poses:
            check = _calibration_check(production, footage.calibration, groups, result.pair_matches)

        with atomic_directory(Workspace(ws).registration, overwrite=True) as out:
            _write_outputs(
                out,
                world_cameras,
                survey_cameras,
                points,
                result.points_rgb[static],
                observations,
                result,
                frame,
                plates,
            )
            summary = RegistrationSummary(
                Workspace(ws).registration,
                mode,
                tuple(outcomes),
                len(points),
                frame.scale_source,
                frame.up_source,
                time.perf_counter() - started,
                tuple(o for o in outcomes if not o.registered),
                _warnings(mode, groups) + few_static,
            )
            body = _report_body(
                summary, frame, options, instants, survey_path, len(survey_names), len(registered_survey), result
            )
            if check is not None:
                body["calibration_check"] = check
            body["warnings"] = list(summary.warnings)
            if footage.calibration_units is not None:
                body["calibration_units"] = footage.calibration_units
            write_json_document(RegistrationPaths(out).report, "registration-report", 1, body)
    log.info("registered %d of %d cameras (%s) in %.1f s", len(registered), len(outcomes), mode, summary.seconds)
    return summary


def calibration_in_world(workspace: str | Path, cameras: Camera, where: str) -> Camera:
    """Cameras given in the frame and length unit of the workspace's calibration (a camera of the rig
    that was not filmed or not registered, such as one held out), carried into the registration's world
    frame: converted to metres as the calibration was, then moved by the report's `world_from_sfm` (in
    calibrated mode the SfM frame is the calibration's).

    Args:
        where: what to name in errors (the file the cameras came from).

    Raises:
        InputError: no registration yet, or one that estimated its own poses (its world frame has no
            known relation to the calibration's).
    """
    from reshoot.datasets.calibration import in_metres
    from reshoot.geometry.files import read_json_document
    from reshoot.geometry.world_frame import WorldFrame

    ws = Workspace(Path(workspace))
    if not ws.registration_report.is_file():
        raise InputError(f"{ws.root}: no registration yet. Run `reshoot register {ws.root}` first.")
    report = read_json_document(ws.registration_report, "registration-report", 1)
    if report.get("mode") != "calibrated":
        raise InputError(
            f"{where}: cameras in a calibration's frame need a workspace registered with that calibration's "
            f"poses; {ws.root} was registered in {report.get('mode')!r} mode, whose world frame has no known "
            "relation to it. Give the cameras in the registration's world frame instead (as in "
            f"{ws.cameras})."
        )
    frame = report["world_frame"]
    world = WorldFrame(
        np.array(frame["world_from_sfm"], dtype=np.float64),
        float(frame["scale"]),
        frame["scale_source"],
        frame["up_source"],
        int(frame["floor_points"]),
        float(frame["up_vs_cameras_deg"]),
    )
    unit = report.get("calibration_units", {}).get("unit", "m")
    return world.apply_to_cameras(in_metres(cameras, unit))


def _production_cameras(cameras, registered: list[str], static_poses: dict[str, StaticPose]):
    """One camera per registered production camera: its first agreeing image's intrinsics and pose."""
    import torch

    first = cameras.select([static_poses[n].images[0] for n in registered]).renamed(registered)
    poses = torch.from_numpy(np.stack([static_poses[n].cam_from_world for n in registered]))
    return dataclasses.replace(first, cam_from_world=poses.to(first.cam_from_world.dtype))


ESTIMATED_LENSES = (
    "registered from the production cameras alone with their lenses estimated: with no survey, several lens and "
    "pose combinations explain the matches about equally well; on 8 synthetic takes this put cameras up to 14 deg "
    "off with sub-pixel reprojection errors, and within 1 deg with the lenses given "
    "(benchmarks/registration_no_survey.py). Give the lenses (a calibration file with --calibration-mode "
    "intrinsics) or a survey of the set (reshoot init --survey)"
)


MIN_SET_POINTS = 30  # as many as the floor's plane needs (world_frame.MIN_FLOOR_POINTS)


def _set_points(seen_by_static: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """[N] bool of the points that are the set's, and a warning when there are too few of them.

    The set's points are those a plate or survey photo sees: an instant's own points can be the action.
    With fewer than MIN_SET_POINTS of those (plates that barely match each other, as on a real take
    whose actor fills the pictures) every point is kept, and the warning says so.
    """
    count = int(seen_by_static.sum())
    if count >= MIN_SET_POINTS or count == len(seen_by_static):
        return seen_by_static, ()
    warning = (
        f"only {count} of the {len(seen_by_static)} sparse points are seen in a clean plate or survey photo, so "
        "points.ply keeps all of them, including points on the action of the synchronized instants"
    )
    return np.ones_like(seen_by_static), (warning,)


def _warnings(mode: str, groups: list[ImageGroup]) -> tuple[str, ...]:
    """What the user should know about how far to trust the registration."""
    if mode == "plates" and any(g.intrinsics is None for g in groups):
        return (ESTIMATED_LENSES,)
    return ()


def _default_instants(use_poses: bool, survey_path) -> int:
    """Synchronized instants per camera when the user gives none (see RegistrationOptions.instants)."""
    if use_poses:
        return 6
    return 0 if survey_path is not None else PLATES_ONLY_INSTANTS


PLATES_ONLY_INSTANTS = 12  # benchmarks/registration_no_survey.py: without instants no take of 8 registered 3 cameras
# right; with a lens per instant group (before one lens per camera), 24 instants met the bar on none of seeds 1-5
# (12: on seed 5) and took 43-130 s a take (12: 24-40 s, but 390 s on seed 4)

MAX_SET_SIZE_M = 200.0  # cameras of one take farther apart than this are not in metres


def _check_metres(calibration: Camera, path: Path | None) -> None:
    """A calibration's poses must be in metres; millimetre or centimetre files put cameras far apart."""
    centres = calibration.centers.numpy()
    spread = float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=-1)))
    if spread > MAX_SET_SIZE_M:
        raise InputError(
            f"{path}: the calibrated cameras are up to {spread:.0f} units apart, which is not a film set in "
            "metres; the translations look like millimetres or centimetres. Declare their unit "
            "(reshoot init --force --calibration-units mm or cm, or auto to tell it from the spacing) and run again."
        )


def _static_images(groups: list[ImageGroup]) -> list[str]:
    """The images of the static set alone: plates and survey photos (not the synchronized instants)."""
    return [i for g in groups for i in g.images if not i.startswith("instants/")]


def _match_pairs(groups: list[ImageGroup]) -> list[tuple[str, str]]:
    """Which images to match. Plates and survey photos show the static set: every pair. An instant
    also shows the action, so it is matched with the static images and with the other cameras'
    frames *of the same instant* only (the action moves between instants)."""
    static = _static_images(groups)
    moving = [i for g in groups for i in g.images if i not in static]
    pairs = [(a, b) for k, a in enumerate(static) for b in static[k + 1 :]]
    pairs += [(a, b) for a in moving for b in static]
    pairs += [
        (a, b)
        for k, a in enumerate(moving)
        for b in moving[k + 1 :]
        if a.split("/")[1] != b.split("/")[1] and Path(a).name == Path(b).name
    ]
    return pairs


AGREEMENT_DEG = 2.0


def _calibration_check(
    estimate: Camera, calibration: Camera, groups: list[ImageGroup], pair_matches: dict[tuple[str, str], int]
) -> dict:
    """Estimated relative poses against a calibration's, pair by pair, with why a pair disagrees."""
    from reshoot.geometry.alignment import relative_pose_agreement

    images = {g.name: set() for g in groups}
    for g in groups:
        images[g.name] |= set(g.images)
    agreements = relative_pose_agreement(estimate, calibration)
    median_baseline = float(np.median([p.baseline for p in agreements]))
    pairs = []
    for p in agreements:
        shared = sum(
            n
            for (x, y), n in pair_matches.items()
            if (x in images[p.a] and y in images[p.b]) or (x in images[p.b] and y in images[p.a])
        )
        agrees = p.rotation_deg <= AGREEMENT_DEG and p.direction_deg <= AGREEMENT_DEG
        why = None
        if shared < 100 and not agrees:
            why = f"few matches between the two cameras ({shared}): their views barely overlap"
        elif p.direction_deg > AGREEMENT_DEG:
            short = "short " if p.baseline < median_baseline else ""
            why = (
                f"baseline direction off by {p.direction_deg:.1f} deg over a {short}{p.baseline:.3g} baseline "
                f"(median {median_baseline:.3g}): the camera centres disagree by {p.centre_discrepancy:.3g}, "
                "in the calibration's units"
            )
        elif p.rotation_deg > AGREEMENT_DEG:
            why = (
                f"relative rotation off by {p.rotation_deg:.1f} deg with {shared} shared matches: recalibrate or "
                "check the lens intrinsics"
            )
        pairs.append(
            {
                "a": p.a,
                "b": p.b,
                "rotation_deg": round(p.rotation_deg, 3),
                "direction_deg": round(p.direction_deg, 3),
                "baseline": round(p.baseline, 4),
                "centre_discrepancy": round(p.centre_discrepancy, 4),
                "shared_matches": shared,
                "agrees": agrees,
                "why": why,
            }
        )
    return {
        "tolerance_deg": AGREEMENT_DEG,
        "pairs": pairs,
        "failed_pairs": [f"{p['a']}-{p['b']}" for p in pairs if not p["agrees"]],
    }


def _too_few_message(names, blank, outcomes) -> str:
    lines = ["fewer than two cameras could be registered, so there is no common frame:"]
    for name in names:
        o = outcomes.get(name)
        if o is not None and o.registered:
            lines.append(f"  {name}: registered")
        elif name in blank:
            lines.append(f"  {name}: a blank or black video; check the file and the camera's exposure")
        elif o is not None:
            lines.append(f"  {name}: {o.reason}; {o.suggestion}")
        else:
            lines.append(f"  {name}: not usable")
    lines.append("Nothing was written to registration/.")
    return "\n".join(lines)


def _write_png(path: Path, image: np.ndarray) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))


def _write_outputs(
    folder: Path,
    cameras: Camera,
    survey: Camera | None,
    points: np.ndarray,
    points_rgb: np.ndarray,
    observations: dict[str, list[tuple[int, float, float]]],
    result,
    frame,
    plates,
) -> None:
    """Everything under registration/; `points` (world), `points_rgb` and `observations` (camera → (point
    index, x, y) in its image) are the set's points as written to points.ply and the COLMAP text export."""
    import open3d as o3d

    from reshoot.geometry.cameras_io import write_cameras_json
    from reshoot.geometry.exports import write_colmap_text, write_nerfstudio_transforms
    from reshoot.geometry.pycolmap_import import pycolmap

    out = RegistrationPaths(folder)
    write_cameras_json(out.cameras, cameras, attributes={n: {"role": "production"} for n in cameras.names})
    if survey is not None:
        write_cameras_json(out.survey_cameras, survey, attributes={n: {"role": "survey"} for n in survey.names})
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    cloud.colors = o3d.utility.Vector3dVector(points_rgb.astype(np.float64) / 255.0)
    o3d.io.write_point_cloud(str(out.points), cloud, write_ascii=False)
    for name in cameras.names:
        _write_png(out.plates / f"{name}.png", plates[name].rgb)
    model = pycolmap.Reconstruction(result.reconstruction)
    model.transform(_sim3(frame.world_from_sfm))
    out.colmap.mkdir()
    model.write(out.colmap)
    images = {n: f"../plates/{n}.png" for n in cameras.names}
    write_colmap_text(
        out.export / "colmap_text",
        cameras,
        {n: f"{n}.png" for n in cameras.names},
        points,
        points_rgb,
        observations=observations,
    )
    write_nerfstudio_transforms(out.export / "transforms.json", cameras, images)


def _sim3(world_from_sfm: np.ndarray):
    from reshoot.geometry.pycolmap_import import pycolmap

    scale = float(np.cbrt(np.linalg.det(world_from_sfm[:3, :3])))
    rotation = pycolmap.Rotation3d(world_from_sfm[:3, :3] / scale)
    return pycolmap.Sim3d(scale, rotation, world_from_sfm[:3, 3].reshape(3, 1))


def _report_body(
    summary: RegistrationSummary,
    frame,
    options: RegistrationOptions,
    instants: int,
    survey_path,
    survey_used: int,
    survey_registered: int,
    result,
) -> dict:
    def number(x: float):
        return None if not np.isfinite(x) else round(float(x), 4)

    return {
        "mode": summary.mode,
        "cameras": [
            {
                "name": o.name,
                "registered": o.registered,
                "reason": o.reason or None,
                "suggestion": o.suggestion or None,
                "keypoints": o.keypoints,
                "verified_matches": o.verified_matches,
                "observations": o.observations,
                "reprojection_error_px": number(o.reprojection_error_px),
            }
            for o in summary.cameras
        ],
        "survey": {
            "path": str(survey_path) if survey_path else None,
            "images": survey_used,
            "registered": survey_registered,
        },
        "points": summary.points,
        "mean_point_error_px": number(float(np.mean(result.points_error_px))) if len(result.points_error_px) else None,
        "world_frame": {
            "up_source": frame.up_source,
            "floor_points": frame.floor_points,
            "up_vs_cameras_deg": round(frame.up_vs_cameras_deg, 3),
            "scale_source": frame.scale_source,
            "scale": frame.scale,
            "world_from_sfm": frame.world_from_sfm.tolist(),
        },
        "options": {
            "calibration_mode": options.calibration_mode,
            "samples": options.samples,
            "instants": instants,
            "seed": options.seed,
            "scale_hint": None
            if options.scale is None
            else {"known_distance": options.scale.known_distance, "camera_heights": options.scale.camera_heights},
        },
        "seconds": round(summary.seconds, 2),
    }
