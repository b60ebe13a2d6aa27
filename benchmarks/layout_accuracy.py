"""Run `reshoot layout` on a registered (and ideally reconstructed) synthetic workspace and score it
against the generator's ground truth (moved into the registration's frame).

    make demo
    .venv/bin/python benchmarks/layout_accuracy.py --workspace demo/workspace --take demo/take

Over many takes: `--seeds 100-107` makes a default-settings take per seed (`reshoot synth --seed S`,
cached under `--cache`), registers it with its survey (camera height 1.6 m, as the demo), reconstructs
its set (`reshoot reconstruct --frames 0:1`: the layout reads the set, not the actors), lays it out
and scores it; then reports per character the share of frames it is found in, the floor error over
all characters of all takes, and the takes with a phantom or missing entity.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from reshoot.layout_io import Entity
    from reshoot.stage_options import LayoutOptions


def _segment_hits_box(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether the floor segment a → b [2] passes through the floor box lo..hi [2] (slab test)."""
    direction = b - a
    t0, t1 = 0.0, 1.0
    for k in range(2):
        if abs(direction[k]) < 1e-12:
            if not lo[k] <= a[k] <= hi[k]:
                return False
            continue
        near, far = sorted(((lo[k] - a[k]) / direction[k], (hi[k] - a[k]) / direction[k]))
        t0, t1 = max(t0, near), min(t1, far)
    return t0 <= t1


def hidden_behind_props(truth: Sequence[Entity], cameras) -> dict[str, int]:
    """Per true character: frames where a prop stands between it and at least one production camera
    (ground truth, floor plane), i.e. how much the take tests tracking behind props."""
    props = [(np.asarray(e.frames[0].box_min)[:2], np.asarray(e.frames[0].box_max)[:2]) for e in truth if e.is_prop]
    centres = cameras.centers.numpy()[:, :2]
    out = {}
    for e in truth:
        if e.kind != "character":
            continue
        out[e.name] = sum(
            any(_segment_hits_box(c, np.asarray(f.position[:2]), lo, hi) for c in centres for lo, hi in props)
            for f in e.frames
        )
    return out


