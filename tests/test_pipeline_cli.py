"""`reshoot run` / `reshoot status`, the workspace lock and interrupts, through the command line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import RECONSTRUCT_OPTIONS
from reshoot.cli.app import main
from reshoot.stage import workspace_lock
from reshoot.workspace import Workspace

RESHOOT = [sys.executable, "-m", "reshoot.cli"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def tree_digest(root: Path) -> dict[str, bytes]:
    """Every file under `root` (but the lock and digest cache) and its bytes."""
    skip = {Workspace(root).lock, Workspace(root).meta / "digests.json"}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p not in skip}


@pytest.fixture
def fresh_workspace(capsys, small_take: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    code, _, err = run(
        capsys,
        "init",
        str(ws),
        "--footage",
        str(small_take / "footage"),
        "--set",
        "register.camera_height=1.6",
        "--set",
        "reconstruct.set_iterations=300",
    )
    assert code == 0, err
    return ws


def test_init_keeps_stage_settings(capsys, fresh_workspace: Path, small_take: Path):
    doc = tomllib.loads((fresh_workspace / "reshoot.toml").read_text())
    assert doc["stages"] == {"register": {"camera_height": 1.6}, "reconstruct": {"set_iterations": 300}}
    code, _, err = run(
        capsys,
        "init",
        str(fresh_workspace),
        "--footage",
        str(small_take / "footage"),
        "--force",
        "--set",
        "layout.downscale=3",
    )
    assert code == 0, err
    doc = tomllib.loads((fresh_workspace / "reshoot.toml").read_text())
    assert doc["stages"]["layout"] == {"downscale": 3} and doc["stages"]["register"] == {"camera_height": 1.6}
    before = tree_digest(fresh_workspace)
    for bad, message in (
        ("reconstruct.set_iteration=5", "has no setting 'set_iteration'"),
        ("bogus.x=1", "unknown stage 'bogus'"),
        ("layout.downscale=lots", "downscale = 'lots'"),
    ):
        code, _, err = run(
            capsys, "init", str(fresh_workspace), "--footage", str(small_take / "footage"), "--force", "--set", bad
        )
        assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err, err
    assert tree_digest(fresh_workspace) == before


def test_status_of_a_fresh_workspace(capsys, fresh_workspace: Path):
    code, out, err = run(capsys, "status", str(fresh_workspace), "--json", "--shot", "top=overhead wide")
    assert code == 0, err
    states = {s["stage"]: (s["status"], s["reason"]) for s in json.loads(out)["stages"]}
    assert list(states) == [
        "register",
        "reconstruct",
        "layout",
        "shoot@top",
        "condition@top",
        "synthesize@top",
        "check@top",
        "report",
    ]
    assert states["register"] == ("missing", "registration is missing")
    assert all(status == "missing" for status, _ in states.values())
    code, out, _ = run(capsys, "status", str(fresh_workspace), "--json", "--until", "layout")
    assert [s["stage"] for s in json.loads(out)["stages"]] == ["register", "reconstruct", "layout"]
    code, _, err = run(capsys, "status", str(fresh_workspace), "--until", "render")
    assert code == 2 and "--until 'render'" in err
    code, _, err = run(capsys, "status", str(fresh_workspace), "--set", "reconstruct.set_iterations=many")
    assert code == 2 and "set_iterations = 'many'" in " ".join(err.split())


def test_a_second_writer_is_refused(capsys, fresh_workspace: Path):
    before = tree_digest(fresh_workspace)
    with workspace_lock(Workspace(fresh_workspace), command="reshoot reconstruct"):
        for args in (
            ["layout", str(fresh_workspace)],
            ["run", str(fresh_workspace)],
            ["shoot", str(fresh_workspace), "overhead wide"],
        ):
            code, _, err = run(capsys, *args)
            text = " ".join(err.split())
            assert code == 2 and "being written by another reshoot" in text and "reshoot reconstruct" in text, err
            assert "Traceback" not in err
        started = time.monotonic()
        code, _, err = run(capsys, "--wait", "1", "layout", str(fresh_workspace))
        assert code == 2 and time.monotonic() - started >= 1.0
    assert tree_digest(fresh_workspace) == before


def test_sigterm_interrupts_cleanly(tmp_path: Path):
    """SIGTERM is an interrupt: exit 130, a message, and nothing half-written (the take's temporary folder
    is removed)."""
    out = tmp_path / "take"
    process = subprocess.Popen(
        [*RESHOOT, "synth", str(out), "--frames", "48", "--size", "320x180"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".take.") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_reshoot_module_entry_point_exists():
    assert subprocess.run([*RESHOOT, "--version"], capture_output=True, text=True).stdout.startswith("reshoot ")


def test_run_makes_a_shot_and_then_does_nothing(capsys, laid_out_workspace: Path, tmp_path: Path):
    """On a registered, reconstructed and laid-out workspace (made through the stage runner): `run --shot`
    makes the shot's stages and the report and skips the rest; a second run does no work; changing one
    option reruns exactly the stages after it."""
    ws = tmp_path / "ws"
    shutil.copytree(laid_out_workspace, ws, symlinks=True)
    # the fixture's settings, so that its register / reconstruct / layout are up to date for this run
    heights = json.loads(Workspace(ws).manifest("register").read_text())["options"]["scale"]["camera_heights"]
    same = ["--set", "register.camera_height={" + ", ".join(f"{k} = {v!r}" for k, v in heights.items()) + "}"]
    for name in (
        "downscale",
        "set_iterations",
        "first_actor_iterations",
        "actor_iterations",
        "refine_actor_iterations",
        "checkpoint_every",
    ):
        same += ["--set", f"reconstruct.{name}={getattr(RECONSTRUCT_OPTIONS, name)}"]
    same += ["--set", "reconstruct.frames={}:{}".format(*RECONSTRUCT_OPTIONS.frames)]
    code, out, err = run(capsys, "run", str(ws), *same, "--shot", "top=overhead wide", "--json")
    assert code in (0, 1), err  # 1: the check fails the shot (a small reconstruction)
    actions = {s["stage"]: s["action"] for s in json.loads(out)["stages"]}
    assert actions == {
        "register": "skipped",
        "reconstruct": "skipped",
        "layout": "skipped",
        "shoot@top": "ran",
        "condition@top": "ran",
        "synthesize@top": "ran",
        "check@top": "failed" if code == 1 else "ran",
        "report": "ran",
    }
    assert Workspace(ws).report_page.is_file() and Workspace(ws).shot("top").check.is_file()
    before = tree_digest(ws)

    code_again, out, err = run(capsys, "run", str(ws), *same, "--json")
    assert code_again == code, err
    assert {s["action"] for s in json.loads(out)["stages"]} == {"skipped"}
    assert tree_digest(ws) == before

    code, out, err = run(capsys, "run", str(ws), *same, "--json", "--set", "check.thresholds=agreement_error=0.3")
    ran = [s["stage"] for s in json.loads(out)["stages"] if s["action"] != "skipped"]
    assert ran == ["check@top", "report"], err
    code, out, _ = run(capsys, "status", str(ws), *same, "--json")
    states = {s["stage"]: (s["status"], s["reason"]) for s in json.loads(out)["stages"]}
    assert states["check@top"][0] == "done"  # a shot's stage keeps the settings of its last run

    (Workspace(ws).layout).write_text(Workspace(ws).layout.read_text().replace("character_1", "Maya"))
    code, out, _ = run(capsys, "status", str(ws), *same, "--json")
    states = {s["stage"]: (s["status"], s["reason"]) for s in json.loads(out)["stages"]}
    assert states["layout"][0] == "done"  # names in layout.json are the user's to edit
    assert states["shoot@top"] == ("stale", "its input layout changed")

    code, _, err = run(capsys, "run", str(ws), *same, "--shot", "top=high angle wide")
    assert code == 2 and "reshoot revise" in " ".join(err.split()), err

    # A stage's settings in reshoot.toml are its options: one added leaves the stages before it done.
    settings = Workspace(ws).settings_file
    settings.write_text(settings.read_text() + "\n[stages.layout]\nvoxel_size = 0.06\n")
    code, out, _ = run(capsys, "status", str(ws), *same, "--json")
    states = {s["stage"]: (s["status"], s["reason"]) for s in json.loads(out)["stages"]}
    assert states["register"] == states["reconstruct"] == ("done", ""), states
    assert states["layout"][0] == "stale" and states["layout"][1].startswith("option voxel_size changed"), states
