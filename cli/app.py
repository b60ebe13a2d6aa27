"""The `reshoot` command line: thin, it parses, calls the pipeline (`reshoot`), and prints.

Heavy imports (torch, open3d, pycolmap) happen inside commands, so `reshoot --help` answers at once.
A `ReshootError` is printed as a message for a person, without a traceback. Exit codes: 0 ok, 1 a check
failed, 2 bad input (or the workspace is busy), 3 partial (some cameras not registered), 130 interrupted
(Ctrl-C or SIGTERM). Every command that writes a workspace holds its lock (`--wait SECONDS` to wait for
another writer) and runs its stage through the stage runner, which records a manifest (reshoot/stage.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reshoot import ReshootError, __version__
from reshoot.cli.jobs import batch, bench_app
from reshoot.cli.options import stage_flags
from reshoot.stage_options import LayoutOptions, ReconstructOptions, RegistrationOptions
from reshoot.workspace import Workspace, load_workspace

app = typer.Typer(
    name="reshoot",
    help="Multi-view scene reasoning and reshoots: from set footage to the shot nobody filmed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
_wait_seconds = 0.0  # --wait: how long a command waits for another writer of its workspace


def _version(value: bool) -> None:
    if value:
        print(f"reshoot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log details."),
    wait: float = typer.Option(
        0.0,
        "--wait",
        help="Seconds to wait when another reshoot is writing the same workspace (default: refuse at once).",
    ),
) -> None:
    global _wait_seconds
    _wait_seconds = wait
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )


@contextmanager
def _progress() -> Iterator:
    """A rich progress display and the `progress(what, done, total)` callback the library calls."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(what: str, done: int, total: int, **info: float) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            shown = " ".join(f"{key} {value:.4g}" for key, value in info.items())
            bar.update(tasks[what], completed=done, total=total, description=f"{what} {shown}".strip())

        yield update


@contextmanager
def _writing(workspace: Path, command: str, settings_must_read: bool = True) -> Iterator[Workspace]:
    """Hold the workspace's lock while a command writes it."""
    from reshoot.stage import workspace_lock

    ws = Workspace(workspace)
    if settings_must_read:
        load_workspace(ws.root)  # a clear error when this is not a workspace (before the lock creates .reshoot/)
    with workspace_lock(ws, _wait_seconds, f"reshoot {command}"):
        yield ws


def _run_stage(ws: Workspace, name: str, shot: str | None, options, progress=None):
    """Run one stage through the runner (which writes its manifest)."""
    from reshoot.pipeline import stages
    from reshoot.stage import run_stage

    return run_stage(ws, stages()[name], shot, options, progress)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not WIDTHxHEIGHT, e.g. 640x360") from None
    return width, height


def _parse_rates(text: str) -> tuple[float, dict[str, float]]:
    """`24` or `24,b_medium=25,c_medium=30`: the rate of the cameras not named, and the named ones'."""
    default, named = 24.0, {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, sep, value = (part.strip() for part in item.partition("="))
        try:
            rate = float(value if sep else name)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not a rate or CAMERA=RATE, e.g. 24 or b_medium=30") from None
        if sep:
            named[name] = rate
        else:
            default = rate
    return default, named


def _parse_offsets(items: list[str]) -> dict[str, int]:
    offsets = {}
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        try:
            offsets[name] = int(value)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not CAMERA=FRAMES, e.g. b_medium=3") from None
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} is not CAMERA=FRAMES, e.g. b_medium=3")
    return offsets


