"""The workspace: one folder per take, settings in `reshoot.toml` (DESIGN.md §4), and `Workspace`, the one
object that knows where every artefact of a take lives (no other module spells an artefact path).

```
reshoot.toml                      settings (below)
registration/                     cameras.json, points.ply, report.json, colmap/, export/  (register)
splats/                           background.ply, actors/NNNNNN.ply, reconstruction.json, log.json  (reconstruct)
splats.work/                      the reconstruction's resumable work (deleted when it finishes)
layout.json, layout_plan.png      (layout)
shots/<name>/                     shot.json, history.jsonl, conditioning/, frames/, <name>.mp4, exr/,
                                  <name>.otio, <name>.edl, <name>.<camera>.edl, synthesis.json, check.json,
                                  check/, export/, truth/,
                                  samples/K/{frames/, exr/, <name>.mp4} (synthesize --samples N)
report/index.html                 (report)
model/                            adapted checkpoints (train --adapt)
.reshoot/                         manifests/<stage>.json, digests.json, lock
```

```toml
format = "reshoot/workspace"
version = 1

[footage]
path = "../take/footage"        # relative to the workspace (or absolute)
calibration = "calib.json"      # optional: a calibration file or COLMAP model folder (load_calibration)
calibration_units = "auto"      # its translations' unit: m, cm, mm, or auto (told from the cameras' spacing)
fps = 24.0
frames = 48                     # frames of the take that every camera covers
first_frame = 0
cameras = ["a_wide", "b_medium"]
timecode = "01:00:00:00"         # optional: take frame first_frame's timecode (from the videos or --timecode)

[footage.offsets]               # camera frame i shows take frame i + offset
a_wide = 0

[footage.sync]                  # how the offsets were found (reshoot/datasets/sync.py)
source = "audio"                # timecode | audio | motion | none | user
confidence = 0.56
closure_frames = 0.0            # largest |lag_ab + lag_bc - lag_ac| of the pairs' own lags
offsets_frames = { a_wide = -31.0002 }   # sub-frame; frames are sampled at the whole offsets
offsets_ms = { a_wide = -1291.675 }
residual_frames = { a_wide = -0.0002 }

[survey]                        # optional: photos or a video walking around the empty set
path = "../take/survey"

[plates]                        # optional: clean plates, one video or image folder per camera
path = "../take/plates"

[scale]
source = "arbitrary"            # or "known_distance" / "camera_height" with their values

[privacy]
sensitive = false               # true: the footage may never be used to train models

[colour]                        # optional (reshoot/colour.py): OCIO config, working and footage spaces
working_space = "ACEScg"

[deliverables]                  # optional: the shots' EXR and editorial hand-off
first_frame = 1001              # the number of a shot's first frame in its deliverables

[stages.register]               # optional: settings of `reshoot run`'s stages (reshoot/pipeline.py)
camera_height = 1.6
```
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reshoot.geometry.errors import FormatError, InputError
from reshoot.geometry.files import read_text_document, write_text_atomic

if TYPE_CHECKING:
    from reshoot.datasets.footage import CameraFootage
    from reshoot.datasets.sync import SyncResult

log = logging.getLogger(__name__)

WORKSPACE_FILE = "reshoot.toml"
META_FOLDER = ".reshoot"
KEYFRAMES_FILE = "keyframes.json"  # inside a shot folder; shot specs record this relative name
FORMAT = "reshoot/workspace"
VERSION = 1
DEFAULT_DELIVERABLE_START = 1001


@dataclass(frozen=True)
class WorkspaceSettings:
    """The settings of a workspace.

    Attributes:
        root: the workspace folder.
        footage: the take's footage folder (absolute).
        calibration: a calibration file (absolute) or None.
        calibration_units: the calibration's length unit ("m", "cm", "mm"), or "auto" to tell it from
            how far apart the cameras stand (`reshoot.datasets.calibration.sniff_units`).
        fps: frame rate of the take.
        frames: frames of the take covered by every camera.
        first_frame: take frame number of the first frame.
        cameras: camera names, in footage order.
        offsets: per-camera frame offsets.
        sync: how the offsets were found (`SyncResult.to_dict`: source, confidence, sub-frame offsets and
            their residuals, the camera pairs), or {} for a workspace made before sync existed.
        sensitive: the footage must never be used to train models.
        scale: how metric scale is to be found: {"source": "arbitrary"} or with a hint.
        survey: a survey of the empty set (photo folder or video), absolute, or None.
        plates: clean plates (one video or image folder per camera of the empty set), absolute, or None:
            used instead of the footage's temporal median.
        stages: per stage name, the settings `reshoot run` runs it with (over the defaults).
        colour: the colour settings (`reshoot.colour.ColourSettings` as a dict, per-camera spaces under
            "cameras"; {} = the defaults).
        timecode: SMPTE timecode HH:MM:SS:FF of take frame `first_frame`, or None where unknown.
        deliverable_start: the frame number a shot's first frame gets in its deliverables (EXR, timeline).
    """

    root: Path
    footage: Path
    calibration: Path | None
    fps: float
    frames: int
    first_frame: int
    cameras: tuple[str, ...]
    offsets: dict[str, int] = field(default_factory=dict)
    sync: dict[str, Any] = field(default_factory=dict)
    sensitive: bool = False
    scale: dict[str, Any] = field(default_factory=lambda: {"source": "arbitrary"})
    survey: Path | None = None
    plates: Path | None = None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration_units: str = "auto"
    colour: dict[str, Any] = field(default_factory=dict)
    timecode: str | None = None
    deliverable_start: int = DEFAULT_DELIVERABLE_START

    def open_footage(self):
        """The take's footage on the workspace's frame clock (its calibration, offsets and fps); a `Footage`,
        to be closed (it is a context manager)."""
        from reshoot.datasets.footage import open_footage

        return open_footage(
            self.footage,
            self.calibration,
            self.offsets or None,
            self.fps,
            self.calibration_units,
            decoders=self.footage_decoders(),
        )

    def open_plates(self, footage) -> dict | None:
        """The clean plates per camera name (`CameraFootage`, frames from 0), or None without plates.

        Args:
            footage: the open `Footage`, whose cameras' sizes the plates must have.
        """
        if self.plates is None:
            return None
        from dataclasses import replace

        from reshoot.datasets.footage import open_plates

        plates = open_plates(self.plates, {s.name: (s.width, s.height) for s in footage.sources})
        return {name: replace(plate, decode=footage.source(name).decode) for name, plate in plates.items()}

    def footage_decoders(self) -> dict:
        """Camera name → the colour decoder of a camera recorded in a space of its own ([colour.cameras]); {}
        for none (OCIO is not loaded then)."""
        if not self.colour.get("cameras"):
            return {}
        pipeline = self.colour_pipeline()
        return {name: pipeline.decoder(name) for name in self.colour["cameras"]}

    def colour_pipeline(self):
        """The workspace's `reshoot.colour.ColourPipeline` (the defaults where reshoot.toml has no [colour])."""
        from reshoot.colour import ColourPipeline, ColourSettings

        return ColourPipeline(ColourSettings.from_dict(self.colour))

    def timecode_of(self, frame: int) -> str:
        """The SMPTE timecode of take frame `frame` (drop-frame where the take's timecode is, else
        non-drop-frame at the rounded rate); without a known timecode the take's first frame is 00:00:00:00."""
        from reshoot.datasets.sync import frames_to_timecode, is_drop_frame, timecode_to_frames

        if self.timecode is None:
            return frames_to_timecode(frame - self.first_frame, int(round(self.fps)))
        start = timecode_to_frames(self.timecode, self.fps)
        return frames_to_timecode(start + frame - self.first_frame, int(round(self.fps)), is_drop_frame(self.timecode))


