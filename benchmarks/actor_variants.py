"""What each setting of the persistent actors buys: the set fitted once, the actors fitted again with
variants of `PersistentConfig`, each scored by `reconstruct_take.py` in the synthetic take's cameras.

`reshoot reconstruct` runs once on the (registered) workspace with the stage as it is; the actors'
inputs (each frame's views over the fitted set, the characters' starts and tracks) are kept, and for
each variant the actors are fitted again from them, written into `WS/splats/actors/` and scored
(`reconstruct_take.py --no-reconstruct`). The stage's own actors are written and scored last, so the
workspace ends as `reshoot reconstruct` leaves it.

    make demo
    .venv/bin/python benchmarks/actor_variants.py --variant '{"body_radius": 1e9}'

Its time: one `reshoot reconstruct` (which rewrites the workspace's `splats/`, as `reconstruct_take.py`
does), then one actors' fit and one scoring per variant, and one scoring of the stage's actors.

A variant is a JSON object of `PersistentConfig` fields, e.g. `{"body_radius": 1e9}` (no body prior) or
`{"body_weight": 10}`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo/workspace"))
    parser.add_argument("--take", type=Path, default=Path("demo/take"))
    parser.add_argument(
        "--variant", action="append", default=[], help="PersistentConfig fields as a JSON object (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "actor_variants.json")
    args = parser.parse_args()
    try:
        variants = [json.loads(v) for v in args.variant] + [{}]
    except json.JSONDecodeError as error:
        sys.exit(f"--variant: not JSON ({error}); give an object such as '{{\"body_radius\": 1e9}}'")
    if not all(isinstance(v, dict) for v in variants):
        sys.exit("--variant: give a JSON object of PersistentConfig fields, such as '{\"body_radius\": 1e9}'")

    import reshoot.reconstruct as stage
    from reshoot.geometry.splats.persistent import PersistentConfig, fit_persistent_actors
    from reshoot.geometry.splats.ply import write_splat_ply
    from reshoot.workspace import Workspace

    unknown = {k for v in variants for k in v} - set(PersistentConfig.__dataclass_fields__)
    if unknown:
        sys.exit(f"unknown PersistentConfig fields {sorted(unknown)}")
    kept: dict = {}

    def keeping(frames, starts, config, progress=None):
        started = time.perf_counter()
        fitted = fit_persistent_actors(frames, starts, config, progress)
        kept.update(frames=frames, starts=starts, config=config, fitted=fitted, seconds=time.perf_counter() - started)
        return fitted

    stage.fit_persistent_actors = keeping
    started = time.perf_counter()
    stage.reconstruct(args.workspace, stage.ReconstructOptions())
    print(f"reconstructed in {time.perf_counter() - started:.0f} s", flush=True)
    if not kept:
        sys.exit("no character was followed: the take has no persistent actors to vary")

    rows = []
    actors = Workspace(args.workspace).actor_splats
    for variant in variants:
        if variant:
            started = time.perf_counter()
            fitted = fit_persistent_actors(kept["frames"], kept["starts"], replace(kept["config"], **variant))
            seconds = time.perf_counter() - started
        else:
            fitted, seconds = kept["fitted"], kept["seconds"]
        for t, frame in enumerate(kept["frames"]):
            write_splat_ply(actors / f"{frame.frame:06d}.ply", fitted.at(t))
        print(f"{json.dumps(variant)}: actors {seconds:.0f} s, pruned {fitted.pruned}", flush=True)
        scores = HERE / "results" / "actor_variant_scores.json"
        subprocess.run(  # prints its table of the scores
            [sys.executable, str(HERE / "reconstruct_take.py"), "--workspace", str(args.workspace), "--take",
             str(args.take), "--no-reconstruct", "--out", str(scores)],
            check=True,
        )  # fmt: skip
        result = json.loads(scores.read_text())["full_resolution_scores"]
        rows.append({"variant": variant, "seconds_actors": seconds, "pruned": fitted.pruned, "scores": result})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"benchmark": "actor_variants", "workspace": str(args.workspace), "rows": rows}, indent=1)
    )
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
