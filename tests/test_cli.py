"""The `reshoot` command line: init writes the workspace contract, errors are messages, not tracebacks."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from reshoot.cli.app import main
from reshoot.workspace import load_workspace


def run(capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr with its whitespace runs made single spaces: rich wraps a message at the
    console's width, which falls inside a phrase at a path length of its own)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, " ".join(out.err.split())


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == "reshoot 0.1.0"
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "init" in out and "synth" in out


def test_help_does_not_load_torch():
    code = "import sys; from reshoot.cli.app import app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_init_writes_the_workspace(capsys, small_take: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    code, out, err = run(capsys, "init", str(ws), "--footage", str(small_take / "footage"), "--sensitive")
    assert code == 0, err
    assert out.strip() == str(ws / "reshoot.toml")
    doc = tomllib.loads((ws / "reshoot.toml").read_text())
    assert doc["format"] == "reshoot/workspace" and doc["version"] == 1
    assert doc["footage"]["cameras"] == ["a_wide", "b_medium", "c_medium", "d_reverse"]
    assert doc["footage"]["frames"] == 10 and doc["footage"]["fps"] == 24.0
    assert doc["privacy"]["sensitive"] is True and doc["scale"]["source"] == "arbitrary"

    settings = load_workspace(ws)
    assert settings.footage == (small_take / "footage").resolve()
    assert settings.sensitive and settings.cameras[0] == "a_wide"

    # A second init is refused (nothing changes) unless --force.
    before = (ws / "reshoot.toml").read_text()
    code, _, err = run(capsys, "init", str(ws), "--footage", str(small_take / "footage"))
    assert code == 2 and "already exists" in err and (ws / "reshoot.toml").read_text() == before
    code, _, err = run(
        capsys, "init", str(ws), "--footage", str(small_take / "footage"), "--force", "--offset", "b_medium=2"
    )
    assert code == 0, err
    settings = load_workspace(ws)
    assert settings.offsets["b_medium"] == 2 and settings.frames == 8 and settings.first_frame == 2
    assert settings.sensitive, "--force never un-marks a sensitive workspace"


def test_init_with_a_calibration(capsys, small_take: Path, tmp_path: Path):
    """The generator's ground-truth cameras name two cameras without footage: a clear error."""
    ws = tmp_path / "ws"
    code, _, err = run(
        capsys,
        "init",
        str(ws),
        "--footage",
        str(small_take / "footage"),
        "--calibration",
        str(small_take / "gt" / "cameras.json"),
    )
    assert code == 2 and "overhead" in err and "no footage" in err
    assert not ws.exists(), "nothing is written for bad input"


@pytest.mark.parametrize(
    "args, message",
    [
        (["init", "{ws}", "--footage", "{missing}"], "no such folder"),
        (["init", "{ws}", "--footage", "{empty}"], "no footage found"),
        (["init", "{ws}", "--footage", "{empty}", "--offset", "cam"], "CAMERA=FRAMES"),
        (["synth", "{ws}", "--size", "641x360"], "must be even"),
        (["synth", "{ws}", "--size", "big"], "WIDTHxHEIGHT"),
        (["synth", "{ws}", "--characters", "7"], "characters must be 1 to 3"),
        (["synth", "{ws}", "--fps", "24,b_medium=fast"], "CAMERA=RATE"),
        (["synth", "{ws}", "--fps", "24,b_medium=29.97"], "whole-number rates"),
        (["synth", "{ws}", "--offsets", "z_crane=3"], "not a camera"),
        (["synth", "{ws}", "--timecode", "noon"], "HH:MM:SS:FF"),
        (["synth", "{ws}", "--pace", "brisk"], "pace must be one of"),
        (["init", "{ws}", "--footage", "{empty}", "--sync", "clap"], "choose one of auto"),
        (["register", "{ws}", "--known-distance", "a_wide=2"], "CAMERA_A:CAMERA_B=METRES"),
        (["register", "{ws}", "--camera-height", "a_wide=tall"], "METRES or CAMERA=METRES"),
        (["register", "{ws}"], "not a reshoot workspace"),
        (["register", "{ws}", "--calibration-mode", "maybe"], "calibration mode must be one of"),
    ],
)
def test_bad_input_is_a_message_and_exit_code_2(capsys, tmp_path: Path, args, message):
    (tmp_path / "empty").mkdir()
    values = dict(ws=tmp_path / "ws", missing=tmp_path / "missing", empty=tmp_path / "empty")
    code, _, err = run(capsys, *[a.format(**values) for a in args])
    assert code == 2, err
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err
    assert not (tmp_path / "ws").exists()


def test_load_workspace_errors(tmp_path: Path):
    from reshoot import FormatError, InputError

    with pytest.raises(InputError, match="not a reshoot workspace"):
        load_workspace(tmp_path)
    (tmp_path / "reshoot.toml").write_text('format = "something/else"\nversion = 1\n')
    with pytest.raises(FormatError, match="reshoot/workspace"):
        load_workspace(tmp_path)
    (tmp_path / "reshoot.toml").write_text("this is [not toml")
    with pytest.raises(FormatError, match="not valid TOML"):
        load_workspace(tmp_path)


def test_synth_command_writes_a_take(capsys, tmp_path: Path):
    out_dir = tmp_path / "take"
    code, out, err = run(
        capsys,
        "synth",
        str(out_dir),
        "--cameras",
        "2",
        "--frames",
        "2",
        "--size",
        "96x64",
        "--characters",
        "1",
        "--props",
        "2",
        "--seed",
        "4",
    )
    assert code == 0, err
    assert out.strip() == str(out_dir)
    assert sorted(p.name for p in (out_dir / "footage").iterdir()) == ["a_wide.mp4", "b_medium.mp4"]
    assert (out_dir / "gt" / "frames" / "overhead" / "000001.png").is_file()


def test_synth_command_makes_a_rig_to_sync(capsys, tmp_path: Path):
    """--fps CAM=R, --offsets, --timecode and --audio reach the take (their effects: tests/test_sync.py)."""
    import json

    out_dir = tmp_path / "take"
    args = ["synth", str(out_dir), "--cameras", "2", "--frames", "3", "--size", "64x36", "--characters", "1"]
    args += ["--props", "2", "--fps", "24, b_medium=30", "--offsets", "b_medium=2", "--timecode", "01:00:00:00"]
    code, _, err = run(capsys, *args, "--audio")
    assert code == 0, err
    take = json.loads((out_dir / "take.json").read_text())
    assert take["fps"] == 30.0 and take["camera_fps"] == {"a_wide": 24.0, "b_medium": 30.0}
    assert take["offsets"] == {"a_wide": -2, "b_medium": 0} and take["timecode"] == "01:00:00:00"
    assert take["clap_seconds"] is not None
