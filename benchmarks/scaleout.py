"""Ray against serial: the same numbers, the speed-up of 2 local workers, and a batch plan that scales.

1. speed-up: the smoke suite's 12 method jobs (4 methods × 3 tasks, one CPU and one thread each) on
   its prepared takes (`--cache`, made by a first `reshoot bench --suite smoke`), run serially and then
   on a local Ray of `--workers` CPUs, side by side in one run; wall times, their ratio, and whether
   every metric is identical.
2. batch plan: `reshoot batch --dry-run` jobs (every stage of every take, nothing run) of simulated
   batches of 10, 25, 50 and 100 takes scheduled on the same local Ray: wall time per batch and per job,
   and the straight-line fit of wall time against jobs.

    .venv/bin/reshoot bench --suite smoke --out /tmp/bench                 # prepares the takes (cached)
    .venv/bin/python benchmarks/scaleout.py --cache /tmp/bench/cache [--workers 2]
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


def speed_up(cache: Path, data: Path, workers: int) -> dict:
    from reshoot.bench.methods import BUILTIN_METHODS
    from reshoot.bench.runner import BenchSettings, run_suite
    from reshoot.bench.suite import SUITES

    timings, rows = {}, {}
    for executor in ("serial", "ray"):
        with tempfile.TemporaryDirectory() as out:
            settings = BenchSettings(out=Path(out), cache=cache, data=data)
            document = run_suite(SUITES["smoke"], list(BUILTIN_METHODS), settings, executor=executor, workers=workers)
        method_jobs = [j for j in document["jobs"] if not j["key"].startswith("prepare/")]
        timings[executor] = {
            "wall_s": document["wall_seconds"],
            "jobs": len(method_jobs),
            "sum_of_job_seconds": round(sum(j["seconds"] for j in method_jobs), 1),
        }
        rows[executor] = {
            (r["method"], r["task"], r["take"]): {k: v for k, v in r.items() if k != "seconds"}
            for r in document["results"]
        }
    return {
        "serial": timings["serial"],
        "ray": timings["ray"],
        "speed_up": round(timings["serial"]["wall_s"] / timings["ray"]["wall_s"], 2),
        "identical_metrics": rows["serial"] == rows["ray"],
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
                started = time.perf_counter()
                jobs = plan_batch(read_batch(path), dry_run=True)
                planned = time.perf_counter() - started
                results = run_jobs(jobs, "ray")
                wall = time.perf_counter() - started
                assert all(r.error is None for r in results.values())
                out[count] = {"jobs": len(jobs), "plan_s": round(planned, 3), "wall_s": round(wall, 2)}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cache", type=Path, required=True, help="prepared smoke takes (reshoot bench --out X: X/cache)"
    )
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scaleout.json")
    args = parser.parse_args()
    result = {"cpus": os.cpu_count(), "workers": args.workers}
    result["speed_up"] = speed_up(args.cache, args.data, args.workers)
    print(json.dumps(result["speed_up"], indent=1))
    result["batch_plan"] = batch_plan(args.workers)
    print(json.dumps(result["batch_plan"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
