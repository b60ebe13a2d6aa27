"""Checkpoints: a folder with `model.safetensors` (weights) and `config.json` (the ModelConfig) beside it.

The config also travels inside the safetensors metadata, so a weights file paired with the wrong
`config.json` is caught. No pickles anywhere (DESIGN.md §3).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_path, read_json_document, write_json_document

from .config import ModelConfig
from .network import UnifiedVideoModel

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CONFIG_KIND = "model-config"


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded (missing, unreadable, or not matching its config)."""


def save_checkpoint(model: UnifiedVideoModel, folder: str | Path, training: dict | None = None) -> Path:
    """Write `folder/model.safetensors` and `folder/config.json` (each through a temp file, then renamed).

    Args:
        model: the model to save.
        folder: created if missing.
        training: what made these weights (command, seed, data settings, steps), stored in config.json.

    Returns:
        The weights file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_json = json.dumps(model.config.to_dict(), sort_keys=True)
    weights = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(weights, str(tmp), metadata={"format": f"reshoot/{CONFIG_KIND}", "config": config_json})
    write_json_document(
        folder / CONFIG_FILE, CONFIG_KIND, 1, {"config": model.config.to_dict(), "training": training or {}}
    )
    return folder / WEIGHTS_FILE


def checkpoint_files(path: str | Path) -> tuple[Path, Path]:
    """(weights file, config file) of a checkpoint given as its folder or its weights file."""
    path = Path(path)
    if path.is_dir():
        return path / WEIGHTS_FILE, path / CONFIG_FILE
    return path, path.with_name(CONFIG_FILE)


def read_checkpoint_config(path: str | Path) -> tuple[ModelConfig, dict]:
    """The config and training record of a checkpoint (folder or its weights file)."""
    weights, config_path = checkpoint_files(path)
    if not config_path.is_file():
        raise CheckpointError(
            f"{config_path}: missing; a checkpoint is a folder with {WEIGHTS_FILE} and "
            f"{CONFIG_FILE} (made by `reshoot train`)."
        )
    document = read_json_document(config_path, CONFIG_KIND, 1)
    if not isinstance(document.get("config"), dict):
        raise CheckpointError(f'{config_path}: has no "config" object; regenerate it with `reshoot train`.')
    return ModelConfig.from_dict(document["config"]), document.get("training", {})


def from_pretrained(path: str | Path, device: str | torch.device = "cpu") -> UnifiedVideoModel:
    """Load a model from a checkpoint folder (or its `model.safetensors`), in eval mode.

    Raises:
        CheckpointError: a file is missing or unreadable (a pickle renamed .safetensors, say), the weights
            were saved with another config than `config.json` says, their tensors do not fit the config's
            architecture, or they hold NaN or infinite values.
    """
    weights_path, config_path = checkpoint_files(path)
    config, _ = read_checkpoint_config(path)
    if not weights_path.is_file():
        raise CheckpointError(
            f"{weights_path}: missing. Train one with `reshoot train` or point to a checkpoint folder."
        )
    try:
        with safe_open(str(weights_path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({error}).") from error
    saved = metadata.get("config")
    if saved is not None and ModelConfig.from_dict(json.loads(saved)) != config:
        raise CheckpointError(
            f"{config_path} does not match the weights in {weights_path}: the weights were saved with "
            f"{json.loads(saved)}, the config says {config.to_dict()}. Use the config.json written with the weights."
        )
    model = UnifiedVideoModel(config)
    expected = model.state_dict()
    wrong = sorted(name for name in expected if name in state and state[name].shape != expected[name].shape)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if wrong or missing or extra:
        detail = "; ".join(
            part
            for part in (
                f"shapes differ for {wrong[:4]}" if wrong else "",
                f"missing {missing[:4]}" if missing else "",
                f"unexpected {extra[:4]}" if extra else "",
            )
            if part
        )
        raise CheckpointError(
            f"{weights_path}: the weights do not fit the {config.name!r} config in {config_path} ({detail})."
        )
    broken = sorted(
        name for name, tensor in state.items() if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    )
    if broken:
        raise CheckpointError(
            f"{weights_path}: weights {broken[:4]} hold NaN or infinite values (a training run that "
            "diverged?); the model would write black frames. Use an earlier checkpoint or train again."
        )
    model.load_state_dict(state)
    return model.to(device).eval()
