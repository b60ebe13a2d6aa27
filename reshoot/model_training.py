"""`reshoot train`: the unified model on synthetic episodes, or adapted to one take.

Synthetic training draws windows from cached episode scenes (`reshoot.model_data`). Adaptation to a
user's take leaves one production camera out, reconstructs the set and actors from the others into
`WS/model/adapt_<camera>/`, renders the left-out camera at every frame and fine-tunes a pretrained
model to turn those renders into that camera's real (undistorted) frames. Footage of a workspace
initialized with `--sensitive` is never used.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from reshoot.geometry.camera import Camera, undistort_image
from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_path
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.model.checkpoint import read_checkpoint_config
from reshoot.model.config import config_named
from reshoot.model.inference import working_size
from reshoot.model.inputs import area_resized, resized_camera
from reshoot.model.training import TrainOptions, TrainSummary, train_model
from reshoot.model_data import (CAMERAS_FILE, EPISODE_FILE, TRAINING_SEEDS, EpisodePool, EpisodeSettings, build_pool,
                                footage_frames, load_scene, render_targets)
from reshoot.reconstruct import ReconstructOptions, reconstruct
from reshoot.synthesis import DEFAULT_CHECKPOINT
from reshoot.workspace import init_workspace, load_workspace


@dataclass(frozen=True)
class SyntheticOptions:
    """`reshoot train` on synthetic episodes.

    Attributes:
        out: checkpoint folder.
        size: model size name.
        steps, lr, seed, device: as TrainOptions.
        scenes: episode scenes (the first `scenes` of TRAINING_SEEDS).
        cache: folder of cached scenes.
        episodes: how scenes are made.
        restart: ignore a checkpoint already in `out`.
    """

    out: Path = Path("checkpoints/tiny")
    size: str = "tiny"
    steps: int = 2500
    scenes: int = 8
    cache: Path = Path(".cache/episodes")
    lr: float = 1.5e-3
    seed: int = 0
    device: str = "auto"
    episodes: EpisodeSettings = field(default_factory=EpisodeSettings)
    restart: bool = False


def train_synthetic(options: SyntheticOptions, progress: ProgressFn | None = None,
                    stop_after: int | None = None) -> TrainSummary:
    """Make the missing episode scenes, then train (or resume) the model in `options.out`."""
    if not 1 <= options.scenes <= len(TRAINING_SEEDS):
        raise InputError(f"train: scenes must be 1 to {len(TRAINING_SEEDS)}, got {options.scenes}.")
    config = config_named(options.size)
    seeds = list(TRAINING_SEEDS[: options.scenes])
    pool = build_pool(options.cache, seeds, options.episodes, config.window, config.source_scale, progress=progress)
    record = {"data": {"kind": "synthetic", "seeds": [seeds[0], seeds[-1]],
                       "episode_settings": dataclasses.asdict(options.episodes)},
              "command": f"reshoot train --size {options.size} --steps {options.steps} --scenes {options.scenes} "
                         f"--lr {options.lr} --seed {options.seed}"}
    train = TrainOptions(steps=options.steps, lr=options.lr, seed=options.seed, device=options.device)
    return train_model(config, pool, train, options.out, record, resume=not options.restart, progress=progress,
                       stop_after=stop_after)


@dataclass(frozen=True)
class AdaptOptions:
    """`reshoot train --adapt WS`.

    Attributes:
        out: checkpoint folder; None = WS/model/adapted.
        held_out: production camera to leave out; None = the last one.
        start_from: pretrained checkpoint; None = the repository's tiny model.
        steps, lr, seed, device: as TrainOptions (fewer steps and a lower rate than pretraining).
        reconstruct: the leave-one-out reconstruction's budget (cameras and downscale are set here).
        restart: ignore a checkpoint already in `out`.
    """

    out: Path | None = None
    held_out: str | None = None
    start_from: Path | None = None
    steps: int = 300
    lr: float = 2e-4
    seed: int = 0
    device: str = "auto"
    reconstruct: ReconstructOptions = field(default_factory=ReconstructOptions)
    restart: bool = False


def adaptation_scene(workspace: str | Path, held_out: str, working_pixels: int,
                     options: ReconstructOptions, progress: ProgressFn | None = None) -> Path:
    """Make (or find) WS/model/adapt_<held_out>/: a workspace reconstructed without `held_out` and the
    episode scene of `held_out` rendered from it beside its real frames, at the model's working size."""
    report = progress or no_progress
    root = Path(workspace)
    folder = root / "model" / f"adapt_{held_out}"
    if (folder / EPISODE_FILE).is_file():
        return folder
    settings = load_workspace(root)
    registered = read_cameras_json(root / "registration" / "cameras.json")
    production = registered.names_with_role("production", default="production")
    others = [n for n in production if n != held_out]
    target = registered.cameras.select(held_out)
    width, height = int(target.width[0]), int(target.height[0])
    work_w, work_h = working_size(width, height, working_pixels)
    downscale = max(1, round(width / work_w))
    if not (root / "layout.json").is_file():
        raise InputError(f"{root}: no layout yet; run `reshoot layout {root}` before adapting (the model reads "
                         f"entity ids).")
    sub = folder / "ws"
    if not (sub / "splats" / "background.ply").is_file():
        init_workspace(sub, settings.footage, settings.calibration, fps=settings.fps, offsets=settings.offsets or None,
                       survey=settings.survey, force=True)
        shutil.rmtree(sub / "registration", ignore_errors=True)
        shutil.copytree(root / "registration", sub / "registration")
        shutil.copy2(root / "layout.json", sub / "layout.json")
        reconstruct(sub, dataclasses.replace(options, cameras=tuple(others), downscale=downscale), progress)
    span = options.frames or (settings.first_frame, settings.first_frame + settings.frames)
    frames = list(range(*span))  # the frames with actors
    rendered = resized_camera(target.pinhole(), work_w, work_h)
    arrays = {k: torch.from_numpy(v[0]) for k, v in render_targets(sub, rendered, frames, progress=report).items()}
    real = footage_frames(root, [held_out], frames)[:, 0]
    truth = torch.stack([undistort_image(torch.from_numpy(f).float() / 255, target) for f in real])
    truth = area_resized(truth, (work_w, work_h))
    sources = resized_camera(registered.cameras.select(others), work_w, work_h)
    # cameras first, the episode file last: its presence marks the scene complete
    write_cameras_json(folder / CAMERAS_FILE, Camera.cat([sources, rendered]),
                       attributes={**{n: {"role": "source"} for n in others}, held_out: {"role": "target"}})
    tensors = {"frames": torch.tensor(frames, dtype=torch.int64),
               "source_rgb": torch.from_numpy(footage_frames(root, others, frames, (work_w, work_h))),
               "render_rgb": arrays["render_rgb"][None].half(), "render_depth": arrays["render_depth"][None].half(),
               "render_alpha": arrays["render_alpha"][None].half(), "entity_ids": arrays["entity_ids"][None].int(),
               "truth": (truth[None] * 255 + 0.5).clamp(0, 255).to(torch.uint8)}
    with atomic_path(folder / EPISODE_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    return folder


def adapt_model(workspace: str | Path, options: AdaptOptions, progress: ProgressFn | None = None,
                stop_after: int | None = None) -> TrainSummary:
    """Fine-tune a pretrained model on one take by leaving one production camera out (module docstring).

    Raises:
        InputError: the workspace is marked sensitive, is not registered and laid out, or the camera is unknown.
    """
    root = Path(workspace)
    settings = load_workspace(root)
    if settings.sensitive:
        raise InputError(f"{root}: initialized with --sensitive, so its footage may never be used to train models. "
                         f"Synthesize with a model trained elsewhere (`reshoot synthesize` without adaptation).")
    registered = read_cameras_json(root / "registration" / "cameras.json")
    production = registered.names_with_role("production", default="production")
    held_out = options.held_out or production[-1]
    if held_out not in production:
        raise InputError(f"--held-out {held_out!r} is not a production camera of {root} ({production}).")
    if len(production) < 3:
        raise InputError(f"{root}: adaptation leaves one camera out and needs at least two others; the take has "
                         f"{len(production)}.")
    start = Path(options.start_from) if options.start_from is not None else DEFAULT_CHECKPOINT
    config, _ = read_checkpoint_config(start)
    folder = adaptation_scene(root, held_out, config.working_pixels, options.reconstruct, progress)
    pool = EpisodePool([load_scene(folder)], config.window, config.source_scale)
    out = Path(options.out) if options.out is not None else root / "model" / "adapted"
    record = {"data": {"kind": "adaptation", "workspace": str(root), "held_out": held_out},
              "start_from": str(start), "command": f"reshoot train --adapt {root} --held-out {held_out} "
                                                   f"--steps {options.steps} --lr {options.lr}"}
    train = TrainOptions(steps=options.steps, lr=options.lr, warmup=min(50, options.steps // 5 + 1), seed=options.seed,
                         device=options.device, checkpoint_every=max(options.steps // 5, 1))
    return train_model(config, pool, train, out, record, resume=not options.restart, progress=progress,
                       stop_after=stop_after, initial=start)
