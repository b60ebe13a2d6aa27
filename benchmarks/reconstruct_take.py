"""Reconstruct a registered synthetic take end to end and score it against the generator's ground truth.

Times `reshoot reconstruct` with its default settings, then renders every frame into the held-out
ground-truth cameras (`overhead`, `high_angle`, never trained on; moved into the registration's frame
by the similarity that aligns the production cameras) and into the production cameras, and reports
PSNR and SSIM against the true frames over all pixels and over the pixels the render covers
(alpha >= 0.9). Training-camera PSNR of the static set is against its clean plate (moving pixels
masked), at the fitting resolution.

    make demo   # makes demo/take and the registered demo/workspace
    .venv/bin/python benchmarks/reconstruct_take.py --workspace demo/workspace --take demo/take
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _scores(render: np.ndarray, truth: np.ndarray, alpha: np.ndarray) -> dict:
    error = ((render - truth) ** 2).mean(-1)
    from reshoot.image_metrics import ssim_map

    ssim = ssim_map(render, truth)
    covered = alpha >= 0.9
    out = {"psnr_all": float(-10 * np.log10(error.mean())), "ssim_all": float(ssim.mean()),
           "covered_share": float(covered.mean())}
    if covered.any():
        out.update(psnr_covered=float(-10 * np.log10(error[covered].mean())), ssim_covered=float(ssim[covered].mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo/workspace"))
    parser.add_argument("--take", type=Path, default=Path("demo/take"))
    parser.add_argument("--set-iterations", type=int, default=None, help="default: the stage's default")
    parser.add_argument("--frame-step", type=int, default=4, help="score every Nth frame")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reconstruct_take.json"))
    args = parser.parse_args()

    import imageio.v3 as iio

    from reshoot.datasets.footage import open_footage
    from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
    from reshoot.ground_truth import cameras_in_registration_frame
    from reshoot.reconstruct import ReconstructOptions, reconstruct
    from reshoot.render import render_cameras

    options = ReconstructOptions() if args.set_iterations is None else ReconstructOptions(set_iterations=args.set_iterations)
    shutil.rmtree(args.workspace / "splats.work", ignore_errors=True)  # time a fresh run, not a resumed one
    started = time.perf_counter()
    summary = reconstruct(args.workspace, options)
    seconds = time.perf_counter() - started
    print(f"reconstructed in {seconds:.0f} s (set {summary.seconds_set:.0f} s, actors {summary.seconds_actors:.0f} s): set PSNR {summary.set_psnr}, set + actors {summary.actor_psnr}")

    truth = read_cameras_json(args.take / "gt" / "cameras.json").cameras
    registered = read_cameras_json(args.workspace / "registration" / "cameras.json").cameras
    results = {}
    with tempfile.TemporaryDirectory() as tmp, open_footage(args.take / "footage") as footage:
        cameras = Path(tmp) / "cameras.json"
        write_cameras_json(cameras, cameras_in_registration_frame(truth, registered))
        started = time.perf_counter()
        render_cameras(args.workspace, cameras, Path(tmp) / "renders")
        render_seconds = time.perf_counter() - started
        for name in truth.names:
            folder = Path(tmp) / "renders" / name
            frames = sorted(int(p.stem) for p in folder.glob("*.png"))[:: args.frame_step]
            per_frame = []
            for frame in frames:
                if name in registered.names:
                    real = footage.source(name).read(frame)
                else:
                    real = iio.imread(args.take / "gt" / "frames" / name / f"{frame:06d}.png")[..., :3] / 255.0
                render = iio.imread(folder / f"{frame:06d}.png") / 255.0
                alpha = iio.imread(folder / "alpha" / f"{frame:06d}.png") / 255.0
                per_frame.append(_scores(render, real, alpha))
            results[name] = {key: float(np.mean([f[key] for f in per_frame if key in f])) for key in per_frame[0]}
            results[name]["held_out"] = name not in registered.names
            results[name]["frames_scored"] = len(frames)
    out = {"benchmark": "reconstruct_take", "workspace": str(args.workspace), "seconds_reconstruct": seconds,
           "seconds_set": summary.seconds_set, "seconds_actors": summary.seconds_actors,
           "seconds_render_all_cameras_all_frames": render_seconds, "set_gaussians": summary.set_gaussians,
           "set_psnr_vs_plate": summary.set_psnr, "set_plus_actors_psnr_vs_frames": summary.actor_psnr,
           "full_resolution_scores": results, "options": {k: str(v) for k, v in vars(options).items()},
           "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'camera':12} {'held out':8} {'PSNR all':>9} {'SSIM all':>9} {'PSNR a>=.9':>11} {'SSIM a>=.9':>11} {'covered':>8}")
    for name, r in results.items():
        print(f"{name:12} {str(r['held_out']):8} {r['psnr_all']:9.2f} {r['ssim_all']:9.3f} {r.get('psnr_covered', float('nan')):11.2f} "
              f"{r.get('ssim_covered', float('nan')):11.3f} {r['covered_share']:8.2f}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