@app.command()
def init(
    workspace: Path = typer.Argument(..., help="The workspace folder to create (one per take)."),
    footage: Path = typer.Option(..., "--footage", help="Folder of per-camera videos or image-sequence folders."),
    calibration: Path | None = typer.Option(
        None,
        "--calibration",
        help="Known calibration: reshoot cameras.json, caliscope or Pose2Sim TOML, Qualisys .qca, OpenCV "
        "FileStorage .yml/.xml, a COLMAP model folder or nerfstudio transforms.json.",
    ),
    calibration_units: str = typer.Option(
        "auto",
        "--calibration-units",
        help="Length unit of the calibration's translations: m, cm, mm, or auto (told from how far apart its "
        "cameras stand; a unit other than metres is warned about).",
    ),
    sensitive: bool = typer.Option(False, "--sensitive", help="Mark the footage as never to be used for training."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate of image-sequence footage (videos carry theirs)."),
    offset: list[str] = typer.Option(
        [], "--offset", help="Per-camera frame offset CAMERA=FRAMES (repeatable); wins over --sync."
    ),
    sync: str = typer.Option(
        "auto",
        "--sync",
        help="How to put the cameras on one clock: timecode, audio (the sound they recorded), motion (of the "
        "moving foreground), none, or auto (timecode if every camera has it, else sound, else none when all "
        "have one length, else motion).",
    ),
    force: bool = typer.Option(False, "--force", help="Rewrite the settings of an existing workspace."),
    survey: Path | None = typer.Option(
        None, "--survey", help="Photos (folder) or a video of a walk around the empty set; helps registration."
    ),
    plates: Path | None = typer.Option(
        None,
        "--plates",
        help="Clean plates: per camera a video or image folder of the empty set, named after the "
        "camera (else each camera's temporal median over the take, which keeps whoever stands still).",
    ),
    set_option: list[str] = typer.Option(
        [],
        "--set",
        help="A setting of `reshoot run`'s stages, STAGE.FIELD=VALUE "
        "(repeat), kept in reshoot.toml, e.g. register.camera_height=1.6.",
    ),
    timecode: str | None = typer.Option(
        None,
        "--timecode",
        help="Timecode HH:MM:SS:FF of the take's first frame (default: read from the videos' start timecodes).",
    ),
    working_space: str | None = typer.Option(
        None,
        "--working-space",
        help="The deliverables' scene-linear colour space (OCIO name): 'Linear Rec.709 (sRGB)' (default) or 'ACEScg'.",
    ),
    footage_space: str | None = typer.Option(
        None,
        "--footage-space",
        help="The footage's colour encoding (OCIO name; default 'sRGB Encoded Rec.709 (sRGB)').",
    ),
    ocio_config: str | None = typer.Option(
        None, "--ocio-config", help="An OCIO config file (default: OCIO's built-in 'ocio://cg-config-latest')."
    ),
    deliverable_start: int | None = typer.Option(
        None,
        "--deliverable-start",
        help="Frame number of a shot's first frame in its EXRs and timeline (default 1001).",
    ),
    camera_space: list[str] = typer.Option(
        [],
        "--camera-space",
        help="A camera that recorded in another colour encoding than --footage-space, CAMERA=SPACE (OCIO name; "
        "repeat): its frames are decoded into the footage space as they are read.",
    ),
) -> None:
    """Create a workspace for a take: check the footage, sync its cameras and write WORKSPACE/reshoot.toml."""
    from reshoot.workspace import WORKSPACE_FILE, init_workspace, parse_stage_settings

    stages = parse_stage_settings(set_option)
    if stages:
        from reshoot.pipeline import check_stage_settings

        check_stage_settings(stages)
    arguments = dict(
        calibration=calibration, sensitive=sensitive, fps=fps, offsets=_parse_offsets(offset), force=force,
        survey=survey, plates=plates, stages=stages, sync=sync, calibration_units=calibration_units,
        timecode=timecode, deliverable_start=deliverable_start,
        colour={k: v for k, v in (("config", ocio_config), ("working_space", working_space),
                                  ("footage_space", footage_space), ("cameras", _parse_camera_spaces(camera_space)))
                if v},
    )  # fmt: skip
    if (workspace / WORKSPACE_FILE).is_file():
        with _writing(workspace, "init", settings_must_read=False):  # --force repairs a damaged reshoot.toml
            settings = init_workspace(workspace, footage, **arguments)
    else:
        settings = init_workspace(workspace, footage, **arguments)
    _print_sync(settings.sync)
    console.print(
        f"[green]workspace[/green] {workspace}/{WORKSPACE_FILE}: {len(settings.cameras)} cameras "
        f"({', '.join(settings.cameras)}), {settings.frames} frames at {settings.fps:g} fps"
        + (", [yellow]sensitive[/yellow]" if settings.sensitive else "")
    )
    print(workspace / WORKSPACE_FILE)


def _parse_camera_spaces(items: list[str]) -> dict[str, str]:
    """`CAMERA=SPACE` texts as {camera: space}."""
    spaces = {}
    for item in items:
        camera, sep, space = (part.strip() for part in item.partition("="))
        if not (sep and camera and space):
            raise typer.BadParameter(f"{item!r} is not CAMERA=SPACE, e.g. b_medium='Gamma 2.4 Encoded Rec.709'")
        spaces[camera] = space
    return spaces


def _print_sync(record: dict) -> None:
    """One line on how the cameras were put on one clock, and one per camera with its offset."""
    source = record.get("source", "none")
    line = f"[green]sync[/green] {source}"
    if source in ("audio", "motion"):
        line += (
            f", confidence {record['confidence']:.2f}, pairs' triangle closure {record['closure_frames']:.2f} frames"
        )
    if record.get("note"):
        line += f" ({record['note']})"
    console.print(line)
    if source == "none":
        return
    for name, frames in record.get("offsets_frames", {}).items():
        residual = record.get("residual_frames", {}).get(name, 0.0)
        console.print(
            f"  {name}: offset {frames:+.3f} frames ({record['offsets_ms'][name]:+.1f} ms), "
            f"sampled at {round(frames):+d} (residual {residual:+.3f})"
        )


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Folder to write the take into (must not exist, or pass --overwrite)."),
    cameras: int = typer.Option(
        4, "--cameras", help="Production cameras: wide, two mediums, reverse, then more mediums."
    ),
    frames: int = typer.Option(48, "--frames", help="Frames in the take."),
    size: str = typer.Option("640x360", "--size", help="Image size WIDTHxHEIGHT (even numbers)."),
    characters: int = typer.Option(2, "--characters", help="Walking characters (1-3)."),
    props: int = typer.Option(4, "--props", help="Props on the floor (2-6)."),
    seed: int = typer.Option(0, "--seed", help="Everything follows from it."),
    fps: str = typer.Option(
        "24",
        "--fps",
        help="Frame rate, or per camera for a rig of mixed rates: 24,b_medium=25,c_medium=30 (whole numbers; "
        "the take runs at the highest).",
    ),
    distortion: bool = typer.Option(False, "--distortion", help="Give the production lenses radial distortion."),
    offsets: str | None = typer.Option(
        None,
        "--offsets",
        help="Cameras that start rolling late (negative: early), CAM=FRAMES,... e.g. b_medium=7,c_medium=-12; "
        "every camera still covers the take, which is the frames all of them show.",
    ),
    audio: bool = typer.Option(False, "--audio", help="Record a clap (and room tone) in every camera's footage."),
    timecode: str | None = typer.Option(
        None, "--timecode", help="Start timecode HH:MM:SS:FF of take frame 0; each video carries its own."
    ),
    pace: str = typer.Option(
        "steady", "--pace", help="steady (constant-speed walks) or varied (walks that stop and start)."
    ),
    plates: bool = typer.Option(
        False, "--plates", help="Also write clean plates of the empty set (plates/), for reshoot init --plates."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing take at OUT (only once the new one is complete)."
    ),
) -> None:
    """Render a synthetic take: footage/ like a real shoot, plus ground truth in gt/."""
    from reshoot.synthetic import SynthConfig, generate_take

    width, height = _parse_size(size)
    default_rate, camera_rates = _parse_rates(fps)
    config = SynthConfig(
        cameras=cameras,
        frames=frames,
        width=width,
        height=height,
        characters=characters,
        props=props,
        seed=seed,
        fps=default_rate,
        camera_fps=camera_rates,
        distortion=distortion,
        offsets=_parse_offsets([item for item in (offsets or "").split(",") if item.strip()]),
        audio=audio,
        timecode=timecode,
        pace=pace,
        plates=plates,
    )
    with _progress() as progress:
        summary = generate_take(out, config, progress=progress, overwrite=overwrite)
    console.print(
        f"[green]take[/green] {out}: {len(summary.production_cameras)} cameras with footage "
        f"({', '.join(summary.production_cameras)}), ground truth for {', '.join(summary.ground_truth_cameras)}; "
        f"{summary.frames} frames in {summary.seconds:.1f} s"
    )
    print(out)


