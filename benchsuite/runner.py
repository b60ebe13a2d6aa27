"""Running a suite: its jobs (prepare each take, then each task × take × method), serially or on Ray,
into `OUT/results.json` and `OUT/results.md`.

results.json (format `reshoot/bench-results`, version 1; docs/bench.md):
    bench, suite, methods, tasks    what was run (`bench` is the versioned task set, BENCH_VERSION);
    created, executor, wall_seconds, machine, packages;
    jobs                            per job: key, seconds, worker (host:pid), error;
    results                         one row per method × task × take: method, task, take, the metrics of
                                    scoring.py, seconds (the method's own time), error (None when it ran).
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from reshoot.bench.methods import MethodInputs, eight_bit, load_method, method_label
from reshoot.bench.scoring import PIXEL_METRICS, REGIONS, score_shot
from reshoot.bench.suite import BENCH_VERSION, Suite, TakeSpec, TaskSpec
from reshoot.bench.takes import prepare_take
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, read_json_document, write_json_document, write_text_atomic
from reshoot.geometry.validation import check_name
from reshoot.scaleout import Job, JobResult, run_jobs

RESULTS_KIND = "bench-results"
RESULTS_VERSION = 1
PACKAGES = ("reshoot", "torch", "numpy", "opencv-python-headless", "pycolmap", "flip-evaluator", "ray")
TABLE_METRICS = tuple(f"{m}{r}" for r in REGIONS for m in PIXEL_METRICS) + (
    "placement_px",
    "placement_m",
    "entity_iou",
    "found_share",
    "cross_view",
    "temporal",
)


@dataclass(frozen=True)
class BenchSettings:
    """Where a run reads and writes: `out` (results), `cache` (prepared takes), `data` (real footage)."""

    out: Path
    cache: Path
    data: Path


def method_shot(task: TaskSpec, label: str) -> str:
    """The shot a method's frames for `task` go to (a copy of the task's conditioned shot)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    return check_name(f"{task.shot}--{safe}", "bench shot")


def _prepare(take: TakeSpec, tasks: tuple[TaskSpec, ...], cache: Path, data: Path) -> str:
    return str(prepare_take(take, tasks, cache, data))


def _run_method(task: TaskSpec, spec: str, prepared: str) -> dict:
    """Make `task`'s shot with method `spec` in the prepared workspace and score it: the result row."""
    from reshoot.shot_io import read_shot_document
    from reshoot.workspace import Workspace

    ws = Path(prepared)
    source = Workspace(ws).shot(task.shot)
    name = method_shot(task, method_label(spec))
    target = Workspace(ws).shot(name)
    if target.folder.exists():
        shutil.rmtree(target.folder)
    shutil.copytree(
        source.folder, target.folder, ignore=shutil.ignore_patterns("frames", "exr", "check*", "samples", "truth")
    )
    document = read_shot_document(ws, name)
    camera = document.cameras.select(0)
    frames = tuple(int(f) for f in document.paths[name].frames)
    inputs = MethodInputs(ws, name, frames, int(camera.width[0]), int(camera.height[0]))
    method = load_method(spec)
    started = time.perf_counter()
    made = np.asarray(method(inputs))
    seconds = time.perf_counter() - started
    expected = (len(frames), inputs.height, inputs.width, 3)
    if made.shape != expected:
        raise InputError(f"method {spec!r} made frames of shape {made.shape}; the shot needs {expected}.")
    if made.dtype != np.uint8:
        if not np.isfinite(made).all():
            raise InputError(f"method {spec!r} made frames with NaN or infinite pixels.")
        made = eight_bit(made)
    _write_frames(target.frames, frames, made)
    scores = score_shot(ws, name, made, source.truth, frames)
    return {**scores, "seconds": round(seconds, 2)}


def _write_frames(folder: Path, frames: Sequence[int], made: np.ndarray) -> None:
    import imageio.v3 as iio

    with atomic_directory(folder, overwrite=True) as tmp:
        for frame, image in zip(frames, made):
            iio.imwrite(tmp / f"{frame:06d}.png", image)


