"""`--overwrite` replaces only what the command made; camera names never reach outside the output folder."""

from __future__ import annotations

import json
import os

import bad_inputs_support as support
import pytest
from bad_inputs_support import EYES, camera_entry, cameras_document, digest, refused, run, write_json

# the fixtures of bad_inputs_support (a plain module, not a conftest: tests/conftest.py is imported as
# `conftest` by other tests)
base_footage, footage = support.base_footage, support.footage
base_workspace, workspace = support.base_workspace, support.workspace


def _cameras(tmp_path, *entries, version: int = 1):
    return write_json(tmp_path / "render_cameras.json", cameras_document(list(entries), version))


def _render(workspace, cameras, out, *extra):
    return (
        "render",
        workspace,
        "--cameras",
        cameras,
        "--out",
        out,
        "--frames",
        "0:1",
        "--backend",
        "reference",
        *extra,
    )


def test_export_over_a_workspace_is_refused(capsys, workspace):
    """`reshoot export WS SHOT --out WS --overwrite` deleted the whole workspace (exit 0)."""
    refused(
        capsys,
        workspace.parent,
        "export",
        workspace,
        "overhead",
        "--out",
        workspace,
        "--overwrite",
        says=(str(workspace), "workspace", "nothing was changed"),
    )


def test_export_over_a_folder_it_did_not_make_is_refused(capsys, workspace, tmp_path):
    mine = tmp_path / "deliveries"
    mine.mkdir()
    (mine / "edit.otio").write_text("the editor's timeline")
    refused(
        capsys,
        tmp_path,
        "export",
        workspace,
        "overhead",
        "--out",
        mine,
        "--overwrite",
        says=("deliveries", "reshoot-output", "nothing was changed"),
    )


def test_export_over_its_own_export_is_allowed(capsys, workspace, tmp_path):
    out = tmp_path / "export"
    assert run(capsys, "export", workspace, "overhead", "--out", out, "--format", "chan").code == 0
    result = run(capsys, "export", workspace, "overhead", "--out", out, "--format", "json", "--overwrite")
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == [".reshoot-output.json", "overhead.json"]


def test_export_over_its_export_with_a_file_added_is_refused(capsys, workspace, tmp_path):
    out = tmp_path / "export"
    assert run(capsys, "export", workspace, "overhead", "--out", out, "--format", "chan").code == 0
    (out / "notes.txt").write_text("do not lose me")
    refused(capsys, tmp_path, "export", workspace, "overhead", "--out", out, "--overwrite", says=("notes.txt",))


def test_export_default_folder_without_marker_is_still_replaced(capsys, workspace):
    """Exports made before the marker existed, at the default place, are replaced as before."""
    old = workspace / "shots" / "overhead" / "export"
    old.mkdir()
    (old / "overhead.json").write_text("{}")
    result = run(capsys, "export", workspace, "overhead", "--format", "chan", "--overwrite")
    assert result.code == 0, result.err
    assert not (old / "overhead.json").exists() and (old / "overhead.chan").is_file()


def test_synth_over_a_workspace_is_refused(capsys, workspace):
    """`reshoot synth WS --overwrite` deleted the whole workspace (exit 0)."""
    refused(
        capsys,
        workspace.parent,
        "synth",
        workspace,
        "--frames",
        "4",
        "--size",
        "96x64",
        "--cameras",
        "2",
        "--overwrite",
        says=("synthetic-take", "nothing was changed"),
    )


def test_synth_over_a_take_holding_other_files_is_refused(capsys, tmp_path):
    take = tmp_path / "take"
    write_json(take / "take.json", {"format": "reshoot/synthetic-take", "version": 1})
    (take / "ws").mkdir()
    (take / "ws" / "reshoot.toml").write_text("")
    refused(capsys, tmp_path, "synth", take, "--frames", "4", "--size", "96x64", "--overwrite", says=("ws",))


