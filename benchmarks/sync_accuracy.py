"""How well each sync method recovers known offsets: synthetic takes whose cameras start rolling at known
moments (`reshoot synth --offsets`), with a clap on every camera's sound and a start timecode on every
video, synced by timecode, audio and motion (`reshoot.datasets.sync`).

    .venv/bin/python benchmarks/sync_accuracy.py --seeds 6 7 8 9 10 11 --pace varied steady

Per take and method it prints the largest error over cameras (frames; milliseconds for audio) or the
reason the method refused, and writes them to benchmarks/results/sync_accuracy.json. The takes are small
(160x90: sync looks at 160-pixel-wide frames) and made in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OFFSETS = {"b_medium": 7, "c_medium": -12, "d_reverse": 31}  # a_wide starts at 0: the rig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[6, 7, 8])
    parser.add_argument("--pace", nargs="+", default=["varied", "steady"], choices=["varied", "steady"])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sync_accuracy.json")
    args = parser.parse_args()

    from reshoot.datasets.footage import probe_cameras
    from reshoot.datasets.sync import synchronize
    from reshoot.datasets.synthetic import SynthConfig, generate_take
    from reshoot.geometry.errors import InputError

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for pace in args.pace:
            for seed in args.seeds:
                take = Path(folder) / f"{pace}_{seed}"
                config = SynthConfig(
                    frames=args.frames, width=160, height=90, survey_frames=0, seed=seed, pace=pace,
                    offsets=OFFSETS, audio=True, timecode="01:00:00:00",
                )  # fmt: skip
                generate_take(take, config)
                truth = json.loads((take / "take.json").read_text())["offsets"]
                for method in ("timecode", "audio", "motion"):
                    started = time.perf_counter()
                    row = {"pace": pace, "seed": seed, "method": method}
                    try:
                        result = synchronize(probe_cameras(take / "footage"), method)
                    except InputError as error:
                        row.update(refused=str(error))
                    else:
                        errors = [abs(result.offsets[name] - value) for name, value in truth.items()]
                        whole = [abs(result.frame_offsets[name] - value) for name, value in truth.items()]
                        row.update(
                            max_error_frames=round(float(max(errors)), 4),
                            max_error_ms=round(1000 * float(max(errors)) / config.fps, 3),
                            exact=max(whole) == 0,
                            closure_frames=round(float(result.closure_frames), 3),
                            confidence=round(float(result.confidence), 3),
                        )
                    row["seconds"] = round(time.perf_counter() - started, 2)
                    rows.append(row)
                    shown = (
                        f"refused: {row['refused'][:110]}"
                        if "refused" in row
                        else f"max error {row['max_error_frames']:.3f} frames ({row['max_error_ms']:.2f} ms)"
                        f"{', exact' if row['exact'] else ''}"
                    )
                    print(f"{pace:6s} seed {seed:3d} {method:8s} {shown}", flush=True)
    summary = {}
    for method in ("timecode", "audio", "motion"):
        for pace in args.pace:
            mine = [r for r in rows if r["method"] == method and r["pace"] == pace]
            done = [r for r in mine if "refused" not in r]
            summary[f"{method}/{pace}"] = {
                "takes": len(mine),
                "exact": sum(r["exact"] for r in done),
                "within_1_frame": sum(r["max_error_frames"] <= 1.0 for r in done),
                "refused": len(mine) - len(done),
                "wrong_by_more_than_1_frame": sum(r["max_error_frames"] > 1.0 for r in done),
            }
            print(f"{method:8s} {pace:6s} {summary[f'{method}/{pace}']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "offsets": OFFSETS,
                "frames": args.frames,
                "machine": platform.platform(),
                "summary": summary,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(args.out)


if __name__ == "__main__":
    main()
