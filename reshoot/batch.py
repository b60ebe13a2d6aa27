"""`reshoot batch TAKES.toml`: `reshoot run` for many takes, a job per take × stage, serially or on Ray.

TAKES.toml (paths relative to the file; docs/cli.md#batch):

    [batch]                                   # optional: what every take gets
    until = "check"                           # the last stage (default: every stage, as `reshoot run`)
    set = ["reconstruct.set_iterations=800"]  # --set STAGE.FIELD=VALUE
    shots = ["overhead=overhead wide"]        # --shot

    [[takes]]
    name = "scene12_take3"                    # unique; letters, digits, - _ .
    workspace = "ws/scene12_take3"            # a workspace (`reshoot init`), or where to make one:
    footage = "footage/scene12_take3"         # with footage (and optional survey, calibration, plates)
    shots = ["top=overhead wide"]             # optional: replaces [batch] shots
    set = ["register.camera_height=1.6"]      # optional: after [batch] set

Every take's stages run in order (a job waits for the take's previous stage); takes run side by side.
A job is `run_pipeline(ws, shots, set, until=STAGE)` under the workspace's lock, so what a stage finds
done it skips, exactly as `reshoot run` would. Each job declares its resources (`STAGE_RESOURCES`) for
Ray's scheduler and runs torch on that many threads, serially as on Ray (`reshoot run` uses all of the
machine's threads, so its float roundings can differ from a batch's).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reshoot.geometry.errors import InputError
from reshoot.geometry.validation import check_name
from reshoot.scaleout import Job

# What one stage of one take occupies: CPUs, GPUs (where `gpu` is asked for), memory in GiB.
STAGE_RESOURCES = {
    "register": (2, 0, 4),
    "reconstruct": (2, 1, 8),
    "layout": (1, 0, 2),
    "shoot": (1, 0, 1),
    "condition": (1, 0, 2),
    "synthesize": (1, 1, 4),
    "check": (1, 0, 2),
    "report": (1, 0, 1),
}
LOCK_WAIT_S = 60.0


@dataclass(frozen=True)
class BatchTake:
    """One take of a batch: its workspace, and how to make it when it does not exist yet."""

    name: str
    workspace: Path
    footage: Path | None
    survey: Path | None
    calibration: Path | None
    plates: Path | None
    shots: tuple[str, ...]
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Batch:
    """A TAKES.toml: its path, the last stage to run and its takes."""

    path: Path
    until: str
    takes: tuple[BatchTake, ...]


def _path(value, base: Path, where: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: expected a path (text), got {value!r}.")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _texts(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a list of texts, got {value!r}.")
    return tuple(value)


def read_batch(path: str | Path) -> Batch:
    """Read and check a TAKES.toml (see the module docstring).

    Raises:
        InputError: the file is missing or not TOML, has no takes, an unknown key or stage, a bad or
            repeated take name, a take with neither a workspace nor footage.
    """
    from reshoot.pipeline import ORDER

    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; write a TAKES.toml (docs/cli.md#batch).") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML ({error}).") from None
    unknown = sorted(set(document) - {"batch", "takes"})
    if unknown:
        raise InputError(f"{path}: unknown table [{unknown[0]}]; a TAKES.toml has [batch] and [[takes]].")
    defaults = document.get("batch", {})
    bad = sorted(set(defaults) - {"until", "set", "shots"})
    if bad:
        raise InputError(f"{path}: [batch] has no setting {bad[0]!r} (until, set, shots).")
    until = defaults.get("until", ORDER[-1])
    if until not in ORDER:
        raise InputError(f"{path}: [batch] until = {until!r}; choose one of {', '.join(ORDER)}.")
    entries = document.get("takes")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: no [[takes]]; list each take with its name and workspace.")
    base = path.parent.resolve()
    takes, seen = [], set()
    for number, entry in enumerate(entries, 1):
        where = f"{path}: take {number}"
        extra = sorted(set(entry) - {"name", "workspace", "footage", "survey", "calibration", "plates", "shots", "set"})
        if extra:
            raise InputError(f"{where} has no setting {extra[0]!r}.")
        name = check_name(entry.get("name"), f"{where} name")
        if name in seen:
            raise InputError(f"{where}: the name {name!r} is used twice; give each take its own.")
        seen.add(name)
        workspace = _path(entry.get("workspace"), base, f"{where} workspace")
        footage = _path(entry.get("footage"), base, f"{where} footage")
        if workspace is None:
            raise InputError(f"{where} ({name}): give its workspace (made by `reshoot init`, or made from footage).")
        takes.append(
            BatchTake(
                name=name,
                workspace=workspace,
                footage=footage,
                survey=_path(entry.get("survey"), base, f"{where} survey"),
                calibration=_path(entry.get("calibration"), base, f"{where} calibration"),
                plates=_path(entry.get("plates"), base, f"{where} plates"),
                shots=_texts(entry.get("shots"), f"{where} shots") or _texts(defaults.get("shots"), "[batch] shots"),
                overrides=_texts(defaults.get("set"), "[batch] set") + _texts(entry.get("set"), f"{where} set"),
            )
        )
    return Batch(path.resolve(), until, tuple(takes))


def batch_toml(batch: Batch) -> str:
    """`batch` as a TAKES.toml whose paths are absolute (to hand to a farm from another folder)."""

    def text(value: str) -> str:
        return json.dumps(value)  # a JSON string is a TOML basic string

    lines = ["[batch]", f"until = {text(batch.until)}", ""]
    for take in batch.takes:
        lines += ["[[takes]]", f"name = {text(take.name)}"]
        for key in ("workspace", "footage", "survey", "calibration", "plates"):
            value = getattr(take, key)
            if value is not None:
                lines.append(f"{key} = {text(str(Path(value).resolve()))}")
        lines.append(f"shots = [{', '.join(text(s) for s in take.shots)}]")
        lines.append(f"set = [{', '.join(text(s) for s in take.overrides)}]")
        lines.append("")
    return "\n".join(lines)


def run_take_stage(take: BatchTake, until: str, *previous: list[dict]) -> list[dict]:
    """One job: `reshoot run` of `take` up to stage `until` (making the workspace from its footage first if
    it has none), under the workspace's lock. What ran: [{stage, action, seconds}]. `previous` (what the
    take's stage before ran) only orders the jobs.

    Raises:
        InputError: no workspace and no footage to make one, or what the stages refuse.
    """
    from reshoot.pipeline import run_pipeline
    from reshoot.stage import workspace_lock
    from reshoot.workspace import WORKSPACE_FILE, Workspace, init_workspace

    if not (take.workspace / WORKSPACE_FILE).is_file():
        if take.footage is None:
            raise InputError(
                f"take {take.name}: {take.workspace} is not a workspace and the take names no footage to make one."
            )
        init_workspace(
            take.workspace, take.footage, survey=take.survey, calibration=take.calibration, plates=take.plates
        )
    ws = Workspace(take.workspace)
    with workspace_lock(ws, LOCK_WAIT_S, "reshoot batch"):
        outcomes = run_pipeline(ws, take.shots, take.overrides, until)
    return [
        {"stage": o.key, "action": o.action, "seconds": round(o.seconds, 2)} for o in outcomes if o.action != "skipped"
    ]


def dry_stage(take: BatchTake, until: str, *previous: list[dict]) -> list[dict]:
    """A dry-run job: nothing runs; what it would have run (for planning and scheduler tests)."""
    return [{"stage": until, "action": "dry-run", "seconds": 0.0}]


def plan_batch(
    batch: Batch, takes: Sequence[str] = (), until: str | None = None, gpu: bool = False, dry_run: bool = False
) -> list[Job]:
    """The jobs of a batch: per take, one per stage up to `until` (default the batch's), each after the
    take's previous stage. A take without shots does nothing in the shot stages and the report (as
    `reshoot run`). Each job runs torch on as many threads as it declares CPUs, under either executor.

    Args:
        takes: only these takes (default all).
        gpu: the reconstruct and synthesize jobs each ask for one GPU.
        dry_run: jobs that run nothing (`dry_stage`).

    Raises:
        InputError: an unknown take or stage.
    """
    from reshoot.pipeline import ORDER

    names = [t.name for t in batch.takes]
    unknown = sorted(set(takes) - set(names))
    if unknown:
        raise InputError(f"--take {unknown[0]!r}: {batch.path} has takes {', '.join(names)}.")
    last = until or batch.until
    if last not in ORDER:
        raise InputError(f"--until {last!r}: choose one of {', '.join(ORDER)}.")
    jobs = []
    for take in batch.takes:
        if takes and take.name not in takes:
            continue
        previous: tuple[str, ...] = ()
        for stage in ORDER[: ORDER.index(last) + 1]:
            cpus, gpus, memory = STAGE_RESOURCES[stage]
            key = f"{take.name}/{stage}"
            jobs.append(
                Job(
                    key,
                    dry_stage if dry_run else run_take_stage,
                    (take, stage),
                    after=previous,
                    cpus=cpus,
                    gpus=gpus if gpu else 0,
                    memory_gb=0.1 if dry_run else memory,
                    threads=None if dry_run else cpus,
                )
            )
            previous = (key,)
    return jobs
