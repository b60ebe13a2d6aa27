"""The unified video model (DESIGN.md §5, docs/model.md): one transformer over source frames, camera rays,
the render of the reconstruction, depth, entity ids and time, writing the shot's frames.

    from reshoot.model import from_pretrained
    model = from_pretrained("model/weights/tiny")
"""

from .checkpoint import from_pretrained, save_checkpoint
from .config import CONFIGS, ModelConfig
from .inputs import ShotWindow, make_window
from .network import UnifiedVideoModel

__all__ = [
    "CONFIGS",
    "ModelConfig",
    "ShotWindow",
    "UnifiedVideoModel",
    "from_pretrained",
    "make_window",
    "save_checkpoint",
]
