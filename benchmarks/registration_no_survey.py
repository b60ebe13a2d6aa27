"""Registration from the production cameras alone (no survey, no calibration), over several seeds.

For each seed: a default-settings synthetic take (`reshoot synth T --seed S`), a workspace without its
survey, `reshoot register` with the given options, and each registered camera's pose against the
generator's (similarity-aligned by the centres, >= 3 cameras; extent = the floor's diagonal).

    .venv/bin/python benchmarks/registration_no_survey.py --seeds 1-8 [--cache DIR] \
        [--variant '{"instants": 0}'] [--out benchmarks/results/registration_no_survey.json]

Issue 19's bar: at least 3 of 4 cameras registered on every take, rotation <= 0.5 deg and centre
<= 2 % of the extent; the cameras that fail named with the reason.
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


def _seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = (int(x) for x in text.split("-"))
        return list(range(first, last + 1))
    return [int(x) for x in text.split(",")]


def _take(seed: int, cache: Path) -> Path:
    from reshoot.datasets.synthetic import SynthConfig, generate_take

    take = cache / f"take_{seed}"
    if not (take / "take.json").exists():
        shutil.rmtree(take, ignore_errors=True)
        generate_take(take, SynthConfig(seed=seed))
    return take


def _lens_calibration(take: Path, work: Path) -> Path:
    """The generator's production cameras as a calibration file (its lenses are what `--lenses` uses)."""
    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json

    truth = read_cameras_json(TakePaths(take).cameras).cameras
    path = work / "lenses.json"
    write_cameras_json(path, truth.select(["a_wide", "b_medium", "c_medium", "d_reverse"]))
    return path


def _score(take: Path, work: Path, options, lenses: bool = False) -> dict:
    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.alignment import pose_errors
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.registration import RegistrationError, register
    from reshoot.workspace import Workspace, init_workspace

    ws = work / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    init_workspace(ws, take / "footage", calibration=_lens_calibration(take, work) if lenses else None)
    started = time.perf_counter()
    try:
        summary = register(ws, options)
    except RegistrationError as error:
        return {"seconds": time.perf_counter() - started, "registered": [], "error": str(error)}
    seconds = time.perf_counter() - started
    row: dict = {
        "seconds": seconds,
        "registered": [o.name for o in summary.cameras if o.registered],
        "failed": {o.name: o.reason for o in summary.failed},
        "points": summary.points,
        "up_source": summary.up_source,
    }
    estimate = read_cameras_json(Workspace(ws).cameras).cameras
    if len(estimate) >= 2:
        truth = read_cameras_json(TakePaths(take).cameras).cameras
        extent = float(np.hypot(*json.loads((take / "take.json").read_text())["floor_size"]))
        errors = pose_errors(estimate, truth, align_rotations=True)
        row["rotation_deg"] = dict(zip(errors.names, np.round(errors.rotation_deg, 4).tolist()))
        row["centre_pct_extent"] = dict(zip(errors.names, np.round(100 * errors.centre_error / extent, 4).tolist()))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=_seeds, default=_seeds("1-8"))
    parser.add_argument("--cache", type=Path, default=None, help="keep the synthetic takes here between runs")
    parser.add_argument("--variant", default="{}", help="RegistrationOptions fields as JSON")
    parser.add_argument(
        "--lenses",
        action="store_true",
        help="give the generator's lenses (intrinsics only: calibration_mode intrinsics), as a crew's lens grids would",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/registration_no_survey.json"))
    args = parser.parse_args()

    from reshoot.stage_options import RegistrationOptions

    variant = json.loads(args.variant)
    if args.lenses:
        variant.setdefault("calibration_mode", "intrinsics")
    options = RegistrationOptions(no_survey=True, **variant)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            rows[seed] = _score(_take(seed, cache), Path(tmp), options, args.lenses)
            r = rows[seed]
            rot = max(r.get("rotation_deg", {}).values(), default=float("nan"))
            centre = max(r.get("centre_pct_extent", {}).values(), default=float("nan"))
            failed = "; ".join(f"{k}: {v}" for k, v in r.get("failed", {}).items()) or r.get("error", "")[:200]
            print(
                f"seed {seed:4d}: {len(r['registered'])}/4 registered in {r['seconds']:5.1f} s, "
                f"rotation max {rot:.3f} deg, centre max {centre:.3f} % of extent  {failed}",
                flush=True,
            )
    met = [
        len(r["registered"]) >= 3
        and max(r["rotation_deg"].values()) <= 0.5
        and max(r["centre_pct_extent"].values()) <= 2.0
        for r in rows.values()
        if "rotation_deg" in r
    ]
    result = {
        "benchmark": "registration_no_survey",
        "variant": variant,
        "lenses_given": args.lenses,
        "seeds": rows,
        "takes_meeting_bar": int(sum(met)),
        "takes": len(rows),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{sum(met)} of {len(rows)} takes meet the bar -> {args.out}")


if __name__ == "__main__":
    main()