def _relative(path: Path, root: Path) -> str:
    """`path` relative to `root` when they share a file system tree, so a moved project still works."""
    try:
        return os.path.relpath(path.resolve(), root.resolve())
    except ValueError:  # different drives on Windows
        return str(path.resolve())


def init_workspace(
    root: str | Path,
    footage: str | Path,
    calibration: str | Path | None = None,
    sensitive: bool = False,
    fps: float | None = None,
    offsets: Mapping[str, int] | None = None,
    force: bool = False,
    survey: str | Path | None = None,
    plates: str | Path | None = None,
    stages: Mapping[str, Mapping[str, Any]] | None = None,
    sync: str = "auto",
    calibration_units: str = "auto",
    colour: Mapping[str, str] | None = None,
    timecode: str | None = None,
    deliverable_start: int | None = None,
) -> WorkspaceSettings:
    """Create a workspace for a take: check the footage, put its cameras on one clock, write
    `root/reshoot.toml`.

    The offsets are the user's `offsets` when given (then `sync` other than "auto" or "none" is still
    measured and recorded, as a check); else found by `sync` (`reshoot.datasets.sync.synchronize`).

    `stages` are settings of `reshoot run`'s stages ({"register": {"camera_height": 1.6}}), kept over
    those an existing workspace had (`force`). `colour` ([colour] settings, checked against their OCIO
    config), `timecode` (of take frame `first_frame`; default: read from the videos, `take_timecode`) and
    `deliverable_start` (default 1001) are kept from an existing workspace where not given.

    The footage is opened (not decoded) to validate it: every camera readable, same fps and length,
    calibration matching the cameras.

    With `force` on an existing workspace, the footage must be the same take (same folder and cameras)
    when the workspace holds stage outputs, which would otherwise pass for outputs of the new take; a
    workspace marked sensitive stays sensitive.

    Raises:
        InputError: bad footage or calibration, a workspace already exists and `force` is False,
            `force` would put another take under existing stage outputs, or the sync method cannot
            sync the cameras.
    """
    from reshoot.datasets.footage import open_footage, probe_cameras
    from reshoot.datasets.sync import SYNC_MODES

    root = Path(root)
    settings_file = root / WORKSPACE_FILE
    if settings_file.exists() and not force:
        raise InputError(
            f"{settings_file} already exists: {root} is a workspace. Use it as it is, choose another "
            "folder, or pass --force to rewrite its settings (stage outputs are kept)."
        )
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file; the workspace must be a folder.")
    if sync not in SYNC_MODES:  # before the footage is probed, which decodes every video
        raise InputError(f"--sync {sync!r}: choose one of {', '.join(SYNC_MODES)}.")
    if deliverable_start is not None and deliverable_start < 0:
        raise InputError(f"--deliverable-start {deliverable_start}: give a frame number of 0 or more (1001 is usual).")
    if colour:
        from reshoot.colour import ColourPipeline, ColourSettings

        ColourPipeline(ColourSettings.from_dict(dict(colour)))  # a bad space fails before anything is written
    probed = probe_cameras(footage, fps)
    offsets, synced = _synchronised_offsets(probed, offsets, sync)
    take = open_footage(
        footage, calibration=calibration, offsets=offsets, fps=fps, calibration_units=calibration_units, probed=probed
    )
    previous = _previous_settings(root)
    _check_same_take(root, previous, Path(footage).resolve(), tuple(take.camera_names))
    unknown = sorted(set((colour or {}).get("cameras", {})) - set(take.camera_names))
    if unknown:
        raise InputError(
            f"--camera-space names cameras without footage {unknown}; the cameras are {list(take.camera_names)}."
        )
    if timecode is not None:
        from reshoot.datasets.sync import timecode_to_frames

        timecode_to_frames(timecode, take.fps)  # checks it
    else:
        from reshoot.datasets.sync import take_timecode

        timecode = take_timecode(take) or (previous.timecode if previous is not None else None)
    if plates is not None:
        from reshoot.datasets.footage import open_plates

        for plate in open_plates(plates, {s.name: (s.width, s.height) for s in take.sources}).values():
            plate.close()
    if survey is not None and not Path(survey).exists():
        raise InputError(f"{survey}: no such survey folder or video. Give the photos or video of the set's survey.")
    if survey is not None and Path(survey).is_dir():
        from reshoot.datasets.footage import check_survey_names

        check_survey_names(Path(survey))
    settings = WorkspaceSettings(
        root=root,
        footage=Path(footage).resolve(),
        calibration=Path(calibration).resolve() if calibration else None,
        calibration_units=calibration_units,
        fps=float(take.fps),
        frames=int(take.num_frames),
        first_frame=int(take.first_frame),
        cameras=tuple(take.camera_names),
        offsets={s.name: int(s.offset) for s in take.sources},
        sync=synced.to_dict(float(take.fps)),
        sensitive=bool(sensitive) or (previous is not None and previous.sensitive),  # --force never un-marks
        survey=Path(survey).resolve() if survey else None,
        plates=Path(plates).resolve() if plates else None,
        stages=_merged_stages(previous.stages if previous is not None else {}, stages or {}),
        colour=dict(colour) if colour else (dict(previous.colour) if previous is not None else {}),
        timecode=timecode,
        deliverable_start=(
            deliverable_start
            if deliverable_start is not None
            else (previous.deliverable_start if previous is not None else DEFAULT_DELIVERABLE_START)
        ),
    )
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(settings_file, _to_toml(settings))
    log.info(
        "workspace %s: %d cameras, %d frames at %g fps", root, len(settings.cameras), settings.frames, settings.fps
    )
    return settings


