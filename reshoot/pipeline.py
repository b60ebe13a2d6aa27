"""The pipeline: every stage of a take as a `Stage` (reshoot/stage.py), in order, and `run_pipeline` /
`pipeline_status`, which run what is out of date and say what is not.

```
register → reconstruct → layout → per shot: shoot → condition → synthesize → check → report
```
Each stage's options are its own frozen dataclass (`RegistrationOptions`, `ReconstructOptions`,
`LayoutOptions`, and below `ShootOptions`, `ConditionOptions`, `SynthesizeOptions`, `CheckOptions`,
`ReportOptions`). `reshoot run` takes them from the workspace's `reshoot.toml` (written by `reshoot init --set`):
```toml
[stages.register]
camera_height = 1.6          # or known_distance = "a_wide:b_medium=2.4"
[stages.reconstruct]
set_iterations = 800
```
and from `--set STAGE.FIELD=VALUE` (this run only), over the defaults. Shots are the workspace's existing shots (with
the options of their last run) and those asked for with `--shot`.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reshoot.editorial import edl_supported
from reshoot.geometry.errors import InputError
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.scale_hint import ScaleHint
from reshoot.stage import DigestCache, Stage, StageState, read_manifest, run_stage, stage_state, value_digest
from reshoot.stage_options import DEFAULT_CHECKPOINT, LayoutOptions, ReconstructOptions, RegistrationOptions
from reshoot.workspace import ShotPaths, Workspace, parse_stage_settings

log = logging.getLogger(__name__)

NOT_RESULT = {"affects_output": False}  # field metadata: recorded, never makes a stage stale


@dataclass(frozen=True)
class ShootOptions:
    """Settings of designing a shot (`reshoot shoot`).

    Attributes:
        description: the shot in the shot language (docs/shots.md), or None with `cameras`.
        cameras: explicit cameras (reshoot/cameras, one camera; per-frame poses are keys).
        frames: (A, B) take frames A to B - 1; None = the whole take.
        size: (width, height); None = the first camera's.
        existing: what to do when the shot exists: "refuse", "replace" (a new shot and history) or
            "redesign" (its current revision again against the current layout; history kept).
    """

    description: str | None = None
    cameras: Path | None = None
    frames: tuple[int, int] | None = None
    size: tuple[int, int] | None = None
    existing: str = field(default="refuse", metadata=NOT_RESULT)


@dataclass(frozen=True)
class ConditionOptions:
    """Settings of rendering a shot's conditioning passes (`reshoot condition`): the rasterizer, and the
    frame ranges and where they run (none of them settings of the result; conditioning.render_conditioning)."""

    backend: str = field(default="auto", metadata=NOT_RESULT)
    ranges: int = field(default=1, metadata=NOT_RESULT)
    executor: str = field(default="serial", metadata=NOT_RESULT)


@dataclass(frozen=True)
class SynthesizeOptions:
    """Settings of `reshoot synthesize` (reshoot/engines/contract.py's `EngineOptions`, and the engine).

    Attributes:
        checkpoint: the engine's weights folder (`--checkpoint` / `--weights`); None = the engine's default
            (the repository's tiny model for `unified`).
        engine: the engine's name (reshoot/engines/registry.py).
        seed, steps, window, prompt, adapter: as `EngineOptions`.
        keep_filmed: keep the render where a production camera filmed the surface and agrees (engines/keep.py).
        samples: how many samples to make (seeds seed + K; `reshoot pick` chooses among them).
        memory: the memory tier (not a setting of the result: the same frames but for the low tier's tiled VAE
            decoding, under one 8-bit code value apart on average in the tests).
        device: where the engine runs.
        ranges, executor: frame ranges of a windowed engine and where they run (not settings of the result:
            the same frames serially and on Ray, and to within float rounding of one range; docs/engines.md).
    """

    checkpoint: Path | None = None
    engine: str = "unified"
    seed: int = 0
    steps: int | None = None
    window: int | None = None
    prompt: str | None = None
    adapter: Path | None = None
    keep_filmed: bool = True
    samples: int = 1
    memory: str = field(default="medium", metadata=NOT_RESULT)
    device: str = field(default="auto", metadata=NOT_RESULT)
    ranges: int = field(default=1, metadata=NOT_RESULT)
    executor: str = field(default="serial", metadata=NOT_RESULT)

    def engine_options(self):
        """The engine's `EngineOptions`."""
        from reshoot.engines import EngineOptions

        return EngineOptions(
            weights=self.checkpoint,
            device=self.device,
            seed=self.seed,
            memory=self.memory,
            steps=self.steps,
            window=self.window,
            prompt=self.prompt,
            adapter=self.adapter,
            ranges=self.ranges,
            executor=self.executor,
        )


@dataclass(frozen=True)
class CheckOptions:
    """Settings of `reshoot check`: threshold overrides NAME=VALUE, a folder of true frames, take frames."""

    thresholds: tuple[str, ...] = ()
    truth: Path | None = None
    frames: tuple[int, int] | None = None
    backend: str = field(default="auto", metadata=NOT_RESULT)


@dataclass(frozen=True)
class ReportOptions:
    """Settings of `reshoot report` (the page is WS/report/index.html)."""


# ---------------------------------------------------------------------------------------------- stages


def _shot(ws: Workspace, shot: str | None) -> ShotPaths:
    """The paths of a shot stage's shot (shot stages always run for a shot)."""
    assert shot is not None, "a shot's stage runs for a shot"
    return ws.shot(shot)


def _hand_off_settings(ws: Workspace) -> str:
    """The digest of the settings only the hand-off reads (colour management, timecode, deliverable
    numbering): changing them makes conditioning and synthesis stale, not the stages before."""
    settings = ws.settings
    return value_digest(
        {"colour": settings.colour, "timecode": settings.timecode, "deliverable_start": settings.deliverable_start}
    )


def _settings_inputs(ws: Workspace) -> dict[str, Path | str | None]:
    """What every stage reads of the workspace: the footage, calibration, survey and plates (their bytes),
    and the take's settings in reshoot.toml. Its [stages] tables are left out: a stage's own settings are
    its options, compared one by one, so `--set layout.voxel_size=…` does not make registration stale."""
    settings = ws.settings
    take = {
        "fps": settings.fps,
        "frames": settings.frames,
        "first_frame": settings.first_frame,
        "cameras": settings.cameras,
        "offsets": settings.offsets,
        "sensitive": settings.sensitive,
        "scale": settings.scale,
    }
    if settings.calibration is not None:  # without one, the digest of a workspace made before units stays
        take["calibration_units"] = settings.calibration_units
    if settings.colour.get("cameras"):  # cameras decoded from their own colour space: every stage's pixels
        take["camera_spaces"] = settings.colour["cameras"]
    return {
        "settings": value_digest(take),
        "footage": settings.footage,
        "calibration": settings.calibration,
        "survey": settings.survey,
        "plates": settings.plates,
    }


def _run_register(ws: Workspace, shot, options, progress):
    from reshoot.registration import register

    return register(ws.root, options, progress)


def _run_reconstruct(ws: Workspace, shot, options, progress):
    from reshoot.reconstruct import reconstruct

    return reconstruct(ws.root, options, progress)


def _run_layout(ws: Workspace, shot, options, progress):
    from reshoot.layout import layout

    return layout(ws.root, options, progress)


def _run_shoot(ws: Workspace, shot: str | None, options: ShootOptions, progress):
    from reshoot.shots import redesign, shoot

    name = _shot(ws, shot).name
    if options.existing == "redesign" and ws.shot(name).spec.is_file():
        return redesign(ws.root, name)
    return shoot(
        ws.root,
        options.description,
        name,
        options.cameras,
        options.frames,
        options.size,
        overwrite=options.existing == "replace",
    )


def _run_condition(ws: Workspace, shot: str | None, options: ConditionOptions, progress):
    from reshoot.conditioning import render_conditioning

    return render_conditioning(
        ws.root, _shot(ws, shot).name, options.backend, progress, options.ranges, options.executor
    )


def _run_synthesize(ws: Workspace, shot: str | None, options: SynthesizeOptions, progress):
    from reshoot.synthesis import synthesize

    return synthesize(
        ws.root,
        _shot(ws, shot).name,
        options.engine,
        options.engine_options(),
        options.keep_filmed,
        progress,
        options.samples,
    )


def _run_check(ws: Workspace, shot: str | None, options: CheckOptions, progress):
    from reshoot.check import CheckThresholds, check_shot

    limits = CheckThresholds().with_overrides(list(options.thresholds))
    return check_shot(ws.root, _shot(ws, shot).name, limits, options.truth, options.frames, options.backend, progress)


def _run_report(ws: Workspace, shot, options: ReportOptions, progress):
    from reshoot.report import write_report

    return write_report(ws.root, None, progress)


def _checkpoint(options: SynthesizeOptions) -> Path | None:
    """The weights the engine reads: the `unified` engine's default is the repository's tiny model."""
    if options.checkpoint is not None:
        return Path(options.checkpoint)
    return DEFAULT_CHECKPOINT if options.engine == "unified" else None


def stages() -> dict[str, Stage]:
    """Every stage of the pipeline by name, in order."""
    table = [
        Stage(
            "register",
            False,
            RegistrationOptions,
            lambda ws, s, o: _settings_inputs(ws),
            lambda ws, s: {"registration": ws.registration},
            _run_register,
            modules=("reshoot.registration",),
        ),
        Stage(
            "reconstruct",
            False,
            ReconstructOptions,
            lambda ws, s, o: {**_settings_inputs(ws), "registration": ws.registration},
            lambda ws, s: {"splats": ws.splats},
            _run_reconstruct,
            modules=("reshoot.reconstruct",),
        ),
        Stage(
            "layout",
            False,
            LayoutOptions,
            lambda ws, s, o: {**_settings_inputs(ws), "registration": ws.registration, "splats": ws.splats},
            lambda ws, s: {"layout": ws.layout, "plan": ws.layout_plan},
            _run_layout,
            modules=("reshoot.layout",),
            editable=("layout",),
        ),
        Stage(
            "shoot",
            True,
            ShootOptions,
            lambda ws, s, o: {"cameras": ws.cameras, "layout": ws.layout, "keyframes": o.cameras},
            lambda ws, s: {"shot": _shot(ws, s).spec, "history": _shot(ws, s).history},
            _run_shoot,
            modules=("reshoot.shots",),
            editable=("shot", "history"),
        ),  # `reshoot revise` changes them
        Stage(
            "condition",
            True,
            ConditionOptions,
            lambda ws, s, o: {
                "splats": ws.splats,
                "layout": ws.layout,
                "shot": _shot(ws, s).spec,
                "cameras": ws.cameras,  # the production cameras: what they filmed
                "hand_off": _hand_off_settings(ws),
            },
            lambda ws, s: {"conditioning": _shot(ws, s).conditioning},
            _run_condition,
            modules=("reshoot.conditioning",),
        ),
        Stage(
            "synthesize",
            True,
            SynthesizeOptions,
            lambda ws, s, o: {
                "conditioning": _shot(ws, s).conditioning,
                "shot": _shot(ws, s).spec,
                "cameras": ws.cameras,
                "checkpoint": _checkpoint(o),
                "adapter": o.adapter,
                "hand_off": _hand_off_settings(ws),
                **_settings_inputs(ws),
            },
            lambda ws, s: {
                "frames": _shot(ws, s).frames,
                "video": _shot(ws, s).video,
                "exr": _shot(ws, s).exr,
                "timeline": _shot(ws, s).timeline,
                **({"edl": _shot(ws, s).edl} if edl_supported(ws.settings.fps) else {}),
                "synthesis": _shot(ws, s).synthesis,
            },
            _run_synthesize,
            modules=("reshoot.synthesis",),
        ),
        Stage(
            "check",
            True,
            CheckOptions,
            lambda ws, s, o: {
                "frames": _shot(ws, s).frames,
                "shot": _shot(ws, s).spec,
                "layout": ws.layout,
                "splats": ws.splats,
                "cameras": ws.cameras,
                "truth": o.truth,
                **_settings_inputs(ws),
            },
            lambda ws, s: {"check": _shot(ws, s).check, "images": _shot(ws, s).check_images},
            _run_check,
            modules=("reshoot.check",),
        ),
        Stage(
            "report",
            False,
            ReportOptions,
            _report_inputs,
            lambda ws, s: {"page": ws.report_page},
            _run_report,
            modules=("reshoot.report",),
        ),
    ]
    return {stage.name: stage for stage in table}


def _report_inputs(ws: Workspace, shot, options) -> dict[str, Path | str | None]:
    inputs: dict[str, Path | str | None] = {"layout": ws.layout, "cameras": ws.cameras}
    for name in ws.shot_names():
        paths = ws.shot(name)
        inputs.update({f"{name}/shot": paths.spec, f"{name}/check": paths.check, f"{name}/images": paths.check_images})
    return inputs


SHOT_STAGES = ("shoot", "condition", "synthesize", "check")
ORDER = ("register", "reconstruct", "layout", *SHOT_STAGES, "report")


# ---------------------------------------------------------------------------------------------- options


def make_options(cls: type, values: dict[str, Any], where: str) -> Any:
    """`cls` from the defaults and `values` (TOML values, or text from `--set`), each converted to the
    field's type.

    Raises:
        InputError: an unknown field or a value of the wrong kind (`where` says where it came from).
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    converted = {}
    for key, value in values.items():
        if key not in names:
            raise InputError(f"{where}: {cls.__name__} has no setting {key!r}; it has {', '.join(names) or 'none'}.")
        try:
            converted[key] = _convert(value, hints[key])
        except (TypeError, ValueError):
            raise InputError(f"{where}: {key} = {value!r} is not a {hints[key]}.") from None
    return cls(**converted)


def _convert(value: Any, hint: Any) -> Any:
    """`value` (TOML or text) as type `hint` (int, float, bool, str, Path, tuples, and None for "none")."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if type(None) in typing.get_args(hint):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
            return None
        hint = args[0] if len(args) == 1 else hint
    if isinstance(hint, type) and isinstance(value, hint) and not isinstance(value, (bool, int)):
        return value  # already made (the registration's scale hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        items = value.replace(":", ",").split(",") if isinstance(value, str) else list(value)
        kinds = typing.get_args(hint)
        kind = kinds[0]
        return tuple(_convert(item.strip() if isinstance(item, str) else item, kind) for item in items if item != "")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "on"):
            return True
        if str(value).lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError(value)
    if hint is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if hint is float:
        return float(value)
    if hint is Path:
        return Path(value)
    if hint is str:
        return str(value)
    raise TypeError(hint)


def _register_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    """reshoot.toml's register settings: `camera_height` (metres, or a table camera → metres) and
    `known_distance` ("A:B=METRES") become the registration's scale hint."""
    values = dict(values)
    height, distance = values.pop("camera_height", None), values.pop("known_distance", None)
    if height is None and distance is None:
        return values
    try:
        heights = (
            {str(k): float(v) for k, v in height.items()}
            if isinstance(height, dict)
            else ({"*": float(height)} if height is not None else {})
        )
        pair = None
        if distance is not None:
            cameras, _, metres = str(distance).partition("=")
            a, _, b = cameras.partition(":")
            pair = (a, b, float(metres))
            if not (a and b and pair[2] > 0):
                raise ValueError(distance)
    except (TypeError, ValueError):
        raise InputError(
            f"{where}: camera_height must be metres (or a table camera = metres) and known_distance "
            f'"A:B=METRES"; got {height!r} and {distance!r}.'
        ) from None
    if any(h <= 0 or h != h for h in heights.values()):
        raise InputError(f"{where}: camera heights must be positive metres, got {heights}.")
    return {**values, "scale": ScaleHint(known_distance=pair, camera_heights=heights)}


def configured_values(ws: Workspace, overrides: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Per stage name, the settings from reshoot.toml's [stages.NAME] tables and `--set NAME.FIELD=VALUE`.

    Raises:
        InputError: an unknown stage or a malformed `--set`.
    """
    values = {name: dict(v) for name, v in ws.settings.stages.items()}
    for name, given in parse_stage_settings(list(overrides)).items():
        values.setdefault(name, {}).update(given)
    unknown = sorted(set(values) - set(ORDER))
    if unknown:
        raise InputError(
            f"settings for unknown stage {unknown[0]!r} (reshoot.toml [stages] or --set); stages are "
            f"{', '.join(ORDER)}."
        )
    return values


def check_stage_settings(values: dict[str, dict[str, Any]]) -> None:
    """Refuse settings of unknown stages or fields, or of the wrong kind (before they are saved).

    Raises:
        InputError: what is wrong and which stages and fields there are.
    """
    unknown = sorted(set(values) - set(ORDER))
    if unknown:
        raise InputError(f"settings for unknown stage {unknown[0]!r}; stages are {', '.join(ORDER)}.")
    table = stages()
    for name, given in values.items():
        if name == "register":
            given = _register_values(given, "register settings")
        make_options(table[name].options, given, f"settings of stage {name}")


def stage_options(name: str, values: dict[str, dict[str, Any]]) -> Any:
    """The options `reshoot run` runs workspace-wide stage `name` with."""
    stage = stages()[name]
    given = values.get(name, {})
    if name == "register":
        given = _register_values(given, "[stages.register]")
    return make_options(stage.options, given, f"settings of stage {name}")


def shot_options(
    ws: Workspace, stage: Stage, shot: str, values: dict[str, dict[str, Any]], asked: ShootOptions | None
) -> Any:
    """The options a shot's stage runs with: those of its last run (a shot's own settings), else what
    `--shot` asked for, with reshoot.toml / `--set` over them."""
    if stage.name == "shoot" and asked is not None:
        return dataclasses.replace(asked, existing="redesign")
    manifest = read_manifest(ws, stage.key(shot))
    known = {f.name for f in dataclasses.fields(stage.options)}
    recorded = {k: v for k, v in (manifest or {}).get("all_options", {}).items() if k in known}
    options = make_options(
        stage.options, {**recorded, **values.get(stage.name, {})}, f"settings of stage {stage.name} for shot {shot}"
    )
    return dataclasses.replace(options, existing="redesign") if stage.name == "shoot" else options


# ---------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class PlannedStage:
    """A stage of a run: its key, name, shot and the options it runs with."""

    key: str
    name: str
    shot: str | None
    options: Any


def parse_shot(text: str) -> tuple[str, ShootOptions]:
    """`--shot "overhead wide"` or `--shot "top=overhead wide"`: (name, options)."""
    from reshoot.shot_io import shot_name_for

    name, sep, description = text.partition("=")
    if not sep:
        name, description = shot_name_for(text), text
    if not description.strip():
        raise InputError(
            f'--shot {text!r}: describe the shot, e.g. --shot "overhead wide" or --shot "top=overhead wide".'
        )
    return name.strip(), ShootOptions(description=description.strip())


def plan(
    ws: Workspace, shots: Iterable[str] = (), overrides: Iterable[str] = (), until: str | None = None
) -> list[PlannedStage]:
    """Every stage `reshoot run` considers, in order, with its options (stopping after `until`).

    Raises:
        InputError: an unknown stage in `until`, bad settings, a bad shot.
    """
    from reshoot.shot_io import read_history, shot_folder

    if until is not None and until not in ORDER:
        raise InputError(f"--until {until!r}: choose one of {', '.join(ORDER)}.")
    values = configured_values(ws, overrides)
    asked = dict(parse_shot(s) for s in shots)
    for name, options in asked.items():
        folder = shot_folder(ws.root, name)  # checks the name
        if ws.shot(name).history.is_file():
            first = read_history(folder)[0].description
            if first.strip() != (options.description or "").strip():
                raise InputError(
                    f"--shot {name}={options.description!r}: shot {name!r} exists, made from {first!r}. Change it "
                    f"with `reshoot revise {ws.root} {name} ...`, or give the new shot another name (NAME=...)."
                )
    table = stages()
    last = ORDER.index(until) if until is not None else len(ORDER) - 1
    wanted = [n for n in ORDER[: last + 1]]
    names = sorted(set(ws.shot_names()) | set(asked))
    planned = []
    for stage_name in ("register", "reconstruct", "layout"):
        if stage_name in wanted:
            planned.append(PlannedStage(stage_name, stage_name, None, stage_options(stage_name, values)))
    for shot in names:
        for stage_name in SHOT_STAGES:
            if stage_name in wanted:
                stage = table[stage_name]
                planned.append(
                    PlannedStage(
                        stage.key(shot), stage_name, shot, shot_options(ws, stage, shot, values, asked.get(shot))
                    )
                )
    if "report" in wanted and names:
        planned.append(PlannedStage("report", "report", None, stage_options("report", values)))
    return planned


@dataclass(frozen=True)
class StageOutcome:
    """What `run_pipeline` did with a stage: "ran", "skipped" (done) or "failed" (check verdict fail), and why."""

    key: str
    action: str
    reason: str
    seconds: float = 0.0
    summary: Any = None


def pipeline_status(
    ws: Workspace, shots: Iterable[str] = (), overrides: Iterable[str] = (), until: str | None = None
) -> list[StageState]:
    """Where every stage stands (done / stale because … / missing) for `reshoot run` with these arguments.

    A stage downstream of one that is not done counts as stale (its inputs will change) unless missing.
    """
    cache = DigestCache(ws)
    table = stages()
    states = []
    pending: list[PlannedStage] = []
    for planned in plan(ws, shots, overrides, until):
        state = stage_state(ws, table[planned.name], planned.shot, planned.options, cache)
        upstream = [p for p in pending if p.shot is None or planned.shot is None or p.shot == planned.shot]
        if state.status == "done" and upstream:
            state = StageState(state.stage, "stale", f"{upstream[-1].key} runs before it (what it reads may change)")
        if state.status != "done":
            pending.append(planned)
        states.append(state)
    cache.save()
    return states


def run_pipeline(
    ws: Workspace,
    shots: Iterable[str] = (),
    overrides: Iterable[str] = (),
    until: str | None = None,
    progress: ProgressFn | None = None,
    on_stage: Callable[[StageOutcome], None] | None = None,
) -> list[StageOutcome]:
    """Run every stage that is not done, in order (the caller holds the workspace lock).

    `on_stage` is told about each stage as it is skipped or finished. A shot's failed check does not stop
    the run (the report shows it); any other error does, leaving the stages before it done.
    """
    import time

    report = progress or no_progress
    cache = DigestCache(ws)
    table = stages()
    outcomes = []
    for planned in plan(ws, shots, overrides, until):
        stage = table[planned.name]
        state = stage_state(ws, stage, planned.shot, planned.options, cache)
        if state.status == "done":
            outcome = StageOutcome(planned.key, "skipped", "done, nothing it reads changed")
        else:
            started = time.perf_counter()
            summary = run_stage(ws, stage, planned.shot, planned.options, report, cache)
            action = "failed" if getattr(summary, "verdict", None) == "fail" else "ran"
            outcome = StageOutcome(planned.key, action, state.reason, time.perf_counter() - started, summary)
        outcomes.append(outcome)
        if on_stage is not None:
            on_stage(outcome)
    cache.save()
    return outcomes