def _seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def over_seeds(
    seeds: list[int],
    cache: Path,
    out: Path,
    camera_fps: dict[str, float] | None = None,
    options: LayoutOptions | None = None,
) -> None:
    """Make, register, reconstruct (the set), lay out (with `options`) and score a default take per seed
    (with `camera_fps`, a rig of mixed rates: `reshoot synth --fps 24,b_medium=25,...`)."""
    from reshoot.datasets.synthetic import SynthConfig, TakePaths, generate_take
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import compare_layouts, registration_from_truth
    from reshoot.layout import layout
    from reshoot.layout_io import read_layout
    from reshoot.reconstruct import reconstruct
    from reshoot.registration import register
    from reshoot.stage_options import ReconstructOptions, RegistrationOptions, ScaleHint
    from reshoot.workspace import Workspace, init_workspace

    rows, errors = [], []
    for seed in seeds:
        take, ws = cache / f"seed_{seed}" / "take", cache / f"seed_{seed}" / "workspace"
        started = time.perf_counter()
        if not (take / "take.json").is_file():
            generate_take(take, SynthConfig(seed=seed, camera_fps=camera_fps or {}))
        if not Workspace(ws).set_splats.is_file():
            init_workspace(ws, take / "footage", survey=take / "survey", force=True)
            register(ws, RegistrationOptions(scale=ScaleHint(camera_heights={"*": 1.6})))
            reconstruct(ws, ReconstructOptions(frames=(0, 1)))
        layout(ws, options)
        truth = read_layout(TakePaths(take).entities).entities
        estimate = read_layout(Workspace(ws).layout).entities
        transform = registration_from_truth(
            read_cameras_json(TakePaths(take).cameras).cameras, read_cameras_json(Workspace(ws).cameras).cameras
        )
        scores = compare_layouts(estimate, truth, transform)
        frames = {e.name: len(e.frames) for e in truth if e.kind == "character"}
        found = {name: len(scores.floor_errors.get(name, [])) / count for name, count in frames.items()}
        errors += [e for v in scores.floor_errors.values() for e in v]
        rows.append(
            {
                "seed": seed,
                "found_share": found,
                "missing": scores.missing,
                "phantoms": scores.phantoms,
                "floor_error_m": {
                    n: {"median": float(np.median(v)), "p95": float(np.percentile(v, 95))}
                    for n, v in scores.floor_errors.items()
                },
                "identity_switches": scores.identity_switches,
                "seconds": time.perf_counter() - started,
            }
        )
        print(
            f"seed {seed}: found { ({k: f'{v:.0%}' for k, v in found.items()}) }, missing {scores.missing}, "
            f"phantoms {scores.phantoms}, floor error medians "
            f"{ ({n: round(f['median'] * 100, 1) for n, f in rows[-1]['floor_error_m'].items()}) } cm"
        )
    everything = np.array(errors) if errors else np.array([np.nan])
    summary = {
        "benchmark": "layout_accuracy_seeds",
        "seeds": seeds,
        "options": dataclasses.asdict(options) if options is not None else "defaults",
        "takes": rows,
        "every_character_found_95": all(v >= 0.95 for r in rows for v in r["found_share"].values()),
        "floor_error_all_m": {"median": float(np.median(everything)), "p95": float(np.percentile(everything, 95))},
        "takes_without_phantom_or_missing": sum(not r["missing"] and not r["phantoms"] for r in rows),
        "cpus": os.cpu_count(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"over seeds {seeds[0]}-{seeds[-1]}: every character found in >= 95 % of frames: "
        f"{summary['every_character_found_95']}; floor error median {summary['floor_error_all_m']['median'] * 100:.1f} "
        f"cm, p95 {summary['floor_error_all_m']['p95'] * 100:.1f} cm; takes with no phantom or missing entity "
        f"{summary['takes_without_phantom_or_missing']} of {len(rows)} -> {out}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo/workspace"))
    parser.add_argument("--take", type=Path, default=Path("demo/take"))
    parser.add_argument("--seeds", default=None, help="A-B: score default takes of these seeds instead")
    parser.add_argument("--cache", type=Path, default=Path("demo/layout_seeds"), help="where --seeds keeps its takes")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--camera-fps", default="", help="with --seeds: rates of a mixed rig, e.g. b_medium=25,c_medium=30"
    )
    parser.add_argument(
        "--variant", default="{}", help="LayoutOptions fields as JSON, e.g. '{\"min_explaining_views\": 2}'"
    )
    args = parser.parse_args()
    from reshoot.stage_options import LayoutOptions

    options = LayoutOptions(**json.loads(args.variant))
    if args.seeds is not None:
        rates = {k.strip(): float(v) for k, v in (i.split("=") for i in args.camera_fps.split(",") if i.strip())}
        over_seeds(
            _seed_range(args.seeds),
            args.cache,
            args.out or Path("benchmarks/results/layout_accuracy_seeds.json"),
            rates,
            options,
        )
        return
    args.out = args.out or Path("benchmarks/results/layout_accuracy.json")

    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import compare_layouts, registration_from_truth
    from reshoot.layout import layout
    from reshoot.layout_io import read_layout
    from reshoot.workspace import Workspace

    started = time.perf_counter()
    summary = layout(args.workspace, options)
    seconds = time.perf_counter() - started
    estimate = read_layout(Workspace(args.workspace).layout).entities
    truth = read_layout(TakePaths(args.take).entities).entities
    transform = registration_from_truth(
        read_cameras_json(TakePaths(args.take).cameras).cameras,
        read_cameras_json(Workspace(args.workspace).cameras).cameras,
    )
    scores = compare_layouts(estimate, truth, transform)
    production = read_cameras_json(Workspace(args.workspace).cameras).cameras.names
    hidden = hidden_behind_props(truth, read_cameras_json(TakePaths(args.take).cameras).cameras.select(production))
    floor = {
        name: {"median": float(np.median(e)), "p95": float(np.percentile(e, 95)), "frames": len(e)}
        for name, e in scores.floor_errors.items()
    }
    everything = np.concatenate(list(scores.floor_errors.values())) if scores.floor_errors else np.array([np.nan])
    out = {
        "benchmark": "layout_accuracy",
        "workspace": str(args.workspace),
        "options": dataclasses.asdict(options),
        "seconds": seconds,
        "characters_found": summary.characters,
        "props_found": summary.props,
        "matches": scores.matches,
        "missing": scores.missing,
        "phantoms": scores.phantoms,
        "character_floor_error_m": floor,
        "character_floor_error_all_m": {
            "median": float(np.median(everything)),
            "p95": float(np.percentile(everything, 95)),
        },
        "prop_centre_error_m": scores.prop_centre_errors,
        "character_recall_per_frame": scores.recall,
        "identity_switches": scores.identity_switches,
        "frames_behind_a_prop": hidden,
        "warnings": summary.warnings,
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"layout in {seconds:.0f} s: matched {scores.matches}; missing {scores.missing}; phantoms {scores.phantoms}")
    for name, f in floor.items():
        print(
            f"  {name}: floor error median {f['median'] * 100:.1f} cm, 95th percentile {f['p95'] * 100:.1f} cm over {f['frames']} frames"
        )
    print(f"  props: centre errors { ({k: round(v * 100, 1) for k, v in scores.prop_centre_errors.items()}) } cm")
    print(f"  frames where a prop stands between a character and a camera (ground truth): {hidden}")
    print(f"  recall per frame {scores.recall:.1%}, identity switches {scores.identity_switches} -> {args.out}")


if __name__ == "__main__":
    main()