def plan_jobs(suite: Suite, methods: Sequence[str], settings: BenchSettings, tasks: Sequence[str] = ()) -> list[Job]:
    """A job per take to prepare (2 CPUs), then one per task × method on it (1 CPU each). A take is
    prepared for all of the suite's tasks on it, whichever are chosen, so that its cache serves any choice.

    Raises:
        InputError: an unknown task name in `tasks`, none left to run, or real footage a task needs that is
            not in `settings.data`.
    """
    chosen = [t for t in suite.tasks if not tasks or t.task in tasks]
    unknown = sorted(set(tasks) - {t.task for t in suite.tasks})
    if unknown or not chosen:
        names = sorted({t.task for t in suite.tasks})
        raise InputError(f"--task {unknown[0] if unknown else ''!r}: suite {suite.name} has tasks {', '.join(names)}.")
    jobs = []
    for take in suite.takes:
        if not any(t.take == take.name for t in chosen):
            continue
        if take.source != "synthetic" and not (settings.data / take.source).is_dir():
            raise InputError(
                f"--data {settings.data}: no {take.source}/ there, which take {take.name} needs; point --data "
                "(or $RESHOOT_DATA) at the folder of real footage (the project's shared/data), or choose tasks "
                "with --task."
            )
        jobs.append(
            Job(
                f"prepare/{take.name}",
                _prepare,
                (take, tuple(t for t in suite.tasks if t.take == take.name), settings.cache, settings.data),
                cpus=2,
                memory_gb=6,
                threads=2,
            )
        )
    for task in chosen:
        for spec in methods:
            jobs.append(
                Job(
                    f"{task.task}/{task.take}/{method_label(spec)}",
                    _run_method,
                    (task, spec),
                    after=(f"prepare/{task.take}",),
                    cpus=1,
                    memory_gb=3,
                    threads=1,
                )
            )
    return jobs


def _package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def run_suite(
    suite: Suite,
    methods: Sequence[str],
    settings: BenchSettings,
    tasks: Sequence[str] = (),
    executor: str = "serial",
    address: str | None = None,
    workers: int | None = None,
    on_done: Callable[[JobResult], None] | None = None,
) -> dict:
    """Run `suite` with `methods` and write OUT/results.json and OUT/results.md; the results document.

    Every method is loaded first, so a bad `--method` is refused before any take is prepared.

    Raises:
        InputError: a method that does not load, an unknown task or executor.
    """
    labels = [method_label(m) for m in methods]
    if len(set(labels)) != len(labels):
        raise InputError(f"methods {labels}: two have the same name; name commands NAME=CMD.")
    for spec in methods:
        load_method(spec)
    jobs = plan_jobs(suite, methods, settings, tasks)
    started = time.perf_counter()
    results = run_jobs(jobs, executor, address, workers, on_done)
    wall = time.perf_counter() - started
    rows = []
    for job in jobs:
        if job.function is not _run_method:
            continue
        task, spec = job.args
        result = results[job.key]
        row = {"method": method_label(spec), "task": task.task, "take": task.take}
        row.update(result.value or {})
        row["error"] = result.error
        rows.append(row)
    body = {
        "bench": BENCH_VERSION,
        "suite": suite.name,
        "methods": labels,
        "tasks": sorted({t.task for t in suite.tasks if not tasks or t.task in tasks}),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "executor": executor,
        "wall_seconds": round(wall, 1),
        "machine": _machine(),
        "packages": _package_versions(),
        "jobs": [
            {"key": r.key, "seconds": round(r.seconds, 2), "worker": r.worker, "error": r.error}
            for r in results.values()
        ],
        "results": rows,
    }
    write_json_document(settings.out / "results.json", RESULTS_KIND, RESULTS_VERSION, body)
    write_text_atomic(settings.out / "results.md", markdown_table(body))
    return body


def summary_rows(document: dict) -> list[dict]:
    """One row per method × task: the mean of each table metric over the takes that measured it."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in document["results"]:
        groups.setdefault((row["method"], row["task"]), []).append(row)
    out = []
    for (method, task), rows in groups.items():
        item: dict = {"method": method, "task": task, "takes": len(rows), "errors": sum(bool(r["error"]) for r in rows)}
        for metric in TABLE_METRICS:
            values = [float(r[metric]) for r in rows if r.get(metric) is not None]
            item[metric] = float(np.mean(values)) if values else None
        out.append(item)
    return out


def markdown_table(document: dict) -> str:
    """The results as Markdown: a heading with what ran where, then one row per method × task."""
    head = ["method", "task", "takes", *TABLE_METRICS]
    lines = [
        f"# {document['bench']} · suite {document['suite']}",
        "",
        f"{document['created']} · {document['executor']} · {document['wall_seconds']} s · "
        f"{document['machine']['cpus']} CPUs · reshoot {document['packages'].get('reshoot')}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for item in summary_rows(document):
        cells = [
            item["method"],
            item["task"],
            f"{item['takes']}" + (f" ({item['errors']} failed)" if item["errors"] else ""),
        ]
        cells += ["–" if item[m] is None else f"{item[m]:.4g}" for m in TABLE_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def read_results(path: Path) -> dict:
    """A results.json, checked for its format and version.

    Raises:
        InputError / FormatError: missing, not JSON, or not a bench results file this reshoot reads.
    """
    return read_json_document(path, RESULTS_KIND, RESULTS_VERSION)
