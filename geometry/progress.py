"""How long-running library work reports progress (DESIGN.md §2: the library never prints)."""

from __future__ import annotations

from typing import Callable

ProgressFn = Callable[[str, int, int], None]
"""progress(what, done, total): called as work advances; the CLI renders it with rich."""


def no_progress(what: str, done: int, total: int) -> None:
    """The default reporter: reports nothing."""
