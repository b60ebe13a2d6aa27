"""Two bench results, method × task × metric, with the significance of each difference over takes.

The difference of a metric is B − A, paired by take (the same method, task and take in both files).
Its significance is a paired bootstrap over those takes (Efron & Tibshirani): the takes are resampled
with replacement `samples` times (a fixed seed, so a comparison is itself reproducible), the mean
difference is taken each time; the 95 % interval is the 2.5th to 97.5th percentile of those means and
`p` the two-sided share of them on the other side of zero. With one take there is nothing to resample:
the interval and p are None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reshoot.bench.runner import TABLE_METRICS
from reshoot.geometry.errors import InputError

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Difference:
    """One metric of one method on one task: mean A, mean B, mean of B − A over `takes` paired takes,
    its 95 % bootstrap interval (low, high) and two-sided p (None with one take)."""

    method: str
    task: str
    metric: str
    takes: int
    mean_a: float
    mean_b: float
    difference: float
    interval: tuple[float, float] | None
    p: float | None


def paired_bootstrap(
    differences: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[tuple[float, float] | None, float | None]:
    """95 % interval of the mean of `differences` [N] and two-sided p of "the mean is 0" (None, None for N < 2)."""
    if len(differences) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), size=(samples, len(differences)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    p = 2 * min(float((means <= 0).mean()), float((means >= 0).mean()))
    return (float(low), float(high)), min(p, 1.0)


def compare_results(a: dict, b: dict, metrics: tuple[str, ...] = TABLE_METRICS) -> list[Difference]:
    """Every metric both files measured, per method × task in both, paired by take.

    Raises:
        InputError: an unknown metric, or nothing in common to compare.
    """
    unknown = sorted(set(metrics) - set(TABLE_METRICS))
    if unknown:
        raise InputError(f"--metric {unknown[0]!r}: choose from {', '.join(TABLE_METRICS)}.")

    def by_key(document: dict) -> dict[tuple[str, str, str], dict]:
        return {(r["method"], r["task"], r["take"]): r for r in document["results"] if not r.get("error")}

    rows_a, rows_b = by_key(a), by_key(b)
    groups: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for key in sorted(set(rows_a) & set(rows_b)):
        groups.setdefault(key[:2], []).append((rows_a[key], rows_b[key]))
    out = []
    for (method, task), pairs in groups.items():
        for metric in metrics:
            paired = [
                (ra[metric], rb[metric])
                for ra, rb in pairs
                if isinstance(ra.get(metric), (int, float)) and isinstance(rb.get(metric), (int, float))
            ]
            if not paired:
                continue
            values = np.array(paired, dtype=np.float64)
            differences = values[:, 1] - values[:, 0]
            interval, p = paired_bootstrap(differences)
            out.append(
                Difference(
                    method,
                    task,
                    metric,
                    len(paired),
                    float(values[:, 0].mean()),
                    float(values[:, 1].mean()),
                    float(differences.mean()),
                    interval,
                    p,
                )
            )
    if not out:
        raise InputError("the two results share no method × task × take with a metric to compare.")
    return out
