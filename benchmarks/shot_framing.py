"""Design shots on a laid-out synthetic workspace and check them against the generator's ground truth:
per shot, the share of frames in which every true character's and prop's box (moved into the
registration's frame) projects entirely inside the image, the largest tilt from straight down (for the
overhead), and the time to design the shot.

    make demo
    .venv/bin/python benchmarks/shot_framing.py --workspace demo/workspace --take demo/take
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SHOTS = {
    "overhead": "overhead wide",
    "overhead_push": "overhead wide, slow push in on character_1, keep character_2 in frame",
    "high_orbit": "high wide, orbit left",
    "low_follow": "low angle wide, follow character_1",
}


def main() -> None:
    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import registration_from_truth, true_boxes_in_frame
    from reshoot.layout_io import read_layout
    from reshoot.scene import scene_facts
    from reshoot.shot_design import design_shot
    from reshoot.shot_language import apply_description, default_spec, load_vocabulary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True, help="a registered, laid-out workspace")
    parser.add_argument("--take", type=Path, required=True, help="the synthetic take (with gt/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "shot_framing.json")
    args = parser.parse_args()

    facts = scene_facts(args.workspace)
    vocabulary = load_vocabulary(args.workspace)
    truth = read_layout(TakePaths(args.take).entities).entities
    transform = registration_from_truth(read_cameras_json(TakePaths(args.take).cameras).cameras, facts.cameras)
    results = {}
    print(
        f"{'shot':<15} {'every GT box in frame':>22} {'kept GT boxes in frame':>23} {'max tilt from down':>19} {'design s':>9}"
    )
    for name, description in SHOTS.items():
        spec = apply_description(default_spec(vocabulary), description, vocabulary, facts.entities, facts.cameras.names)
        start = time.perf_counter()
        path = design_shot(spec, facts)
        seconds = time.perf_counter() - start
        everyone = true_boxes_in_frame(path, truth, transform)
        kept = true_boxes_in_frame(path, truth, transform, list(spec.keep)) if spec.keep else everyone
        tilt = float(np.degrees(np.arccos(np.clip(-path.cam_from_world[:, 2, 2], -1, 1))).max())
        results[name] = {
            "description": description,
            "every_box_in_frame_share": float(everyone.mean()),
            "kept_boxes_in_frame_share": float(kept.mean()),
            "max_tilt_from_down_deg": tilt,
            "widened_by": path.widened_by,
            "design_seconds": seconds,
            "frames": len(path.frames),
        }
        print(f"{name:<15} {everyone.mean():>21.1%} {kept.mean():>22.1%} {tilt:>18.3f}° {seconds:>9.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"workspace": str(args.workspace), "shots": results}, indent=2) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
