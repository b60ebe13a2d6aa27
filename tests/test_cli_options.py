"""Command-line flags made from Options dataclasses (reshoot/cli/options.py)."""

from __future__ import annotations

import dataclasses

import typer
from typer.testing import CliRunner

from reshoot.cli.options import attribute_help, stage_flags
from reshoot.stage_options import LayoutOptions, ReconstructOptions


@dataclasses.dataclass(frozen=True)
class BaseToy:
    """A base.

    Attributes:
        depth: how deep it goes
            (metres).
    """

    depth: float = 1.5


@dataclasses.dataclass(frozen=True)
class Toy(BaseToy):
    """A toy.

    Attributes:
        steps, passes: how many.
        label: what it says.
        fast: whether it hurries.
        limit: at most this; None for no limit.
    """

    steps: int = 10
    passes: int = 2
    label: str = "toy"
    fast: bool = False
    limit: int | None = None


def _app(seen: list) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @stage_flags(Toy, "depth", "steps", "label", "fast", "limit")
    def toy(name: str = typer.Argument(...), given: dict | None = None) -> None:
        seen.append((name, given))

    @app.command()
    def other() -> None:  # a second command, so that typer keeps command names
        pass

    return app


class TestAttributeHelp:
    def test_fields_of_the_class_and_its_bases_are_documented(self):
        helps = attribute_help(Toy)
        assert helps["depth"] == "how deep it goes (metres)."
        assert helps["steps"] == helps["passes"] == "how many."
        assert set(helps) == {f.name for f in dataclasses.fields(Toy)}

    def test_every_field_of_the_stage_options_has_help(self):
        for cls in (ReconstructOptions, LayoutOptions):
            assert set(attribute_help(cls)) == {f.name for f in dataclasses.fields(cls)}, cls


class TestStageFlags:
    def test_only_the_flags_given_reach_the_command(self):
        seen: list = []
        result = CliRunner().invoke(_app(seen), ["toy", "a", "--steps", "3", "--fast", "--limit", "4"])
        assert result.exit_code == 0, result.output
        assert seen == [("a", {"steps": 3, "fast": True, "limit": 4})]
        result = CliRunner().invoke(_app(seen), ["toy", "b"])
        assert seen[-1] == ("b", {})

    def test_help_shows_the_dataclass_defaults_and_text(self):
        result = CliRunner().invoke(_app([]), ["toy", "--help"], terminal_width=200)
        text = " ".join(result.output.split())
        assert "How deep it goes (metres). Default: 1.5." in text
        assert "--no-fast" in text and "Default: toy." in text and "--passes" not in text

    def test_a_value_of_the_wrong_type_is_refused_before_the_command(self):
        seen: list = []
        result = CliRunner().invoke(_app(seen), ["toy", "a", "--steps", "many"])
        assert result.exit_code == 2 and seen == []