def test_render_camera_named_like_a_path(capsys, workspace, tmp_path):
    """A camera "../victim" made render delete the sibling folder victim/ and write outside OUT."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "precious.txt").write_text("keep")
    cameras = _cameras(tmp_path, camera_entry("../victim", EYES["a_wide"]))
    refused(
        capsys, tmp_path, *_render(workspace, cameras, tmp_path / "out", "--overwrite"), says=("'../victim'", "rename")
    )


def test_render_into_a_workspace_is_refused(capsys, workspace, tmp_path):
    """A camera named "shots" with --out WS replaced WS/shots/."""
    cameras = _cameras(tmp_path, camera_entry("shots", EYES["a_wide"]))
    refused(
        capsys,
        workspace,
        *_render(workspace, cameras, workspace, "--overwrite"),
        says=("is a reshoot workspace", "renders"),
    )


def test_render_camera_named_like_a_workspace_beside_out(capsys, workspace):
    """--out is the folder holding the workspace and a camera has the workspace's name."""
    cameras = _cameras(workspace.parent, camera_entry(workspace.name, EYES["a_wide"]))
    refused(
        capsys,
        workspace.parent,
        *_render(workspace, cameras, workspace.parent, "--overwrite"),
        says=(str(workspace), "not made by reshoot render"),
    )


def test_render_over_a_folder_it_did_not_make_is_refused(capsys, workspace, tmp_path):
    (tmp_path / "out" / "a_wide").mkdir(parents=True)
    (tmp_path / "out" / "a_wide" / "000000.png").write_bytes(b"a plate the crew shot")
    cameras = _cameras(tmp_path, camera_entry("a_wide", EYES["a_wide"]))
    refused(
        capsys,
        tmp_path,
        *_render(workspace, cameras, tmp_path / "out", "--overwrite"),
        says=("a_wide", "not made by reshoot render", "nothing was changed"),
    )


def test_render_again_over_its_own_output(capsys, workspace, tmp_path):
    cameras = _cameras(tmp_path, camera_entry("a_wide", EYES["a_wide"]))
    out = tmp_path / "out"
    assert run(capsys, *_render(workspace, cameras, out)).code == 0
    first = digest(out)
    assert ".reshoot-output.json" in os.listdir(out / "a_wide")
    refused(capsys, tmp_path, *_render(workspace, cameras, out), says=("--overwrite",))
    again = run(capsys, *_render(workspace, cameras, out, "--overwrite"))
    assert again.code == 0, again.err
    assert digest(out) == first


def test_render_camera_with_a_zero_focal_length(capsys, workspace, tmp_path):
    cameras = _cameras(tmp_path, camera_entry("a_wide", EYES["a_wide"], focal=0.0))
    refused(capsys, tmp_path, *_render(workspace, cameras, tmp_path / "out"), says=("focal", "a_wide"))


def test_render_camera_of_60000_pixels(capsys, workspace, tmp_path):
    cameras = _cameras(tmp_path, camera_entry("a_wide", EYES["a_wide"], size=(60000, 60000)))
    refused(capsys, tmp_path, *_render(workspace, cameras, tmp_path / "out"), says=("60000x60000", "16384"))


def test_render_cameras_of_a_future_version(capsys, workspace, tmp_path):
    cameras = _cameras(tmp_path, camera_entry("a_wide", EYES["a_wide"]), version=9)
    refused(capsys, tmp_path, *_render(workspace, cameras, tmp_path / "out"), says=("version 9",))


def test_render_frames_backwards(capsys, workspace, tmp_path):
    cameras = _cameras(tmp_path, camera_entry("a_wide", EYES["a_wide"]))
    args = ["render", workspace, "--cameras", cameras, "--out", tmp_path / "out", "--frames", "50:10"]
    refused(capsys, tmp_path, *args, says=("50:10",))


def test_output_under_a_file(capsys, workspace, tmp_path):
    (tmp_path / "a_file").write_text("")
    refused(
        capsys, tmp_path, "export", workspace, "overhead", "--out", tmp_path / "a_file" / "export", says=("a_file",)
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_unwritable_output_folder(capsys, workspace, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        refused(
            capsys, tmp_path, "export", workspace, "overhead", "--out", locked / "export", says=("permission denied",)
        )
    finally:
        locked.chmod(0o700)


def test_export_writes_nothing_when_a_format_is_unknown(capsys, workspace, tmp_path):
    refused(
        capsys,
        tmp_path,
        "export",
        workspace,
        "overhead",
        "--format",
        "fbx",
        "--out",
        tmp_path / "x",
        says=("fbx", "choose from"),
    )
    assert json.loads((workspace / "shots" / "overhead" / "shot.json").read_text())["format"] == "reshoot/cameras"
