"""`reshoot rate` and `reshoot feedback export`: verdicts and revisions kept for training, and a sensitive
workspace's export that holds no pixels, paths to pixels or geometry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reshoot.cli.app import main
from reshoot.workspace import Workspace


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def _shot_workspace(capsys, take: Path, root: Path, sensitive: bool) -> Path:
    """A workspace with the take's true cameras as its registration and true entities as its layout, and
    a shot "top" revised once (no reconstruction: conditioning is not rendered)."""
    ws = root / ("secret" if sensitive else "open")
    code, _, err = run(capsys, "init", str(ws), "--footage", str(take / "footage"), *(["--sensitive"] * sensitive))
    assert code == 0, err
    Workspace(ws).registration.mkdir()
    shutil.copy(take / "gt" / "cameras.json", Workspace(ws).cameras)
    shutil.copy(take / "gt" / "entities.json", Workspace(ws).layout)
    code, _, err = run(capsys, "shoot", str(ws), "overhead wide", "--name", "top", "--no-render")
    assert code == 0, err
    code, _, err = run(capsys, "revise", str(ws), "top", "higher", "--no-render")
    assert code == 0, err
    return ws


@pytest.mark.parametrize("sensitive", [False, True])
def test_rate_and_export(capsys, small_take: Path, tmp_path: Path, sensitive: bool):
    ws = _shot_workspace(capsys, small_take, tmp_path, sensitive)
    code, _, err = run(
        capsys, "rate", str(ws), "top", "bad", "--frames", "2:5", "--entity", "character_1", "--note", "her feet slide"
    )
    assert code == 0, err
    code, _, err = run(capsys, "rate", str(ws), "top", "good")
    assert code == 0, err
    out = tmp_path / "feedback.jsonl"
    code, printed, err = run(capsys, "feedback", "export", str(ws), "--out", str(out))
    assert code == 0 and printed.strip() == str(out), err
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["kind"], e.get("verdict"), e["revision"]) for e in events] == [
        ("revision", None, 1),
        ("rating", "bad", 1),
        ("rating", "good", 1),
    ]
    assert events[0]["description"] == "higher"
    assert (events[1]["frame_start"], events[1]["frame_stop"], events[1]["entity"]) == (2, 5, "character_1")
    assert (events[2]["frame_start"], events[2]["frame_stop"]) == (0, 10)
    text = out.read_text()
    if sensitive:
        assert "traces only" in err
        assert "her feet slide" not in text and str(tmp_path) not in text and ".png" not in text
        assert not any(k in e for e in events for k in ("shot_file", "frames_folder", "note", "cam_from_world"))
    else:
        assert events[1]["note"] == "her feet slide"
        assert events[1]["frames_folder"] == str(Workspace(ws).shot("top").frames.resolve())


def test_bad_ratings_are_refused(capsys, small_take: Path, tmp_path: Path):
    ws = _shot_workspace(capsys, small_take, tmp_path, False)
    database = Workspace(ws).meta / "feedback.sqlite"
    before = database.read_bytes()
    for args, message in (
        (["top", "great"], "say good or bad"),
        (["nope", "good"], "shot 'nope' does not exist"),
        (["top", "bad", "--frames", "5:50"], "take frames 0:10"),
        (["top", "bad", "--entity", "Maya"], "'Maya' is not in the layout"),
        (["top", "bad", "--note", "x" * 3000], "under 2000"),
    ):
        code, _, err = run(capsys, "rate", str(ws), *args)
        assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err, err
    assert database.read_bytes() == before
    code, _, err = run(capsys, "feedback", "export", str(ws), "--out", str(tmp_path))
    assert code == 2 and "is a folder" in " ".join(err.split())


def test_train_refuses_a_sensitive_workspace(capsys, small_take: Path, tmp_path: Path):
    ws = _shot_workspace(capsys, small_take, tmp_path, True)
    code, _, err = run(capsys, "train", "--adapt", str(ws), "--steps", "1")
    assert code == 2 and "sensitive" in err
