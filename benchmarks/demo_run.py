"""`make demo` end to end: its wall time, each stage's seconds and peak memory (from the stage manifests),
and a second `reshoot run` that has nothing to do (the bars: the demo within 8 minutes on 2 cores with
set-up; the second run under 3 s).

Runs `make demo DEMO_OUT=<folder>` (the venv must exist: `make setup`), then `reshoot run` again with the
demo's arguments, and writes JSON. With `--fresh-clone`, it first clones this repository's committed
HEAD into `<folder>/clone` and runs `make demo` there, set-up included (a new venv from the package
index, the C++ kernels compiled): the issue's bar as a user meets it.

    .venv/bin/python benchmarks/demo_run.py [--out-dir /tmp/demo] [--fresh-clone] [--out benchmarks/results/demo_run.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from reshoot.workspace import Workspace

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/reshoot_demo_bench"), help="replaced if present")
    parser.add_argument("--fresh-clone", action="store_true", help="time `make demo` in a new clone, set-up included")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "demo_run.json")
    args = parser.parse_args()
    args.out_dir = args.out_dir.resolve()  # make runs in the clone's folder

    shutil.rmtree(args.out_dir, ignore_errors=True)
    checkout = REPO
    if args.fresh_clone:
        checkout = args.out_dir / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(checkout)], check=True)
    demo_out = args.out_dir / "demo"
    started = time.perf_counter()
    subprocess.run(["make", "-s", "demo", f"DEMO_OUT={demo_out}"], cwd=checkout, check=True)
    demo_seconds = time.perf_counter() - started
    peak_children_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    ws = Workspace(demo_out / "workspace")
    stages = {}
    for manifest in sorted(ws.meta.glob("manifests/*.json")):
        document = json.loads(manifest.read_text())
        stages[manifest.stem] = {"seconds": document["seconds"], "peak_rss_mib": document["peak_rss_mib"]}

    reshoot = checkout / ".venv" / "bin" / "reshoot"
    started = time.perf_counter()
    again = subprocess.run(
        [str(reshoot), "run", str(ws.root), "--shot", "overhead=overhead wide", "--json"],
        capture_output=True,
        text=True,
    )
    rerun_seconds = time.perf_counter() - started
    actions = {s["stage"]: s["action"] for s in json.loads(again.stdout)["stages"]}

    result = {
        "benchmark": "demo_run",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "fresh_clone": args.fresh_clone,
        "demo_seconds": round(demo_seconds, 1),
        "peak_rss_mib": round(peak_children_mib),
        "stages": stages,
        "second_run_seconds": round(rerun_seconds, 2),
        "second_run_actions": actions,
    }
    setup = " (fresh clone, set-up included)" if args.fresh_clone else ""
    print(f"make demo{setup}: {demo_seconds:.0f} s, peak memory of a process {peak_children_mib:.0f} MiB")
    for name, entry in stages.items():
        print(f"  {name:<22} {entry['seconds']:>7.1f} s  {entry['peak_rss_mib']:>6.0f} MiB")
    print(f"second reshoot run: {rerun_seconds:.2f} s, {sorted(set(actions.values()))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
