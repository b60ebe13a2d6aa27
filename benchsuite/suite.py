"""The suites of `reshoot bench`: takes pinned to the last setting, and the tasks scored on them.

Everything a number depends on is here (generator seeds and settings, which real footage, which camera
is held out, which frames, the stages' budgets), so results from two machines compare. A change to any
of it is a new bench version (`BENCH_VERSION`), recorded in every results file.

Tasks (docs/bench.md):
    overhead         the generator's overhead camera (no production camera is near it) over the take;
    placement        the generator's high-angle camera: are the entities where the truth has them, judged
                     from the method's own pixels (reshoot check's locator; entity IoU against the true
                     entity masks, placement against the layout);
    held-out-camera  real footage with one camera left out of every stage; the method makes that camera's
                     view and is scored against its real frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reshoot.geometry.errors import InputError

BENCH_VERSION = "reshoot-bench/v1"
TASKS = ("overhead", "placement", "held-out-camera")

# The stage budgets of the smoke suite: small enough that the suite runs in CI in a few minutes on 2
# cores (a short set and actor fit; registration's clean plates from 8 frames).
SMOKE_STAGES = {
    "register": {"samples": 8},
    "reconstruct": {
        "set_iterations": 300,
        "first_actor_iterations": 40,
        "actor_iterations": 15,
        "refine_actor_iterations": 30,
        "checkpoint_every": 100,
    },
}


@dataclass(frozen=True)
class TakeSpec:
    """One take of a suite, pinned.

    Attributes:
        name: the take's name in results (`take` column).
        source: "synthetic" (made by the generator from `synth`) or a folder of `../shared/data`
            ("caliscope_4cam").
        synth: the generator's settings (datasets.synthetic.SynthConfig fields) for a synthetic take.
        held_out: a real take's camera that no stage sees (its footage is the truth).
        clip: a real take's source frames (A, B) it keeps (as image sequences); take frame 0 is source
            frame A. None: the whole videos.
        source_downscale: a real take's footage (and calibration) averaged down by this before any stage
            sees it; `downscale` then counts from there.
        frames: take frames (A, B): the actors are fitted and the shots made for A to B-1 (None: all).
        downscale: the footage is reconstructed at 1/downscale of its pixels (a real take's held-out
            camera is also scored at that size).
        stages: [stages.NAME] settings per stage (register, reconstruct, layout); defaults elsewhere.
    """

    name: str
    source: str
    synth: dict = field(default_factory=dict)
    held_out: str | None = None
    clip: tuple[int, int] | None = None
    source_downscale: int = 1
    frames: tuple[int, int] | None = None
    downscale: int = 2  # the reconstruct stage's default
    stages: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """One task on one take: `camera` is the target (a ground-truth camera, or the held-out one)."""

    task: str
    take: str
    camera: str

    @property
    def shot(self) -> str:
        """The shot the task's conditioning lives in, in the prepared take's workspace."""
        return f"bench-{self.task}-{self.camera}"


@dataclass(frozen=True)
class Suite:
    """A named suite: its takes and its tasks (every task's take is one of `takes`)."""

    name: str
    takes: tuple[TakeSpec, ...]
    tasks: tuple[TaskSpec, ...]

    def take(self, name: str) -> TakeSpec:
        return next(t for t in self.takes if t.name == name)


def _synthetic(name: str, seed: int, cameras: int, characters: int, props: int, **settings) -> TakeSpec:
    synth = dict(cameras=cameras, characters=characters, props=props, seed=seed, **settings)
    return TakeSpec(name=name, source="synthetic", synth=synth)


SMOKE_TAKE = TakeSpec(
    name="synthetic-s21",
    source="synthetic",
    synth=dict(cameras=4, frames=4, width=320, height=180, characters=2, props=4, seed=21),
    downscale=2,
    stages=SMOKE_STAGES,
)
SMOKE_REAL = TakeSpec(
    name="caliscope-cam_3",
    source="caliscope_4cam",
    held_out="cam_3",
    clip=(12, 28),
    frames=(8, 11),
    source_downscale=2,
    downscale=4,
    stages=SMOKE_STAGES,
)

# v1: three synthetic difficulty levels (cameras 5/4/3, characters 1/2/3, props 2/4/6: more props stand
# between the cameras and the action), two seeds each, at the generator's default size; caliscope_4cam
# with two of its cameras held out in turn. The stages run with their default budgets.
LEVELS = {"easy": (5, 1, 2), "medium": (4, 2, 4), "hard": (3, 3, 6)}
V1_SYNTHETIC = tuple(
    _synthetic(f"{level}-s{seed}", seed, cameras, characters, props, frames=24)
    for level, (cameras, characters, props) in LEVELS.items()
    for seed in (101, 102)
)
V1_REAL = tuple(
    TakeSpec(name=f"caliscope-{camera}", source="caliscope_4cam", held_out=camera, frames=(0, 24), downscale=4)
    for camera in ("cam_3", "cam_1")
)


def suite_named(name: str) -> Suite:
    """The suite called `name`.

    Raises:
        InputError: no such suite.
    """
    if name not in SUITES:
        raise InputError(f"--suite {name!r}: choose one of {', '.join(SUITES)}.")
    return SUITES[name]


SUITES = {
    "smoke": Suite(
        "smoke",
        (SMOKE_TAKE, SMOKE_REAL),
        (
            TaskSpec("overhead", SMOKE_TAKE.name, "overhead"),
            TaskSpec("placement", SMOKE_TAKE.name, "high_angle"),
            TaskSpec("held-out-camera", SMOKE_REAL.name, "cam_3"),
        ),
    ),
    "v1": Suite(
        "v1",
        V1_SYNTHETIC + V1_REAL,
        tuple(TaskSpec("overhead", t.name, "overhead") for t in V1_SYNTHETIC)
        + tuple(TaskSpec("placement", t.name, "high_angle") for t in V1_SYNTHETIC)
        + tuple(TaskSpec("held-out-camera", t.name, t.held_out or "") for t in V1_REAL),
    ),
}
