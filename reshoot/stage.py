"""The stage contract and its runner (DESIGN.md §4): manifests, staleness, the workspace lock.

A `Stage` declares what it reads (its input artefacts, as paths of the `Workspace`, some outside it such
as the footage), one frozen options dataclass (seed included) and what it writes. `run_stage` runs it
and then writes its manifest, `.reshoot/manifests/<stage>.json` (`<stage>@<shot>` for a shot's stages):

```json
{"format": "reshoot/manifest", "version": 1, "stage": "reconstruct", "shot": null,
 "options": {...resolved, those that change the result...}, "seed": 0,
 "inputs": {"registration": "sha256:…", "footage": "sha256:…"}, "outputs": {"splats": "sha256:…"},
 "versions": {"reshoot": "0.1.0", "python": "3.12.3", "torch": "…"}, "finished": "2026-12-05T22:40:01Z",
 "seconds": 312.4, "peak_rss_mib": 1830}
```
The manifest is written last, after the stage's outputs are in place (each stage writes its outputs
to a temporary place and renames them in): an interrupted stage leaves either the outputs and manifest
of its previous run, or new outputs without a matching manifest, which `stage_state` reports as stale.

Staleness is decided from manifests and digests alone (`stage_state`): a stage is *missing* when an
output is; *stale* when it has no manifest, when an option that changes its result differs, when an
input's digest differs from the one it consumed, or when an output was changed since (except outputs a
user may edit, e.g. names in layout.json); else *done*. Digests are SHA-256 of the bytes (a folder: of
its files' paths and digests), cached by (size, modification time) in `.reshoot/digests.json` so that
asking again costs one `stat` per file.

Options fields declared with `field(metadata={"affects_output": False})` (rasterizer backend, device)
are recorded but never make a stage stale.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib
import json
import logging
import os
import platform
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from reshoot.geometry.errors import InputError
from reshoot.geometry.files import read_json_document, remove_leftovers, write_json_document, write_text_atomic
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.workspace import Workspace

log = logging.getLogger(__name__)

MANIFEST_KIND = "manifest"
MANIFEST_VERSION = 1
ABSENT = "absent"
VERSIONED_PACKAGES = ("torch", "numpy", "pycolmap", "open3d", "gsplat")


class WorkspaceBusy(InputError):
    """Another reshoot process holds the workspace's lock."""


