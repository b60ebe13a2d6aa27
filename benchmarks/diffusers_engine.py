"""Time and peak GPU memory per frame of the `diffusers` engine at the real Wan2.1 VACE 1.3B architecture's size
(random weights: the cost does not depend on their values), per memory tier.

The pipeline is built in memory from the published 1.3B configs (transformer 30 blocks of width 1536 with
VACE blocks on every other one, the Wan VAE, a UMT5-XXL text encoder; `--small-text-encoder` swaps the
5.7 B-parameter encoder for a 2-layer one when the machine cannot hold it) and run by the engine itself on a
synthetic shot (a render with holes, a keep mask, four source views) of `--frames` frames at 832×480.

    .venv/bin/python benchmarks/diffusers_engine.py                       # CUDA: 81 frames, 30 steps, high/medium/low
    .venv/bin/python benchmarks/diffusers_engine.py --tiny --frames 9 --steps 2 --tiers high   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def wan_vace(tiny: bool, small_text_encoder: bool, dtype: torch.dtype):
    """A WanVACEPipeline with random weights: the 1.3B architecture, or a tiny one."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanVACEPipeline, WanVACETransformer3DModel
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    if tiny:
        heads, head_dim, ffn, layers, text_dim, vae = 2, 12, 32, 2, 32, {"base_dim": 3, "dim_mult": [1, 1, 1, 1]}
        vace = [0]
    else:  # Wan2.1-VACE-1.3B
        heads, head_dim, ffn, layers, text_dim, vae = 12, 128, 8960, 30, 4096, {}
        vace = list(range(0, 30, 2))
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=heads,
        attention_head_dim=head_dim,
        in_channels=16,
        out_channels=16,
        text_dim=text_dim,
        freq_dim=256,
        ffn_dim=ffn,
        num_layers=layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
        vace_layers=vace,
        vace_in_channels=96,
    ).to(dtype)
    words = ["<pad>", "</s>", "<unk>", *"overhead wide shot of the set in view".split()]
    if tiny or small_text_encoder:
        text = UMT5Config(vocab_size=len(words), d_model=text_dim, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    else:
        text = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64)
    text_encoder = UMT5EncoderModel(text).to(dtype)
    tokenizer_model = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer_model.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_model, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    return WanVACEPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=AutoencoderKLWan(z_dim=16, temperal_downsample=[False, True, True], **vae),  # float32, as the engine
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
        transformer=transformer,
    )


def synthetic_shot(frames: int, width: int, height: int, sources: int):
    """A ShotConditioning of random content: a render whose right third is a hole, kept elsewhere."""
    from reshoot.engines import ShotConditioning
    from reshoot.geometry.camera import Camera

    def cameras(prefix: str, count: int) -> Camera:
        K = [[width * 0.9, 0, (width - 1) / 2], [0, width * 0.9, (height - 1) / 2], [0, 0, 1]]
        return Camera.create(
            [f"{prefix}{i}" for i in range(count)],
            [K] * count,
            torch.eye(4).expand(count, 4, 4),
            [width] * count,
            [height] * count,
        )

    g = torch.Generator().manual_seed(0)
    keep = torch.ones(frames, height, width)
    keep[:, :, 2 * width // 3 :] = 0
    footage = torch.rand(sources, height, width, 3, generator=g)
    return ShotConditioning(
        name="bench",
        description="overhead wide shot of the set",
        frames=list(range(frames)),
        fps=24.0,
        cameras=cameras("shot/", frames),
        rgb=torch.rand(frames, height, width, 3, generator=g),
        depth=torch.ones(frames, height, width),
        alpha=keep.clone(),
        entity_ids=torch.full((frames, height, width), -1, dtype=torch.int32),
        entities={},
        filmed=keep > 0,
        keep=keep,
        sources=cameras("source_", sources),
        source_frames=lambda frame: (footage, frame),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--tiers", default="high,medium,low")
    parser.add_argument("--tiny", action="store_true", help="a tiny architecture (a smoke run on CPU)")
    parser.add_argument("--small-text-encoder", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/diffusers_engine.json"))
    args = parser.parse_args()

    from reshoot.engines import EngineOptions
    from reshoot.engines.diffusers_vace import DiffusersEngine, model_dtype

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pipe = wan_vace(args.tiny, args.small_text_encoder, model_dtype(device))
    parameters = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in ("transformer", "vae", "text_encoder")
    }
    shot = synthetic_shot(args.frames, 832, 480, 4)
    rows = []
    for tier in args.tiers.split(","):
        engine = DiffusersEngine(pipe)
        options = EngineOptions(device=device.type, memory=tier, steps=args.steps)
        started = time.perf_counter()
        made = engine.synthesize(shot, options, lambda *a, **k: None)
        seconds = time.perf_counter() - started
        row = {
            "tier": tier,
            "seconds_per_frame": round(seconds / args.frames, 3),
            "peak_vram_mib": made.record["peak_vram_mib"],
            "memory_measures": made.record["memory_measures"],
            "working_size": made.record["working_size"],
            "windows": made.record["windows"],
        }
        rows.append(row)
        print(json.dumps(row))
        if device.type == "cuda":
            pipe.remove_all_hooks()
            pipe.to("cpu")
            torch.cuda.empty_cache()
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "dtype": str(model_dtype(device)),
        "parameters": parameters,
        "frames": args.frames,
        "steps": args.steps,
        "tiny": args.tiny,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(args.out)


if __name__ == "__main__":
    main()
