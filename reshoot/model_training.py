"""`reshoot train`: the unified model on synthetic episodes, or adapted to one take.

Synthetic training draws windows from cached episode scenes (`reshoot.model_data`). Adaptation to a
user's take leaves production cameras out in turn: for each, it reconstructs the set and actors from
the others into `WS/model/adapt_<camera>/` and renders the left-out camera at every frame. A pretrained
model is fine-tuned to turn those renders into the cameras' real (undistorted) frames, keeping each
frame's mean colour (a camera's own exposure is not a correction), and cross-validation over the
left-out cameras decides how much of its correction to keep. Footage of a workspace initialized with
`--sensitive` is never used.
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
from reshoot.image_metrics import psnr
from reshoot.model.checkpoint import checkpoint_files, from_pretrained, read_checkpoint_config, save_checkpoint
from reshoot.model.config import ModelConfig, config_named
from reshoot.model.inference import plan_windows, working_size
from reshoot.model.inputs import area_resized, resized_camera
from reshoot.model.network import UnifiedVideoModel
from reshoot.model.training import TrainOptions, TrainSummary, train_model
from reshoot.model_data import (
    CAMERAS_FILE,
    EPISODE_FILE,
    TRAINING_SEEDS,
    EpisodePool,
    EpisodeScene,
    EpisodeSettings,
    build_pool,
    footage_frames,
    load_scene,
    render_targets,
)
from reshoot.reconstruct import ReconstructOptions, reconstruct
from reshoot.stage_options import DEFAULT_CHECKPOINT
from reshoot.workspace import Workspace, init_workspace, load_workspace


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


def train_synthetic(
    options: SyntheticOptions, progress: ProgressFn | None = None, stop_after: int | None = None
) -> TrainSummary:
    """Make the missing episode scenes, then train (or resume) the model in `options.out`."""
    if not 1 <= options.scenes <= len(TRAINING_SEEDS):
        raise InputError(f"train: scenes must be 1 to {len(TRAINING_SEEDS)}, got {options.scenes}.")
    config = config_named(options.size)
    train = TrainOptions(steps=options.steps, lr=options.lr, seed=options.seed, device=options.device)
    check_checkpoint_out(options.out, config, options.restart)  # all settings are checked before episodes are built
    seeds = list(TRAINING_SEEDS[: options.scenes])
    pool = build_pool(options.cache, seeds, options.episodes, config.window, config.source_scale, progress=progress)
    record = {
        "data": {
            "kind": "synthetic",
            "seeds": [seeds[0], seeds[-1]],
            "episode_settings": dataclasses.asdict(options.episodes),
        },
        "command": f"reshoot train --size {options.size} --steps {options.steps} --scenes {options.scenes} "
        f"--lr {options.lr} --seed {options.seed}",
    }
    return train_model(
        config, pool, train, options.out, record, resume=not options.restart, progress=progress, stop_after=stop_after
    )


def check_checkpoint_out(out: Path, config: ModelConfig, restart: bool) -> None:
    """Refuse a training `--out` that cannot hold this run's checkpoint, before any work: a file, a
    workspace, or (without `restart`) a folder holding a checkpoint of another architecture.

    Raises:
        InputError: any of those, or a checkpoint there whose config.json does not read.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give the checkpoint folder (new, or one `reshoot train` made).")
    if Workspace(out).settings_file.exists():
        raise InputError(
            f"--out {out} is a reshoot workspace; give a checkpoint folder of its own (e.g. {out / 'model'})."
        )
    if not restart and checkpoint_files(out)[1].is_file():
        saved, _ = read_checkpoint_config(out)
        if saved.architecture() != config.architecture():
            raise InputError(
                f"--out {out} holds a checkpoint of config {saved.name!r}, not of the asked {config.name!r}; "
                "pick another --out, or pass --restart to replace it."
            )


CORRECTION_SCALES = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Scales of the adapted model's correction tried in cross-validation (0 is the plain render)."""
VALIDATION_FOLDER = "validation"
"""Under the adapted checkpoint: one model per left-out camera, trained without it (cross-validation)."""


@dataclass(frozen=True)
class AdaptOptions:
    """`reshoot train --adapt WS`.

    Attributes:
        out: checkpoint folder; None = WS/model/adapted.
        held_out: production cameras left out in turn, one reconstruction each; empty = every production
            camera. With two or more, cross-validation over them picks the correction scale (adapt_model).
            A single name (a str) is one camera.
        start_from: pretrained checkpoint; None = the repository's tiny model.
        steps, lr, seed, device: as TrainOptions (fewer steps and a lower rate than pretraining).
        reconstruct: the leave-one-out reconstructions' budget (cameras and downscale are set here).
        keep_exposure: the adapted model keeps the render's mean colour per frame (ModelConfig.keep_exposure):
            a left-out camera's own exposure and white balance are not learned as if they were corrections.
        restart: ignore a checkpoint already in `out`.
    """

    out: Path | None = None
    held_out: tuple[str, ...] = ()
    start_from: Path | None = None
    steps: int = 300
    lr: float = 2e-4
    seed: int = 0
    device: str = "auto"
    reconstruct: ReconstructOptions = field(default_factory=ReconstructOptions)
    keep_exposure: bool = True
    restart: bool = False

    def __post_init__(self) -> None:
        names = (self.held_out,) if isinstance(self.held_out, str) else tuple(self.held_out)
        if len(set(names)) != len(names):
            raise InputError(f"--held-out names a camera twice ({list(names)}); give each camera once.")
        object.__setattr__(self, "held_out", names)