def _parse_scale(known_distance: str | None, camera_height: list[str]):
    from reshoot.stage_options import ScaleHint

    distance = None
    if known_distance:
        pair, sep, metres = known_distance.partition("=")
        a, colon, b = pair.partition(":")
        try:
            distance = (a, b, float(metres))
        except ValueError:
            distance = None
        if not (sep and colon and a and b and distance and distance[2] > 0):
            raise typer.BadParameter(f"{known_distance!r} is not CAMERA_A:CAMERA_B=METRES, e.g. a_wide:b_medium=2.4")
    heights = {}
    for item in camera_height:
        name, sep, metres = item.rpartition("=")
        try:
            heights[name if sep else "*"] = float(metres)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not METRES or CAMERA=METRES, e.g. 1.6 or a_wide=1.62") from None
    if distance is None and not heights:
        return None
    return ScaleHint(known_distance=distance, camera_heights=heights)


@app.command()
def run(
    workspace: Path = typer.Argument(..., help="The workspace (made by reshoot init)."),
    until: str | None = typer.Option(
        None,
        "--until",
        help="Stop after this stage: register, reconstruct, layout, shoot, condition, synthesize, check or report.",
    ),
    shot: list[str] = typer.Option(
        [],
        "--shot",
        help='A shot to make besides the existing ones: "overhead wide" '
        '(named from its words) or "NAME=DESCRIPTION" (repeat).',
    ),
    set_option: list[str] = typer.Option(
        [],
        "--set",
        help="A stage setting STAGE.FIELD=VALUE over reshoot.toml's "
        "[stages.STAGE] (repeat), e.g. reconstruct.set_iterations=800.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print what each stage did as JSON to stdout."),
) -> None:
    """Run every stage that is out of date, in order, and say which it skips and why.

    A rerun with nothing changed does no work. Exits 1 when a shot's check fails (the report is still
    written), 3 when some camera was not registered."""
    import json

    from reshoot.pipeline import run_pipeline

    def told(outcome) -> None:
        if outcome.action == "skipped":
            console.print(f"[dim]skip[/dim] {escape(outcome.key)}: {escape(outcome.reason)}")
        else:
            colour = "red" if outcome.action == "failed" else "green"
            console.print(
                f"[{colour}]{outcome.action}[/{colour}] {escape(outcome.key)} in {outcome.seconds:.1f} s "
                f"(it was {escape(outcome.reason)})"
            )

    from reshoot.check import read_check

    with _writing(workspace, "run") as ws, _progress() as progress:
        outcomes = run_pipeline(ws, shot, set_option, until, progress, told)
    partial = any(getattr(o.summary, "failed", None) for o in outcomes if o.key == "register")
    failed = [
        name
        for name in ws.shot_names()
        if ws.shot(name).check.is_file() and read_check(ws.shot(name).check).get("verdict") == "fail"
    ]
    if json_output:
        print(
            json.dumps(
                {
                    "workspace": str(workspace),
                    "stages": [
                        {"stage": o.key, "action": o.action, "reason": o.reason, "seconds": round(o.seconds, 2)}
                        for o in outcomes
                    ],
                },
                indent=2,
            )
        )
    else:
        ran = [o.key for o in outcomes if o.action != "skipped"]
        console.print(
            f"{len(ran)} stage(s) ran, {len(outcomes) - len(ran)} up to date"
            + (f"; report: {ws.report_page}" if ws.report_page.is_file() else "")
        )
    if failed:
        console.print(f"[red]the check fails[/red] shot(s) {escape(', '.join(failed))}: see the report")
        raise typer.Exit(1)
    if partial:
        raise typer.Exit(3)


