"""The pipeline's entry to the synthetic film-set generator (`reshoot.datasets.synthetic`).

The CLI talks to the pipeline only (DESIGN.md §2); this names what it may use of the generator.
"""

from reshoot.datasets.synthetic import SynthConfig, TakePaths, TakeSummary, generate_take

__all__ = ["SynthConfig", "TakePaths", "TakeSummary", "generate_take"]