@contextmanager
def workspace_lock(ws: Workspace, wait_seconds: float = 0.0, command: str = "reshoot") -> Iterator[None]:
    """Hold `.reshoot/lock` (an exclusive `flock`, released by the OS however the process ends) while
    writing the workspace.

    Args:
        wait_seconds: how long to wait for another holder before giving up.
        command: what this process is doing, shown to a second process that finds the lock held.

    Raises:
        WorkspaceBusy: another process still holds it after `wait_seconds`.
    """
    ws.meta.mkdir(parents=True, exist_ok=True)
    handle = open(ws.lock, "a+")
    try:
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise WorkspaceBusy(
                        f"{ws.root} is being written by another reshoot ({holder}). Wait for it to finish and run "
                        "this again, or pass --wait SECONDS to wait for it."
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {command}, since {datetime.now().strftime('%H:%M:%S')}")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


class DigestCache:
    """SHA-256 digests of files, kept in `.reshoot/digests.json` by (path, size, modification time)."""

    def __init__(self, ws: Workspace):
        self.path = ws.meta / "digests.json"
        self.entries: dict[str, list] = {}
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.entries = {}  # a damaged cache is only slower: digests are computed again
        self.changed = False

    def file(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        cached = self.entries.get(key)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return cached[2]
        with open(path, "rb") as handle:
            value = hashlib.file_digest(handle, "sha256").hexdigest()
        self.entries[key] = [stat.st_size, stat.st_mtime_ns, value]
        self.changed = True
        return value

    def of(self, path: Path | str | None) -> str:
        """ "sha256:…" of a file or folder (its files' relative paths and digests), or "absent". A str is a
        digest the stage computed itself (of settings, say) and is returned as it is."""
        if isinstance(path, str):
            return path
        if path is None or not path.exists():
            return ABSENT
        if path.is_file():
            return "sha256:" + self.file(path)
        total = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            total.update(f"{item.relative_to(path).as_posix()}\0{self.file(item)}\n".encode())
        return "sha256:" + total.hexdigest()

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(self.entries))
            self.changed = False


def value_digest(value: Any) -> str:
    """ "sha256:…" of a JSON-able value (keys sorted): an input that is not a file of its own."""
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True, default=_jsonable).encode()).hexdigest()


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Attributes:
        name: "register", "reconstruct", ... (a shot's stages are keyed "<name>@<shot>").
        per_shot: whether the stage runs once per shot.
        options: the frozen dataclass of its settings (a `seed` field where it draws random numbers).
        inputs: (workspace, shot, options) → {label: path} of what it reads (files or folders; None or a
            path that does not exist is recorded as absent; a str is a "sha256:…" digest of something
            that is not a file of its own, e.g. `value_digest` of some settings).
        outputs: (workspace, shot) → {label: path} of what it writes.
        run: (workspace, shot, options, progress) → the stage's summary.
        editable: labels of outputs a user may change by hand without making the stage stale.
        modules: the modules `run` imports (lazily, so that `reshoot status` starts fast): the runner
            imports them first, with Ctrl-C and SIGTERM held back (`signals_held`).
    """

    name: str
    per_shot: bool
    options: type
    inputs: Callable[[Workspace, str | None, Any], dict[str, Path | str | None]]
    outputs: Callable[[Workspace, str | None], dict[str, Path]]
    run: Callable[[Workspace, str | None, Any, ProgressFn], Any]
    editable: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    def key(self, shot: str | None) -> str:
        return f"{self.name}@{shot}" if self.per_shot else self.name


@dataclass(frozen=True)
class StageState:
    """Where a stage stands: "done", "stale" or "missing", and why (empty when done)."""

    stage: str
    status: str
    reason: str = ""


def options_record(options: Any) -> dict[str, Any]:
    """The options that change a stage's result, as JSON values (paths and tuples as strings and lists)."""
    values = {
        f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.metadata.get("affects_output", True)
    }
    return json.loads(json.dumps(values, default=_jsonable, sort_keys=True))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def read_manifest(ws: Workspace, key: str) -> dict | None:
    """The manifest of stage `key`, or None when there is none (a damaged one counts as none)."""
    path = ws.manifest(key)
    if not path.is_file():
        return None
    try:
        return read_json_document(path, MANIFEST_KIND, MANIFEST_VERSION)
    except InputError:
        log.warning("%s is damaged; the stage counts as not run", path)
        return None


def stage_state(ws: Workspace, stage: Stage, shot: str | None, options: Any, cache: DigestCache) -> StageState:
    """Whether `stage` (for `shot`) is done with `options`, stale (and why) or missing (module docstring)."""
    key = stage.key(shot)
    outputs = stage.outputs(ws, shot)
    missing = [label for label, path in outputs.items() if not path.exists()]
    if missing:
        return StageState(key, "missing", f"{missing[0]} is missing")
    manifest = read_manifest(ws, key)
    if manifest is None:
        return StageState(key, "stale", "its outputs have no manifest (made by an older reshoot, or interrupted)")
    recorded, wanted = manifest.get("options", {}), options_record(options)
    for name in sorted(set(recorded) | set(wanted)):
        if recorded.get(name) != wanted.get(name):
            return StageState(key, "stale", f"option {name} changed ({recorded.get(name)!r} → {wanted.get(name)!r})")
    consumed, reads = manifest.get("inputs", {}), stage.inputs(ws, shot, options)
    for label in sorted(set(consumed) ^ set(reads)):
        return StageState(key, "stale", f"its input {label} was {'added' if label in reads else 'removed'}")
    for label, path in reads.items():
        if consumed.get(label) != cache.of(path):
            return StageState(key, "stale", f"its input {label} changed")
    written = manifest.get("outputs", {})
    for label, path in outputs.items():
        if label not in stage.editable and written.get(label) != cache.of(path):
            return StageState(key, "stale", f"its output {label} changed since it ran")
    return StageState(key, "done")


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for the block; one that came meanwhile is delivered at its end.

    For imports: importing torch's modules runs Python code called back from its C++ (pybind11), and a
    KeyboardInterrupt raised there by the CLI's signal handler aborts the process ("terminate called
    after throwing an instance of 'pybind11::error_already_set'", exit -6) instead of ending it cleanly
    with exit 130. Held back, the interrupt lands right after the import, in ordinary code.

    The Python-level handlers are swapped for one that only records the signal, then restored, and the
    restored handler is called with what came (the default action where there was none). Blocking the
    signals with `pthread_sigmask` would not do: it holds them back from this thread only, and any
    other thread (OpenMP's, say) takes the signal and Python still raises in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return
    held = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not None]
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        signum = signal.Signals(received[0])
        handler = previous[signum]
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), signum)