def _synchronised_offsets(
    probed: list[CameraFootage], offsets: Mapping[str, int] | None, mode: str
) -> tuple[dict[str, int] | None, SyncResult]:
    """The offsets to open the take with (None: every camera as it is) and the `SyncResult` behind them:
    the user's offsets (with what `mode` measures, when it names a method, recorded beside them), or
    what `mode` found, from the probed cameras (`probe_cameras`)."""
    from reshoot.datasets.footage import take_rate
    from reshoot.datasets.sync import SyncResult, synchronize

    if offsets:
        extra = {}
        if mode not in ("auto", "none"):
            extra["measured"] = synchronize(probed, mode).to_dict(take_rate(probed))
        given = {name: float(value) for name, value in offsets.items()}
        return dict(offsets), SyncResult("user", given, note="the offsets given with --offset", extra=extra)
    result = synchronize(probed, mode)
    return (None if result.source == "none" else result.frame_offsets), result


def _merged_stages(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> dict:
    merged = {name: dict(values) for name, values in old.items()}
    for name, values in new.items():
        merged.setdefault(name, {}).update(values)
    return merged


def parse_stage_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    """`STAGE.FIELD=VALUE` texts as {stage: {field: value}}; values that read as TOML numbers or booleans
    are kept as such, others as text (each stage converts them to its options' types).

    Raises:
        InputError: an item is not STAGE.FIELD=VALUE.
    """
    settings: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, text = item.partition("=")
        stage, dot, name = target.partition(".")
        if not (sep and dot and stage and name):
            raise InputError(f"--set {item!r}: write STAGE.SETTING=VALUE, e.g. register.camera_height=1.6.")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        settings.setdefault(stage.strip(), {})[name.strip()] = value
    return settings


def _previous_settings(root: Path) -> WorkspaceSettings | None:
    """The settings of the workspace at `root`, None where there is none or it does not read (then
    `init --force` is how it is repaired)."""
    try:
        return load_workspace(root) if (root / WORKSPACE_FILE).is_file() else None
    except InputError:
        return None


def _check_same_take(root: Path, previous: WorkspaceSettings | None, footage: Path, cameras: tuple[str, ...]) -> None:
    """Refuse to re-point a workspace that has stage outputs at another take (another footage folder or
    other cameras): its registration, splats, layout and shots would silently pass for the new take's.

    Raises:
        InputError: it would; the message says what to do.
    """
    if previous is None or (previous.footage == footage and previous.cameras == cameras):
        return
    outputs = sorted(p.name for p in root.iterdir() if p.name != WORKSPACE_FILE and not p.name.startswith("."))
    if outputs:
        raise InputError(
            f"{root} holds stage outputs ({', '.join(outputs[:5])}) of another take: footage {previous.footage} "
            f"with cameras {', '.join(previous.cameras)}, not {footage} with {', '.join(cameras)}. Nothing was "
            f"changed. Make a new workspace for this take, or move those outputs out of {root} first; if the same "
            f"footage only moved, edit footage.path in {root / WORKSPACE_FILE} instead."
        )


def _to_toml(settings: WorkspaceSettings) -> str:
    import tomli_w

    footage: dict[str, Any] = {"path": _relative(settings.footage, settings.root)}
    if settings.calibration is not None:
        footage["calibration"] = _relative(settings.calibration, settings.root)
        footage["calibration_units"] = settings.calibration_units
    footage.update(
        fps=settings.fps,
        frames=settings.frames,
        first_frame=settings.first_frame,
        cameras=list(settings.cameras),
        offsets=dict(settings.offsets),
    )
    if settings.timecode is not None:
        footage["timecode"] = settings.timecode
    if settings.sync:
        footage["sync"] = dict(settings.sync)
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "footage": footage}
    if settings.survey is not None:
        doc["survey"] = {"path": _relative(settings.survey, settings.root)}
    if settings.plates is not None:
        doc["plates"] = {"path": _relative(settings.plates, settings.root)}
    doc.update(scale=dict(settings.scale), privacy={"sensitive": settings.sensitive})
    if settings.colour:
        doc["colour"] = dict(settings.colour)
    if settings.deliverable_start != DEFAULT_DELIVERABLE_START:
        doc["deliverables"] = {"first_frame": settings.deliverable_start}
    if settings.stages:
        doc["stages"] = {name: dict(values) for name, values in settings.stages.items()}
    return tomli_w.dumps(doc)


