"""The synthetic film-set generator: procedural sets, rendered takes, ground truth."""

from .config import SynthConfig
from .take import TakePaths, TakeSummary, generate_take

__all__ = ["SynthConfig", "TakePaths", "TakeSummary", "generate_take"]
