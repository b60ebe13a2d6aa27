"""A graph of jobs run serially or on Ray, with the same results either way.

`reshoot bench` (a job per take to prepare, then one per task × take × method) and `reshoot batch` (a
job per take × stage) describe their work as `Job`s and hand them to `run_jobs`. A job declares what it
needs (CPUs, GPUs, memory) and which jobs it comes after; their results are passed to it. On Ray each job
is a Ray task with those resources (`ray.init(num_cpus=...)` locally, or `address` of a cluster); serially
they run in the given order in this process.

The same results: a job that sets `threads` runs its torch (and OpenMP) work on exactly that many threads
under both executors (Ray gives a task as many as it declares CPUs; serially the process would use all
of them), so reductions add up in the same order. A job that fails does not stop the others; the jobs
after it are not run, and both are reported with the reason.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reshoot.geometry.errors import InputError

EXECUTORS = ("serial", "ray")


@dataclass(frozen=True)
class Job:
    """One unit of work.

    Attributes:
        key: unique name ("prepare/easy-s101", "run/scene_12/reconstruct").
        function: a module-level function (Ray pickles it by reference); called as
            `function(*args, *results_of_after)`.
        args: its arguments (picklable).
        after: keys of the jobs it needs, in order; their results are appended to `args`.
        cpus, gpus: what it occupies while it runs; memory_gb: what it may use (Ray schedules by these).
        threads: torch's thread count inside the job (None: leave it).
    """

    key: str
    function: Callable[..., Any]
    args: tuple = ()
    after: tuple[str, ...] = ()
    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 2.0
    threads: int | None = None


@dataclass(frozen=True)
class JobResult:
    """What a job gave: its value, or the error that stopped it; seconds; where it ran (host:pid)."""

    key: str
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""


def check_ranges(ranges: int) -> None:
    """Refuse a count of frame ranges below 1.

    Raises:
        InputError: saying so.
    """
    if isinstance(ranges, bool) or not isinstance(ranges, int) or ranges < 1:
        raise InputError(f"--ranges {ranges}: use at least 1 frame range.")


def run_in_ranges(
    function: Callable[..., Any],
    count: int,
    ranges: int,
    arguments: Callable[[int, int], tuple],
    executor: str = "serial",
    what: str = "items",
    labels: Sequence | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list:
    """Split items 0..count-1 into `ranges` consecutive ranges [a, b) (at most one per item) and run
    `function(*arguments(a, b))` for each as a job of one CPU on one thread, serially or on Ray; the jobs'
    values in range order (none for no items). On one thread under either executor, the ranges give the
    same values both ways.

    Args:
        what, labels: a range's name is "WHAT first-last", of `labels` (default the item numbers).
        progress: told (ranges done, ranges) as each finishes.

    Raises:
        InputError: fewer than 1 range, or a range failed (which, and why).
    """
    check_ranges(ranges)
    if count == 0:
        return []
    names = list(labels) if labels is not None else list(range(count))
    parts = min(ranges, count)
    bounds = [round(k * count / parts) for k in range(parts + 1)]
    jobs = [
        Job(f"{what} {names[a]}-{names[b - 1]}", function, arguments(a, b), cpus=1, memory_gb=2, threads=1)
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    finished: list[str] = []

    def told(result: JobResult) -> None:
        finished.append(result.key)
        if progress is not None:
            progress(len(finished), len(jobs))

    results = run_jobs(jobs, executor, on_done=told)
    failed = [r for r in results.values() if r.error]
    if failed:
        raise InputError(f"range {failed[0].key} failed: {failed[0].error}")
    return [results[job.key].value for job in jobs]


def check_jobs(jobs: Sequence[Job]) -> None:
    """Refuse duplicate keys, unknown or later dependencies (the list must be in an order that runs).

    Raises:
        InputError: what is wrong, naming the job.
    """
    seen: set[str] = set()
    for job in jobs:
        if job.key in seen:
            raise InputError(f"job {job.key!r} appears twice.")
        missing = [k for k in job.after if k not in seen]
        if missing:
            raise InputError(f"job {job.key!r} comes after {missing[0]!r}, which is not an earlier job.")
        seen.add(job.key)


def run_job(job: Job, *needed: JobResult) -> JobResult:
    """Run one job here (both executors call this): never raises; a failed dependency skips it."""
    failed = [r.key for r in needed if r.error is not None]
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if failed:
        return JobResult(job.key, error=f"not run: {failed[0]} failed", worker=worker)
    previous = None
    if job.threads is not None:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(job.threads)
    started = time.perf_counter()
    try:
        value = job.function(*job.args, *(r.value for r in needed))
        return JobResult(job.key, value, None, time.perf_counter() - started, worker)
    except Exception as error:  # noqa: BLE001 (a job's failure is reported, the others go on)
        detail = str(error) if isinstance(error, InputError) else traceback.format_exc(limit=3)
        return JobResult(job.key, None, f"{type(error).__name__}: {detail}", time.perf_counter() - started, worker)
    finally:
        if previous is not None:
            import torch

            torch.set_num_threads(previous)


def run_jobs(
    jobs: Sequence[Job],
    executor: str = "serial",
    address: str | None = None,
    workers: int | None = None,
    on_done: Callable[[JobResult], None] | None = None,
) -> dict[str, JobResult]:
    """Run `jobs` (dependencies first in the list); key → result.

    Args:
        executor: "serial" (here, in order) or "ray".
        address: a Ray cluster to join (`ray.init(address=...)`); None starts a local Ray with `workers` CPUs.
        workers: CPUs of the local Ray (default: this machine's).
        on_done: told about each job as it finishes.

    Raises:
        InputError: an unknown executor, bad jobs, or Ray asked for but not installed.
    """
    if executor not in EXECUTORS:
        raise InputError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}.")
    check_jobs(jobs)
    tell = on_done or (lambda result: None)
    if executor == "serial":
        results: dict[str, JobResult] = {}
        for job in jobs:
            results[job.key] = run_job(job, *(results[k] for k in job.after))
            tell(results[job.key])
        return results
    return _run_on_ray(jobs, address, workers, tell)


def _check_feasible(jobs: Sequence[Job], available: dict) -> None:
    """Refuse a job that asks for more CPUs, GPUs or memory than the whole Ray cluster has (Ray would wait
    for it for ever).

    Raises:
        InputError: naming the job, what it asks for and what there is.
    """
    for job in jobs:
        for name, asked, unit in (("CPU", job.cpus, 1), ("GPU", job.gpus, 1), ("memory", job.memory_gb, 2**30)):
            have = available.get(name, 0.0) / unit
            if asked > have + 1e-9:
                amount = "{:.3g} GiB of memory" if name == "memory" else "{:.3g} " + name
                raise InputError(
                    f"job {job.key} asks for {amount.format(asked)}; the Ray cluster has {amount.format(have)} in "
                    "all. Give Ray more (--workers, a bigger cluster) or run the jobs serially."
                )


def _run_on_ray(jobs: Sequence[Job], address: str | None, workers: int | None, tell) -> dict[str, JobResult]:
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'reshoot[ray]'.") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = not ray.is_initialized()
    if started_here:
        if address is not None:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        _check_feasible(jobs, ray.cluster_resources())
        remote = ray.remote(run_job)
        refs: dict[str, Any] = {}
        keys: dict[Any, str] = {}
        for job in jobs:
            ref = remote.options(
                num_cpus=job.cpus, num_gpus=job.gpus, memory=int(job.memory_gb * 2**30), name=job.key
            ).remote(job, *(refs[k] for k in job.after))
            refs[job.key] = ref
            keys[ref] = job.key
        results: dict[str, JobResult] = {}
        pending = list(refs.values())
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            result = ray.get(done[0])
            results[keys[done[0]]] = result
            tell(result)
        return {job.key: results[job.key] for job in jobs}
    finally:
        if started_here:
            ray.shutdown()
