"""Ray against serial: the same numbers, the speed-up of 2 local workers, and a batch plan that scales.

1. speed-up: the smoke suite's 12 method jobs (4 methods × 3 tasks, one CPU and one thread each: 4
   methods' worth of work per task, so "4-core-equivalent" for 2 workers) on its prepared takes
   (`--cache`, made by a first `reshoot bench --suite smoke`), run serially and on a local Ray of
   `--workers` CPUs, side by side in one run: a first round on a new Ray (its workers start and import
   torch and reshoot: what one `reshoot bench --executor ray` pays, less Ray's own start of about 5 s)
   and a second on the same, warm workers (what each further round of a long batch pays); wall times, their ratios, and whether every metric is identical.
2. batch plan: `reshoot batch --dry-run` jobs (every stage of every take, nothing run) of simulated
   batches of 10, 25, 50 and 100 takes scheduled on the same local Ray (after one unmeasured warm-up
   batch; the median of 3 runs each): wall time per batch and per job, and the straight-line fit of
   wall time against jobs.
3. one long shot in frame ranges (with --workspace WS --shot NAME, e.g. the demo's overhead shot):
   `reshoot synthesize` (the unified engine) in one range, in 4 ranges serially and in 4 ranges as Ray
   tasks on `--workers` CPUs (a fresh Ray each time, as the command does); seconds, and how far the
   frames are apart (8-bit PNG values).

    .venv/bin/reshoot bench --suite smoke --out /tmp/bench                 # prepares the takes (cached)
    .venv/bin/python benchmarks/scaleout.py --cache /tmp/bench/cache [--workers 2] \
        [--workspace demo/workspace --shot overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TAKE_COUNTS = (10, 25, 50, 100)
REPEATS = 3


def speed_up(cache: Path, data: Path, workers: int) -> dict:
    import ray

    from reshoot.bench.methods import BUILTIN_METHODS
    from reshoot.bench.runner import BenchSettings, run_suite
    from reshoot.bench.suite import SUITES

    timings, rows = {}, {}
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        for run, executor in (("serial", "serial"), ("ray", "ray"), ("ray_warm", "ray")):
            with tempfile.TemporaryDirectory() as out:
                settings = BenchSettings(out=Path(out), cache=cache, data=data)
                document = run_suite(SUITES["smoke"], list(BUILTIN_METHODS), settings, executor=executor)
            method_jobs = [j for j in document["jobs"] if not j["key"].startswith("prepare/")]
            timings[run] = {
                "wall_s": document["wall_seconds"],
                "jobs": len(method_jobs),
                "sum_of_job_seconds": round(sum(j["seconds"] for j in method_jobs), 1),
            }
            rows[run] = {
                (r["method"], r["task"], r["take"]): {k: v for k, v in r.items() if k != "seconds"}
                for r in document["results"]
            }
    finally:
        ray.shutdown()
    return {
        **timings,
        "speed_up_first_round": round(timings["serial"]["wall_s"] / timings["ray"]["wall_s"], 2),
        "speed_up_warm_workers": round(timings["serial"]["wall_s"] / timings["ray_warm"]["wall_s"], 2),
        "identical_metrics": rows["serial"] == rows["ray"] == rows["ray_warm"],
    }


def batch_plan(workers: int) -> dict:
    import ray

    from reshoot.batch import plan_batch, read_batch
    from reshoot.scaleout import run_jobs

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    out = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for count in TAKE_COUNTS:
                path = Path(tmp) / f"takes_{count}.toml"
                path.write_text(
                    "".join(f'[[takes]]\nname = "take{i:03d}"\nworkspace = "ws/take{i:03d}"\n' for i in range(count))
                )
                walls, planned = [], []
                for _ in range(REPEATS + (count == TAKE_COUNTS[0])):  # the first batch warms the workers
                    started = time.perf_counter()
                    jobs = plan_batch(read_batch(path), dry_run=True)
                    planned.append(time.perf_counter() - started)
                    results = run_jobs(jobs, "ray")
                    walls.append(time.perf_counter() - started)
                    assert all(r.error is None for r in results.values())
                walls, planned = walls[-REPEATS:], planned[-REPEATS:]
                out[count] = {
                    "jobs": len(jobs),
                    "plan_s": round(float(np.median(planned)), 4),
                    "wall_s": round(float(np.median(walls)), 3),
                }
    finally:
        ray.shutdown()
    jobs = np.array([v["jobs"] for v in out.values()], float)
    wall = np.array([v["wall_s"] for v in out.values()])
    slope, intercept = np.polyfit(jobs, wall, 1)
    fitted = slope * jobs + intercept
    r2 = 1 - ((wall - fitted) ** 2).sum() / ((wall - wall.mean()) ** 2).sum()
    return {
        "batches": out,
        "seconds_per_job": round(float(slope), 4),
        "fixed_s": round(float(intercept), 2),
        "r2": round(float(r2), 4),
    }


def frame_ranges(workspace: Path, shot: str, ranges: int) -> dict:
    import shutil

    import imageio.v3 as iio

    from reshoot.engines import EngineOptions
    from reshoot.synthesis import synthesize
    from reshoot.workspace import Workspace

    out: dict = {}
    made = {}
    # A copy beside the workspace, so that its footage (a path relative to it) is found from the copy too.
    ws = workspace.resolve().parent / f".scaleout-{os.getpid()}"
    try:
        shutil.copytree(workspace, ws, symlinks=True, ignore=shutil.ignore_patterns("samples"))
        frames = Workspace(ws).shot(shot).frames
        for name, count, executor in (("one", 1, "serial"), ("serial", ranges, "serial"), ("ray", ranges, "ray")):
            started = time.perf_counter()
            synthesize(ws, shot, "unified", EngineOptions(device="cpu", ranges=count, executor=executor))
            out[f"seconds_{name}"] = round(time.perf_counter() - started, 1)
            made[name] = np.stack([iio.imread(p) for p in sorted(frames.glob("*.png"))]).astype(np.int16)
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    out["frames"] = len(made["one"])
    out["ranges_serial_vs_ray_max_diff"] = int(np.abs(made["serial"] - made["ray"]).max())
    difference = np.abs(made["one"] - made["serial"])
    out["one_vs_ranges_max_diff"] = int(difference.max())
    out["one_vs_ranges_pixels_differing"] = float((difference.max(axis=-1) > 0).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, help="prepared smoke takes (reshoot bench --out X: X/cache)")
    parser.add_argument("--parts", default="speed_up,batch_plan,frame_ranges", help="which parts to run")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workspace", type=Path, default=None, help="a workspace with a synthesized shot")
    parser.add_argument("--shot", default="overhead")
    parser.add_argument("--ranges", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scaleout.json")
    args = parser.parse_args()
    parts = args.parts.split(",")
    result: dict = {"cpus": os.cpu_count(), "workers": args.workers}
    if "speed_up" in parts:
        if args.cache is None:
            parser.error("the speed-up part needs --cache (prepared smoke takes)")
        result["speed_up"] = speed_up(args.cache, args.data, args.workers)
        print(json.dumps(result["speed_up"], indent=1))
    if "batch_plan" in parts:
        result["batch_plan"] = batch_plan(args.workers)
        print(json.dumps(result["batch_plan"], indent=1))
    if "frame_ranges" in parts and args.workspace is not None:
        result["frame_ranges"] = frame_ranges(args.workspace, args.shot, args.ranges)
        print(json.dumps(result["frame_ranges"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
