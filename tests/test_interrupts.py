"""Killing a long stage mid-way (kill -9, SIGTERM, Ctrl-C) leaves the workspace as it was before the stage,
or resumable; never a half-written file that a later stage trusts (issue: one pipeline)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_workspace
from reshoot.workspace import Workspace

RESHOOT = [sys.executable, "-m", "reshoot.cli"]


def visible_files(root: Path) -> dict[str, bytes]:
    """Every file a stage could trust: not the runner's bookkeeping (.reshoot/), not a hidden temporary
    sibling, not the reconstruction's resumable work dir."""
    out = {}
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not any(p.startswith(".") for p in parts) and parts[0] != "splats.work":
            out["/".join(parts)] = path.read_bytes()
    return out


def interrupt(
    args: list[str], cwd: Path, ready, how: signal.Signals, after: float, timeout: float = 240
) -> tuple[int, str]:
    """Run `reshoot ARGS`; once `ready()` holds, wait `after` seconds and send `how`; (exit code, stderr)."""
    log = cwd / "stderr.txt"
    with open(log, "w") as err:
        process = subprocess.Popen([*RESHOOT, *args], stdout=subprocess.DEVNULL, stderr=err, cwd=cwd)
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, f"finished before it was interrupted: {log.read_text()}"
            assert time.monotonic() < deadline, f"not ready in {timeout} s"
            time.sleep(0.2)
        time.sleep(after)
        assert process.poll() is None, f"finished before it was interrupted: {log.read_text()}"
        process.send_signal(how)
        process.wait(timeout=120)
    return process.returncode, log.read_text()


def status(ws: Path) -> dict[str, tuple[str, str]]:
    out = subprocess.run([*RESHOOT, "status", str(ws), "--json", "--until", "layout"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return {s["stage"]: (s["status"], s["reason"]) for s in json.loads(out.stdout)["stages"]}


def test_kill_9_while_reconstructing(scene_workspace: Path, scene_take: Path, tmp_path: Path):
    """kill -9 while the set is being fitted: nothing of splats/ exists, the stage is missing, and the work
    dir (checkpoints) is what a rerun resumes from."""
    ws = copy_workspace(scene_workspace, scene_take, tmp_path)
    before = visible_files(ws)
    work = Workspace(ws).splats_work
    code, err = interrupt(
        ["reconstruct", str(ws), "--frames", "0:2", "--set-iterations", "400"],
        tmp_path,
        lambda: (work / "settings.json").is_file(),
        signal.SIGKILL,
        after=3,
    )
    assert code == -signal.SIGKILL
    assert visible_files(ws) == before and not Workspace(ws).splats.exists()
    assert Workspace(ws).splats_work.is_dir()
    assert status(ws)["reconstruct"] == ("missing", "splats is missing")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_interrupting_layout_keeps_the_previous_layout(laid_out_workspace: Path, tmp_path: Path, how):
    """SIGTERM or Ctrl-C while laying out again: exit 130 with a message, the previous layout.json and plan
    untouched, and no temporary file left."""
    ws = tmp_path / "ws"
    shutil.copytree(laid_out_workspace, ws, symlinks=True)
    before = visible_files(ws)
    lock = Workspace(ws).lock
    earlier_holder = lock.read_text() if lock.is_file() else None

    def working() -> bool:  # the layout holds the lock: past its start-up, at work (about a second of it)
        return lock.is_file() and lock.read_text() not in ("", earlier_holder)

    code, err = interrupt(["layout", str(ws), "--voxel-size", "0.06"], tmp_path, working, how, after=0.2)
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert visible_files(ws) == before
    assert not [p for p in ws.iterdir() if p.name.startswith(".layout")]


def test_kill_9_while_registering(registered_workspace, registration_take: Path, tmp_path: Path):
    """kill -9 while registering again: the previous registration stays whole."""
    ws = copy_workspace(registered_workspace[0], registration_take, tmp_path)
    before = visible_files(ws)
    code, _ = interrupt(
        ["register", str(ws), "--camera-height", "1.6"], tmp_path, lambda: True, signal.SIGKILL, after=8
    )
    assert code == -signal.SIGKILL
    assert visible_files(ws) == before


def test_pycolmap_keeps_the_sigterm_handler():
    """pycolmap's glog would turn SIGTERM into a stack trace and an instant death; every product module
    imports it through reshoot.geometry.pycolmap_import, which keeps the process's handler."""
    from conftest import REPO

    code = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(5))\n"
        "from reshoot.geometry.pycolmap_import import pycolmap\n"
        "os.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(5)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 5
    bare = [
        str(p.relative_to(REPO))
        for folder in ("reshoot", "geometry", "datasets", "model", "cli")
        for p in (REPO / folder).rglob("*.py")
        if p.name != "pycolmap_import.py"
        and any(line.strip() == "import pycolmap" for line in p.read_text().splitlines())
    ]
    assert not bare, f"import pycolmap through reshoot.geometry.pycolmap_import in {bare}"


def test_an_interrupt_python_could_not_raise_is_signalled_again(monkeypatch):
    """An interrupt that lands where Python cannot raise (logging's at-fork callback: "Exception ignored
    in ...") is not lost with a traceback: the CLI's unraisable hook signals it again."""
    import types

    from reshoot.cli import app as cli

    monkeypatch.setattr(cli, "_signals", [])
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: got.append(number))
    try:
        cli._interrupt_again(types.SimpleNamespace(exc_value=KeyboardInterrupt()))
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert got == [signal.SIGINT]


