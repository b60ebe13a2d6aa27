"""Shared fixtures. Everything runs on CPU; tests that need CUDA are marked `gpu` and skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The project's shared folder sits beside the repository; RESHOOT_SHARED_DATA points elsewhere.
SHARED_DATA = Path(os.environ.get("RESHOOT_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real multi-view images (read-only)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


# A small synthetic take, made once per test session: 4 production cameras + 2 ground-truth cameras.
SMALL_TAKE = dict(cameras=4, frames=10, width=224, height=128, characters=2, props=4, seed=3)


def _make_take(tmp_path_factory, name: str, settings: dict) -> Path:
    from reshoot.datasets.synthetic import SynthConfig, generate_take

    out = tmp_path_factory.mktemp("takes") / name
    generate_take(out, SynthConfig(**settings))
    return out


@pytest.fixture(scope="session")
def small_take(tmp_path_factory) -> Path:
    return _make_take(tmp_path_factory, "small", SMALL_TAKE)


# A take for registration: the default resolution (the bars are set for it), a survey, few frames.
REGISTRATION_TAKE = dict(cameras=4, frames=12, width=640, height=360, characters=2, props=4, seed=7)


@pytest.fixture(scope="session")
def registration_take(tmp_path_factory) -> Path:
    return _make_take(tmp_path_factory, "registration", REGISTRATION_TAKE)


@pytest.fixture(scope="session")
def registered_workspace(registration_take: Path, tmp_path_factory):
    """The registration take registered through its survey, the wide camera's true height as the scale
    hint: (workspace, RegistrationSummary). Shared; tests that write into a workspace copy it. Made
    through the stage runner (as every fixture workspace here), so it carries its stage's manifest."""
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.geometry.world_frame import ScaleHint
    from reshoot.registration import RegistrationOptions
    from reshoot.workspace import init_workspace

    ws = tmp_path_factory.mktemp("ws") / "ws"
    init_workspace(ws, registration_take / "footage", survey=registration_take / "survey")
    truth = read_cameras_json(registration_take / "gt" / "cameras.json").cameras
    height = float(truth.select("a_wide").centers[0, 2])
    return ws, run_stage(ws, "register", RegistrationOptions(scale=ScaleHint(camera_heights={"a_wide": height})))


def run_stage(ws: Path, name: str, options):
    """Run stage `name` of workspace `ws` through the stage runner (writes its manifest); its summary."""
    from reshoot.pipeline import stages
    from reshoot.stage import run_stage as run
    from reshoot.workspace import Workspace

    return run(Workspace(ws), stages()[name], None, options)


def copy_workspace(ws: Path, take: Path, root: Path) -> Path:
    """A fresh workspace on `take` (with its survey) holding `ws`'s registration and its manifest."""
    import shutil

    from reshoot.workspace import Workspace, init_workspace

    copy = root / "ws"
    init_workspace(copy, take / "footage", survey=take / "survey")
    source, target = Workspace(ws), Workspace(copy)
    shutil.copytree(source.registration, target.registration)
    if source.manifest("register").is_file():
        target.manifest("register").parent.mkdir(parents=True)
        shutil.copy2(source.manifest("register"), target.manifest("register"))
    return copy


def _reconstruct_options():
    from reshoot.reconstruct import ReconstructOptions

    # Small budgets: tests check the stage's plumbing and that each part does its job, not the bars
    # (benchmarks/reconstruct_take.py measures those on the default take).
    return ReconstructOptions(
        downscale=2,
        set_iterations=400,
        first_actor_iterations=60,
        actor_iterations=20,
        frames=(0, 3),
        checkpoint_every=100,
    )


RECONSTRUCT_OPTIONS = _reconstruct_options()


@pytest.fixture(scope="session")
def reconstructed_workspace(registered_workspace, registration_take: Path, tmp_path_factory):
    """A copy of the registered workspace, reconstructed with RECONSTRUCT_OPTIONS (actors for frames 0-2):
    (workspace, ReconstructSummary)."""
    ws = copy_workspace(registered_workspace[0], registration_take, tmp_path_factory.mktemp("reconstruct"))
    return ws, run_stage(ws, "reconstruct", RECONSTRUCT_OPTIONS)


@pytest.fixture(scope="session")
def laid_out_workspace(reconstructed_workspace, tmp_path_factory) -> Path:
    """A copy of the reconstructed workspace with its layout (for shots, conditioning and exports)."""
    import shutil

    from reshoot.layout import LayoutOptions
    from reshoot.workspace import Workspace

    ws = tmp_path_factory.mktemp("shots") / "ws"
    shutil.copytree(reconstructed_workspace[0], ws, symlinks=True)
    Workspace(ws).layout.unlink(missing_ok=True)  # another test may have renamed entities in the source
    run_stage(ws, "layout", LayoutOptions())
    return ws
