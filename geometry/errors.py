"""The one error family of reshoot (DESIGN.md §3).

It lives in `reshoot.geometry`, the root of the dependency graph, so that every layer can raise it;
`reshoot.ReshootError` re-exports it. Messages are for a person: what is wrong, which file or camera,
and what to do. The CLI prints them without a traceback and exits non-zero.
"""

from __future__ import annotations


class ReshootError(Exception):
    """A problem the user can fix: bad input, a missing file, an impossible request."""


class InputError(ReshootError):
    """An input file or folder is missing, unreadable or inconsistent."""


class FormatError(InputError):
    """A reshoot JSON/TOML document has the wrong format, version or fields."""
