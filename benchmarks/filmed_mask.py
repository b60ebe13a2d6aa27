"""How well the deliverable's `filmed` mask matches the truth: IoU against a mask made from the generator's
ground-truth depth, in the synthetic take's held-out cameras.

Ours is what `reshoot condition` writes (`reprojection.filmed_mask`): the reconstruction (set + that
frame's actors) rendered into the held-out camera (moved into the registration's frame) and into every
production camera, a pixel filmed where some production camera's render agrees on its depth. The truth
is computed here from the take's ground-truth depth maps alone, in the generator's frame: a held-out
pixel's surface point (true depth) is filmed where it lands inside a production camera's image and that
camera's true depth at its nearest pixel is within 2 % of the point's depth (`true_filmed_mask`).

    make demo
    .venv/bin/python benchmarks/filmed_mask.py                    # demo take, overhead and high_angle
    .venv/bin/python benchmarks/filmed_mask.py --take T --workspace W   # another reconstructed take
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo/workspace"))
    parser.add_argument("--take", type=Path, default=Path("demo/take"))
    parser.add_argument("--cameras", default="overhead,high_angle")
    parser.add_argument("--frames", default="0,8,16,24,32,40,47", help="take frames, comma-separated")
    parser.add_argument("--images", type=Path, default=None, help="write ours | truth PNGs here")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/filmed_mask.json"))
    args = parser.parse_args()

    import imageio.v3 as iio

    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import cameras_in_registration_frame, true_filmed_mask
    from reshoot.render import load_splat_scene
    from reshoot.reprojection import filmed_mask, render_depth
    from reshoot.workspace import Workspace

    take = TakePaths(args.take)
    truth = read_cameras_json(take.cameras).cameras
    registered = read_cameras_json(Workspace(args.workspace).cameras)
    production_names = registered.names_with_role("production", default="production")
    sources = registered.cameras.select(production_names)
    moved = cameras_in_registration_frame(truth, registered.cameras)
    scene = load_splat_scene(args.workspace)
    true_maps = {n: np.load(take.maps(n)) for n in [*production_names, *args.cameras.split(",")]}
    frames = [int(f) for f in args.frames.split(",")]
    results: dict = {"workspace": str(args.workspace), "take": str(args.take), "cameras": {}}
    for name in args.cameras.split(","):
        rows = []
        for frame in frames:
            index = {int(f): i for i, f in enumerate(true_maps[name]["frames"])}[frame]
            gaussians = scene.at(frame)
            shot = moved.select([name]).pinhole()
            depth, alpha = render_depth(gaussians, shot, "cpu")
            ours = filmed_mask(gaussians, shot, depth[0], alpha[0], sources, "cpu").numpy()
            true = true_filmed_mask(
                true_maps[name]["depth"][index],
                truth.select([name]),
                truth.select(production_names),
                [true_maps[n]["depth"][index] for n in production_names],
            )
            union = (ours | true).sum()
            iou = float((ours & true).sum() / union) if union else 1.0
            rows.append(
                {
                    "frame": frame,
                    "iou": round(iou, 4),
                    "ours": round(float(ours.mean()), 4),
                    "truth": round(float(true.mean()), 4),
                }
            )
            print(f"{name} frame {frame}: IoU {iou:.3f}  filmed share ours {ours.mean():.3f}  truth {true.mean():.3f}")
            if args.images is not None:
                args.images.mkdir(parents=True, exist_ok=True)
                picture = np.concatenate([ours, true], axis=1).astype(np.uint8) * 255
                iio.imwrite(args.images / f"{name}_{frame:06d}.png", picture)
        ious = [r["iou"] for r in rows]
        results["cameras"][name] = {"mean_iou": round(float(np.mean(ious)), 4), "min_iou": min(ious), "frames": rows}
        print(f"{name}: mean IoU {np.mean(ious):.3f}, min {min(ious):.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(args.out)


if __name__ == "__main__":
    main()
