"""Real footage: does `reshoot layout` find the person in caliscope_4cam, and is the ChArUco board the
person carries inside the person's 3D box?

The workspace is calibrated with the take's own `camera_array.toml`; registration triangulates the set
and puts the floor at z = 0. The board's corners, triangulated by caliscope
(`CHARUCO/xyz_CHARUCO.csv`, caliscope's world frame, one row per corner and sync index), are moved
into the registration's frame by the similarity that aligns the calibration's camera centres with the
registered ones. Sync indices become take frames by their rank in the footage's `timestamps.csv`
(the videos start at sync index 35).

    .venv/bin/python benchmarks/caliscope_layout.py [--data ../shared/data/caliscope_4cam] [--reconstruct]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def board_centres(csv_path: Path) -> dict[int, np.ndarray]:
    """sync index → [3] mean of the board's triangulated corners (caliscope's frame)."""
    corners: dict[int, list[list[float]]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            corners.setdefault(int(row["sync_index"]), []).append(
                [float(row["x_coord"]), float(row["y_coord"]), float(row["z_coord"])]
            )
    return {k: np.mean(v, axis=0) for k, v in corners.items()}


def frame_of_sync_index(timestamps_csv: Path) -> dict[int, int]:
    """sync index → take frame: the videos hold one frame per sync index listed, in order."""
    with open(timestamps_csv, newline="") as f:
        syncs = sorted({int(row["sync_index"]) for row in csv.DictReader(f)})
    return {sync: frame for frame, sync in enumerate(syncs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "caliscope_4cam")
    parser.add_argument(
        "--reconstruct",
        action="store_true",
        help="reconstruct the set first (500 steps at 1/4 size): props from splats, occluding depth",
    )
    parser.add_argument("--margin", type=float, default=0.0, help="metres added around the person's box")
    parser.add_argument("--workspace", type=Path, help="keep the workspace here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "caliscope_layout.json")
    args = parser.parse_args()

    from reshoot.datasets.calibration import load_caliscope_camera_array
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import registration_from_truth
    from reshoot.layout import layout
    from reshoot.layout_io import read_layout
    from reshoot.reconstruct import ReconstructOptions, reconstruct
    from reshoot.registration import register
    from reshoot.workspace import Workspace, init_workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace or Path(tmp) / "ws"
        if not Workspace(ws).cameras.is_file():
            init_workspace(
                ws, args.data / "calibration" / "extrinsic", calibration=args.data / "camera_array.toml", force=True
            )
            register(ws)
        if args.reconstruct:
            reconstruct(ws, ReconstructOptions(downscale=4, set_iterations=500, frames=(0, 1)))
        started = time.perf_counter()
        summary = layout(ws)
        seconds = time.perf_counter() - started
        estimate = read_layout(Workspace(ws).layout)
        registered = read_cameras_json(Workspace(ws).cameras).cameras
    transform = registration_from_truth(load_caliscope_camera_array(args.data / "camera_array.toml"), registered)
    assert estimate.frames is not None  # the layout stage records the frames it covers
    first, stop = estimate.frames
    boxes: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for e in estimate.of_kind("character"):
        for f in e.frames:
            boxes.setdefault(int(f.frame), []).append((np.asarray(f.box_min), np.asarray(f.box_max)))
    found_share = len([f for f in range(first, stop) if f in boxes]) / max(stop - first, 1)
    inside: dict[int, bool] = {}
    sizes: list[np.ndarray] = []  # [3] edge lengths of the box holding the board, metres
    footage = args.data / "calibration" / "extrinsic"
    frame_of = frame_of_sync_index(footage / "timestamps.csv")
    for sync, centre in board_centres(footage / "CHARUCO" / "xyz_CHARUCO.csv").items():
        frame = frame_of.get(sync)
        if frame is None or not first <= frame < stop:
            continue
        point = transform[:3, :3] @ centre + transform[:3, 3]
        holding = [
            hi - lo
            for lo, hi in boxes.get(frame, [])
            if np.all(point >= lo - args.margin) and np.all(point <= hi + args.margin)
        ]
        inside[frame] = bool(holding)
        if holding:
            sizes.append(min(holding, key=lambda size: float(np.prod(size))))
    board_share = float(np.mean(list(inside.values()))) if inside else float("nan")
    out = {
        "benchmark": "caliscope_layout",
        "reconstructed": args.reconstruct,
        "seconds_layout": seconds,
        "frames": [first, stop],
        "characters": summary.characters,
        "props": summary.props,
        "person_found_share": found_share,
        "board_frames": len(inside),
        "board_inside_box_share": board_share,
        "board_outside_frames": sorted(k for k, v in inside.items() if not v),
        "holding_box_size_median_m": np.median(sizes, axis=0).round(3).tolist() if sizes else None,
        "warnings": summary.warnings,
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"layout in {seconds:.0f} s: characters {summary.characters}, props {summary.props}")
    print(
        f"  person found in {found_share:.1%} of frames {first}-{stop - 1}; board inside the person's box in "
        f"{board_share:.1%} of the {len(inside)} frames where caliscope triangulated it; that box measures "
        f"{out['holding_box_size_median_m']} m (median) -> {args.out}"
    )


if __name__ == "__main__":
    main()
