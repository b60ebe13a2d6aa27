"""Training of the unified model on episodes (windows with their true frames), resumable and seeded.

The episode source is a callable so that the model package knows nothing of where episodes come from
(synthetic takes, a user's take with one camera left out); `reshoot.model_data` makes them.
A step's episode is drawn with `numpy.random.default_rng([seed, step])`, so a resumed run sees exactly
the episodes the uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from kornia.losses import ssim_loss
from safetensors.torch import load_file, save_file

from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_path
from reshoot.geometry.progress import ProgressFn, no_progress

from .checkpoint import WEIGHTS_FILE, from_pretrained, read_checkpoint_config, save_checkpoint
from .config import ModelConfig
from .inputs import ShotWindow
from .network import UnifiedVideoModel

STATE_FILE = "training_state.safetensors"
LOG_FILE = "training_log.jsonl"

EpisodeFn = Callable[[np.random.Generator], tuple[ShotWindow, torch.Tensor]]


@dataclass(frozen=True)
class TrainOptions:
    """Settings of a training run.

    Attributes:
        steps: optimizer steps in total (a resumed run continues up to it).
        lr: peak AdamW learning rate (linear warm-up, cosine decay to lr / 10).
        warmup: warm-up steps.
        weight_decay: AdamW weight decay.
        batch: episodes per step.
        ssim_weight: weight of (1 - SSIM) / 2 beside L1 in the loss.
        grad_clip: gradient norm clip.
        seed: weights' initialization and episode draws.
        checkpoint_every: steps between checkpoints (and at the end).
        device: "cpu", "cuda" or "auto".
    """

    steps: int = 2500
    lr: float = 1.5e-3
    warmup: int = 100
    weight_decay: float = 0.01
    batch: int = 1
    ssim_weight: float = 0.2
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"train: {name} must be at least 1, got {getattr(self, name)}.")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise InputError(f"train: the learning rate (--lr) must be more than 0 and at most 1, got {self.lr}.")


@dataclass(frozen=True)
class TrainSummary:
    """What a training run did: steps done (in total), where it resumed, mean loss of the first and last
    10 % of this run's steps, seconds of this run, the checkpoint folder."""

    steps: int
    resumed_from: int
    first_loss: float
    last_loss: float
    seconds: float
    out: Path


def resolve_device(device: str) -> torch.device:
    """ "auto" → CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA device here; use --device cpu or auto.")
    if device not in ("cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, got {device!r}.")
    return torch.device(device)


def episode_loss(prediction: torch.Tensor, truth: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """L1 + ssim_weight × (1 − SSIM)/2 over [B, T, 3, H, W] frames."""
    flat_p, flat_t = prediction.flatten(0, 1), truth.flatten(0, 1)
    loss = (flat_p - flat_t).abs().mean()
    if ssim_weight > 0:
        loss = loss + ssim_weight * ssim_loss(flat_p, flat_t, window_size=7)
    return loss


def learning_rate(step: int, options: TrainOptions) -> float:
    if step < options.warmup:
        return options.lr * (step + 1) / options.warmup
    progress = (step - options.warmup) / max(options.steps - options.warmup, 1)
    return options.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _save_state(out: Path, optimizer: torch.optim.Optimizer, model: UnifiedVideoModel, step: int) -> None:
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value):
                    tensors[f"{names[id(param)]}/{key}"] = value.detach().cpu().reshape(value.shape).contiguous()
    with atomic_path(out / STATE_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"step": str(step)})


def _load_state(out: Path, optimizer: torch.optim.Optimizer, model: UnifiedVideoModel, device) -> int:
    from safetensors import safe_open

    with safe_open(str(out / STATE_FILE), framework="pt") as handle:
        step = int((handle.metadata() or {})["step"])
    tensors = load_file(str(out / STATE_FILE))
    for name, param in model.named_parameters():
        state = {
            key.split("/", 1)[1]: value.to(device) for key, value in tensors.items() if key.split("/", 1)[0] == name
        }
        if state:
            optimizer.state[param] = state
    return step


def _truncate_log(path: Path, steps: int) -> None:
    """Keep the log lines of steps 1..steps."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= steps]
        path.write_text("".join(line + "\n" for line in kept))


