"""Registration from clean plates (+ survey) against the naive approach, on one synthetic take.

Naive: every frame of every camera (plus the same survey) into pycolmap's incremental mapper with
exhaustive matching, no masks; a camera's pose is then the mean over its registered frames. Both are
timed in the same run and compared with the generator's ground truth after a similarity alignment.

    .venv/bin/python benchmarks/registration_vs_naive.py [--frames 48] [--take DIR] [--out JSON]
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


def _errors(estimate, truth, extent: float) -> dict:
    from reshoot.geometry.alignment import pose_errors

    e = pose_errors(estimate, truth)
    return {
        "rotation_deg_max": float(e.rotation_deg.max()),
        "rotation_deg_mean": float(e.rotation_deg.mean()),
        "centre_error_pct_extent_max": float(100 * e.centre_error.max() / extent),
    }


def run_ours(take: Path, work: Path) -> tuple[float, object]:
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.registration import register
    from reshoot.workspace import Workspace, init_workspace

    ws = work / "ws"
    init_workspace(ws, take / "footage", survey=take / "survey")
    started = time.perf_counter()
    register(ws)
    seconds = time.perf_counter() - started
    return seconds, read_cameras_json(Workspace(ws).cameras).cameras


def run_naive(take: Path, work: Path) -> tuple[float, object, int]:
    import imageio.v3 as iio
    import torch

    from reshoot.datasets.footage import open_footage
    from reshoot.geometry.camera import Camera
    from reshoot.geometry.sfm import ImageGroup, build_database, incremental_sfm

    started = time.perf_counter()
    images = work / "naive"
    groups = []
    footage = open_footage(take / "footage")
    for source in footage.sources:
        (images / source.name).mkdir(parents=True)
        names = []
        for frame, rgb in source.iter_frames():
            names.append(f"{source.name}/{frame:06d}.png")
            iio.imwrite(images / names[-1], (rgb * 255 + 0.5).astype(np.uint8))
        groups.append(ImageGroup(source.name, tuple(names)))
    shutil.copytree(take / "survey", images / "survey")
    groups.append(ImageGroup("survey", tuple(f"survey/{p.name}" for p in sorted((take / "survey").iterdir()))))
    build_database(work / "naive.db", images, groups)
    result = incremental_sfm(work / "naive.db", images, work / "naive_model")
    seconds = time.perf_counter() - started

    names, poses, Ks, registered = [], [], [], 0
    for source in footage.sources:
        own = [i for i, n in enumerate(result.cameras.names) if n.startswith(source.name + "/")]
        if not own:
            continue
        registered += len(own)
        # The mean pose over the camera's registered frames (rotation by SVD projection).
        rot = result.cameras.cam_from_world[own, :3, :3].mean(0).numpy()
        u, _, vt = np.linalg.svd(rot)
        rot = u @ vt
        centre = result.cameras.centers[own].mean(0).numpy()
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = rot, -rot @ centre
        names.append(source.name)
        poses.append(pose)
        Ks.append(result.cameras.K[own[0]].numpy())
    cameras = Camera.create(
        names,
        np.stack(Ks),
        torch.from_numpy(np.stack(poses)),
        [footage.sources[0].width] * len(names),
        [footage.sources[0].height] * len(names),
    )
    return seconds, cameras, registered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--take", type=Path, default=None, help="use this synthetic take instead of making one")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/registration_vs_naive.json"))
    args = parser.parse_args()

    from reshoot.datasets.synthetic import SynthConfig, TakePaths, generate_take
    from reshoot.geometry.cameras_io import read_cameras_json

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        take = args.take
        if take is None:
            take = work / "take"
            generate_take(take, SynthConfig(frames=args.frames))
        truth = read_cameras_json(TakePaths(take).cameras).cameras
        extent = float(np.hypot(*json.loads((take / "take.json").read_text())["floor_size"]))
        ours_s, ours = run_ours(take, work)
        naive_s, naive, naive_images = run_naive(take, work)
        result = {
            "benchmark": "registration_vs_naive",
            "take": {"cameras": 4, "frames": args.frames, "size": "640x360", "survey_photos": 24},
            "ours": {"seconds": ours_s, "registered": list(ours.names), **_errors(ours, truth, extent)},
            "naive": {
                "seconds": naive_s,
                "registered": list(naive.names),
                "registered_frames": naive_images,
                **(_errors(naive, truth, extent) if len(naive) >= 3 else {}),
            },
            "speedup": naive_s / ours_s,
            "cpus": os.cpu_count(),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    o, n = result["ours"], result["naive"]
    print(
        f"ours : {o['seconds']:7.1f} s  rot max {o['rotation_deg_max']:.3f} deg  "
        f"centre max {o['centre_error_pct_extent_max']:.3f} % of extent  ({len(o['registered'])} cameras)"
    )
    print(
        f"naive: {n['seconds']:7.1f} s  rot max {n.get('rotation_deg_max', float('nan')):.3f} deg  "
        f"centre max {n.get('centre_error_pct_extent_max', float('nan')):.3f} % of extent  "
        f"({len(n['registered'])} cameras, {n['registered_frames']} frames)"
    )
    print(f"speed-up {result['speedup']:.1f}x -> {args.out}")


if __name__ == "__main__":
    main()