@app.command()
def status(
    workspace: Path = typer.Argument(..., help="The workspace."),
    until: str | None = typer.Option(None, "--until", help="Consider the stages up to this one only."),
    shot: list[str] = typer.Option([], "--shot", help="A shot `reshoot run --shot` would add (repeat)."),
    set_option: list[str] = typer.Option([], "--set", help="A stage setting STAGE.FIELD=VALUE, as for run."),
    json_output: bool = typer.Option(False, "--json", help="Print each stage's state as JSON to stdout."),
) -> None:
    """Show each stage: done, stale (and why) or missing, for what `reshoot run` would do."""
    import json

    from rich.table import Table

    from reshoot.pipeline import pipeline_status

    states = pipeline_status(Workspace(workspace), shot, set_option, until)
    if json_output:
        print(
            json.dumps(
                {
                    "workspace": str(workspace),
                    "stages": [{"stage": s.stage, "status": s.status, "reason": s.reason} for s in states],
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"stages of {workspace}")
    for column in ("stage", "status", "why"):
        table.add_column(column)
    colours = {"done": "green", "stale": "yellow", "missing": "red"}
    for s in states:
        table.add_row(escape(s.stage), f"[{colours[s.status]}]{s.status}[/{colours[s.status]}]", escape(s.reason))
    console.print(table)


@app.command()
@stage_flags(RegistrationOptions, "calibration_mode", "samples", "instants", "max_survey_images", "seed")
def register(
    workspace: Path = typer.Argument(..., help="The workspace (made by reshoot init)."),
    survey: Path | None = typer.Option(None, "--survey", help="Survey photos or video (overrides the workspace's)."),
    no_survey: bool = typer.Option(False, "--no-survey", help="Do not use a survey, even if the workspace has one."),
    known_distance: str | None = typer.Option(
        None, "--known-distance", help="Metric scale from the distance between two camera centres: A:B=METRES."
    ),
    camera_height: list[str] = typer.Option(
        [], "--camera-height", help="Metric scale from camera heights above the floor: METRES (mean) or CAMERA=METRES."
    ),
    given: dict | None = None,
) -> None:
    """Register the cameras into one gravity-aligned world frame (floor at z = 0)."""
    from rich.table import Table

    from reshoot.pipeline import make_options

    values = {**(given or {}), "survey": survey, "no_survey": no_survey}
    options = make_options(
        RegistrationOptions, {**values, "scale": _parse_scale(known_distance, camera_height)}, "register"
    )
    with _writing(workspace, "register") as ws, _progress() as progress:
        summary = _run_stage(ws, "register", None, options, progress)
    table = Table(
        title=f"registration ({summary.mode}): {summary.points} points, up from {summary.up_source}, "
        f"scale {summary.scale_source}"
    )
    for column in ("camera", "registered", "features", "matches", "reproj. px", "why not"):
        table.add_column(column)
    for o in summary.cameras:
        error = "" if o.reprojection_error_px != o.reprojection_error_px else f"{o.reprojection_error_px:.2f}"
        table.add_row(
            o.name,
            "yes" if o.registered else "[red]no[/red]",
            str(o.keypoints),
            str(o.verified_matches),
            error,
            escape(o.reason),
        )
    console.print(table)
    print(summary.folder)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}.")
    if summary.failed:
        names = ", ".join(f"{o.name} ({o.reason}; {o.suggestion})" for o in summary.failed)
        console.print("[red]error:[/red] " + escape(f"not registered: {names}. The other cameras were written."))
        raise typer.Exit(3)


def _frame_span(frames: str | None) -> tuple | None:
    from reshoot.render import parse_frames

    return None if frames is None else parse_frames(frames)


@app.command()
@stage_flags(
    ReconstructOptions,
    "set_iterations",
    "first_actor_iterations",
    "actor_iterations",
    "refine_actor_iterations",
    "downscale",
    "voxel_size",
    "samples",
    "checkpoint_every",
    "seed",
    "backend",
)
def reconstruct(
    workspace: Path = typer.Argument(..., help="The workspace (registered)."),
    frames: str | None = typer.Option(
        None, "--frames", help="Take frames A:B (A to B-1) to fit actors for; default all."
    ),
    camera: list[str] = typer.Option([], "--camera", help="Fit only these production cameras (repeat); default all."),
    no_survey: bool = typer.Option(False, "--no-survey", help="Fit the set to the production cameras only."),
    given: dict | None = None,
) -> None:
    """Reconstruct the take as Gaussian splats: the static set on the surfaces dense stereo finds, then each
    character as one set of Gaussians that moves through the take.

    Resumes where an interrupted run with the same settings stopped (WS/splats.work/: the set).
    """
    from rich.table import Table

    from reshoot.pipeline import make_options

    values = {**(given or {}), "frames": _frame_span(frames), "cameras": tuple(camera) or None}
    options = make_options(ReconstructOptions, {**values, "use_survey": not no_survey}, "reconstruct")
    with _writing(workspace, "reconstruct") as ws, _progress() as progress:
        summary = _run_stage(ws, "reconstruct", None, options, progress)
    table = Table(
        title=f"reconstruction: {summary.set_gaussians} set Gaussians, {len(summary.frames)} frames "
        f"in {summary.seconds:.0f} s" + (f" (resumed from {summary.resumed_from})" if summary.resumed_from else "")
    )
    for column in ("camera", "set PSNR dB (plate)", "set + actors PSNR dB (frames, mean)"):
        table.add_column(column)
    for name, value in summary.set_psnr.items():
        table.add_row(name, f"{value:.2f}", f"{summary.actor_psnr[name]:.2f}")
    console.print(table)
    actors = (
        f"{summary.characters} character(s) followed through the take"
        if summary.characters
        else "no character tracked: each frame's visual hull fitted on its own"
    )
    console.print(f"{actors}; pruned: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.pruned.items()))
    for name, where in summary.plates["lingering"].items():
        if where["share"] > 0.01:
            console.print(
                f"[yellow]warning:[/yellow] camera {name}: something moving stayed a while in "
                f"{where['share']:.0%} of its picture (box {where['box']} at the fitting size); whatever "
                "stood there for more than half the take is in its clean plate, as set. Shoot clean "
                "plates and give them to `reshoot init --plates`."
            )
    print(summary.out)


@app.command()
def render(
    workspace: Path = typer.Argument(..., help="The workspace (reconstructed)."),
    cameras: Path = typer.Option(
        ..., "--cameras", help="Cameras to render into (reshoot/cameras JSON, world frame of the registration)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder: OUT/<camera>/NNNNNN.png, depth/, alpha/."),
    frames: str | None = typer.Option(None, "--frames", help="Take frames A:B (A to B-1); default every frame."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace camera folders that already exist in OUT."),
    backend: str = typer.Option("auto", "--backend", help="Rasterizer: auto, cpu, reference, gsplat."),
    calibration_frame: bool = typer.Option(
        False,
        "--calibration-frame",
        help="--cameras is a calibration file (any format init --calibration reads) in the frame and unit of "
        "the calibration the workspace was registered with, e.g. a camera of the rig held out of the take.",
    ),
) -> None:
    """Render the reconstruction (set + actors) into any cameras: colour, depth and alpha per frame."""
    from reshoot.render import render_cameras

    with _progress() as progress:
        summary = render_cameras(
            workspace, cameras, out, _frame_span(frames), overwrite, backend, progress, calibration_frame
        )
    for name, rendered in summary.frames.items():
        console.print(f"{name}: {len(rendered)} frames")
    print(out)


@app.command()
@stage_flags(LayoutOptions, "voxel_size", "downscale", "samples")
def layout(
    workspace: Path = typer.Argument(..., help="The workspace (registered; reconstructed for the best result)."),
    given: dict | None = None,
) -> None:
    """Find every character and prop in 3D, frame by frame: WS/layout.json and WS/layout_plan.png.

    Names given in an existing layout.json (rename "character_1" to "Maya") survive reruns.
    """
    from reshoot.pipeline import make_options

    options = make_options(LayoutOptions, given or {}, "layout")
    with _writing(workspace, "layout") as ws, _progress() as progress:
        summary = _run_stage(ws, "layout", None, options, progress)
    console.print(f"characters: {', '.join(summary.characters) or 'none'}; props: {', '.join(summary.props) or 'none'}")
    for warning in summary.warnings:
        console.print("[yellow]warning:[/yellow] " + escape(warning))
    print(summary.layout)


def _shot_report(workspace: Path, result, rendered) -> None:
    path = result.path
    console.print(
        f"shot {result.name}: revision {result.revision.revision}, frames {int(path.frames[0])} to "
        f"{int(path.frames[-1])}, {path.width}x{path.height}, focal {path.K[0, 0]:.0f} px"
        + (f"; pulled back x{path.widened_by:.2f} to keep everyone asked for in frame" if path.widened_by > 1 else "")
    )
    if rendered is not None:
        console.print(
            f"conditioning: {len(rendered.frames)} frames"
            + (
                f" ({len(rendered.without_actors)} without reconstructed actors: the set alone)"
                if rendered.without_actors
                else ""
            )
        )
    print(Workspace(workspace).shot(result.name).spec)


def _condition(ws: Workspace, name: str, render: bool, backend: str):
    """Render the conditioning when asked and the workspace is reconstructed; None otherwise."""
    from reshoot.pipeline import ConditionOptions

    if not render:
        return None
    if not ws.set_splats.is_file():
        console.print(
            "[yellow]warning:[/yellow] no reconstruction yet: conditioning not rendered "
            f"(run `reshoot reconstruct {escape(str(ws.root))}`, then `reshoot condition`)."
        )
        return None
    with _progress() as progress:
        return _run_stage(ws, "condition", name, ConditionOptions(backend=backend), progress)


@app.command()
def shoot(
    workspace: Path = typer.Argument(..., help="The workspace (registered and laid out)."),
    description: str | None = typer.Argument(
        None, help='The shot in the shot language, e.g. "overhead wide, slow push in on character_1" (docs/shots.md).'
    ),
    name: str | None = typer.Option(None, "--name", help="Name of the shot (default: from the description)."),
    cameras: Path | None = typer.Option(
        None, "--cameras", help="Explicit camera (reshoot/cameras JSON, one camera; per-frame poses are keys)."
    ),
    frames: str | None = typer.Option(None, "--frames", help="Take frames A:B (A to B-1); default the whole take."),
    size: str | None = typer.Option(None, "--size", help="Resolution WIDTHxHEIGHT; default the first camera's."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing shot of that name and its history."),
    render: bool = typer.Option(
        True, "--render/--no-render", help="Render the conditioning passes (needs the reconstruction)."
    ),
    backend: str = typer.Option("auto", "--backend", help="Rasterizer: auto, cpu, reference, gsplat."),
) -> None:
    """Design a shot (WS/shots/NAME/shot.json, a camera per frame) and render its conditioning."""
    from reshoot.pipeline import ShootOptions
    from reshoot.shot_io import shot_name_for

    if name is None and description is not None and cameras is None:
        name = shot_name_for(description)
    if name is None:
        raise typer.BadParameter(
            'describe the shot (e.g. "overhead wide"), or give explicit cameras with --cameras FILE and a --name NAME.'
        )
    options = ShootOptions(
        description,
        cameras,
        _frame_span(frames),
        _parse_size(size) if size else None,
        "replace" if overwrite else "refuse",
    )
    with _writing(workspace, "shoot") as ws:
        result = _run_stage(ws, "shoot", name, options)
        _shot_report(workspace, result, _condition(ws, result.name, render, backend))


@app.command()
def revise(
    workspace: Path = typer.Argument(..., help="The workspace."),
    shot: str = typer.Argument(..., help="The shot to change."),
    description: str = typer.Argument(..., help='What to change, e.g. "higher, and keep character_2 in frame".'),
    from_revision: int | None = typer.Option(None, "--from", help="Branch from this revision instead of the newest."),
    frames: str | None = typer.Option(None, "--frames", help="New take frames A:B."),
    size: str | None = typer.Option(None, "--size", help="New resolution WIDTHxHEIGHT."),
    render: bool = typer.Option(True, "--render/--no-render", help="Render the conditioning passes again."),
    backend: str = typer.Option("auto", "--backend", help="Rasterizer: auto, cpu, reference, gsplat."),
) -> None:
    """Change a shot relative to its current state; the revision is appended to its history.jsonl."""
    from reshoot.shots import revise as run_revise

    with _writing(workspace, "revise") as ws:
        result = run_revise(
            workspace, shot, description, from_revision, _frame_span(frames), _parse_size(size) if size else None
        )
        _shot_report(workspace, result, _condition(ws, shot, render, backend))


@app.command()
def shots(workspace: Path = typer.Argument(..., help="The workspace.")) -> None:
    """List the shots of a workspace and their revisions."""
    from rich.table import Table

    from reshoot.shots import list_shots

    listing = list_shots(workspace)
    if not listing:
        console.print(f'no shots yet; make one with `reshoot shoot {escape(str(workspace))} "overhead wide"`.')
        return
    table = Table(title=f"shots of {workspace}")
    for column in ("shot", "frames", "revision", "parent", "description"):
        table.add_column(column)
    for shot in listing:
        for r in shot.history:
            current = " (current)" if r.revision == shot.revision else ""
            table.add_row(
                shot.name if r.revision == 0 else "",
                f"{shot.frames[0]}:{shot.frames[1]}" if r.revision == 0 else "",
                f"{r.revision}{current}",
                "" if r.parent is None else str(r.parent),
                escape(r.description),
            )
    console.print(table)


@app.command()
def condition(
    workspace: Path = typer.Argument(..., help="The workspace (reconstructed, laid out)."),
    shot: str = typer.Argument(..., help="The shot."),
    backend: str = typer.Option("auto", "--backend", help="Rasterizer: auto, cpu, reference, gsplat."),
    ranges: int = typer.Option(1, "--ranges", help="Split the shot's frames into N ranges, a job each."),
    executor: str = typer.Option("serial", "--executor", help="Where the ranges run: serial, or ray."),
) -> None:
    """Render a shot's conditioning passes again (rgb, depth, alpha, entity ids, preview.mp4)."""
    from reshoot.pipeline import ConditionOptions

    options = ConditionOptions(backend=backend, ranges=ranges, executor=executor)
    with _writing(workspace, "condition") as ws, _progress() as progress:
        summary = _run_stage(ws, "condition", shot, options, progress)
    console.print(f"{len(summary.frames)} frames")
    print(summary.folder)


@app.command()
def train(
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Checkpoint folder, resumed when it holds one [default: checkpoints/tiny; with --adapt WS/model/adapted].",
    ),
    size: str = typer.Option("tiny", "--size", help="Model size: tiny (CPU), small, base (GPU)."),
    steps: int | None = typer.Option(
        None, "--steps", help="Optimizer steps in total [default: 2500; with --adapt 300]."
    ),
    scenes: int = typer.Option(8, "--scenes", help="Synthetic episode scenes (reconstructed once, cached)."),
    cache: Path = typer.Option(Path(".cache/episodes"), "--cache", help="Folder of cached episode scenes."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate [default: 1.5e-3; with --adapt 2e-4]."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights and of the episode draws."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    adapt: Path | None = typer.Option(
        None,
        "--adapt",
        help="Adapt to this workspace's take instead: leave "
        "production cameras out in turn, reconstruct from the rest, learn to "
        "predict them.",
    ),
    held_out: list[str] = typer.Option(
        [],
        "--held-out",
        help="With --adapt: a camera to leave out (repeat; "
        "default: every production camera, one reconstruction each). With two or "
        "more, cross-validation over them picks how much correction to keep.",
    ),
    start_from: Path | None = typer.Option(
        None, "--from", help="With --adapt: the checkpoint to start from (default: the repository's tiny model)."
    ),
    restart: bool = typer.Option(False, "--restart", help="Start over even if OUT holds a checkpoint."),
    engine: str = typer.Option(
        "unified",
        "--engine",
        help="unified (reshoot's model) or diffusers: with --adapt WS --from DIR, a LoRA of that Wan2.1 VACE "
        "model learned on the take [default OUT: WS/model/diffusers_lora].",
    ),
    rank: int = typer.Option(16, "--rank", help="With --engine diffusers: the LoRA's rank."),
) -> None:
    """Train the unified video model on synthetic episodes, or adapt it (or a diffusers model) to one take."""
    from reshoot.model_training import AdaptOptions, SyntheticOptions, adapt_model, train_synthetic

    given = {k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None}
    if adapt is None and (start_from is not None or held_out):
        raise typer.BadParameter("--from and --held-out go with --adapt WS (synthetic training starts from scratch).")
    if engine == "diffusers":
        if adapt is None or start_from is None:
            raise typer.BadParameter("--engine diffusers trains a LoRA on one take: give --adapt WS and --from DIR.")
        from reshoot.engines.diffusers_adapt import LoraOptions, adapt_lora

        with _progress() as progress:
            lora = adapt_lora(
                adapt,
                LoraOptions(
                    weights=start_from,
                    out=out,
                    held_out=tuple(held_out),
                    rank=rank,
                    seed=seed,
                    device=device,
                    **given,
                ),
                progress,
            )
        console.print(f"steps {lora.steps}; loss {lora.first_loss:.4f} → {lora.last_loss:.4f} in {lora.seconds:.0f} s")
        print(lora.out)
        return
    if engine != "unified":
        raise typer.BadParameter(f"--engine {engine!r}: train unified or diffusers.")
    with _progress() as progress:
        if adapt is None:
            summary = train_synthetic(
                SyntheticOptions(
                    out=out or Path("checkpoints/tiny"),
                    size=size,
                    scenes=scenes,
                    cache=cache,
                    seed=seed,
                    device=device,
                    restart=restart,
                    **given,
                ),
                progress,
            )
        else:
            summary = adapt_model(
                adapt,
                AdaptOptions(
                    out=out,
                    held_out=tuple(held_out),
                    start_from=start_from,
                    seed=seed,
                    device=device,
                    restart=restart,
                    **given,
                ),
                progress,
            )
    console.print(
        f"steps {summary.steps} (resumed at {summary.resumed_from}); loss {summary.first_loss:.4f} → "
        f"{summary.last_loss:.4f} in {summary.seconds:.0f} s"
    )
    if adapt is not None:
        from reshoot.model_training import adaptation_validation

        validation = adaptation_validation(summary.out)
        if validation:
            scale = validation["correction_scale"]
            gain = validation["worst_gain_db"][str(scale)]
            console.print(
                f"correction scale {scale} kept: worst gain over the render {gain:+.2f} dB on cameras "
                f"left out of training ({', '.join(validation['psnr_by_camera'])})"
            )
            if scale == 0:
                console.print(
                    "the adapted model made some left-out camera worse at every scale, so it writes the "
                    "plain render; synthesize without --checkpoint to use the pretrained model instead"
                )
    print(summary.out)


@app.command()
def synthesize(
    workspace: Path = typer.Argument(..., help="The workspace."),
    shot: str = typer.Argument(..., help="The shot (with its conditioning rendered)."),
    engine: str = typer.Option(
        "unified",
        "--engine",
        help="The synthesis engine: render (the conditioning as is), unified (reshoot's model), diffusers "
        "(a pretrained Wan2.1 VACE model from --weights), or a plug-in's (entry points `reshoot.engines`).",
    ),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        "--weights",
        help="The engine's weights folder: a checkpoint for unified (default the repository's tiny model), "
        "a local diffusers model folder for diffusers. Nothing is downloaded.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the engine's random draws (same seed, same frames)."),
    steps: int | None = typer.Option(None, "--steps", help="Sampling steps of a sampling engine (its default)."),
    window: int | None = typer.Option(None, "--window", help="Frames per window of a windowed engine (its default)."),
    prompt: str | None = typer.Option(
        None, "--prompt", help="The prompt of a text engine (default: the shot's words)."
    ),
    adapter: Path | None = typer.Option(
        None, "--adapter", help="A LoRA adapter folder (`reshoot train --engine diffusers --adapt WS`)."
    ),
    memory: str = typer.Option(
        "medium", "--memory", help="high (all on the GPU), medium (model offload), low (sequential offload, tiling)."
    ),
    samples: int = typer.Option(
        1,
        "--samples",
        help="Make N samples (seeds SEED, SEED+1, ...) into shots/SHOT/samples/K/; sample 0 is the shot's until "
        "`reshoot pick WS SHOT K`. For an engine that samples (diffusers, plug-ins).",
    ),
    keep_filmed: bool = typer.Option(
        True,
        "--keep-filmed/--no-keep-filmed",
        help="Keep the render where a production camera filmed the surface and agrees with it.",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    ranges: int = typer.Option(
        1, "--ranges", help="Split a windowed engine's shot into N frame ranges, a job each (unified)."
    ),
    executor: str = typer.Option("serial", "--executor", help="Where the ranges run: serial, or ray."),
) -> None:
    """Make a shot's frames with a synthesis engine: shots/SHOT/frames/, SHOT.mp4 and the EXR deliverable."""
    from reshoot.pipeline import SynthesizeOptions

    options = SynthesizeOptions(
        checkpoint=checkpoint,
        engine=engine,
        seed=seed,
        steps=steps,
        window=window,
        prompt=prompt,
        adapter=adapter,
        keep_filmed=keep_filmed,
        samples=samples,
        memory=memory,
        device=device,
        ranges=ranges,
        executor=executor,
    )
    with _writing(workspace, "synthesize") as ws, _progress() as progress:
        summary = _run_stage(ws, "synthesize", shot, options, progress)
    console.print(f"{len(summary.frames)} frames by {summary.engine}, {summary.seconds_per_frame:.2f} s per frame")
    print(summary.video)


@app.command()
def pick(
    workspace: Path = typer.Argument(..., help="The workspace."),
    shot: str = typer.Argument(..., help="The shot (synthesized with --samples N)."),
    sample: int = typer.Argument(..., help="The sample to keep, 0 to N-1."),
) -> None:
    """Make sample K of a shot its frames, EXR deliverable and video (the samples stay; pick again any time)."""
    from reshoot.pipeline import stages
    from reshoot.stage import refresh_outputs
    from reshoot.synthesis import pick_sample

    with _writing(workspace, "pick") as ws:
        record = pick_sample(ws.root, shot, sample)
        refresh_outputs(ws, stages()["synthesize"], shot)
    share = sum(record["generated_share"]) / max(len(record["generated_share"]), 1)
    console.print(
        f"sample {sample} (seed {record['samples']['seeds'][sample]}) is shot {shot}'s: {share:.0%} generated"
    )
    print(Workspace(workspace).shot(shot).video)


@app.command()
def check(
    workspace: Path = typer.Argument(..., help="The workspace."),
    shot: str = typer.Argument(..., help="The shot (with its frames made by `reshoot synthesize`)."),
    json_output: bool = typer.Option(False, "--json", help="Print check.json to stdout instead of a summary."),
    threshold: list[str] = typer.Option(
        [], "--threshold", help="Override a threshold, NAME=VALUE (repeat); names and defaults in docs/checks.md."
    ),
    truth: Path | None = typer.Option(
        None,
        "--truth",
        help="Folder of the shot's true frames (NNNNNN.png, optional entity/NNNNNN.png) for ground-truth scores.",
    ),
    frames: str | None = typer.Option(None, "--frames", help="Check take frames A:B only (B exclusive)."),
    backend: str = typer.Option("auto", "--backend", help="Rasterizer for the geometry: auto, cpu, reference, gsplat."),
) -> None:
    """Check a shot's frames against the footage and the layout; write shots/SHOT/check.json.

    Exits 1 when the shot fails (so farm jobs and scripts can stop on it), 0 on pass or warn."""
    from reshoot.check import CheckThresholds, check_verdict_exit_code
    from reshoot.pipeline import CheckOptions

    CheckThresholds().with_overrides(threshold)  # bad thresholds are refused before the lock is taken
    options = CheckOptions(tuple(threshold), truth, _frame_span(frames), backend)
    with _writing(workspace, "check") as ws, _progress() as progress:
        summary = _run_stage(ws, "check", shot, options, progress)
    if json_output:
        print(summary.path.read_text())  # check.json as written, with its format and version
    else:
        colour = {"pass": "green", "warn": "yellow", "fail": "red"}[summary.verdict]
        console.print(f"shot {escape(shot)}: [{colour}]{summary.verdict}[/{colour}]")
        for problem in summary.problems:
            console.print("  " + escape(problem))
        print(summary.path)
    raise typer.Exit(check_verdict_exit_code(summary.verdict))


@app.command()
def report(
    workspace: Path = typer.Argument(..., help="The workspace."),
    out: Path | None = typer.Option(None, "--out", help="The HTML file; default WS/report/index.html."),
) -> None:
    """Write the continuity report: one self-contained HTML page (plan, errors over time, side by side, verdicts)."""
    from reshoot.pipeline import ReportOptions
    from reshoot.report import write_report

    with _writing(workspace, "report") as ws, _progress() as progress:
        # the page at its default place is the report stage's output; elsewhere it is a copy
        summary = (
            _run_stage(ws, "report", None, ReportOptions(), progress)
            if out is None
            else write_report(workspace, out, progress)
        )
    if summary.unchecked:
        console.print(f"[yellow]not checked yet:[/yellow] {escape(', '.join(summary.unchecked))}")
    print(summary.path)


@app.command()
def view(
    workspace: Path = typer.Argument(..., help="The workspace."),
    shot: str | None = typer.Option(None, "--shot", help="Also show this shot's camera path and camera."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", help="Port to serve on (the next free one if taken)."),
) -> None:
    """Serve an interactive 3D review in the browser: splats, cameras, layout boxes and tracks, a frame slider."""
    from reshoot.viewer import serve

    def ready(url: str) -> None:
        console.print(f"[green]viewer[/green] {url} (Ctrl-C to stop)")

    try:
        serve(workspace, shot, host, port, ready)
    except KeyboardInterrupt:
        console.print("viewer stopped")


@app.command()
def export(
    workspace: Path = typer.Argument(..., help="The workspace."),
    shot: str | None = typer.Argument(None, help="The shot; without it, the registered cameras."),
    format: list[str] = typer.Option(
        [], "--format", help="json, chan, colmap, nerfstudio, stmap, usd (repeat); default all."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder; default WS/shots/SHOT/export or WS/export."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output folder if it exists."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Write a .chan even for a camera with an off-centre principal point or non-square pixels (it drops them).",
    ),
) -> None:
    """Export a shot's camera (or the registered cameras) for Nuke, USD, COLMAP, nerfstudio and JSON."""
    from reshoot.export import FORMATS, export_cameras

    with _writing(workspace, "export"):
        summary = export_cameras(workspace, shot, tuple(format) or FORMATS, out, overwrite, force)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for path in summary.files:
        console.print(str(path))
    print(summary.folder)


INTERRUPTED = (
    "[red]interrupted[/red]: what was being written was left as it was before (or resumable, as "
    "`reshoot reconstruct` is); run the command again to finish."
)


_signals: list[int] = []  # the interrupts this process received


def _interrupted(signum, frame) -> None:
    """Ctrl-C and SIGTERM interrupt alike: stages clean their temporary files up on the way out."""
    _signals.append(signum)
    raise KeyboardInterrupt


def _interrupt_again(unraisable) -> None:
    """`sys.unraisablehook`: an interrupt raised where Python cannot raise (an at-fork callback of logging,
    a finalizer) would be printed with a traceback and lost; it is signalled again, to land in the next
    line of ordinary code."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # from another thread, a moment later: signalled from here, it would raise in this hook again
        again = threading.Timer(0.05, os.kill, (os.getpid(), _signals[-1] if _signals else signal.SIGINT))
        again.daemon = True
        again.start()
        return
    sys.__unraisablehook__(unraisable)


@app.command()
def rate(
    workspace: Path = typer.Argument(..., help="The workspace."),
    shot: str = typer.Argument(..., help="The shot."),
    verdict: str = typer.Argument(..., help="good or bad."),
    frames: str | None = typer.Option(None, "--frames", help="Take frames A:B the verdict is about; default all."),
    entity: str | None = typer.Option(None, "--entity", help="The character or prop it is about (layout name)."),
    note: str | None = typer.Option(None, "--note", help="What was wrong or right, in words."),
) -> None:
    """Record a crew's verdict on a shot (its current revision) for training: WS/.reshoot/feedback.sqlite."""
    from reshoot.feedback import rate_shot

    with _writing(workspace, "rate"):
        rating = rate_shot(workspace, shot, verdict, _frame_span(frames), entity, note)
    console.print(
        f"shot {escape(shot)} revision {rating.revision}: {rating.verdict} for frames "
        f"{rating.frames[0]}:{rating.frames[1]}" + (f" ({escape(entity)})" if entity else "")
    )


feedback_app = typer.Typer(help="Crews' verdicts and revisions, kept for training.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")
app.add_typer(bench_app, name="bench")
app.command()(batch)


@feedback_app.command("export")
def feedback_export(
    workspace: Path = typer.Argument(..., help="The workspace."),
    out: Path = typer.Option(..., "--out", help="The JSON-lines file to write."),
) -> None:
    """Write every verdict and revision as JSON lines (a sensitive workspace: interaction traces only)."""
    from reshoot.feedback import export_feedback

    summary = export_feedback(workspace, out)
    console.print(
        f"{summary.events} event(s)"
        + (" (sensitive workspace: traces only, no pixels, paths or geometry)" if summary.traces_only else "")
    )
    print(summary.path)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `reshoot` executable; `argv` defaults to the process arguments.

    Exits with 0 on success, 1 when a check fails, 2 on a `ReshootError` or bad usage (message printed,
    no traceback), 3 on a partial result, 130 when interrupted (Ctrl-C or SIGTERM).
    """
    previous = {s: signal.signal(s, _interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    previous_hook, sys.unraisablehook = sys.unraisablehook, _interrupt_again
    try:
        code = app(args=argv, prog_name="reshoot", standalone_mode=False)
        if _signals:  # typer returns 130 for an interrupt
            console.print(INTERRUPTED)
            code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        console.print("[red]aborted[/red]")
        code = 130
    except typer.exceptions.TyperException as exc:  # bad usage: typer's (vendored) click errors
        exc.show()
        code = getattr(exc, "exit_code", 2)
    except ReshootError as exc:
        console.print("[red]error:[/red] " + escape(str(exc)), highlight=False)
        code = 2
    except OSError as exc:  # the file system said no: permissions, a full disk, a folder that vanished
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(
            "[red]error:[/red] "
            + escape(
                f"{where}{exc.strerror or exc}. Check that the path exists "
                "and that you may write there, or choose another."
            ),
            highlight=False,
        )
        code = 2
    except KeyboardInterrupt:
        console.print(INTERRUPTED)
        code = 130
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        sys.unraisablehook = previous_hook
    sys.exit(code or 0)
