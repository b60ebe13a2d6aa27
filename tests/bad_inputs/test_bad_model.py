"""Bad checkpoints and training options are refused before any work; nothing is synthesized from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bad_inputs_support as support
import pytest
from bad_inputs_support import refused, write_json

# the fixtures of bad_inputs_support (a plain module, not a conftest: tests/conftest.py is imported as
# `conftest` by other tests)
base_footage, footage = support.base_footage, support.footage
base_workspace, workspace = support.base_workspace, support.workspace

TINY = Path(__file__).resolve().parents[2] / "model" / "weights" / "tiny"


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A copy of the repository's tiny checkpoint, to spoil."""
    return Path(shutil.copytree(TINY, tmp_path / "checkpoint"))


def _spoil_weights(checkpoint: Path) -> None:
    """One tensor of the weights set to NaN, as a diverged training run leaves them."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(checkpoint / "model.safetensors"), "pt") as handle:
        metadata = handle.metadata()
        state = {name: handle.get_tensor(name) for name in handle.keys()}
    first = sorted(state)[0]
    state[first] = state[first] * float("nan")
    save_file(state, str(checkpoint / "model.safetensors"), metadata=metadata)


def _pickle(checkpoint: Path) -> None:
    """A torch pickle renamed model.safetensors."""
    import torch

    torch.save({"weights": torch.zeros(3)}, checkpoint / "model.safetensors")


def _other_config(checkpoint: Path) -> None:
    doc = json.loads((checkpoint / "config.json").read_text())
    doc["config"]["dim"] = 64
    write_json(checkpoint / "config.json", doc)


@pytest.fixture
def conditioned(workspace) -> Path:
    """The workspace with shot "overhead" marked as conditioned (synthesize reads the checkpoint next)."""
    write_json(
        workspace / "shots" / "overhead" / "conditioning" / "conditioning.json",
        {"format": "reshoot/conditioning", "version": 1, "revision": 0},
    )
    return workspace


@pytest.mark.parametrize(
    "spoil, says",
    [
        (_spoil_weights, ("nan", "black frames", "earlier checkpoint")),
        (_pickle, ("model.safetensors", "not a readable safetensors file")),
        (_other_config, ("does not match",)),
    ],
)
def test_synthesize_refuses_a_bad_checkpoint(capsys, conditioned, checkpoint, spoil, says):
    spoil(checkpoint)
    refused(capsys, conditioned, "synthesize", conditioned, "overhead", "--checkpoint", checkpoint, says=says)


def test_synthesize_without_a_checkpoint(capsys, conditioned, tmp_path):
    refused(
        capsys, conditioned, "synthesize", conditioned, "overhead", "--checkpoint", tmp_path / "none", says=("none",)
    )


def test_adapt_from_a_pickle_is_refused_before_any_work(capsys, workspace, checkpoint):
    _pickle(checkpoint)
    refused(
        capsys, workspace, "train", "--adapt", workspace, "--from", checkpoint, says=("not a readable safetensors",)
    )


@pytest.mark.parametrize(
    "option, says",
    [
        (["--steps", "0"], ("steps",)),
        (["--steps", "-5"], ("steps",)),
        (["--lr", "nan"], ("--lr",)),
        (["--lr", "-0.1"], ("--lr",)),
    ],
)
def test_adapt_options_are_checked_before_any_work(capsys, workspace, option, says):
    refused(capsys, workspace, "train", "--adapt", workspace, *option, says=says)


@pytest.mark.parametrize(
    "option, says",
    [
        (["--steps", "0"], ("steps",)),
        (["--lr", "nan"], ("--lr",)),
        (["--lr", "0"], ("--lr",)),
        (["--from", "somewhere"], ("--adapt",)),
    ],
)
def test_training_options_are_checked_before_episodes_are_built(capsys, tmp_path, option, says):
    refused(capsys, tmp_path, "train", "--out", tmp_path / "out", "--cache", tmp_path / "cache", *option, says=says)
    assert not (tmp_path / "cache").exists(), "episodes were built before the options were checked"


def test_training_out_is_a_file(capsys, tmp_path):
    (tmp_path / "out").write_text("")
    refused(capsys, tmp_path, "train", "--out", tmp_path / "out", "--cache", tmp_path / "cache", says=("is a file",))
    assert not (tmp_path / "cache").exists()


def test_training_out_holds_another_config(capsys, tmp_path, checkpoint):
    refused(
        capsys,
        tmp_path,
        "train",
        "--out",
        checkpoint,
        "--size",
        "small",
        "--cache",
        tmp_path / "cache",
        says=("'tiny'", "--restart"),
    )
    assert not (tmp_path / "cache").exists()


def test_training_out_is_a_workspace(capsys, workspace, tmp_path):
    refused(capsys, workspace, "train", "--out", workspace, "--cache", tmp_path / "cache", says=("workspace",))
