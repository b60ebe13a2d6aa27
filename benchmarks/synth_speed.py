"""How long `reshoot synth` takes to render the default take (the bar: < 60 s on 2 cores).

Runs the real command line (start-up included) on the default settings and writes JSON.

    .venv/bin/python benchmarks/synth_speed.py [--repeats 1] [--out benchmarks/results/synth_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from reshoot.datasets.synthetic import TakePaths

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/synth_speed.json"))
    args = parser.parse_args()

    reshoot = Path(sys.executable).with_name("reshoot")
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            out = Path(tmp) / f"take{i}"
            started = time.perf_counter()
            subprocess.run(
                [str(reshoot), "synth", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            seconds.append(time.perf_counter() - started)
            footage = sum(f.stat().st_size for f in (out / "footage").iterdir())
            ground_truth = sum(f.stat().st_size for f in TakePaths(out).gt.rglob("*") if f.is_file())
            shutil.rmtree(out)
    result = {
        "benchmark": "synth_speed",
        "command": "reshoot synth OUT (defaults: 4 cameras + 2 GT cameras, 48 frames, 640x360)",
        "seconds": seconds,
        "best_seconds": min(seconds),
        "bar_seconds": 60.0,
        "meets_bar": min(seconds) < 60.0,
        "footage_mb": round(footage / 1e6, 2),
        "ground_truth_mb": round(ground_truth / 1e6, 2),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"reshoot synth, default take: {min(seconds):.1f} s (bar < 60 s) on {os.cpu_count()} cores; "
        f"footage {result['footage_mb']} MB, ground truth {result['ground_truth_mb']} MB -> {args.out}"
    )


if __name__ == "__main__":
    main()
