"""`reshoot train --engine diffusers --adapt WS --from DIR`: a LoRA of a Wan2.1 VACE model learned on the take.

The episodes are the unified model's adaptation episodes (`model_training.adaptation_scene`): each held-out
production camera is left out, the set and actors reconstructed from the others, and the held-out camera
rendered at every frame beside its real (undistorted) frames. A training step draws an episode and a clip
of `clip_frames` consecutive frames (`numpy` generator seeded with [seed, step]) and builds what the engine
gives the model at synthesis time (engines/diffusers_vace.py): the render as control video, a mask that
gives the render where it agrees with the real frame (the keep rule of engines/keep.py, with the real
frame as the footage) and generates the rest, the other cameras' frames as reference images, the take's
words as the prompt. The loss is Wan's flow matching: latents x0 of the reference images and the real
clip (VAE, normalized as the pipeline does), noise ε, σ drawn uniformly and shifted by the scheduler's
flow shift, x_σ = (1 − σ) x0 + σ ε, and the transformer's prediction of ε − x0 at timestep 1000 σ,
mean squared error, through LoRA adapters (peft: rank `rank` on the attention projections) only.

Writes OUT (default WS/model/diffusers_lora/): `pytorch_lora_weights.safetensors` (diffusers' LoRA
format: `pipe.load_lora_weights(OUT)`) and `adapter.json` (reshoot/adapter: base weights and their
digest, held-out cameras, options, first and last loss). `reshoot synthesize --engine diffusers
--weights DIR --adapter OUT` uses it. A workspace initialized with --sensitive is refused: its footage
never trains a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reshoot.engines.contract import EngineOptions
from reshoot.engines.diffusers_vace import (
    ADAPTER_FILE,
    DiffusersEngine,
    model_frame_count,
    resized,
    to_pil,
    working_grid,
)
from reshoot.engines.keep import KEEP_AREA_PX, KEEP_COLOUR_TOLERANCE, KEEP_MIN_COVERAGE
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import atomic_directory, write_json_document
from reshoot.geometry.progress import ProgressFn, no_progress
from reshoot.reconstruct import ReconstructOptions

TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass(frozen=True)
class LoraOptions:
    """`reshoot train --engine diffusers --adapt WS`.

    Attributes:
        weights: the base Wan2.1 VACE model folder (`--from`).
        out: the adapter folder; None = WS/model/diffusers_lora.
        held_out: production cameras left out in turn (one reconstruction each); empty = every one.
        steps, lr, rank, seed, device: the optimisation (AdamW on the LoRA weights only).
        clip_frames: frames per training clip (made 4k + 1).
        working_pixels: about how many pixels the episodes are rendered at (Wan2.1's 480p by default).
        reconstruct: the leave-one-out reconstructions' budget.
    """

    weights: Path
    out: Path | None = None
    held_out: tuple[str, ...] = ()
    steps: int = 200
    lr: float = 1e-4
    rank: int = 16
    seed: int = 0
    device: str = "auto"
    clip_frames: int = 9
    working_pixels: int = 832 * 480
    reconstruct: ReconstructOptions = field(default_factory=ReconstructOptions)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.rank < 1 or self.clip_frames < 1:
            raise InputError(f"--steps, --rank and clip frames must be at least 1 ({self.steps}, {self.rank}).")


@dataclass(frozen=True)
class LoraSummary:
    """What `adapt_lora` wrote: the adapter folder, steps, first and last loss, seconds."""

    out: Path
    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def given_mask(render: np.ndarray, truth: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """[T, H, W] float32 VACE mask of a training clip: 0 (given) where the render is covered and agrees with
    the real frame (the keep rule, the real frame standing for the footage), 1 (generated) elsewhere."""
    out = []
    for r, t, a in zip(render, truth, alpha):
        local = cv2.blur(np.abs(r - t).mean(axis=-1).astype(np.float32), (KEEP_AREA_PX, KEEP_AREA_PX))
        out.append(~((a >= KEEP_MIN_COVERAGE) & (local <= KEEP_COLOUR_TOLERANCE)))
    return np.stack(out).astype(np.float32)


def _latents(pipe, video: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[1, C, T', h, w] normalized VAE latents of a [1, 3, T, H, W] video in [-1, 1] (as the pipeline makes them)."""
    from diffusers.pipelines.wan.pipeline_wan_vace import retrieve_latents

    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean, device=video.device).view(1, -1, 1, 1, 1)
    inverse_std = 1.0 / torch.tensor(vae.config.latents_std, device=video.device).view(1, -1, 1, 1, 1)
    latents = retrieve_latents(vae.encode(video.to(vae.dtype)), generator, sample_mode="argmax")
    return (latents.float() - mean) * inverse_std


