"""Checks of values that come from the user, shared by every part that takes them in (DESIGN.md §3).

Names become path components (`OUT/<camera>/`, `WS/shots/<shot>/`, `<camera>.chan`), so one rule holds
for every name that enters reshoot: cameras (footage file names, cameras JSON, calibrations), layout
entities and shots. Sizes and numbers are bounded so that a typo fails at once instead of running for
hours or filling the memory.
"""

from __future__ import annotations

import math
import re

from .errors import InputError

MAX_NAME_LENGTH = 64
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
NAME_RULE = (
    f"use letters (A-Z, a-z), digits, '_', '-' and '.', not starting with '.' or '-', "
    f"at most {MAX_NAME_LENGTH} characters"
)

MAX_IMAGE_SIDE = 16384
"""Largest width or height of an image reshoot makes (shots, renders, synthetic takes): 16K."""


def check_name(name: object, what: str, fix: str = "rename it") -> str:
    """`name` if it is safe as a single path component, else an InputError.

    The rule: ASCII letters, digits, `_`, `-` and `.`; not starting with `.` or `-` (no hidden files,
    no `..`, nothing a command line takes for an option); no separators or spaces; at most
    MAX_NAME_LENGTH characters.

    Args:
        name: the name to check.
        what: what it names, for the message, with where it comes from ("camera 'a wide' in take/").
        fix: what the user should do.

    Raises:
        InputError: the name breaks the rule.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise InputError(f"{what}: {name!r} is not a valid name ({NAME_RULE}); {fix}.")
    return name


def check_image_size(width: int, height: int, what: str) -> tuple[int, int]:
    """(width, height) if both are whole numbers from 16 to MAX_IMAGE_SIDE pixels, else an InputError."""
    ok = all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= MAX_IMAGE_SIDE for v in (width, height))
    if not ok:
        raise InputError(
            f"{what}: size {width}x{height} is not possible; width and height must be 16 to {MAX_IMAGE_SIDE} pixels."
        )
    return width, height


def check_number(
    value: object, what: str, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    """`value` as a float if it is a finite number within [low, high] (or (low, high] with `low_open`).

    Raises:
        InputError: not a number, NaN or infinite, or out of range; the message names `what` and the range.
    """
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and number > high
    if not math.isfinite(number) or below or above:
        if low is not None and high is not None:
            wanted = f"{'more than' if low_open else 'from'} {low:g} {'and at most' if low_open else 'to'} {high:g}"
        elif low is not None:
            wanted = f"{'more than' if low_open else 'at least'} {low:g}"
        else:
            wanted = f"at most {high:g}" if high is not None else "a finite number"
        raise InputError(f"{what}: {value!r} is not allowed; give a number {wanted}.")
    return number
