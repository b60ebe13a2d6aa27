"""Command-line options made from a stage's Options dataclass, so that its defaults and help live in one
place (the dataclass and its docstring) and a new field becomes a flag without copying.

`@stage_flags(ReconstructOptions, "set_iterations", ...)` adds `--set-iterations` and the others to a
typer command; the command receives the ones given as `given: dict[str, value]` (a flag not given is left
out, so the dataclass's default applies) and builds its options with `make_options`, which checks them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import typer

SCALARS = (int, float, str, bool)


def attribute_help(cls: type) -> dict[str, str]:
    """Field name → its text in the `Attributes:` sections of the class's and its bases' docstrings (Google
    style; a line "a, b: text" documents both; continuation lines are joined)."""
    out: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        out.update(_documented(base.__dict__.get("__doc__") or ""))
    return out


def _documented(doc: str) -> dict[str, str]:
    doc = inspect.cleandoc(doc)
    section = doc.partition("Attributes:")[2]
    out: dict[str, str] = {}
    current: list[str] = []
    for line in section.splitlines():
        entry = re.match(r"^    (\w+(?:, \w+)*): (.*)$", line)
        if entry:
            current = entry.group(1).split(", ")
            for name in current:
                out[name] = entry.group(2).strip()
        elif line.startswith("        ") and current:
            for name in current:
                out[name] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return out


def _flag_type(hint: Any) -> type:
    """int, float, str or bool for a field typed so, or `X | None` of one."""
    options = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_args(hint) else [hint]
    if len(options) != 1 or options[0] not in SCALARS:
        raise TypeError(f"a flag needs an int, float, str or bool field, not {hint!r}")
    return options[0]


def stage_flags(cls: type, *names: str) -> Callable[[Callable], Callable]:
    """Decorate a typer command with `--<field-name>` options for fields `names` of dataclass `cls`.

    The command must take a keyword parameter `given`; it receives {field: value} of the flags given.
    Booleans become `--name/--no-name`.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    helps = attribute_help(cls)

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        annotations = {k: v for k, v in command.__annotations__.items() if k not in ("given", "return")}
        added = []
        for name in names:
            kind = _flag_type(hints[name])
            default = fields[name].default
            flag = "--" + name.replace("_", "-")
            declarations = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
            text = helps.get(name, "").rstrip(".")
            option = typer.Option(None, *declarations, help=f"{text[:1].upper()}{text[1:]}. Default: {default}.")
            annotations[name] = typing.Optional[kind]  # noqa: UP045 (typer reads it at run time)
            added.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option))
        kept = [p for p in signature.parameters.values() if p.name != "given"]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            flags = {name: kwargs.pop(name, None) for name in names}
            return command(*args, given={k: v for k, v in flags.items() if v is not None}, **kwargs)

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*kept, *added], return_annotation=inspect.Signature.empty
        )
        wrapper.__annotations__ = annotations
        return wrapper

    return decorate
