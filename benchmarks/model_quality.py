"""The unified model vs the plain splat render vs a classical baseline, on held-out synthetic takes.

Takes with seeds never used in training (training uses 1000-1999; this uses 5000 + i) go through the
same pipeline as a user's footage (synth → init with survey → register by feature matching →
reconstruct → layout) and are rendered into the generator's ground-truth `overhead` and `high_angle`
cameras, which no production camera sees from. Three candidates for each frame, at the episode size
(320×180):
    render   the reconstruction's render (what `reshoot condition` writes);
    inpaint  render with pixels of coverage < 0.5 filled by OpenCV's Telea inpainting;
    model    `reshoot synthesize`'s frames (windows blended) with the given checkpoint.
Scores against the true frames: PSNR and SSIM over all pixels, PSNR over pixels of coverage < 0.5;
temporal change: mean absolute difference of consecutive frames over pixels that the ground truth
shows as static set in both (entity id -1), for the candidate and for the truth.
Also the CPU speed of the model at 320×240 (s per frame, window of `window` frames).

    cd benchmarks && ../.venv/bin/python model_quality.py --takes 10 --checkpoint ../model/weights/tiny
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from reshoot.engines.unified import synthesize_frames
from reshoot.image_metrics import mean_ssim as ssim_all
from reshoot.image_metrics import psnr
from reshoot.model.checkpoint import from_pretrained
from reshoot.model.inputs import posed_frames
from reshoot.model_data import EpisodeSettings, build_scene, load_scene

BENCHMARK_SEED = 5000
HELD_OUT = ("overhead", "high_angle")


def inpainted(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] render with alpha < 0.5 filled by cv2.inpaint (Telea, radius 5)."""
    out = []
    for image, a in zip(rgb, alpha):
        mask = (a < 0.5).astype(np.uint8)
        filled = cv2.inpaint((image * 255 + 0.5).astype(np.uint8), mask, 5, cv2.INPAINT_TELEA)
        out.append(filled.astype(np.float32) / 255)
    return np.stack(out)


def temporal_change(frames: np.ndarray, static: np.ndarray) -> float:
    """Mean |frame t − frame t−1| over pixels static in both."""
    both = static[1:] & static[:-1]
    return float(np.abs(frames[1:] - frames[:-1]).mean(axis=-1)[both].mean())


def evaluate(scene, camera: int, model, static: np.ndarray) -> dict:
    frames = [int(f) for f in scene.frames]
    rgb = scene.render_rgb[camera].float()
    alpha = scene.render_alpha[camera].float()
    truth = scene.truth[camera].float().numpy() / 255
    cams = posed_frames(scene.targets.select(camera), count=len(frames))
    out, seconds = synthesize_frames(
        model,
        cams,
        frames,
        rgb,
        scene.render_depth[camera].float(),
        alpha,
        scene.entity_ids[camera].long(),
        scene.sources,
        lambda f: (scene.source_rgb[frames.index(f)].float() / 255, f),
    )
    candidates = {"render": rgb.numpy(), "inpaint": inpainted(rgb.numpy(), alpha.numpy()), "model": out.numpy()}
    low = alpha.numpy() < 0.5
    row = {"low_alpha_share": float(low.mean()), "model_seconds": seconds}
    for name, frames_ in candidates.items():
        row[name] = {
            "psnr": psnr(frames_, truth),
            "ssim": ssim_all(frames_, truth),
            "psnr_low_alpha": psnr(frames_, truth, low) if low.any() else None,
            "temporal_change": temporal_change(frames_, static),
        }
    row["truth_temporal_change"] = temporal_change(truth, static)
    return row


def speed(model, repeats: int = 3) -> float:
    """Seconds per 320×240 frame of the model alone, a window of config.window frames, 4 sources."""
    from reshoot.model.inputs import ShotWindow

    t, v = model.config.window, 4
    g = torch.Generator().manual_seed(0)
    window = ShotWindow(
        torch.rand(1, t, 3, 240, 320, generator=g),
        torch.rand(1, t, 1, 240, 320, generator=g),
        torch.rand(1, t, 1, 240, 320, generator=g),
        torch.randint(-1, 4, (1, t, 240, 320), generator=g),
        torch.randn(1, t, 6, 240, 320, generator=g),
        torch.zeros(1, t),
        torch.rand(1, v, 3, 120, 160, generator=g),
        torch.randn(1, v, 6, 120, 160, generator=g),
        torch.zeros(1, v),
    )
    with torch.no_grad():
        model(window)
        started = time.perf_counter()
        for _ in range(repeats):
            model(window)
    return (time.perf_counter() - started) / repeats / t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--takes", type=int, default=10)
    parser.add_argument(
        "--checkpoint", type=Path, default=Path(__file__).resolve().parent.parent / "model" / "weights" / "tiny"
    )
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent.parent / ".cache" / "episodes")
    parser.add_argument("--out", type=Path, default=Path("results/model_quality.json"))
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    model = from_pretrained(args.checkpoint)
    settings = EpisodeSettings()
    rows = []
    for i in range(args.takes):
        seed = BENCHMARK_SEED + i
        scene = load_scene(build_scene(args.cache, seed, settings))
        for name in HELD_OUT:
            camera = scene.targets.names.index(name)
            static = scene.true_ids[camera].numpy() < 0  # the truth shows static set there
            row = {"seed": seed, "camera": name, **evaluate(scene, camera, model, static)}
            rows.append(row)
            print(
                f"seed {seed} {name:10s} "
                + "  ".join(
                    f"{k} {row[k]['psnr']:.2f}/{row[k]['ssim']:.3f}/{row[k]['psnr_low_alpha'] or float('nan'):.2f}"
                    for k in ("render", "inpaint", "model")
                ),
                flush=True,
            )
    summary = {}
    for k in ("render", "inpaint", "model"):
        summary[k] = {
            m: float(np.mean([r[k][m] for r in rows if r[k][m] is not None]))
            for m in ("psnr", "ssim", "psnr_low_alpha", "temporal_change")
        }
    summary["truth_temporal_change"] = float(np.mean([r["truth_temporal_change"] for r in rows]))
    summary["model_cpu_seconds_per_320x240_frame"] = speed(model)
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "rows": rows,
                "summary": summary,
                "checkpoint": str(args.checkpoint),
                "takes": args.takes,
                "threads": torch.get_num_threads(),
                "argv": sys.argv[1:],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