def run_stage(
    ws: Workspace,
    stage: Stage,
    shot: str | None,
    options: Any,
    progress: ProgressFn | None = None,
    cache: DigestCache | None = None,
) -> Any:
    """Run `stage` (the caller holds the workspace lock) and write its manifest; the stage's summary.

    Inputs are digested before the stage runs (what it consumed), outputs after. Temporary files that a
    killed earlier run left beside the outputs are removed first.
    """
    with signals_held():
        for module in stage.modules:
            importlib.import_module(module)
    cache = cache or DigestCache(ws)
    for path in stage.outputs(ws, shot).values():
        for leftover in remove_leftovers(path):
            log.info("removed %s, left by an interrupted run", leftover)
    inputs = {label: cache.of(path) for label, path in stage.inputs(ws, shot, options).items()}
    started = time.perf_counter()
    summary = stage.run(ws, shot, options, progress or no_progress)
    seconds = time.perf_counter() - started
    outputs = {label: cache.of(path) for label, path in stage.outputs(ws, shot).items()}
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    body = {
        "stage": stage.name,
        "shot": shot,
        "options": options_record(options),
        "all_options": json.loads(
            json.dumps({f.name: getattr(options, f.name) for f in dataclasses.fields(options)}, default=_jsonable)
        ),
        "seed": getattr(options, "seed", None),
        "inputs": inputs,
        "outputs": outputs,
        "versions": _versions(),
        "finished": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024),
    }
    ws.manifest(stage.key(shot)).parent.mkdir(parents=True, exist_ok=True)
    write_json_document(ws.manifest(stage.key(shot)), MANIFEST_KIND, MANIFEST_VERSION, body)
    cache.save()
    return summary


def refresh_outputs(ws: Workspace, stage: Stage, shot: str | None, cache: DigestCache | None = None) -> None:
    """Record a stage's outputs as they are now in its manifest: after a sanctioned change of them (`reshoot
    pick` putting another sample in place), which would otherwise make the stage stale ("its output changed
    since it ran"). A stage without a manifest is left alone."""
    manifest = read_manifest(ws, stage.key(shot))
    if manifest is None:
        return
    cache = cache or DigestCache(ws)
    manifest["outputs"] = {label: cache.of(path) for label, path in stage.outputs(ws, shot).items()}
    body = {k: v for k, v in manifest.items() if k not in ("format", "version")}
    write_json_document(ws.manifest(stage.key(shot)), MANIFEST_KIND, MANIFEST_VERSION, body)
    cache.save()


def _versions() -> dict[str, str]:
    from reshoot import __version__

    versions = {"reshoot": __version__, "python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
