"""Reconstruct a registered synthetic take end to end and score it from cameras no stage saw.

Times `reshoot reconstruct` with its default settings (peak memory of the process reported), lays the
take out (`reshoot layout`, for the entity id pass), then renders every frame into the generator's
held-out cameras (`overhead`, `high_angle`; moved into the registration's frame by the similarity
that aligns the production cameras) and into the production cameras, and scores every
`--frame-step`th frame against the true frames:

- PSNR and SSIM over all pixels and over the pixels the render covers (alpha >= 0.9);
- characters from above: per true character, the IoU between the render's alpha of its entity (the
  conditioning's id pass: actor Gaussians inside the layout character's box, matched to the true
  character by its track) and the true id map; the share of frames with IoU >= 0.6; ghosts: the share
  of the actors' alpha outside every true character's mask;
- floaters: the alpha of what lies in front of the first true surface (`alpha_in_front`, true depth
  from the generator), and the share of pixels where it stays below 0.1.

    make demo   # makes demo/take and the registered demo/workspace
    .venv/bin/python benchmarks/reconstruct_take.py --workspace demo/workspace --take demo/take
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import torch

FLOATER_ALPHA = 0.1


def _scores(render: np.ndarray, truth: np.ndarray, alpha: np.ndarray) -> dict:
    error = ((render - truth) ** 2).mean(-1)
    from reshoot.image_metrics import ssim_map

    ssim = ssim_map(render, truth)
    covered = alpha >= 0.9
    out = {
        "psnr_all": float(-10 * np.log10(error.mean())),
        "ssim_all": float(ssim.mean()),
        "covered_share": float(covered.mean()),
    }
    if covered.any():
        out.update(psnr_covered=float(-10 * np.log10(error[covered].mean())), ssim_covered=float(ssim[covered].mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo/workspace"))
    parser.add_argument("--take", type=Path, default=Path("demo/take"))
    parser.add_argument("--set-iterations", type=int, default=None, help="default: the stage's default")
    parser.add_argument("--frame-step", type=int, default=4, help="score every Nth frame")
    parser.add_argument("--no-reconstruct", action="store_true", help="score the workspace's reconstruction as it is")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reconstruct_take.json"))
    args = parser.parse_args()

    import imageio.v3 as iio

    from reshoot.conditioning import entity_one_hots
    from reshoot.datasets.footage import open_footage
    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.geometry.splats.render import rasterize
    from reshoot.geometry.splats.surfaces import alpha_in_front
    from reshoot.ground_truth import cameras_in_registration_frame, compare_layouts, registration_from_truth
    from reshoot.layout import layout
    from reshoot.layout_io import read_layout
    from reshoot.reconstruct import ReconstructOptions, reconstruct
    from reshoot.render import load_splat_scene
    from reshoot.scene import scene_facts
    from reshoot.workspace import Workspace

    options = (
        ReconstructOptions() if args.set_iterations is None else ReconstructOptions(set_iterations=args.set_iterations)
    )
    summary, seconds = None, None
    if not args.no_reconstruct:
        shutil.rmtree(Workspace(args.workspace).splats_work, ignore_errors=True)  # time a fresh run, not a resumed one
        started = time.perf_counter()
        summary = reconstruct(args.workspace, options)
        seconds = time.perf_counter() - started
        print(
            f"reconstructed in {seconds:.0f} s (set {summary.seconds_set:.0f} s, actors {summary.seconds_actors:.0f} s): "
            f"set PSNR {summary.set_psnr}, set + actors {summary.actor_psnr}, pruned {summary.pruned}"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    layout(args.workspace)

    truth = read_cameras_json(TakePaths(args.take).cameras).cameras
    registered = read_cameras_json(Workspace(args.workspace).cameras).cameras
    to_registration = registration_from_truth(truth, registered)
    scale = float(np.cbrt(np.linalg.det(to_registration[:3, :3])))
    cameras = cameras_in_registration_frame(truth, registered)
    true_entities = read_layout(TakePaths(args.take).entities).entities
    estimated = read_layout(Workspace(args.workspace).layout).entities
    matches = compare_layouts(estimated, true_entities, to_registration).matches
    true_ids = {e.name: e.entity_id for e in true_entities}
    characters = [e.entity_id for e in true_entities if e.kind == "character"]
    facts = scene_facts(args.workspace)
    entities = list(facts.entities.values())
    scene = load_splat_scene(args.workspace)
    results = {}
    started = time.perf_counter()
    with open_footage(args.take / "footage") as footage:
        for i, name in enumerate(cameras.names):
            camera = cameras.select(i).pinhole()
            maps = np.load(TakePaths(args.take).maps(name))
            per_frame, ious, ghosts, floater_ok = [], {c: [] for c in characters}, [], []
            for frame in range(facts.first_frame, facts.first_frame + facts.frame_count, args.frame_step):
                index = frame - facts.first_frame
                actors = scene.actors_at(frame)
                gaussians = scene.at(frame)
                features = entity_one_hots(scene.background, actors, entities, index)
                with torch.no_grad():
                    out = rasterize(gaussians, camera, features=features, background=scene.environment)
                render = out.rgb[0].clamp(0, 1).numpy()
                if name in registered.names:
                    real = footage.source(name).read(frame)
                else:
                    real = iio.imread(TakePaths(args.take).frame(name, frame))[..., :3] / 255.0
                per_frame.append(_scores(render, real, out.alpha[0].numpy()))
                ids = maps["entity_ids"][index]
                actor_alpha = np.zeros(ids.shape)
                for k, entity in enumerate(entities):
                    if entity.kind != "character":
                        continue
                    weight = out.features[0, ..., k].numpy()
                    actor_alpha += weight
                    true_name = matches.get(entity.name)
                    if true_name is not None:
                        predicted, actual = weight >= 0.5, ids == true_ids[true_name]
                        if actual.any():
                            ious[true_ids[true_name]].append(
                                float((predicted & actual).sum() / (predicted | actual).sum())
                            )
                for c in characters:  # a true character no layout character was matched to scores 0
                    if len(ious[c]) < len(per_frame) and (ids == c).any():
                        ious[c].append(0.0)
                inside = np.isin(ids, characters)
                ghosts.append(float(actor_alpha[~inside].sum() / max(actor_alpha.sum(), 1e-6)))
                floaters = alpha_in_front(gaussians, camera, torch.from_numpy(maps["depth"][index] * scale)).numpy()
                floater_ok.append(float((floaters < FLOATER_ALPHA).mean()))
            result = {key: float(np.mean([f[key] for f in per_frame if key in f])) for key in per_frame[0]}
            result.update(
                held_out=name not in registered.names,
                frames_scored=len(per_frame),
                ghost_share=float(np.mean(ghosts)),
                floater_free_share=float(np.mean(floater_ok)),
                floater_free_share_min=float(np.min(floater_ok)),
                character_iou={
                    str(c): {
                        "mean": float(np.mean(v)) if v else 0.0,
                        "share_at_least_0.6": float(np.mean(np.array(v) >= 0.6)) if v else 0.0,
                    }
                    for c, v in ious.items()
                },
            )
            results[name] = result
    render_seconds = time.perf_counter() - started
    out = {
        "benchmark": "reconstruct_take",
        "workspace": str(args.workspace),
        "seconds_reconstruct": seconds,
        "peak_memory_mib": peak_mib,
        "seconds_scoring": render_seconds,
        "seconds_set": summary.seconds_set if summary else None,
        "seconds_actors": summary.seconds_actors if summary else None,
        "set_gaussians": summary.set_gaussians if summary else len(scene.background),
        "pruned": summary.pruned if summary else None,
        "characters_followed": summary.characters if summary else None,
        "set_psnr_vs_plate": summary.set_psnr if summary else None,
        "set_plus_actors_psnr_vs_frames": summary.actor_psnr if summary else None,
        "full_resolution_scores": results,
        "options": {k: str(v) for k, v in vars(options).items()},
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"{'camera':12} {'held out':8} {'PSNR all':>9} {'SSIM all':>9} {'PSNR a>=.9':>11} {'covered':>8} "
        f"{'ghost':>6} {'no floater':>10}  character IoU (mean, share >= 0.6)"
    )
    for name, r in results.items():
        iou = "  ".join(f"{c}: {v['mean']:.2f}, {v['share_at_least_0.6']:.0%}" for c, v in r["character_iou"].items())
        print(
            f"{name:12} {str(r['held_out']):8} {r['psnr_all']:9.2f} {r['ssim_all']:9.3f} "
            f"{r.get('psnr_covered', float('nan')):11.2f} {r['covered_share']:8.2f} {r['ghost_share']:6.3f} "
            f"{r['floater_free_share']:10.3f}  {iou}"
        )
    print(f"peak memory {peak_mib:.0f} MiB -> {args.out}")


if __name__ == "__main__":
    main()
