"""The `diffusers` engine: a pretrained video diffusion model from a local folder, run with diffusers.

The family supported is Wan2.1 VACE (`WanVACEPipeline`: video + mask conditioning). A shot is made as:
- control video: the reconstruction's render, at a working size of about `WORKING_PIXELS` pixels whose
  sides are multiples of 16 (the VAE's 8 × the transformer's 2 × 2 patches); the result is resized back;
- mask: 1 − the keep weight (engines/keep.py): what was filmed and agrees is given, the rest (holes, and
  filmed surfaces the reconstruction got wrong, such as smeared characters) is generated, with the
  render there still in the control video as a guide;
- reference images: every production camera's footage at the window's middle frame (as many as the
  window has latent frames: (frames - 1) / 4 + 1);
- prompt: the shot's description (or `--prompt`), with `NEGATIVE_PROMPT`.
Long shots go in windows of `--window` frames (81 unless set); each window after the first is given the
previous window's last `OVERLAP` frames as video with mask 0 (kept) and cross-fades into them. A frame
count the model cannot take (it wants 4k + 1) is padded with the last frame and cut back: nothing is
refused for its size or length.

Memory (`--memory`, on CUDA): high = every component on the GPU; medium = model CPU offload (one component
on the GPU at a time); low = sequential CPU offload (layer by layer) and tiled, sliced VAE decoding. Weights
are bf16 on CUDA (fp16 where bf16 is not supported; the VAE stays float32, as Wan's own code runs it),
float32 on CPU. Nothing is downloaded: the folder is read with `local_files_only`, and a folder that is
not a supported model is refused before loading.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reshoot.engines.contract import EngineOptions, ShotConditioning, ShotFrames
from reshoot.geometry.errors import InputError
from reshoot.geometry.progress import ProgressFn

SUPPORTED = {"WanVACEPipeline": "Wan2.1 VACE"}
"""model_index.json `_class_name` → the family's name."""
WORKING_PIXELS = 832 * 480
SIZE_MULTIPLE = 16
WINDOW_FRAMES = 81
OVERLAP = 8
DEFAULT_STEPS = 30
GUIDANCE_SCALE = 5.0
NEGATIVE_PROMPT = "blurry, smeared, distorted, ghosting, flickering, low quality, text, watermark"
INSTALL_HINT = "install the engines extra: pip install 'reshoot[engines]'"
ADAPTER_FILE = "pytorch_lora_weights.safetensors"
"""A LoRA adapter's weights in its folder (diffusers' name: what `save_lora_weights` writes)."""


def working_grid(width: int, height: int, pixels: int = WORKING_PIXELS) -> tuple[int, int]:
    """(w, h) the model works at for frames of width × height: about `pixels` pixels (fewer for a smaller
    shot: never upscaled past its own size), aspect kept, each side a multiple of SIZE_MULTIPLE (≥ one)."""
    factor = min(1.0, (pixels / (width * height)) ** 0.5)

    def snap(side: float) -> int:
        return max(SIZE_MULTIPLE, int(round(side * factor / SIZE_MULTIPLE)) * SIZE_MULTIPLE)

    return snap(width), snap(height)


