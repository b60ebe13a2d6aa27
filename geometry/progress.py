"""How long-running library work reports progress (DESIGN.md §2: the library never prints)."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[..., None]
"""progress(what, done, total, **info): called as work advances; the CLI renders it with rich.
`info` holds optional numbers to show beside the bar (e.g. `loss=0.031`)."""


def no_progress(what: str, done: int, total: int, **info: float) -> None:
    """The default reporter: reports nothing."""