def adapt_lora(workspace: str | Path, options: LoraOptions, progress: ProgressFn | None = None) -> LoraSummary:
    """Learn a LoRA of the base model on the take's held-out-camera episodes (module docstring).

    Raises:
        InputError: the workspace is sensitive, has fewer than three production cameras, not laid out, names
            an unknown camera, or the base weights are not a supported model folder.
    """
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from reshoot.layout_io import read_layout
    from reshoot.model.training import resolve_device
    from reshoot.model_data import load_scene
    from reshoot.model_training import adaptation_cameras, adaptation_scene, refuse_sensitive
    from reshoot.stage import DigestCache
    from reshoot.synthesis import shot_description
    from reshoot.workspace import Workspace, load_workspace

    report = progress or no_progress
    # 1. Check inputs before any work.
    root = Path(workspace)
    refuse_sensitive(
        root,
        load_workspace(root),
        "Synthesize with the base model (`reshoot synthesize --engine diffusers --weights DIR`).",
    )
    engine = DiffusersEngine()
    engine_options = EngineOptions(weights=options.weights, device=options.device, memory="high")
    engine.check_inputs(engine_options)
    ws = Workspace(root)
    held_out = adaptation_cameras(root, options.held_out)
    out = Path(options.out) if options.out is not None else ws.model / "diffusers_lora"

    # 2. Episodes, the model with LoRA adapters, the prompt.
    scenes = [
        load_scene(adaptation_scene(root, name, options.working_pixels, options.reconstruct, progress))
        for name in held_out
    ]
    device = resolve_device(options.device)
    pipe, family, _ = engine._pipeline(engine_options, device)
    transformer = pipe.transformer
    transformer.requires_grad_(False)
    pipe.vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    torch.manual_seed(options.seed)
    transformer.add_adapter(
        LoraConfig(r=options.rank, lora_alpha=options.rank, init_lora_weights=True, target_modules=TARGET_MODULES)
    )
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    for p in trainable:
        p.data = p.data.float()  # LoRA weights train in float32 beside a bf16 base
    optimizer = torch.optim.AdamW(trainable, lr=options.lr, weight_decay=0.0)
    entities = {e.entity_id: e.name for e in read_layout(ws.layout).entities} if ws.layout.is_file() else {}
    prompt = shot_description(None, entities)
    with torch.no_grad():
        prompt_embeds, _ = pipe.encode_prompt(prompt=prompt, do_classifier_free_guidance=False, device=device)
    prompt_embeds = prompt_embeds.to(transformer.dtype)
    shift = float(getattr(pipe.scheduler.config, "flow_shift", 1.0) or 1.0)

    # 3. Flow matching on the episodes.
    losses: list[float] = []
    started = time.perf_counter()
    transformer.train()
    for step in range(options.steps):
        rng = np.random.default_rng([options.seed, step])
        scene = scenes[int(rng.integers(len(scenes)))]
        count = scene.render_rgb.shape[1]
        length = min(options.clip_frames, count)
        start = int(rng.integers(count - length + 1))
        clip = slice(start, start + length)
        height, width = scene.render_rgb.shape[2:4]
        grid = working_grid(width, height, options.working_pixels)
        render = resized(scene.render_rgb[0, clip].float(), grid)
        truth = resized(scene.truth[0, clip].float() / 255, grid)
        alpha = resized(scene.render_alpha[0, clip, ..., None].float(), grid)[..., 0]
        frames_in = model_frame_count(length)
        pad = frames_in - length
        render, truth = (torch.cat([x, x[-1:].expand(pad, -1, -1, -1)]) for x in (render, truth))
        alpha = torch.cat([alpha, alpha[-1:].expand(pad, -1, -1)])
        mask = torch.from_numpy(given_mask(render.numpy(), truth.numpy(), alpha.numpy()))[..., None]
        middle = start + length // 2
        sources = resized(scene.source_rgb[middle].float() / 255, grid)
        references = to_pil(sources)[: (frames_in - 1) // 4 + 1]
        generator = torch.Generator("cpu").manual_seed(options.seed * 1_000_003 + step)
        with torch.no_grad():
            video, holes, refs = pipe.preprocess_conditions(
                to_pil(render), to_pil(mask), references, 1, grid[1], grid[0], frames_in, torch.float32, device
            )
            control = pipe.prepare_video_latents(video, holes, refs, generator, device)
            control = torch.cat([control, pipe.prepare_masks(holes, refs, generator)], dim=1).to(transformer.dtype)
            target_video = pipe.video_processor.preprocess_video(to_pil(truth), grid[1], grid[0]).to(device)
            x0 = torch.cat(
                [_latents(pipe, r[None, :, None], generator) for r in refs[0]]
                + [_latents(pipe, target_video, generator)],
                dim=2,
            )
        noise = torch.randn(x0.shape, generator=generator).to(device)
        u = float(rng.uniform(0.02, 0.98))
        sigma = shift * u / (1 + (shift - 1) * u)
        noisy = ((1 - sigma) * x0 + sigma * noise).to(transformer.dtype)
        timestep = torch.full((1,), sigma * 1000.0, device=device)
        prediction = transformer(
            hidden_states=noisy,
            timestep=timestep,
            encoder_hidden_states=prompt_embeds,
            control_hidden_states=control,
            return_dict=False,
        )[0]
        loss = F.mse_loss(prediction.float(), (noise - x0).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if not np.isfinite(losses[-1]):
            raise InputError(f"the LoRA's loss became {losses[-1]} at step {step}; lower --lr. Nothing was written.")
        report("adapting", step + 1, options.steps, loss=losses[-1])
    seconds = time.perf_counter() - started

    # 4. The adapter, written beside its place and renamed in.
    with atomic_directory(out, overwrite=True) as tmp:
        type(pipe).save_lora_weights(
            tmp,
            transformer_lora_layers=get_peft_model_state_dict(transformer),
            weight_name=ADAPTER_FILE,
            safe_serialization=True,
        )
        write_json_document(
            tmp / "adapter.json",
            "adapter",
            1,
            {
                "engine": "diffusers",
                "family": family,
                "base_weights": str(options.weights),
                "base_weights_digest": DigestCache(ws).of(Path(options.weights)),
                "workspace": str(root),
                "held_out": held_out,
                "prompt": prompt,
                "options": {
                    "steps": options.steps,
                    "lr": options.lr,
                    "rank": options.rank,
                    "seed": options.seed,
                    "clip_frames": options.clip_frames,
                    "working_pixels": options.working_pixels,
                },
                "target_modules": TARGET_MODULES,
                "first_loss": losses[0],
                "last_loss": losses[-1],
                "seconds": round(seconds, 1),
            },
        )
    return LoraSummary(out, options.steps, losses[0], losses[-1], seconds)
