"""Training episodes for the unified video model: real renders of real reconstructions, with the truth.

An episode scene is one short synthetic take put through the pipeline exactly as a user's take is
(the reconstruction's artifacts are what the model must learn to repair, so they must be the real ones):
    generate (with extra random high ground-truth views) → init with its survey → register (feature
    matching; the A-camera's true height as the scale hint) → reconstruct (reduced budget) → layout →
    render the reconstruction into every ground-truth camera at every frame, at the episode size (the
    conditioning the model will see at inference: rgb, depth, alpha, entity ids), beside the true frames.
(Registering with the generator's calibration instead is faster but triangulates only a hundred points
and no survey, and the set reconstructed from that is far worse than what users get.)
Scenes are cached on disk (`CACHE/scene_<seed>/`), so training draws windows from a pool of real
reconstructions without waiting for them. Scenes whose seeds are used for training are never used
by the benchmarks (`TRAINING_SEEDS` vs `benchmarks/model_quality.py`'s seeds).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from reshoot.conditioning import render_conditioning_frame
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.geometry.world_frame import ScaleHint
from reshoot.ground_truth import cameras_in_registration_frame
from reshoot.layout import LayoutOptions, layout
from reshoot.model.inputs import ShotWindow, area_resized, make_window, posed_frames, resized_camera
from reshoot.reconstruct import ReconstructOptions, reconstruct
from reshoot.registration import RegistrationOptions, register
from reshoot.render import load_splat_scene
from reshoot.scene import scene_facts
from reshoot.synthetic import SynthConfig, TakePaths, generate_take
from reshoot.workspace import Workspace, init_workspace, load_workspace

log = logging.getLogger(__name__)

EPISODE_FILE = "episode.safetensors"
CAMERAS_FILE = "cameras.json"
TRAINING_SEEDS = range(1000, 2000)  # benchmarks draw their takes from other seeds


@dataclass(frozen=True)
class EpisodeSettings:
    """How the episode scenes are made (saved with the model that trains on them).

    Attributes:
        width, height: image size of the synthetic takes (registration's bars are set for 640×360).
        downscale: the reconstruction fits, and episodes are stored, at 1/downscale of the take's size.
        frames: frames per take.
        extra_views: random high ground-truth cameras per take, besides `overhead` and `high_angle`.
        survey_frames: survey photos of the empty set (help registration and the static set).
        set_iterations, first_actor_iterations, actor_iterations: the reconstruction's budget.
    """

    width: int = 640
    height: int = 360
    downscale: int = 2
    frames: int = 8
    extra_views: int = 4
    survey_frames: int = 24
    set_iterations: int = 1000
    first_actor_iterations: int = 100
    actor_iterations: int = 30

    def synth_config(self, seed: int) -> SynthConfig:
        """The take of scene `seed`: 1-3 characters and 2-6 props, varied with the seed."""
        return SynthConfig(
            frames=self.frames,
            width=self.width,
            height=self.height,
            characters=1 + seed % 3,
            props=2 + (seed // 3) % 5,
            seed=seed,
            survey_frames=self.survey_frames,
            extra_views=self.extra_views,
        )


@dataclass(frozen=True)
class EpisodeScene:
    """One cached scene in memory.

    Attributes:
        frames: [F] take frame numbers.
        sources: V production cameras (registration frame).
        source_rgb: [F, V, H, W, 3] uint8 footage frames.
        targets: C ground-truth cameras (registration frame, pinhole).
        render_rgb: [C, F, H, W, 3] float16 in [0, 1].
        render_depth: [C, F, H, W] float16 z-depth (registration units).
        render_alpha: [C, F, H, W] float16.
        entity_ids: [C, F, H, W] int32, -1 none.
        truth: [C, F, H, W, 3] uint8 true frames.
        true_ids: [C, F, H, W] int32 true entity ids (-1 set), or None (scenes of real takes).
    """

    frames: torch.Tensor
    sources: Camera
    source_rgb: torch.Tensor
    targets: Camera
    render_rgb: torch.Tensor
    render_depth: torch.Tensor
    render_alpha: torch.Tensor
    entity_ids: torch.Tensor
    truth: torch.Tensor
    true_ids: torch.Tensor | None = None


def registered_take(take: Path, ws: Path) -> None:
    """A workspace on a synthetic take with its survey, registered like a user's (scale from the A-camera's
    true height, as a crew would measure it)."""
    truth = read_cameras_json(TakePaths(take).cameras).cameras
    init_workspace(ws, take / "footage", survey=take / "survey", force=True)
    register(
        ws, RegistrationOptions(scale=ScaleHint(camera_heights={"a_wide": float(truth.select("a_wide").centers[0, 2])}))
    )


def render_targets(
    ws: Path, targets: Camera, frames: list[int], backend: str = "auto", progress: ProgressFn | None = None
) -> dict[str, np.ndarray]:
    """The conditioning passes of every target camera at every frame: arrays [C, F, ...] (see EpisodeScene)."""
    report = progress or no_progress
    scene = load_splat_scene(ws)
    facts = scene_facts(ws)
    entities = list(facts.entities.values())
    passes: dict[str, list] = {"render_rgb": [], "render_depth": [], "render_alpha": [], "entity_ids": []}
    pinhole = targets.pinhole()
    for c in range(len(targets)):
        per_frame = [
            render_conditioning_frame(scene, entities, f - facts.first_frame, f, pinhole.select(c), backend)
            for f in frames
        ]
        passes["render_rgb"].append(np.stack([p.rgb for p in per_frame]))
        passes["render_depth"].append(np.stack([p.depth for p in per_frame]))
        passes["render_alpha"].append(np.stack([p.alpha for p in per_frame]))
        passes["entity_ids"].append(np.stack([p.entity_ids for p in per_frame]))
        report("rendering targets", c + 1, len(targets))
    return {k: np.stack(v) for k, v in passes.items()}


def footage_frames(ws: Path, names: list[str], frames: list[int], size: tuple[int, int] | None = None) -> np.ndarray:
    """[F, V, H, W, 3] uint8 frames of the named production cameras, area-resized to size (w, h) if given."""
    settings = load_workspace(ws)
    with settings.open_footage() as footage:
        images = torch.from_numpy(np.stack([np.stack([footage.source(n).read(f) for n in names]) for f in frames]))
    if size is not None:
        images = area_resized(images.flatten(0, 1), size).reshape(len(frames), len(names), size[1], size[0], 3)
    return (images * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def build_scene(
    cache: str | Path,
    seed: int,
    settings: EpisodeSettings,
    backend: str = "auto",
    progress: ProgressFn | None = None,
    keep_in: Path | None = None,
) -> Path:
    """Make (or find) the cached scene of `seed`: CACHE/scene_<seed>/{episode.safetensors, cameras.json}.

    The take and its workspace are made in a temporary folder, or kept in `keep_in` (as take/ and ws/)
    for a caller that works on them afterwards."""
    folder = Path(cache) / f"scene_{seed:06d}"
    if (folder / EPISODE_FILE).is_file():
        return folder
    Path(cache).mkdir(parents=True, exist_ok=True)
    if keep_in is not None:
        Path(keep_in).mkdir(parents=True, exist_ok=True)
    work = contextlib.nullcontext(str(keep_in)) if keep_in is not None else tempfile.TemporaryDirectory(dir=cache)
    with work as scratch, atomic_directory(folder, overwrite=True) as tmp:
        take, ws = Path(scratch) / "take", Path(scratch) / "ws"
        summary = generate_take(take, settings.synth_config(seed))
        registered_take(take, ws)
        reconstruct(
            ws,
            ReconstructOptions(
                downscale=settings.downscale,
                set_iterations=settings.set_iterations,
                first_actor_iterations=settings.first_actor_iterations,
                actor_iterations=settings.actor_iterations,
                checkpoint_every=settings.set_iterations,
                seed=seed,
                backend=backend,
            ),
        )
        layout(ws, LayoutOptions())
        size = (settings.width // settings.downscale, settings.height // settings.downscale)
        registered = read_cameras_json(Workspace(ws).cameras).cameras
        truth = read_cameras_json(TakePaths(take).cameras).cameras
        targets = resized_camera(
            cameras_in_registration_frame(truth, registered).select(list(summary.ground_truth_cameras)), *size
        )
        # a camera that registration could not place is not a source (as in a user's take)
        sources = resized_camera(
            registered.select([n for n in summary.production_cameras if n in registered.names]), *size
        )
        frames = list(range(summary.frames))
        arrays = render_targets(ws, targets, frames, backend, progress)
        true_frames = torch.from_numpy(
            np.stack(
                [np.stack([iio.imread(TakePaths(take).frame(n, f))[..., :3] for f in frames]) for n in targets.names]
            )
        ).float()
        true_frames = area_resized(true_frames.flatten(0, 1), size).reshape(
            len(targets), len(frames), size[1], size[0], 3
        )
        true_ids = torch.from_numpy(
            np.stack([np.load(TakePaths(take).maps(n))["entity_ids"][frames] for n in targets.names])
        ).float()
        true_ids = F.interpolate(true_ids, size=(size[1], size[0]), mode="nearest-exact").int()
        tensors = {
            "frames": torch.tensor(frames, dtype=torch.int64),
            "true_ids": true_ids.contiguous(),
            "source_rgb": torch.from_numpy(footage_frames(ws, list(sources.names), frames, size)),
            "render_rgb": torch.from_numpy(arrays["render_rgb"]).half(),
            "render_depth": torch.from_numpy(arrays["render_depth"]).half(),
            "render_alpha": torch.from_numpy(arrays["render_alpha"]).half(),
            "entity_ids": torch.from_numpy(arrays["entity_ids"]).int(),
            "truth": (true_frames + 0.5).clamp(0, 255).to(torch.uint8),
        }
        save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(tmp / EPISODE_FILE), metadata={"seed": str(seed)}
        )
        write_cameras_json(
            tmp / CAMERAS_FILE,
            Camera.cat([sources, targets]),
            attributes={
                **{n: {"role": "source"} for n in sources.names},
                **{n: {"role": "target"} for n in targets.names},
            },
            extra={"seed": seed, "settings": dataclasses.asdict(settings)},
        )
    log.info("episode scene %d cached in %s", seed, folder)
    return folder


def load_scene(folder: str | Path) -> EpisodeScene:
    """Read a cached scene.

    Raises:
        InputError: the folder is not a cached scene.
    """
    folder = Path(folder)
    if not (folder / EPISODE_FILE).is_file():
        raise InputError(f"{folder}: not an episode scene ({EPISODE_FILE} missing); make it with `reshoot train`.")
    tensors = load_file(str(folder / EPISODE_FILE))
    document = read_cameras_json(folder / CAMERAS_FILE)
    cameras = document.cameras
    return EpisodeScene(
        sources=cameras.select(document.names_with_role("source")),
        targets=cameras.select(document.names_with_role("target")),
        **tensors,
    )


class EpisodePool:
    """Windows drawn from cached scenes: a callable rng → (ShotWindow, truth [1, T, 3, H, W]).

    A draw picks a scene, a target camera and T consecutive frames; the source views are every
    production camera at the window's middle frame.
    """

    def __init__(self, scenes: list[EpisodeScene], window: int, source_scale: float):
        if not scenes:
            raise InputError("no episode scenes to train on.")
        self.scenes = scenes
        self.window = window
        self.source_scale = source_scale

    def window_of(self, scene: EpisodeScene, camera: int, start: int) -> tuple[ShotWindow, torch.Tensor]:
        """The window of `camera` (index into scene.targets) over frames start .. start + T - 1."""
        t = min(self.window, len(scene.frames))
        span = slice(start, start + t)
        middle = start + t // 2
        window = make_window(
            posed_frames(scene.targets.select(camera), count=t),
            scene.render_rgb[camera, span].float(),
            scene.render_depth[camera, span].float(),
            scene.render_alpha[camera, span].float(),
            scene.entity_ids[camera, span],
            scene.frames[span].double(),
            scene.sources,
            scene.source_rgb[middle].float() / 255,
            scene.frames[middle].repeat(len(scene.sources)).double(),
            self.source_scale,
        )
        truth = scene.truth[camera, span].float().div(255).permute(0, 3, 1, 2)[None]
        return window, truth

    def __call__(self, rng: np.random.Generator) -> tuple[ShotWindow, torch.Tensor]:
        scene = self.scenes[int(rng.integers(len(self.scenes)))]
        t = min(self.window, len(scene.frames))
        return self.window_of(
            scene, int(rng.integers(len(scene.targets))), int(rng.integers(len(scene.frames) - t + 1))
        )


def build_pool(
    cache: str | Path,
    seeds: list[int],
    settings: EpisodeSettings,
    window: int,
    source_scale: float,
    backend: str = "auto",
    progress: ProgressFn | None = None,
) -> EpisodePool:
    """Make the missing scenes of `seeds` in `cache` and load them all."""
    report = progress or no_progress
    scenes = []
    for i, seed in enumerate(seeds):
        scenes.append(load_scene(build_scene(cache, seed, settings, backend)))
        report("episode scenes", i + 1, len(seeds))
    return EpisodePool(scenes, window, source_scale)
