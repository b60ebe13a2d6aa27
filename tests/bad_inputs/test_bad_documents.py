"""Broken, foreign and future workspace documents are refused with one message naming the file, and the
workspace is left as it was."""

from __future__ import annotations

import json
import shutil

import bad_inputs_support as support
import pytest
from bad_inputs_support import layout_document, refused, run, shoot_args, write_json

# the fixtures of bad_inputs_support (a plain module, not a conftest: tests/conftest.py is imported as
# `conftest` by other tests)
base_footage, footage = support.base_footage, support.footage
base_workspace, workspace = support.base_workspace, support.workspace


def test_settings_with_a_toml_syntax_error(capsys, workspace):
    (workspace / "reshoot.toml").write_text(
        (workspace / "reshoot.toml").read_text().replace("fps = 24.0", "fps = = 24")
    )
    refused(capsys, workspace, "shots", workspace, says=("reshoot.toml", "not valid TOML"))


def test_settings_of_a_future_version(capsys, workspace):
    (workspace / "reshoot.toml").write_text(
        (workspace / "reshoot.toml").read_text().replace("version = 1", "version = 3")
    )
    refused(capsys, workspace, "shots", workspace, says=("reshoot.toml", "version 3"))


def test_not_a_workspace(capsys, tmp_path):
    refused(capsys, tmp_path, "shots", tmp_path, says=("not a reshoot workspace", "reshoot init"))


@pytest.mark.parametrize("document", ["registration/cameras.json", "shots/overhead/shot.json"])
def test_document_of_a_future_version(capsys, workspace, document):
    path = workspace / document
    path.write_text(path.read_text().replace('"version": 1', '"version": 2', 1))
    shot = ["overhead"] if document.startswith("shots") else []
    refused(capsys, workspace, "export", workspace, *shot, says=(document.split("/")[-1], "version 2", "upgrade"))


@pytest.mark.parametrize("document", ["registration/cameras.json", "shots/overhead/shot.json"])
def test_corrupt_document(capsys, workspace, document):
    path = workspace / document
    path.write_text(path.read_text()[:-40])
    shot = ["overhead"] if document.startswith("shots") else []
    refused(capsys, workspace, "export", workspace, *shot, says=(document.split("/")[-1], "not valid JSON"))


def test_layout_of_a_future_version(capsys, workspace):
    write_json(workspace / "layout.json", layout_document(version=4))
    refused(capsys, workspace, *shoot_args(workspace, "overhead wide", name="other"), says=("layout.json", "version 4"))


def test_corrupt_layout(capsys, workspace):
    (workspace / "layout.json").write_text(json.dumps(layout_document())[:100])
    refused(
        capsys, workspace, *shoot_args(workspace, "overhead wide", name="other"), says=("layout.json", "not valid JSON")
    )


def test_layout_entity_without_boxes(capsys, workspace):
    layout = layout_document()
    del layout["entities"][0]["frames"][2]["box_max"]
    write_json(workspace / "layout.json", layout)
    refused(
        capsys,
        workspace,
        *shoot_args(workspace, "overhead wide", name="other"),
        says=("layout.json", "character_1", "box_max"),
    )


def test_layout_entity_named_like_a_path(capsys, workspace):
    write_json(workspace / "layout.json", layout_document(name="../maya"))
    refused(
        capsys,
        workspace,
        *shoot_args(workspace, "overhead wide", name="other"),
        says=("layout.json", "'../maya'", "rename it"),
    )


def test_layout_stage_keeps_a_hand_edited_layout_that_does_not_read(capsys, workspace):
    """It used to be silently replaced, losing the names given in it."""
    (workspace / "layout.json").write_text((workspace / "layout.json").read_text().replace('"prop_1"', '"prop_1",,'))
    refused(capsys, workspace, "layout", workspace, says=("layout.json", "not valid JSON", "fix the file"))


def test_copied_shot_folder_is_a_shot_of_its_own(capsys, workspace):
    """`cp -r shots/overhead shots/variant`: its shot.json still names "overhead" (a KeyError in check)."""
    shutil.copytree(workspace / "shots" / "overhead", workspace / "shots" / "variant")
    exported = run(capsys, "export", workspace, "variant", "--format", "json")
    assert exported.code == 0, exported.err
    written = json.loads((workspace / "shots" / "variant" / "export" / "variant.json").read_text())
    assert [c["name"] for c in written["cameras"]] == ["variant"]
    listing = run(capsys, "shots", workspace)
    assert listing.code == 0 and "variant" in listing.err, listing.err
    # check gets past the shot (no KeyError) to what is really missing: the frames
    refused(capsys, workspace, "check", workspace, "variant", says=("variant", "frames are missing", "synthesize"))


def test_shot_json_with_two_cameras(capsys, workspace):
    path = workspace / "shots" / "overhead" / "shot.json"
    doc = json.loads(path.read_text())
    doc["cameras"].append({**doc["cameras"][0], "name": "second"})
    write_json(path, doc)
    refused(capsys, workspace, "export", workspace, "overhead", says=("shot.json", "one camera"))