@pytest.fixture(scope="module")
def shot_workspace(laid_out_workspace: Path, tmp_path_factory) -> Path:
    """A copy of the laid-out workspace whose shot "top" went through shoot, condition, synthesize and check
    (through the stage runner)."""
    from reshoot.pipeline import CheckOptions, ConditionOptions, ShootOptions, SynthesizeOptions
    from reshoot.pipeline import stages as pipeline_stages
    from reshoot.stage import run_stage as run

    ws = tmp_path_factory.mktemp("kill_shot") / "ws"
    shutil.copytree(laid_out_workspace, ws, symlinks=True)
    table = pipeline_stages()
    for name, options in (
        ("shoot", ShootOptions(description="overhead wide")),
        ("condition", ConditionOptions()),
        ("synthesize", SynthesizeOptions()),
        ("check", CheckOptions()),
    ):
        run(Workspace(ws), table[name], "top", options)
    return ws


def _stop_at(what: str):
    def progress(step, done, total, **info):
        if step == what and done == 1:
            raise KeyboardInterrupt

    return progress


@pytest.mark.parametrize(
    ("stage", "step"), [("condition", "conditioning"), ("synthesize", "synthesizing"), ("check", "checking")]
)
def test_ctrl_c_in_a_shot_stage_keeps_its_previous_outputs(shot_workspace: Path, tmp_path: Path, stage, step):
    """Ctrl-C while a shot's stage works: its previous outputs and manifest are as they were, and no
    temporary file is left."""
    from reshoot.pipeline import CheckOptions, ConditionOptions, SynthesizeOptions, stages
    from reshoot.stage import run_stage as run

    ws = tmp_path / "ws"
    shutil.copytree(shot_workspace, ws, symlinks=True)
    before = visible_files(ws)
    manifest = Workspace(ws).manifest(f"{stage}@top").read_bytes()
    options = {"condition": ConditionOptions(), "synthesize": SynthesizeOptions(), "check": CheckOptions()}[stage]
    with pytest.raises(KeyboardInterrupt):
        run(Workspace(ws), stages()[stage], "top", options, _stop_at(step))
    assert visible_files(ws) == before
    assert Workspace(ws).manifest(f"{stage}@top").read_bytes() == manifest
    assert not [p for p in Workspace(ws).shot("top").folder.iterdir() if p.name.startswith(".")]


def test_synthesize_interrupted_while_renaming_leaves_no_record_of_a_finished_run(
    shot_workspace: Path, tmp_path: Path, monkeypatch
):
    """Killed between putting its video and its frames in place (the worst moment): synthesis.json, the
    record of a finished run, is gone rather than vouching for a mix, and the stage is not done."""
    import reshoot.geometry.files as files
    from reshoot.pipeline import SynthesizeOptions, stages
    from reshoot.stage import run_stage as run

    ws = tmp_path / "ws"
    shutil.copytree(shot_workspace, ws, symlinks=True)
    shot = Workspace(ws).shot("top")
    frames = {p.name: p.read_bytes() for p in shot.frames.iterdir()}
    replace = files.os.replace

    def interrupted_after_the_video(source, target):
        replace(source, target)
        if Path(target) == shot.video:
            raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted_after_the_video)
    with pytest.raises(KeyboardInterrupt):
        run(Workspace(ws), stages()["synthesize"], "top", SynthesizeOptions())
    monkeypatch.setattr(files.os, "replace", replace)
    assert not shot.synthesis.exists()
    assert {p.name: p.read_bytes() for p in shot.frames.iterdir()} == frames  # the old frames, whole
    out = subprocess.run([*RESHOOT, "status", str(ws), "--json"], capture_output=True, text=True)
    states = {s["stage"]: s["status"] for s in json.loads(out.stdout)["stages"]}
    assert states["synthesize@top"] != "done" and states["check@top"] != "done", states
