"""reshoot: multi-view scene reasoning and reshoots.

The pipeline package. Kept light on import (no torch, no open3d) so that `reshoot --help` is instant;
heavy modules load inside the functions that need them.
"""

from reshoot.geometry.errors import FormatError, InputError, ReshootError

__version__ = "0.1.0"

__all__ = ["FormatError", "InputError", "ReshootError", "__version__"]
