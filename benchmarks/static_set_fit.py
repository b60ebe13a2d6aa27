"""Fit the static set of a registered workspace with splats and report PSNR on its training images.

Views: each production camera's clean plate and every registered survey photo, at 1/`--downscale`
resolution, with the registered cameras; initialization from the registration's sparse points.

    .venv/bin/python benchmarks/static_set_fit.py WS [--iterations 1000] [--downscale 2] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch


def _scaled(camera, factor: int):
    from reshoot.geometry.camera import Camera

    K = camera.K.clone()
    K[:, :2, :] /= factor
    K[:, :2, 2] = (camera.K[:, :2, 2] + 0.5) / factor - 0.5  # pixel centres stay pixel centres
    return Camera.create(camera.names, K, camera.cam_from_world, camera.width // factor, camera.height // factor)


def _image(path: Path, factor: int) -> torch.Tensor:
    import imageio.v3 as iio

    image = torch.from_numpy(iio.imread(path)[..., :3].astype(np.float32) / 255.0)
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean((1, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--downscale", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/static_set_fit.json"))
    args = parser.parse_args()

    import open3d as o3d

    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.geometry.splats.render import rasterize
    from reshoot.geometry.splats.train import TrainConfig, TrainingView, initial_gaussians, psnr, train_splats
    from reshoot.workspace import load_workspace

    reg = args.workspace / "registration"
    settings = load_workspace(args.workspace)
    views = []
    production = read_cameras_json(reg / "cameras.json").cameras
    for i, name in enumerate(production.names):
        views.append(TrainingView(_scaled(production.select(i), args.downscale), _image(reg / "plates" / f"{name}.png", args.downscale)))
    n_production = len(views)
    if (reg / "survey_cameras.json").is_file() and settings.survey is not None:
        survey = read_cameras_json(reg / "survey_cameras.json").cameras
        for i, name in enumerate(survey.names):
            views.append(TrainingView(_scaled(survey.select(i), args.downscale),
                                      _image(settings.survey / f"{name}.png", args.downscale)))
    cloud = o3d.io.read_point_cloud(str(reg / "points.ply"))
    init = initial_gaussians(np.asarray(cloud.points), np.asarray(cloud.colors), sh_degree=3)
    config = TrainConfig(iterations=args.iterations, views_per_step=2, sh_degree_interval=max(args.iterations // 4, 1),
                         refine_start=min(500, args.iterations // 5), refine_stop=int(args.iterations * 0.8),
                         reset_every=10 * args.iterations)
    started = time.perf_counter()
    result = train_splats(views, init, config, log_every=max(args.iterations // 10, 1))
    seconds = time.perf_counter() - started
    with torch.no_grad():
        scores = [psnr(rasterize(result.gaussians, v.camera).rgb[0], v.image) for v in views]
    out = {"benchmark": "static_set_fit", "workspace": str(args.workspace), "iterations": args.iterations,
           "downscale": args.downscale, "views": len(views), "production_views": n_production,
           "psnr_production_plates": scores[:n_production], "psnr_survey_mean": float(np.mean(scores[n_production:])) if len(scores) > n_production else None,
           "gaussians_initial": len(init), "gaussians_final": len(result.gaussians), "seconds": seconds,
           "log": result.log, "cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"static set: PSNR on the production plates {np.round(scores[:n_production], 2).tolist()} dB, survey mean "
          f"{out['psnr_survey_mean']:.2f} dB; {len(init)} -> {len(result.gaussians)} Gaussians, {args.iterations} "
          f"steps in {seconds:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
