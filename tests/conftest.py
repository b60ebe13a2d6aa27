"""Shared fixtures. Everything runs on CPU; tests that need CUDA are marked `gpu` and skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before any test module imports torch: idle OpenMP threads sleep instead of spinning. On the tests' small
# images that is faster (the scene take's reconstruction: 78.7 s passive, 92.5 s spinning, 2 idle cores) and
# keeps two processes on the same cores from waiting on each other. Not the product's default: at the demo
# take's size spinning is faster (a 150-step set: 64.8 s spinning, 81.9 s passive).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


@pytest.fixture(scope="session")
def caliscope_registered(shared_data: Path, tmp_path_factory):
    """caliscope_4cam (real footage) registered with its calibration's poses and 4 synchronized instants
    per camera: (workspace, RegistrationSummary). Shared and read-only: copy it to write."""
    from reshoot.registration import RegistrationOptions, register
    from reshoot.workspace import init_workspace

    data = shared_data / "caliscope_4cam"
    ws = tmp_path_factory.mktemp("caliscope_registered") / "ws"
    init_workspace(ws, data / "calibration" / "extrinsic", calibration=data / "camera_array.toml")
    return ws, register(ws, RegistrationOptions(instants=4))


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


def _init_on_take(ws: Path, take: Path):
    """`init_workspace` on a synthetic take's footage, with its survey and, where it has them, its clean
    plates."""
    from reshoot.workspace import init_workspace

    plates = take / "plates"
    return init_workspace(ws, take / "footage", survey=take / "survey", plates=plates if plates.is_dir() else None)


def _register(take: Path, ws: Path):
    """Register `take` into a new workspace `ws` through its survey, the wide camera's true height as the
    scale hint, through the stage runner (as every fixture workspace here, so it carries its stage's
    manifest). Returns the RegistrationSummary."""
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.geometry.world_frame import ScaleHint
    from reshoot.registration import RegistrationOptions

    _init_on_take(ws, take)
    truth = read_cameras_json(take / "gt" / "cameras.json").cameras
    height = float(truth.select("a_wide").centers[0, 2])
    return run_stage(ws, "register", RegistrationOptions(scale=ScaleHint(camera_heights={"a_wide": height})))


@pytest.fixture(scope="session")
def registered_workspace(registration_take: Path, tmp_path_factory):
    """The registration take registered (`_register`): (workspace, RegistrationSummary). Shared; tests
    that write into a workspace copy it."""
    ws = tmp_path_factory.mktemp("ws") / "ws"
    return ws, _register(registration_take, ws)


# The take the stages after registration run on (reconstruct, layout, shots, conditioning, synthesis,
# check, report): the registration take's set, action and frames (same seed) at a quarter of its pixels,
# so that the chain of shared fixtures up to a laid-out workspace stays short on 2 cores (issue 18: no
# fixture over 120 s). With clean plates, as a crew shoots them: a 12-frame take's temporal median
# holds its slow-walking characters, and a foreground that depends on it makes every later stage's
# numbers hang on the CPU's roundings (with the median, the layout put one character 0.3-0.9 m off on
# an AVX2 machine, where the machines before had it right; with the plates, within 7 cm).
SCENE_TAKE = {**REGISTRATION_TAKE, "width": 320, "height": 180, "plates": True}


@pytest.fixture(scope="session")
def scene_take(tmp_path_factory) -> Path:
    return _make_take(tmp_path_factory, "scene", SCENE_TAKE)


@pytest.fixture(scope="session")
def scene_workspace(scene_take: Path, tmp_path_factory) -> Path:
    """The scene take registered (`_register`). Shared and read-only: stages run on copies of it."""
    ws = tmp_path_factory.mktemp("scene_ws") / "ws"
    _register(scene_take, ws)
    return ws


def run_stage(ws: Path, name: str, options, progress=None):
    """Run stage `name` of workspace `ws` through the stage runner (writes its manifest); its summary."""
    from reshoot.pipeline import stages
    from reshoot.stage import run_stage as run
    from reshoot.workspace import Workspace

    return run(Workspace(ws), stages()[name], None, options, progress)


def copy_workspace(ws: Path, take: Path, root: Path) -> Path:
    """A fresh workspace on `take` (`_init_on_take`) holding `ws`'s registration and its manifest."""
    import shutil

    from reshoot.workspace import Workspace

    copy = root / "ws"
    _init_on_take(copy, take)
    source, target = Workspace(ws), Workspace(copy)
    shutil.copytree(source.registration, target.registration)
    if source.manifest("register").is_file():
        target.manifest("register").parent.mkdir(parents=True)
        shutil.copy2(source.manifest("register"), target.manifest("register"))
    return copy


def _reconstruct_options():
    from reshoot.reconstruct import ReconstructOptions

    # Small budgets (the scene take fitted at 160×90, a short refine pass of the actors): tests check the
    # stage's plumbing and that each part does its job, not the bars (benchmarks/reconstruct_take.py
    # measures those on the default take).
    return ReconstructOptions(
        downscale=2,
        set_iterations=400,
        first_actor_iterations=60,
        actor_iterations=20,
        refine_actor_iterations=60,
        frames=(0, 3),
        checkpoint_every=100,
    )


RECONSTRUCT_OPTIONS = _reconstruct_options()


def adaptation_budget():
    """The leave-one-out reconstructions of the adaptation tests (unified and LoRA): two frames, tiny
    budgets, no survey (plumbing, not quality: the survey's stereo would double the tests' time)."""
    from reshoot.reconstruct import ReconstructOptions

    return ReconstructOptions(
        set_iterations=40,
        first_actor_iterations=8,
        actor_iterations=4,
        refine_actor_iterations=4,
        frames=(0, 2),
        checkpoint_every=40,
        use_survey=False,
    )


def set_snapshot(ws: Path) -> Path:
    """Where `reconstructed_workspace` keeps its reconstruction's work dir as it stood when the actors began
    (the finished set): what a run interrupted while fitting the actors leaves."""
    return ws.parent / "splats.work.at_actors"


@pytest.fixture(scope="session")
def reconstructed_workspace(scene_workspace: Path, scene_take: Path, tmp_path_factory):
    """A copy of the scene workspace, reconstructed with RECONSTRUCT_OPTIONS (actors for frames 0-2):
    (workspace, ReconstructSummary). Its work dir at the start of the actors is kept (`set_snapshot`)."""
    import shutil

    from reshoot.workspace import Workspace

    ws = copy_workspace(scene_workspace, scene_take, tmp_path_factory.mktemp("reconstruct"))

    def keep_the_set(what, done, total, **info):
        if what == "fitting actors" and not set_snapshot(ws).exists():
            shutil.copytree(Workspace(ws).splats_work, set_snapshot(ws))

    return ws, run_stage(ws, "reconstruct", RECONSTRUCT_OPTIONS, keep_the_set)


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


@pytest.fixture(scope="session")
def conditioned_shot_workspace(laid_out_workspace, tmp_path_factory) -> Path:
    """A copy of the laid-out workspace with shot `top` (frames 0-4, 320×180, "overhead wide") and its
    conditioning: what `reshoot synthesize` reads. Tests copy it before writing."""
    import shutil

    from reshoot.conditioning import render_conditioning
    from reshoot.shots import shoot

    ws = tmp_path_factory.mktemp("synth_ws") / "ws"
    shutil.copytree(laid_out_workspace, ws, symlinks=True, ignore=shutil.ignore_patterns("shots"))
    shoot(ws, "overhead wide", name="top", frames=(0, 5), resolution=(320, 180))
    render_conditioning(ws, "top")
    return ws
