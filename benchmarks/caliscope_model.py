"""Real footage: the plain render vs the video model (pretrained, and adapted to the take) on a camera
that neither the reconstruction nor the adaptation ever saw.

caliscope_4cam has four calibrated cameras. The workspace holds only the first three (`--held-out`
is left outside it entirely): calibrated with the take's `camera_array.toml`, registered, laid out
and reconstructed from those three (`--frames`, `--downscale`). Per-scene adaptation then runs inside
that workspace as a user would (`reshoot train --adapt WS`: it leaves each of the three out in turn,
reconstructs from the other two, learns to predict the first two and picks the correction scale on
the third). The held-out fourth camera is mapped into the registration's frame by the cameras they
share, rendered at the model's working size (320×180), and the candidates are scored against its real
frames (undistorted, area-downsampled): the render, the pretrained model's frames, the adapted model's
frames (with the correction scale adaptation chose, and at full scale). PSNR and SSIM over all pixels.

The workspace is kept in `benchmarks/results/caliscope_model/` so a second run reuses its stages.

    cd benchmarks && ../.venv/bin/python caliscope_model.py [--data ../../shared/data/caliscope_4cam]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import torch
from kornia.metrics import ssim

HERE = Path(__file__).resolve().parent


def scores(frames: torch.Tensor, truth: torch.Tensor) -> dict:
    """frames, truth: [T, H, W, 3] in [0, 1] → mean PSNR (dB) and SSIM over frames."""
    mse = ((frames - truth) ** 2).mean(dim=(1, 2, 3))
    psnr = (10 * torch.log10(1 / mse.clamp_min(1e-12))).mean()
    s = ssim(frames.permute(0, 3, 1, 2), truth.permute(0, 3, 1, 2), window_size=11).mean()
    return {"psnr": float(psnr), "ssim": float(s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "caliscope_4cam")
    parser.add_argument("--held-out", default="cam_3")
    parser.add_argument("--frames", default="0:24", help="take frames A:B with actors")
    parser.add_argument("--downscale", type=int, default=4)
    parser.add_argument("--set-iterations", type=int, default=2000)
    parser.add_argument("--adapt-steps", type=int, default=300)
    parser.add_argument("--checkpoint", type=Path, default=HERE.parent / "model" / "weights" / "tiny")
    parser.add_argument("--work", type=Path, default=HERE / "results" / "caliscope_model")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "caliscope_model.json")
    args = parser.parse_args()

    from reshoot.datasets.calibration import load_caliscope_camera_array
    from reshoot.datasets.footage import open_footage
    from reshoot.engines.unified import synthesize_frames
    from reshoot.geometry.camera import undistort_image
    from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
    from reshoot.ground_truth import cameras_in_registration_frame
    from reshoot.layout import layout
    from reshoot.model.checkpoint import from_pretrained
    from reshoot.model.inference import working_size
    from reshoot.model.inputs import area_resized, posed_frames, resized_camera
    from reshoot.model_data import footage_frames, render_targets
    from reshoot.model_training import AdaptOptions, adapt_model, adaptation_validation
    from reshoot.reconstruct import ReconstructOptions, reconstruct
    from reshoot.registration import register
    from reshoot.render import parse_frames
    from reshoot.workspace import Workspace, init_workspace

    span = parse_frames(args.frames)
    frames = list(range(*span))
    videos = args.data / "calibration" / "extrinsic"
    calibration = load_caliscope_camera_array(args.data / "camera_array.toml")
    kept = [n for n in calibration.names if n != args.held_out]
    footage = args.work / "footage"
    ws = args.work / "ws"
    timings = {}
    if not Workspace(ws).layout.is_file():
        footage.mkdir(parents=True, exist_ok=True)
        for name in kept:
            link = footage / f"{name}.mp4"
            if not link.exists():
                link.symlink_to((videos / f"{name}.mp4").resolve())
        write_cameras_json(args.work / "kept_cameras.json", calibration.select(kept))
        init_workspace(ws, footage, calibration=args.work / "kept_cameras.json", force=True)
        register(ws)
        layout(ws)
    budget = ReconstructOptions(downscale=args.downscale, set_iterations=args.set_iterations, frames=span)
    if not Workspace(ws).set_splats.is_file():
        started = time.perf_counter()
        reconstruct(ws, budget)
        timings["reconstruct_s"] = time.perf_counter() - started
    started = time.perf_counter()
    adapted = adapt_model(ws, AdaptOptions(steps=args.adapt_steps, start_from=args.checkpoint, reconstruct=budget))
    timings["adapt_s"] = time.perf_counter() - started

    pretrained = from_pretrained(args.checkpoint)
    registered = read_cameras_json(Workspace(ws).cameras).cameras
    held = cameras_in_registration_frame(calibration, registered).select(args.held_out)
    work_w, work_h = working_size(int(held.width[0]), int(held.height[0]), pretrained.config.working_pixels)
    target = resized_camera(held.pinhole(), work_w, work_h)
    passes = {k: torch.from_numpy(v[0]) for k, v in render_targets(ws, target, frames).items()}
    with open_footage(videos, args.data / "camera_array.toml") as take:
        truth = torch.stack(
            [undistort_image(torch.from_numpy(take.source(args.held_out).read(f)), held) for f in frames]
        )
    truth = area_resized(truth, (work_w, work_h))
    sources = registered.select(kept)
    source_rgb = torch.from_numpy(footage_frames(ws, kept, frames, (work_w, work_h))).float() / 255
    cams = posed_frames(target, count=len(frames))
    candidates = {"render": passes["render_rgb"]}
    adapted_model = from_pretrained(adapted.out)
    unscaled = from_pretrained(adapted.out)
    unscaled.config = dataclasses.replace(unscaled.config, correction_scale=1.0)
    for label, model in (("pretrained", pretrained), ("adapted", adapted_model), ("adapted_unscaled", unscaled)):
        out, _ = synthesize_frames(
            model,
            cams,
            frames,
            passes["render_rgb"],
            passes["render_depth"],
            passes["render_alpha"],
            passes["entity_ids"].long(),
            sources,
            lambda f: (source_rgb[frames.index(f)], f),
        )
        candidates[label] = out
    results = {label: scores(frames_.float(), truth.float()) for label, frames_ in candidates.items()}
    record = {
        "benchmark": "caliscope_model",
        "held_out": args.held_out,
        "workspace_cameras": kept,
        "frames": args.frames,
        "downscale": args.downscale,
        "adapt_steps": args.adapt_steps,
        "adapted_loss": [adapted.first_loss, adapted.last_loss],
        "working_size": [work_w, work_h],
        "adaptation_validation": adaptation_validation(adapted.out),
        "scores": results,
        "timings": timings,
        "cpus": os.cpu_count(),
        "checkpoint": str(args.checkpoint),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for label, s in results.items():
        print(f"{label:16s} PSNR {s['psnr']:.2f} dB  SSIM {s['ssim']:.3f}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