def load_workspace(root: str | Path) -> WorkspaceSettings:
    """Read `root/reshoot.toml`.

    Raises:
        InputError: no workspace there; FormatError: the settings file is malformed.
    """
    root = Path(root)
    settings_file = root / WORKSPACE_FILE
    if not settings_file.is_file():
        raise InputError(
            f"{root} is not a reshoot workspace (no {WORKSPACE_FILE}). Create one with "
            f"`reshoot init {root} --footage TAKE/footage`."
        )
    doc = read_text_document(settings_file, tomllib.loads, "TOML", "reshoot workspace settings")
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise FormatError(
            f'{settings_file}: expected format = "{FORMAT}" and version = {VERSION}, found '
            f"{doc.get('format')!r} version {doc.get('version')!r}."
        )
    try:
        footage = doc["footage"]
        calibration = footage.get("calibration")
        return WorkspaceSettings(
            root=root,
            footage=(root / footage["path"]).resolve(),
            calibration=(root / calibration).resolve() if calibration else None,
            calibration_units=str(footage.get("calibration_units", "auto")),
            fps=float(footage["fps"]),
            frames=int(footage["frames"]),
            first_frame=int(footage.get("first_frame", 0)),
            cameras=tuple(str(c) for c in footage["cameras"]),
            offsets={str(k): int(v) for k, v in footage.get("offsets", {}).items()},
            sync=dict(footage.get("sync", {})),
            sensitive=bool(doc.get("privacy", {}).get("sensitive", False)),
            scale=dict(doc.get("scale", {"source": "arbitrary"})),
            survey=(root / doc["survey"]["path"]).resolve() if "survey" in doc else None,
            plates=(root / doc["plates"]["path"]).resolve() if "plates" in doc else None,
            stages={str(name): dict(values) for name, values in doc.get("stages", {}).items()},
            colour=dict(doc.get("colour", {})),
            timecode=str(footage["timecode"]) if "timecode" in footage else None,
            deliverable_start=int(doc.get("deliverables", {}).get("first_frame", DEFAULT_DELIVERABLE_START)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(
            f"{settings_file}: missing or malformed setting ({exc}). Rerun `reshoot init --force`."
        ) from None


@dataclass(frozen=True)
class RegistrationPaths:
    """The files of a registration folder (`Workspace.registration`, or the staging folder its writer fills)."""

    folder: Path

    @property
    def cameras(self) -> Path:
        """cameras.json: the registered production cameras."""
        return self.folder / "cameras.json"

    @property
    def survey_cameras(self) -> Path:
        """survey_cameras.json: the registered survey photos, when there was a survey."""
        return self.folder / "survey_cameras.json"

    @property
    def points(self) -> Path:
        """points.ply: the sparse points, world frame."""
        return self.folder / "points.ply"

    @property
    def report(self) -> Path:
        return self.folder / "report.json"

    @property
    def plates(self) -> Path:
        """plates/: each registered camera's clean plate, <camera>.png."""
        return self.folder / "plates"

    @property
    def colmap(self) -> Path:
        """colmap/: the pycolmap model in the world frame."""
        return self.folder / "colmap"

    @property
    def export(self) -> Path:
        """export/: colmap_text/ and transforms.json of the registered cameras."""
        return self.folder / "export"


@dataclass(frozen=True)
class SplatsPaths:
    """The files of a reconstruction folder (`Workspace.splats`, or the staging folder its writer fills)."""

    folder: Path

    @property
    def set(self) -> Path:
        """background.ply: the static set."""
        return self.folder / "background.ply"

    @property
    def actors(self) -> Path:
        """actors/: the actors, one NNNNNN.ply per take frame."""
        return self.folder / "actors"

    @property
    def reconstruction(self) -> Path:
        """reconstruction.json: what was fitted, with which settings."""
        return self.folder / "reconstruction.json"

    @property
    def log(self) -> Path:
        """log.json: the training log."""
        return self.folder / "log.json"


@dataclass(frozen=True)
class ShotPaths:
    """Where the artefacts of one shot live (`Workspace.shot(name)`); `name` is checked by the caller."""

    name: str
    folder: Path

    @property
    def spec(self) -> Path:
        """shot.json: the shot's camera per frame and its current revision (reshoot/cameras)."""
        return self.folder / "shot.json"

    @property
    def history(self) -> Path:
        """history.jsonl: one line per revision."""
        return self.folder / "history.jsonl"

    @property
    def keyframes(self) -> Path:
        """keyframes.json: the explicit cameras an explicit shot follows."""
        return self.folder / KEYFRAMES_FILE

    @property
    def conditioning(self) -> Path:
        """conditioning/: the render passes of the reconstruction into the shot."""
        return self.folder / "conditioning"

    @property
    def frames(self) -> Path:
        """frames/: the synthesized frames, NNNNNN.png, and synthesis.json."""
        return self.folder / "frames"

    @property
    def video(self) -> Path:
        """<name>.mp4: the synthesized frames as a video."""
        return self.folder / f"{self.name}.mp4"

    @property
    def exr(self) -> Path:
        """exr/: the shot's deliverable, one layered EXR per frame (`exr_frame`)."""
        return self.folder / "exr"

    def exr_frame(self, number: int, folder: Path | None = None) -> Path:
        """exr/<name>.NNNN.exr (or in `folder`, where the deliverable is being written): frame `number`."""
        return (folder or self.exr) / f"{self.name}.{number:04d}.exr"

    @property
    def samples(self) -> Path:
        """samples/: with `reshoot synthesize --samples N`, sample K of the shot in samples/K/ (`sample`)."""
        return self.folder / "samples"

    def sample(self, k: int, folder: Path | None = None) -> tuple[Path, Path, Path]:
        """(frames/, exr/, <name>.mp4) of sample `k`: samples/K/..., or under `folder`/K where the samples are
        being written."""
        base = (folder or self.samples) / str(k)
        return base / "frames", base / "exr", base / f"{self.name}.mp4"

    @property
    def timeline(self) -> Path:
        """<name>.otio: the shot's editorial timeline (OpenTimelineIO)."""
        return self.folder / f"{self.name}.otio"

    @property
    def edl(self) -> Path:
        """<name>.edl: the timeline's generated clip as a CMX 3600 EDL."""
        return self.folder / f"{self.name}.edl"

    def camera_edl(self, camera: str) -> Path:
        """<name>.<camera>.edl: the timeline's track of one production camera as a CMX 3600 EDL."""
        return self.folder / f"{self.name}.{camera}.edl"

    @property
    def synthesis(self) -> Path:
        """synthesis.json: how the frames were made (checkpoint, revision, device)."""
        return self.folder / "synthesis.json"

    @property
    def check(self) -> Path:
        """check.json: `reshoot check`'s result."""
        return self.folder / "check.json"

    @property
    def check_images(self) -> Path:
        """check/: the check's sample images (reference, error heat maps)."""
        return self.folder / "check"

    @property
    def export(self) -> Path:
        """export/: the shot's camera for other tools (default of `reshoot export`)."""
        return self.folder / "export"

    @property
    def truth(self) -> Path:
        """truth/: the true frames of a synthetic take's ground-truth shot."""
        return self.folder / "truth"


class Workspace:
    """A take's workspace folder and where each of its artefacts lives.

    `Workspace(root)` reads nothing; `settings` reads reshoot.toml (raising `InputError` when `root` is
    not a workspace).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def settings_file(self) -> Path:
        return self.root / WORKSPACE_FILE

    @property
    def settings(self) -> WorkspaceSettings:
        return load_workspace(self.root)

    # registration
    @property
    def registration(self) -> Path:
        """registration/: the folder `reshoot register` writes whole."""
        return self.root / "registration"

    @property
    def registered(self) -> RegistrationPaths:
        return RegistrationPaths(self.registration)

    @property
    def cameras(self) -> Path:
        """registration/cameras.json: the registered production cameras."""
        return self.registered.cameras

    @property
    def survey_cameras(self) -> Path:
        return self.registered.survey_cameras

    @property
    def points(self) -> Path:
        """registration/points.ply: the sparse points, world frame."""
        return self.registered.points

    @property
    def registration_report(self) -> Path:
        return self.registered.report

    # reconstruction
    @property
    def splats(self) -> Path:
        """splats/: the folder `reshoot reconstruct` writes whole."""
        return self.root / "splats"

    @property
    def splats_work(self) -> Path:
        """splats.work/: the reconstruction's resumable work in progress."""
        return self.root / "splats.work"

    @property
    def reconstructed(self) -> SplatsPaths:
        return SplatsPaths(self.splats)

    @property
    def set_splats(self) -> Path:
        """splats/background.ply: the static set."""
        return self.reconstructed.set

    @property
    def actor_splats(self) -> Path:
        """splats/actors/: the actors, one NNNNNN.ply per take frame."""
        return self.reconstructed.actors

    @property
    def reconstruction(self) -> Path:
        """splats/reconstruction.json: what was fitted, with which settings."""
        return self.reconstructed.reconstruction

    # layout
    @property
    def layout(self) -> Path:
        """layout.json: characters and props per frame (entity names may be edited by hand)."""
        return self.root / "layout.json"

    @property
    def layout_plan(self) -> Path:
        return self.root / "layout_plan.png"

    # shots
    @property
    def shots(self) -> Path:
        return self.root / "shots"

    def shot(self, name: str) -> ShotPaths:
        """The artefacts of shot `name` (the name is not checked here; `reshoot.shots.shot_folder` does)."""
        return ShotPaths(name, self.shots / name)

    def shot_names(self) -> list[str]:
        """The shots that have a shot.json, by name."""
        if not self.shots.is_dir():
            return []
        return sorted(
            p.name for p in self.shots.iterdir() if not p.name.startswith(".") and self.shot(p.name).spec.is_file()
        )

    # report, model, exports
    @property
    def report_page(self) -> Path:
        """report/index.html: the continuity report."""
        return self.root / "report" / "index.html"

    @property
    def export(self) -> Path:
        """export/: the registered cameras for other tools (default of `reshoot export WS`)."""
        return self.root / "export"

    @property
    def model(self) -> Path:
        """model/: checkpoints adapted to this take."""
        return self.root / "model"

    # bookkeeping
    @property
    def meta(self) -> Path:
        """.reshoot/: stage manifests, the digest cache and the lock."""
        return self.root / META_FOLDER

    def manifest(self, stage: str) -> Path:
        """.reshoot/manifests/<stage>.json (stage keys such as "check@overhead" are checked by the runner)."""
        return self.meta / "manifests" / f"{stage}.json"

    @property
    def lock(self) -> Path:
        return self.meta / "lock"
