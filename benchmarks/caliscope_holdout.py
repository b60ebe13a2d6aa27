"""Real footage, one camera held out: reconstruct caliscope_4cam from three cameras, render the fourth.

The workspace holds the three training cameras only, calibrated with the take's own `camera_array.toml`
(registration only triangulates, and never sees the held-out camera's pictures), the set and the actors
are fitted on them, and the held-out camera (its calibration carried into the registration's world
frame with the report's `world_from_sfm`) is
rendered at several frames and compared with its real frames (undistorted with its calibrated lens,
since renders are pinhole): PSNR and SSIM over all pixels, over pixels with alpha >= 0.9, and over
the pixels whose surface at least one training camera saw ("seen": the held-out render's surface
point, from its depth, lies inside a training camera's picture and not behind that camera's own
render of the same frame by more than 5 %; the mask comes from the reconstruction alone).

    .venv/bin/python benchmarks/caliscope_holdout.py [--data ../shared/data/caliscope_4cam] [--held-out cam_3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "caliscope_4cam")
    parser.add_argument("--held-out", default="cam_3")
    parser.add_argument("--downscale", type=int, default=4)
    parser.add_argument("--set-iterations", type=int, default=2000)
    parser.add_argument("--frames", default="0:57", help="take frames A:B with actors")
    parser.add_argument("--score-every", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "caliscope_holdout.json")
    parser.add_argument(
        "--register-held-out",
        action="store_true",
        help="register all four cameras, as this benchmark did until 2026-12-08 (the held-out camera's "
        "pictures then seed the set's sparse points)",
    )
    args = parser.parse_args()

    import imageio.v3 as iio
    from reconstruct_take import _scores  # noqa: E402 (same folder)

    from reshoot.datasets.calibration import load_calibration
    from reshoot.datasets.footage import open_footage
    from reshoot.geometry.camera import undistort_image
    from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
    from reshoot.image_metrics import psnr, ssim_map
    from reshoot.reconstruct import ReconstructOptions, reconstruct
    from reshoot.registration import register
    from reshoot.render import load_splat_scene, parse_frames, render_cameras
    from reshoot.workspace import Workspace, init_workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        footage_dir = args.data / "calibration" / "extrinsic"
        calibration = load_calibration(args.data / "camera_array.toml")
        training = tuple(n for n in calibration.names if n != args.held_out)
        if args.register_held_out:
            init_workspace(ws, footage_dir, calibration=args.data / "camera_array.toml")
        else:
            (Path(tmp) / "footage").mkdir()
            for name in training:
                (Path(tmp) / "footage" / f"{name}.mp4").symlink_to(footage_dir / f"{name}.mp4")
            write_cameras_json(Path(tmp) / "calibration.json", calibration.select(list(training)))
            init_workspace(ws, Path(tmp) / "footage", calibration=Path(tmp) / "calibration.json")
        registration = register(ws)
        cameras = read_cameras_json(Workspace(ws).cameras).cameras
        held = _in_world_frame(Workspace(ws), calibration, cameras, args.held_out)
        options = ReconstructOptions(
            downscale=args.downscale,
            set_iterations=args.set_iterations,
            cameras=training,
            frames=parse_frames(args.frames),
        )
        started = time.perf_counter()
        summary = reconstruct(ws, options)
        seconds = time.perf_counter() - started
        environment = load_splat_scene(ws).environment.tolist()
        write_cameras_json(Path(tmp) / "held.json", held.scaled(args.downscale).pinhole())
        frames = parse_frames(args.frames)
        render_cameras(ws, Path(tmp) / "held.json", Path(tmp) / "renders", frames=frames)
        per_frame = {}
        with open_footage(footage_dir, args.data / "camera_array.toml") as footage:
            for frame in range(frames[0], frames[1], args.score_every):
                real = undistort_image(torch.from_numpy(footage.source(args.held_out).read(frame)), held).numpy()
                h, w = real.shape[0] // args.downscale, real.shape[1] // args.downscale
                real = (
                    real[: h * args.downscale, : w * args.downscale]
                    .reshape(h, args.downscale, w, args.downscale, 3)
                    .mean((1, 3))
                )
                folder = Path(tmp) / "renders" / args.held_out
                render = iio.imread(folder / f"{frame:06d}.png") / 255.0
                alpha = iio.imread(folder / "alpha" / f"{frame:06d}.png") / 255.0
                per_frame[frame] = _scores(render, real, alpha)
                seen = _seen_by_training(
                    load_splat_scene(ws).at(frame),
                    held.scaled(args.downscale).pinhole(),
                    cameras.select(list(training)).scaled(args.downscale).pinhole(),
                )
                per_frame[frame].update(
                    seen_share=float(seen.mean()),
                    psnr_seen=psnr(render, real, seen),
                    ssim_seen=float(ssim_map(render, real)[seen].mean()),
                )
    mean = {k: float(np.mean([s[k] for s in per_frame.values() if k in s])) for k in next(iter(per_frame.values()))}
    out = {
        "benchmark": "caliscope_holdout",
        "held_out": args.held_out,
        "training_cameras": list(training),
        "registered_with_held_out": args.register_held_out,
        "sparse_points": registration.points,
        "downscale": args.downscale,
        "seconds_reconstruct": seconds,
        "set_gaussians": summary.set_gaussians,
        "set_psnr_vs_plate": summary.set_psnr,
        "environment": environment,
        "set_plus_actors_psnr_vs_frames": summary.actor_psnr,
        "held_out_scores_per_frame": per_frame,
        "held_out_scores_mean": mean,
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"trained on {training} in {seconds:.0f} s; training PSNR vs frames {summary.actor_psnr}; "
        f"pruned {summary.pruned}; environment {environment}"
    )
    for frame, s in per_frame.items():
        print(
            f"{args.held_out} frame {frame:3d}: PSNR {s['psnr_all']:.2f} dB, SSIM {s['ssim_all']:.3f} (all); "
            f"PSNR {s.get('psnr_covered', float('nan')):.2f}, SSIM {s.get('ssim_covered', float('nan')):.3f} "
            f"(alpha >= 0.9, {s['covered_share']:.0%} of pixels); PSNR {s['psnr_seen']:.2f}, SSIM "
            f"{s['ssim_seen']:.3f} (seen by a training camera, {s['seen_share']:.0%} of pixels)"
        )
    print(f"mean: {mean} -> {args.out}")


def _in_world_frame(ws, calibration, registered, name: str, tolerance_m: float = 1e-3):
    """Camera `name` of the calibration in the registration's world frame (`calibration_in_world`),
    checked on the registered cameras, which must land where registration put them."""
    from reshoot.registration import calibration_in_world

    moved = calibration_in_world(ws.root, calibration.select(list(registered.names)), "camera_array.toml")
    off = float((moved.centers - registered.centers.to(moved.centers.dtype)).norm(dim=-1).max())
    if off > tolerance_m:
        raise SystemExit(f"the calibration does not map onto the registered cameras ({off:.4f} m off)")
    return calibration_in_world(ws.root, calibration.select(name), "camera_array.toml")


def _seen_by_training(gaussians, held, training, tolerance: float = 0.05) -> np.ndarray:
    """[H, W] bool: pixels of the held-out camera whose rendered surface a training camera sees."""
    from reshoot.geometry.splats.render import render_each
    from reshoot.geometry.splats.surfaces import views_seeing

    out = render_each(gaussians, held)[0]
    depths = torch.stack([render.depth[0] for render in render_each(gaussians, training)])
    h, w = out.depth.shape[1:]
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    surface = out.alpha[0] >= 0.5
    points = held.unproject(torch.stack([cols, rows], -1).reshape(1, -1, 2), out.depth[0].reshape(1, -1).double())[0]
    seen = views_seeing(points, training, depths, tolerance) > 0
    return (seen.reshape(h, w) & surface).numpy()


if __name__ == "__main__":
    main()
