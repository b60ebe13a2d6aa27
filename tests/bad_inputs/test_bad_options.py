"""Options are checked before any work, with one message naming the option."""

from __future__ import annotations

import bad_inputs_support as support
import pytest
from bad_inputs_support import refused

# the fixtures of bad_inputs_support (a plain module, not a conftest: tests/conftest.py is imported as
# `conftest` by other tests)
base_footage, footage = support.base_footage, support.footage
base_workspace, workspace = support.base_workspace, support.workspace


@pytest.mark.parametrize(
    "description, says",
    [
        ("", ("describe the shot",)),
        ("   ", ("describe the shot",)),
        ("xqzzt blorf frobnicate", ("'xqzzt' is not understood", "understood:")),
        ("close up on character_9", ("'character_9' is not understood", "entities: character_1, prop_1")),
        ("wide " * 2048, ("10240 characters", "at most 1000")),
    ],
    ids=["empty", "blank", "gibberish", "unknown-entity", "10kB"],
)
def test_bad_shot_descriptions(capsys, workspace, description, says):
    result = refused(capsys, workspace, *support.shoot_args(workspace, description), says=says)
    assert len(result.err) < 3000, "the message repeats what it was given at length"


def test_frames_backwards(capsys, workspace):
    refused(
        capsys,
        workspace,
        *support.shoot_args(workspace, "overhead wide", "--frames", "50:10"),
        says=("50:10", "b after a"),
    )


def test_shot_of_60000_pixels(capsys, workspace):
    refused(
        capsys,
        workspace,
        *support.shoot_args(workspace, "overhead wide", "--size", "60000x60000"),
        says=("60000x60000", "16384"),
    )


@pytest.mark.parametrize("name", ["../escape", "two words", ".hidden", "a/b", pytest.param("x" * 65, id="65-chars")])
def test_shot_names_that_are_not_file_names(capsys, workspace, name):
    refused(
        capsys,
        workspace,
        *support.shoot_args(workspace, "overhead wide", name=name),
        says=("shot name", "not a valid name"),
    )


def test_revising_a_shot_that_does_not_exist(capsys, workspace):
    refused(capsys, workspace, "revise", workspace, "nope", "higher", "--no-render", says=("'nope'", "does not exist"))


@pytest.mark.parametrize(
    "option", [["--downscale", "0"], ["--downscale", "-2"], ["--voxel-size", "0"], ["--voxel-size", "nan"]]
)
def test_layout_options(capsys, workspace, option):
    refused(capsys, workspace, "layout", workspace, *option, says=(option[0],))


def test_layout_voxel_size_that_would_take_forever(capsys, workspace):
    refused(
        capsys,
        workspace,
        "layout",
        workspace,
        "--voxel-size",
        "0.0001",
        says=("--voxel-size 0.0001", "voxels", "at least"),
    )


def test_reconstruct_voxel_size_that_would_take_forever(capsys, workspace):
    refused(capsys, workspace, "reconstruct", workspace, "--voxel-size", "0.0001", says=("--voxel-size", "voxels"))


@pytest.mark.parametrize("height", ["-1.6", "nan", "a_wide=-2", "0"])
def test_register_camera_heights(capsys, workspace, height):
    refused(capsys, workspace, "register", workspace, "--camera-height", height, says=("--camera-height",))


@pytest.mark.parametrize(
    "threshold", ["found_score=nan", "placement_fail_px=-3", "direction_span=0", "placement_fail_px=inf", "nonsense=1"]
)
def test_check_thresholds(capsys, workspace, threshold):
    refused(capsys, workspace, "check", workspace, "overhead", "--threshold", threshold, says=(threshold,))


@pytest.mark.parametrize("size", ["0x64", "96x-64", "96x63", "96", "60000x60000"])
def test_synth_sizes(capsys, tmp_path, size):
    refused(capsys, tmp_path, "synth", tmp_path / "take", "--size", size, says=(size.split("x")[0],))
