"""Per-scene adaptation on a synthetic take: does it help the ground-truth cameras no production camera is?

A held-out synthetic take (seed 5000 + i, never used in training) goes through the episode pipeline
(synth → register → reconstruct → layout at the episode settings), keeping its workspace. Then
`reshoot train --adapt WS` runs on it with its defaults (every production camera left out in turn,
reconstructed from the others at the same budget; keep_exposure; the correction scale chosen by
cross-validation). The pretrained and the adapted model are scored as in model_quality.py on the
generator's `overhead` and `high_angle` cameras: PSNR and SSIM over all pixels, PSNR where the render's
coverage is below 0.5, against the true frames, beside the plain render.

This is the other side of caliscope_model.py: there the cameras differ in exposure; here they share it.

    cd benchmarks && ../.venv/bin/python adaptation_synthetic.py --seed 5000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from model_quality import HELD_OUT, evaluate

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--adapt-steps", type=int, default=300)
    parser.add_argument("--checkpoint", type=Path, default=HERE.parent / "model" / "weights" / "tiny")
    parser.add_argument("--work", type=Path, default=HERE / "results" / "adaptation_synthetic")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "adaptation_synthetic.json")
    args = parser.parse_args()

    from reshoot.model.checkpoint import from_pretrained
    from reshoot.model_data import EpisodeSettings, build_scene, load_scene
    from reshoot.model_training import AdaptOptions, adapt_model, adaptation_validation
    from reshoot.reconstruct import ReconstructOptions

    settings = EpisodeSettings()
    work = args.work / f"seed_{args.seed}"
    timings = {}
    started = time.perf_counter()
    scene = load_scene(build_scene(work / "scene", args.seed, settings, keep_in=work))
    timings["scene_s"] = time.perf_counter() - started
    budget = ReconstructOptions(
        set_iterations=settings.set_iterations,
        first_actor_iterations=settings.first_actor_iterations,
        actor_iterations=settings.actor_iterations,
        checkpoint_every=settings.set_iterations,
        seed=args.seed,
    )
    started = time.perf_counter()
    adapted = adapt_model(
        work / "ws", AdaptOptions(steps=args.adapt_steps, start_from=args.checkpoint, reconstruct=budget)
    )
    timings["adapt_s"] = time.perf_counter() - started
    models = {"pretrained": from_pretrained(args.checkpoint), "adapted": from_pretrained(adapted.out)}
    rows = []
    for name in HELD_OUT:
        camera = scene.targets.names.index(name)
        static = scene.true_ids[camera].numpy() < 0
        row = {"camera": name}
        for label, model in models.items():
            scores = evaluate(scene, camera, model, static)
            row["render"] = scores["render"]
            row[label] = scores["model"]
        rows.append(row)
        print(
            f"{name:10s} "
            + "  ".join(
                f"{k} {row[k]['psnr']:.2f}/{row[k]['ssim']:.3f}/{row[k]['psnr_low_alpha'] or float('nan'):.2f}"
                for k in ("render", "pretrained", "adapted")
            ),
            flush=True,
        )
    record = {
        "benchmark": "adaptation_synthetic",
        "seed": args.seed,
        "adapt_steps": args.adapt_steps,
        "checkpoint": str(args.checkpoint),
        "adaptation_validation": adaptation_validation(adapted.out),
        "rows": rows,
        "mean": {
            k: {
                m: float(np.mean([r[k][m] for r in rows if r[k][m] is not None]))
                for m in ("psnr", "ssim", "psnr_low_alpha")
            }
            for k in ("render", "pretrained", "adapted")
        },
        "timings": timings,
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["adaptation_validation"]))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
