"""Synthesis engines against the truth, through the product's own path, on reconstructed synthetic takes.

For each ground-truth camera of the take (the generator's `overhead` and `high_angle`, which no production
camera sees from), a shot of that camera is made (`ground_truth_shot`), its conditioning rendered
(`reshoot condition`), and `reshoot synthesize` run once per candidate:
    render           the conditioning as is (`--engine render`);
    unified          reshoot's model, filmed pixels kept (`--engine unified`, the default);
    unified-nokeep   the same model over every pixel (`--no-keep-filmed`);
    diffusers        with --diffusers-weights DIR: a Wan2.1 VACE model (`--engine diffusers`).
Each candidate's PNG frames are scored against the true frames, over the frames given (those the
reconstruction has actors for):
    psnr             PSNR over all pixels (dB);
    psnr_holes       PSNR over pixels of render coverage α < 0.5;
    psnr_kept        PSNR over pixels kept from the render (the EXR's `generated` < 0.5 of the unified run);
    sharpness_holes  mean gradient magnitude (Sobel, grey) over α < 0.5 pixels, relative to the truth's there;
    flip_holes       mean FLIP error (NVIDIA's evaluator, LDR) over α < 0.5 pixels (lower is better);
    temporal         mean |frame t − frame t−1| over pixels the truth shows as static set in both.

    make demo
    .venv/bin/python benchmarks/synthesis_engines.py                           # the demo take
    .venv/bin/python benchmarks/synthesis_engines.py --workspace W --take T --frames 0 --out F
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

CANDIDATES = {
    "render": ("render", True),
    "unified": ("unified", True),
    "unified-nokeep": ("unified", False),
    "diffusers": ("diffusers", True),
}


def sharpness(frames: np.ndarray, mask: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the grey image over `mask` ([T, H, W, 3] in [0, 1], [T, H, W] bool)."""
    values = []
    for image, m in zip(frames, mask):
        grey = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)
        magnitude = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
        values.append(magnitude[m])
    joined = np.concatenate(values)
    return float(joined.mean()) if joined.size else float("nan")


def temporal_change(frames: np.ndarray, static: np.ndarray) -> float:
    both = static[1:] & static[:-1]
    return float(np.abs(frames[1:] - frames[:-1]).mean(axis=-1)[both].mean()) if both.any() else float("nan")


def generated_pass(exr_folder: Path) -> np.ndarray:
    import OpenEXR

    out = []
    for path in sorted(exr_folder.glob("*.exr")):
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            out.append(np.array(exr.channels()["generated"].pixels, dtype=np.float32))
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo/workspace"))
    parser.add_argument("--take", type=Path, default=Path("demo/take"))
    parser.add_argument("--cameras", default="overhead,high_angle")
    parser.add_argument("--frames", default=None, help="take frames to score, comma-separated (default all)")
    parser.add_argument("--candidates", default="render,unified,unified-nokeep")
    parser.add_argument("--diffusers-weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/synthesis_engines.json"))
    args = parser.parse_args()

    import imageio.v3 as iio

    from reshoot.conditioning import read_conditioning_frame, render_conditioning
    from reshoot.engines import EngineOptions
    from reshoot.ground_truth import ground_truth_shot
    from reshoot.image_metrics import flip_map, psnr
    from reshoot.synthesis import synthesize
    from reshoot.workspace import Workspace

    candidates = args.candidates.split(",")
    if args.diffusers_weights is not None and "diffusers" not in candidates:
        candidates.append("diffusers")
    results: dict = {"workspace": str(args.workspace), "take": str(args.take), "cameras": {}}
    for camera in args.cameras.split(","):
        name = f"bench_{camera}"
        ground_truth_shot(args.workspace, args.take, camera, name, overwrite=True)
        render_conditioning(args.workspace, name)
        shot = Workspace(args.workspace).shot(name)
        all_frames = [int(p.stem) for p in sorted((shot.folder / "truth").glob("*.png"))]
        frames = [int(f) for f in args.frames.split(",")] if args.frames else all_frames
        index = [all_frames.index(f) for f in frames]
        truth = np.stack([iio.imread(shot.folder / "truth" / f"{f:06d}.png")[..., :3] / 255.0 for f in frames])
        static = np.stack([iio.imread(shot.folder / "truth" / "entity" / f"{f:06d}.png") == 0 for f in frames])
        alpha = np.stack([read_conditioning_frame(shot.conditioning, f).alpha for f in frames])
        holes = alpha < 0.5
        truth_sharpness = sharpness(truth, holes)
        made_by, seconds, kept = {}, {}, None
        for candidate in candidates:
            engine, keep = CANDIDATES[candidate]
            weights = args.diffusers_weights if engine == "diffusers" else None
            started = time.perf_counter()
            synthesize(args.workspace, name, engine, EngineOptions(weights=weights), keep_filmed=keep)
            seconds[candidate] = time.perf_counter() - started
            made_by[candidate] = np.stack(
                [iio.imread(shot.frames / f"{f:06d}.png").astype(np.float32) / 255 for f in frames]
            )
            if candidate == "unified":
                kept = generated_pass(shot.exr)[index] < 0.5
        rows = {}
        for candidate, made in made_by.items():
            rows[candidate] = {
                "psnr": round(psnr(made, truth), 3),
                "psnr_holes": round(psnr(made, truth, holes), 3) if holes.any() else None,
                "psnr_kept": round(psnr(made, truth, kept), 3) if kept is not None and kept.any() else None,
                "psnr_not_kept": round(psnr(made, truth, ~kept), 3) if kept is not None else None,
                "sharpness_holes": round(sharpness(made, holes) / truth_sharpness, 3),
                "flip_holes": round(
                    float(np.concatenate([flip_map(m, t)[h] for m, t, h in zip(made, truth, holes)]).mean()), 4
                )
                if holes.any()
                else None,
                "temporal": round(temporal_change(made, static), 5) if len(frames) > 1 else None,
                "seconds": round(seconds[candidate], 1),
            }
        results["cameras"][camera] = {
            "frames": frames,
            "hole_share": round(float(holes.mean()), 4),
            "kept_share": round(float(kept.mean()), 4) if kept is not None else None,
            "truth_temporal": round(temporal_change(truth, static), 5) if len(frames) > 1 else None,
            "candidates": rows,
        }
        for candidate, row in rows.items():
            print(
                f"{camera:10s} {candidate:15s} PSNR {row['psnr']:6.2f}  holes {row['psnr_holes']}  kept "
                f"{row['psnr_kept']}  not kept {row['psnr_not_kept']}  sharpness(holes)/truth "
                f"{row['sharpness_holes']:.3f}  FLIP(holes) {row['flip_holes']}  temporal {row['temporal']}"
            )
        shutil.rmtree(shot.folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(args.out)


if __name__ == "__main__":
    main()