def train_model(
    config: ModelConfig,
    episodes: EpisodeFn,
    options: TrainOptions,
    out: str | Path,
    record: dict | None = None,
    resume: bool = True,
    progress: ProgressFn | None = None,
    stop_after: int | None = None,
    initial: str | Path | None = None,
) -> TrainSummary:
    """Train (or resume training) a model and keep its checkpoint in `out`.

    Args:
        config: the model's config; its architecture must equal the checkpoint's when resuming or starting from
            `initial` (the model trains, and is saved, with this config's inference settings).
        episodes: rng → (window [B=1], true frames [1, T, 3, H, W]); called `options.batch` times a step.
        options: the run's settings.
        out: checkpoint folder: model.safetensors, config.json, training_state.safetensors, training_log.jsonl.
        record: what made the data (settings, command), saved in config.json with the options.
        resume: continue from `out`'s checkpoint when there is one (else start over).
        progress: callback (what, done, total, loss=…).
        stop_after: end this run after so many steps even if `options.steps` is not reached (for tests
            of resuming and for time-boxed runs).
        initial: a checkpoint (of this config) to start from instead of fresh weights, when not resuming.

    Raises:
        InputError: `out` holds a checkpoint of another config.
    """
    out = Path(out)
    report = progress or no_progress
    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    model = UnifiedVideoModel(config)
    start = 0
    resuming = resume and (out / STATE_FILE).is_file() and (out / WEIGHTS_FILE).is_file()
    source = out if resuming else initial
    if source is not None:
        saved, _ = read_checkpoint_config(source)
        if saved.architecture() != config.architecture():
            raise InputError(
                f"{source}: holds a checkpoint of config {saved.name!r} ({saved}), not of the asked "
                f"{config.name!r}; pick another --out or pass --restart."
            )
        model = from_pretrained(source)
        model.config = config  # the asked inference settings (an adapted start's correction scale is not kept)
    model.to(device).train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": options.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=options.lr,
        betas=(0.9, 0.99),
    )
    if resuming:
        start = _load_state(out, optimizer, model, device)
        _truncate_log(out / LOG_FILE, start)  # steps after the last checkpoint are run again
    elif (out / LOG_FILE).exists():
        (out / LOG_FILE).unlink()
    out.mkdir(parents=True, exist_ok=True)
    training_record = {"options": asdict(options), **(record or {})}
    end = options.steps if stop_after is None else min(options.steps, start + stop_after)
    losses: list[float] = []
    started = time.perf_counter()
    with open(out / LOG_FILE, "a") as log:
        for step in range(start, end):
            rng = np.random.default_rng([options.seed, step])
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, options)
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(options.batch):
                window, truth = episodes(rng)
                loss = episode_loss(model(window.to(device)), truth.to(device), options.ssim_weight) / options.batch
                loss.backward()
                total += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
            optimizer.step()
            losses.append(total)
            log.write(json.dumps({"step": step + 1, "loss": round(total, 6)}) + "\n")
            report("training", step + 1, options.steps, loss=total)
            if (step + 1) % options.checkpoint_every == 0 or step + 1 == end:
                log.flush()
                save_checkpoint(model, out, {**training_record, "steps": step + 1})
                _save_state(out, optimizer, model, step + 1)
    tenth = max(len(losses) // 10, 1)
    return TrainSummary(
        steps=end,
        resumed_from=start,
        first_loss=float(np.mean(losses[:tenth])) if losses else float("nan"),
        last_loss=float(np.mean(losses[-tenth:])) if losses else float("nan"),
        seconds=time.perf_counter() - started,
        out=out,
    )
