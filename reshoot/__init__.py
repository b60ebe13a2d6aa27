"""reshoot: multi-view scene reasoning and reshoots.

The pipeline package. Kept light on import (no torch, no open3d) so that `reshoot --help` is instant;
heavy modules load inside the functions that need them.
"""

import os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. torch's threads and the C++
# rasterizer's would otherwise spin against each other on the same cores (and against any other job):
# the test fixture's reconstruction took 92.5 s spinning and 78.7 s passive on 2 idle cores
# (tests/conftest.py's RECONSTRUCT_OPTIONS on the scene take); an explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from reshoot.geometry.errors import FormatError, InputError, ReshootError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["FormatError", "InputError", "ReshootError", "__version__"]
