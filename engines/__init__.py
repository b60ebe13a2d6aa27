"""Synthesis engines (DESIGN.md §5): what turns a shot's conditioning into its frames.

    from reshoot.engines import EngineOptions, load_engine
    frames = load_engine("unified").synthesize(conditioning, EngineOptions(seed=0), progress)

`contract.py` is the contract (`ShotConditioning` → `ShotFrames`), `registry.py` finds engines by name
(plug-ins through the `reshoot.engines` entry points), `keep.py` keeps filmed pixels; the engines are
`render.py`, `unified.py` (reshoot's own model) and `diffusers_vace.py` (a pretrained Wan VACE model).
"""

from .contract import MEMORY_TIERS, Engine, EngineOptions, ShotConditioning, ShotFrames
from .registry import DEFAULT_ENGINE, engine_names, load_engine

__all__ = [
    "DEFAULT_ENGINE",
    "MEMORY_TIERS",
    "Engine",
    "EngineOptions",
    "ShotConditioning",
    "ShotFrames",
    "engine_names",
    "load_engine",
]
