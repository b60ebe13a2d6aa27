"""What each prior of the static set buys from where no camera stood: the set fitted with variants of
the stage's training settings, scored alone in the synthetic take's held-out cameras.

Each variant fits the static set of a registered synthetic workspace exactly as `reshoot reconstruct`
does (plates, dense stereo, surfels, the stage's `set_train_config`) with some settings changed, in a
temporary folder (the workspace is not touched). The set alone is rendered (over the environment
colour it fitted) into the generator's held-out cameras (`overhead`, `high_angle`, moved into the
registration's frame) at a few frames and scored against the true frames over the pixels no true
character covers (the set has no actors): PSNR, SSIM, and the share of pixels of true surfaces that
the render covers with alpha < 0.9 (holes). The training cameras are scored the same way against their
footage.

    make demo
    .venv/bin/python benchmarks/set_from_above.py          # the five variants below, ~20 min on 2 cores

`--median-plates` fits every variant on the temporal median instead of the still plate, trusted where
fewer than 20 % of the sampled frames moved (the stage before the still plate). `--save DIR` writes each
variant's render and alpha of every camera at the first scored frame.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

VARIANTS = {
    "black background, no coverage (issue 17's first pass)": {
        "learn_background": False,
        "coverage_weight": 0.0,
        "max_scale": None,
    },
    "environment colour fitted": {"coverage_weight": 0.0, "max_scale": None},
    "environment + plane coverage 0.2": {"coverage_weight": 0.2, "max_scale": None},
    "environment + plane coverage 0.05": {"max_scale": None},
    "+ no sheets: largest scale 0.1 of the scene (the stage's)": {},
}
FRAMES = (8, 24, 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo/workspace"))
    parser.add_argument("--take", type=Path, default=Path("demo/take"))
    parser.add_argument(
        "--variants",
        default=None,
        help="comma-separated indices into the variants above (0 = the first pass); default all",
    )
    parser.add_argument("--median-plates", action="store_true", help="the temporal median, as before the still plate")
    parser.add_argument("--stereo-planes", type=int, default=None, help="the set stereo's fronto planes (the stage's)")
    parser.add_argument("--save", type=Path, default=None, help="write renders and alphas (PNG) here")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/set_from_above.json"))
    args = parser.parse_args()
    chosen = list(VARIANTS) if args.variants is None else [list(VARIANTS)[int(i)] for i in args.variants.split(",")]

    import imageio.v3 as iio

    from reshoot.background import PreparedPlate, prepared_plates
    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.geometry.splats.render import rasterize
    from reshoot.ground_truth import cameras_in_registration_frame
    from reshoot.image_metrics import ssim_map
    from reshoot.reconstruct import PLATE_MOVING_SHARE, ReconstructOptions, fit_static_set, set_train_config
    from reshoot.workspace import Workspace, load_workspace

    options = ReconstructOptions()
    if args.stereo_planes is not None:
        options = replace(options, stereo_planes=args.stereo_planes)
    settings = load_workspace(args.workspace)
    ws = Workspace(args.workspace)
    cameras = read_cameras_json(ws.cameras).cameras
    training = cameras.scaled(options.downscale).pinhole()
    footage = settings.open_footage()
    try:
        plates = prepared_plates(
            footage, cameras, options.downscale, options.samples, None, settings.open_plates(footage), still=True
        )
    finally:
        footage.close()
    if args.median_plates:
        plates = {
            name: PreparedPlate(p.rgb, p.moving, p.rgb, (p.moving < PLATE_MOVING_SHARE).float())
            for name, p in plates.items()
        }
    held = cameras_in_registration_frame(read_cameras_json(TakePaths(args.take).cameras).cameras, cameras)
    entities = json.loads(TakePaths(args.take).entities.read_text())["entities"]
    characters = [e["id"] for e in entities if e["kind"] == "character"]

    results = {}
    for label in chosen:
        changes = VARIANTS[label]
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            fitted = fit_static_set(
                Path(work),
                ws,
                settings,
                cameras,
                training,
                plates,
                options,
                lambda *_, **__: None,
                lambda o, surfels, changes=changes: replace(set_train_config(o, surfels), **changes),
            )
        seconds = time.perf_counter() - started
        scores = {
            "seconds": round(seconds, 1),
            "gaussians": len(fitted.background),
            "start": fitted.start,
            "planes": [plane["name"] for plane in fitted.planes],
            "environment": [round(float(c), 4) for c in fitted.environment],
        }
        footage = settings.open_footage()
        for name in ("overhead", "high_angle", *cameras.names):
            training_camera = name in cameras.names
            camera = (cameras if training_camera else held).select(name).pinhole()
            with torch.no_grad():
                render = rasterize(fitted.background, camera, background=fitted.environment)
            rgb, alpha = render.rgb[0].clamp(0, 1).numpy(), render.alpha[0].numpy()
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                stem = args.save / f"{chosen.index(label)}_{name}"
                iio.imwrite(f"{stem}.png", (rgb * 255).round().astype(np.uint8))
                iio.imwrite(f"{stem}_alpha.png", (alpha * 255).round().astype(np.uint8))
            maps = np.load(TakePaths(args.take).maps(name))
            squared, count, ssims, holes = 0.0, 0, [], []
            for frame in FRAMES:
                if training_camera:
                    truth = footage.source(name).read(frame)
                else:
                    truth = iio.imread(TakePaths(args.take).frame(name, frame))[..., :3] / 255.0
                kept = ~np.isin(maps["entity_ids"][frame], characters)
                squared += float(((rgb - truth) ** 2).mean(-1)[kept].sum())
                count += int(kept.sum())
                ssims.append(float(ssim_map(rgb, truth)[kept].mean()))
                holes.append(float((alpha[kept & (maps["depth"][frame] > 0)] < 0.9).mean()))
            scores[name] = {
                "psnr": round(-10 * np.log10(squared / count), 2),
                "ssim": round(float(np.mean(ssims)), 3),
                "holes": round(float(np.mean(holes)), 3),
            }
        footage.close()
        results[label] = scores
        print(
            f"{label:52s} overhead {scores['overhead']['psnr']:.2f} dB / {scores['overhead']['ssim']:.3f} "
            f"(holes {scores['overhead']['holes']:.0%}); high_angle {scores['high_angle']['psnr']:.2f} dB / "
            f"{scores['high_angle']['ssim']:.3f} (holes {scores['high_angle']['holes']:.0%}); {seconds:.0f} s",
            flush=True,
        )
        for name in cameras.names:
            print(
                f"    {name:12s} {scores[name]['psnr']:.2f} dB / {scores[name]['ssim']:.3f} (holes {scores[name]['holes']:.0%})"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "set_from_above",
                "workspace": str(args.workspace),
                "frames": list(FRAMES),
                "variants": {k: VARIANTS[k] for k in chosen},
                "plates": "median" if args.median_plates else "still",
                "stereo_planes": options.stereo_planes,
                "results": results,
                "torch_threads": torch.get_num_threads(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