def model_frame_count(count: int) -> int:
    """The smallest 4k + 1 frame count (Wan's VAE compresses time by 4) holding `count` frames."""
    return 4 * ((max(count, 1) - 1 + 3) // 4) + 1


def window_starts(count: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """[(start, stop)] of consecutive windows of at most `window` frames over `count` frames, each after the
    first starting `overlap` frames before the previous one's end."""
    if count <= window:
        return [(0, count)]
    spans, start = [], 0
    while True:
        stop = min(start + window, count)
        spans.append((start, stop))
        if stop == count:
            return spans
        start = stop - overlap


def model_family(weights: Path) -> str:
    """The model_index.json class of a diffusers folder, refused unless supported.

    Raises:
        InputError: no folder, no model_index.json, or a pipeline class not in SUPPORTED.
    """
    index = weights / "model_index.json"
    if not index.is_file():
        raise InputError(
            f"--weights {weights}: not a diffusers model folder (no model_index.json). Point it to a local copy "
            f"of a {', '.join(SUPPORTED.values())} model in diffusers' layout; reshoot never downloads weights."
        )
    name = json.loads(index.read_text()).get("_class_name")
    if name not in SUPPORTED:
        raise InputError(
            f"--weights {weights}: a {name} model; the diffusers engine runs {', '.join(SUPPORTED)} "
            f"({', '.join(SUPPORTED.values())})."
        )
    return name


def resized(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[N, H, W, C] → [N, h, w, C] at size (w, h), area-averaged down, bilinear up."""
    w, h = size
    if images.shape[1:3] == (h, w):
        return images
    mode = "area" if h <= images.shape[1] else "bilinear"
    x = images.permute(0, 3, 1, 2).float()
    out = F.interpolate(x, size=(h, w), mode=mode) if mode == "area" else F.interpolate(x, (h, w), mode=mode)
    return out.permute(0, 2, 3, 1)


def to_pil(images: torch.Tensor) -> list:
    """[N, H, W, C] in [0, 1] → N 8-bit PIL images (C = 3: RGB, C = 1: L)."""
    from PIL import Image

    pixels = (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]


def model_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (fp16 where bf16 is not supported), float32 on CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def apply_memory_tier(pipe, memory: str, device: torch.device) -> list[str]:
    """Put a diffusers pipeline on `device` in a memory tier (module docstring); what it did, in words.

    On CPU there is no accelerator memory to save: "medium" still installs the model-offload hooks (they move
    each component to the CPU it is on), "low" tiles and slices the VAE's decoding but does not offload layer
    by layer (accelerate's sequential offload needs an accelerator to offload to).
    """
    if memory == "high":
        pipe.to(device)
        return ["all on " + device.type]
    if memory == "medium":
        pipe.enable_model_cpu_offload(device=device)
        return ["model offload"]
    applied = ["vae tiling", "vae slicing"]
    if device.type != "cpu":
        pipe.enable_sequential_cpu_offload(device=device)
        applied.insert(0, "sequential offload")
    pipe.vae.enable_tiling()
    pipe.vae.enable_slicing()
    return applied


class DiffusersEngine:
    """A Wan2.1 VACE model from `--weights DIR` (see the module docstring).

    Args:
        pipeline: a pipeline already built (the benchmark's, at the real architecture's size with random
            weights), used instead of loading `--weights`; None (what the registry makes) loads the folder.
    """

    name = "diffusers"
    stochastic = True

    def __init__(self, pipeline=None) -> None:
        self._given = pipeline
        self._loaded: tuple | None = None  # (what it was loaded for, pipeline, class name, tier measures)

    def check_inputs(self, options: EngineOptions) -> None:
        try:
            import diffusers  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as error:
            raise InputError(f"the diffusers engine needs {error.name}: {INSTALL_HINT}.") from error
        if options.adapter is not None and not (Path(options.adapter) / ADAPTER_FILE).is_file():
            raise InputError(
                f"--adapter {options.adapter}: no {ADAPTER_FILE} there; make one with `reshoot train --engine "
                "diffusers --adapt WS --from DIR`."
            )
        if self._given is not None:
            return
        if options.weights is None:
            raise InputError(
                "--engine diffusers needs --weights DIR: a local folder of a Wan2.1 VACE model in diffusers' "
                "layout (model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/)."
            )
        weights = Path(options.weights)
        if not weights.is_dir():
            raise InputError(f"--weights {weights}: no such folder.")
        model_family(weights)

    def _pipeline(self, options: EngineOptions, device: torch.device):
        """(the pipeline in `options.memory`'s tier on `device`, its class name, what the tier did), loaded once
        for every sample of a run (`--samples N` calls `synthesize` N times with other seeds)."""
        import diffusers

        wanted = (options.weights, options.adapter, options.memory, str(device))
        if self._loaded is not None and self._loaded[0] == wanted:
            return self._loaded[1:]
        if self._given is not None:
            pipe = self._given
        else:
            weights = Path(options.weights)  # type: ignore[arg-type]  # check_inputs refused None
            pipeline_class = getattr(diffusers, model_family(weights))
            dtypes = {"default": model_dtype(device), "vae": torch.float32}  # Wan's VAE decodes in float32
            pipe = pipeline_class.from_pretrained(weights, dtype=dtypes, local_files_only=True)
        if options.adapter is not None:
            pipe.load_lora_weights(str(options.adapter), weight_name=ADAPTER_FILE)
        pipe.set_progress_bar_config(disable=True)
        self._loaded = (wanted, pipe, type(pipe).__name__, apply_memory_tier(pipe, options.memory, device))
        return self._loaded[1:]

    def synthesize(self, conditioning: ShotConditioning, options: EngineOptions, progress: ProgressFn) -> ShotFrames:
        from reshoot.model.training import resolve_device

        # 1. Check inputs, load the model into its memory tier.
        self.check_inputs(options)
        device = resolve_device(options.device)
        pipe, family, applied = self._pipeline(options, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        # 2. The shot at the working size: control video, mask, windows.
        width, height = conditioning.size
        grid = working_grid(width, height)
        count = len(conditioning.frames)
        window = max(2, options.window if options.window is not None else WINDOW_FRAMES)
        overlap = min(OVERLAP, window // 2)
        spans = window_starts(count, window, overlap)
        render = resized(conditioning.rgb, grid)
        mask = 1 - resized(conditioning.keep[..., None], grid)
        prompt = options.prompt if options.prompt is not None else conditioning.description
        steps = options.steps or DEFAULT_STEPS
        made = torch.zeros(count, grid[1], grid[0], 3)
        references_used = []
        started = time.perf_counter()
        # 3. Window by window, each given the frames the previous one made where they overlap.
        for k, (start, stop) in enumerate(spans):
            video, holes = render[start:stop].clone(), mask[start:stop].clone()
            given = 0 if k == 0 else spans[k - 1][1] - start
            video[:given], holes[:given] = made[start : start + given], 0
            frames_in = model_frame_count(stop - start)
            pad = frames_in - (stop - start)
            video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
            holes = torch.cat([holes, holes[-1:].expand(pad, -1, -1, -1)])
            footage, _ = conditioning.source_frames(conditioning.frames[(start + stop - 1) // 2])
            # diffusers' WanVACEPipeline pads the mask for at most as many references as the window has latent
            # frames: a short window takes that many sources.
            references = to_pil(resized(footage, grid))[: (frames_in - 1) // 4 + 1]
            references_used.append(len(references))
            out = pipe(
                prompt=prompt,
                negative_prompt=NEGATIVE_PROMPT,
                video=to_pil(video),
                mask=to_pil(holes),
                reference_images=references,
                height=grid[1],
                width=grid[0],
                num_frames=frames_in,
                num_inference_steps=steps,
                guidance_scale=GUIDANCE_SCALE,
                generator=torch.Generator("cpu").manual_seed(options.seed + k),
                output_type="np",
            ).frames[0]
            new = torch.from_numpy(np.asarray(out[: stop - start], dtype=np.float32))
            fade = torch.linspace(0, 1, given + 2)[1:-1, None, None, None]  # into the new window's frames
            made[start : start + given] = (1 - fade) * made[start : start + given] + fade * new[:given]
            made[start + given : stop] = new[given:]
            progress("synthesizing", k + 1, len(spans))
        seconds = time.perf_counter() - started
        # 4. Back to the shot's size.
        frames = resized(made, (width, height)).clamp(0, 1)
        record = {
            "family": SUPPORTED.get(family, family),
            "weights": str(options.weights) if self._given is None else None,
            "adapter": str(options.adapter) if options.adapter is not None else None,
            "device": str(device),
            "dtype": str(pipe.transformer.dtype).removeprefix("torch."),
            "memory": options.memory,
            "memory_measures": applied,
            "peak_vram_mib": round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None,
            "working_size": list(grid),
            "windows": [[conditioning.frames[a], conditioning.frames[b - 1]] for a, b in spans],
            "window_frames": window,
            "overlap": overlap,
            "steps": steps,
            "guidance_scale": GUIDANCE_SCALE,
            "seed": options.seed,
            "prompt": prompt,
            "references": references_used,
            "model_seconds_per_frame": round(seconds / max(count, 1), 4),
        }
        return ShotFrames(frames, torch.ones(conditioning.alpha.shape), record)
