"""The synthetic film-set generator: procedural sets, rendered takes, ground truth."""

from .config import SynthConfig
from .take import TakeSummary, generate_take

__all__ = ["SynthConfig", "TakeSummary", "generate_take"]