def adaptation_scene(
    workspace: str | Path,
    held_out: str,
    working_pixels: int,
    options: ReconstructOptions,
    progress: ProgressFn | None = None,
) -> Path:
    """Make (or find) WS/model/adapt_<held_out>/: a workspace reconstructed without `held_out` and the
    episode scene of `held_out` rendered from it beside its real frames, at the model's working size."""
    report = progress or no_progress
    root = Path(workspace)
    ws = Workspace(root)
    folder = ws.model / f"adapt_{held_out}"
    if (folder / EPISODE_FILE).is_file():
        return folder
    settings = load_workspace(root)
    registered = read_cameras_json(ws.cameras)
    production = registered.names_with_role("production", default="production")
    others = [n for n in production if n != held_out]
    target = registered.cameras.select(held_out)
    width, height = int(target.width[0]), int(target.height[0])
    work_w, work_h = working_size(width, height, working_pixels)
    downscale = max(1, round(width / work_w))
    if not ws.layout.is_file():
        raise InputError(
            f"{root}: no layout yet; run `reshoot layout {root}` before adapting (the model reads entity ids)."
        )
    sub = folder / "ws"
    copy = Workspace(sub)
    if not copy.set_splats.is_file():
        init_workspace(
            sub,
            settings.footage,
            settings.calibration,
            fps=settings.fps,
            offsets=settings.offsets or None,
            survey=settings.survey,
            force=True,
        )
        shutil.rmtree(copy.registration, ignore_errors=True)
        shutil.copytree(ws.registration, copy.registration)
        shutil.copy2(ws.layout, copy.layout)
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
    write_cameras_json(
        folder / CAMERAS_FILE,
        Camera.cat([sources, rendered]),
        attributes={**{n: {"role": "source"} for n in others}, held_out: {"role": "target"}},
    )
    tensors = {
        "frames": torch.tensor(frames, dtype=torch.int64),
        "source_rgb": torch.from_numpy(footage_frames(root, others, frames, (work_w, work_h))),
        "render_rgb": arrays["render_rgb"][None].half(),
        "render_depth": arrays["render_depth"][None].half(),
        "render_alpha": arrays["render_alpha"][None].half(),
        "entity_ids": arrays["entity_ids"][None].int(),
        "truth": (truth[None] * 255 + 0.5).clamp(0, 255).to(torch.uint8),
    }
    with atomic_path(folder / EPISODE_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    return folder


def correction_scale_scores(
    model: UnifiedVideoModel, scene: EpisodeScene, window: int, source_scale: float
) -> dict[float, float]:
    """PSNR (dB, over every pixel of every frame of the scene's target cameras) of render + s × the model's
    correction against the true frames, for each s of CORRECTION_SCALES. `model` must have correction_scale
    1 (its raw correction is what gets scaled). Windows do not overlap here: each frame is scored once,
    from the first window that holds it."""
    pool = EpisodePool([scene], window, source_scale)
    device = next(model.parameters()).device
    renders, changes, truths = [], [], []  # [1, t, 3, H, W] each
    for camera in range(len(scene.targets)):
        scored: set[int] = set()
        for span in plan_windows(len(scene.frames), window, 0):
            episode, truth = pool.window_of(scene, camera, span[0])
            fresh = [i for i, frame in enumerate(span) if frame not in scored]
            scored.update(span)
            with torch.no_grad():
                renders.append(episode.render_rgb[:, fresh])
                changes.append(model(episode.to(device)).cpu()[:, fresh] - renders[-1])
            truths.append(truth[:, fresh])
    channel_last = lambda parts: torch.cat(parts, dim=1).permute(0, 1, 3, 4, 2)  # noqa: E731
    render, change, truth = channel_last(renders), channel_last(changes), channel_last(truths).numpy()
    return {scale: psnr((render + scale * change).clamp(0, 1).numpy(), truth) for scale in CORRECTION_SCALES}


def adaptation_validation(checkpoint: str | Path) -> dict | None:
    """The cross-validation record an adapted checkpoint keeps in config.json (adapt_model), None without one."""
    return read_checkpoint_config(checkpoint)[1].get("validation")


def refuse_sensitive(root: Path, settings, instead: str) -> None:
    """Refuse to train on a workspace initialized with --sensitive (its footage never trains a model).

    Raises:
        InputError: it is; `instead` says what to do.
    """
    if settings.sensitive:
        raise InputError(
            f"{root}: initialized with --sensitive, so its footage may never be used to train models. {instead}"
        )


def adaptation_cameras(root: Path, held_out: tuple[str, ...]) -> list[str]:
    """The production cameras an adaptation leaves out in turn: `held_out`, or every one when empty.

    Raises:
        InputError: a name is not a production camera, or the take has fewer than three (one left out, two to
            reconstruct from).
    """
    registered = read_cameras_json(Workspace(root).cameras)
    production = registered.names_with_role("production", default="production")
    chosen = list(held_out) or production
    unknown = [name for name in chosen if name not in production]
    if unknown:
        raise InputError(f"--held-out {unknown[0]!r} is not a production camera of {root} ({production}).")
    if len(production) < 3:
        raise InputError(
            f"{root}: adaptation leaves one camera out and needs at least two others; the take has {len(production)}."
        )
    return chosen


def adapt_model(
    workspace: str | Path, options: AdaptOptions, progress: ProgressFn | None = None, stop_after: int | None = None
) -> TrainSummary:
    """Fine-tune a pretrained model on one take by leaving production cameras out in turn (module docstring).

    The checkpoint in `out` is trained on every left-out camera. With two or more, the correction scale
    is chosen by cross-validation: for each left-out camera, a model trained on the others (kept in
    out/validation/without_CAM/) scores its correction on that camera at each of CORRECTION_SCALES. The
    kept scale is the one whose worst gain over the plain render, across the cameras, is largest: 0 (the
    render itself) unless some scale helps on every camera. Scores and choice go to config.json's
    training record under "validation".

    Raises:
        InputError: the workspace is marked sensitive, is not registered and laid out, or a camera is unknown.
    """
    root = Path(workspace)
    refuse_sensitive(
        root,
        load_workspace(root),
        "Synthesize with a model trained elsewhere (`reshoot synthesize` without adaptation).",
    )
    held_out = adaptation_cameras(root, options.held_out)
    start = Path(options.start_from) if options.start_from is not None else DEFAULT_CHECKPOINT
    config, _ = read_checkpoint_config(start)
    from_pretrained(start)  # the weights too (a pickle, NaN, a config that does not match), before any work
    config = dataclasses.replace(config, correction_scale=1.0, keep_exposure=options.keep_exposure)
    out = Path(options.out) if options.out is not None else Workspace(root).model / "adapted"
    check_checkpoint_out(out, config, options.restart)
    train = TrainOptions(
        steps=options.steps,
        lr=options.lr,
        warmup=min(50, options.steps // 5 + 1),
        seed=options.seed,
        device=options.device,
        checkpoint_every=max(options.steps // 5, 1),
    )
    scenes = {
        name: load_scene(adaptation_scene(root, name, config.working_pixels, options.reconstruct, progress))
        for name in held_out
    }
    cameras = " ".join(f"--held-out {name}" for name in held_out)
    record = {
        "data": {"kind": "adaptation", "workspace": str(root), "held_out": held_out},
        "start_from": str(start),
        "command": f"reshoot train --adapt {root} {cameras} --steps {options.steps} --lr {options.lr}",
    }

    def fit(
        names: list[str], folder: Path, fit_record: dict, report: ProgressFn | None, limit: int | None = None
    ) -> TrainSummary:
        pool = EpisodePool([scenes[name] for name in names], config.window, config.source_scale)
        return train_model(
            config,
            pool,
            train,
            folder,
            fit_record,
            resume=not options.restart,
            progress=report,
            stop_after=limit,
            initial=start,
        )

    summary = fit(held_out, out, record, progress, stop_after)
    if len(held_out) < 2 or summary.steps < options.steps:
        return summary
    psnr = {}
    for name in held_out:  # each camera is scored by a model that never trained on it
        others = [n for n in held_out if n != name]
        labelled = (
            None
            if progress is None
            else (
                lambda what, done, total, _name=name, **extra: progress(
                    f"{what} (without {_name})", done, total, **extra
                )
            )
        )
        folder = out / VALIDATION_FOLDER / f"without_{name}"
        fit(others, folder, {**record, "data": {**record["data"], "held_out": others}}, labelled)
        model = from_pretrained(folder)
        psnr[name] = correction_scale_scores(model, scenes[name], config.window, config.source_scale)
    worst_gain = {scale: min(p[scale] - p[0.0] for p in psnr.values()) for scale in CORRECTION_SCALES}
    best = max(CORRECTION_SCALES, key=lambda scale: (round(worst_gain[scale], 3), -scale))
    model = from_pretrained(out)
    model.config = dataclasses.replace(config, correction_scale=best)
    _, training = read_checkpoint_config(out)
    save_checkpoint(
        model,
        out,
        {
            **training,
            "validation": {
                "psnr_by_camera": {name: {str(k): round(v, 3) for k, v in p.items()} for name, p in psnr.items()},
                "worst_gain_db": {str(k): round(v, 3) for k, v in worst_gain.items()},
                "correction_scale": best,
            },
        },
    )
    return summary
