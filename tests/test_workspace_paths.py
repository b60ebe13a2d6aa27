"""DESIGN.md §4: `Workspace` is the one object that knows where each artefact of a take lives; no other
module of the product (pipeline, CLI, benchmarks) spells an artefact's path."""

from __future__ import annotations

import ast

from conftest import REPO

# Names of artefacts (and their folders) inside a workspace: `something / "<name>"` outside
# reshoot/workspace.py is a path literal that belongs in `Workspace`.
ARTEFACT_NAMES = {
    ".reshoot",
    "reshoot.toml",
    "registration",
    "cameras.json",
    "survey_cameras.json",
    "points.ply",
    "report.json",
    "splats",
    "splats.work",
    "reconstruction.json",
    "layout.json",
    "layout_plan.png",
    "shots",
    "shot.json",
    "history.jsonl",
    "keyframes.json",
    "conditioning",
    "synthesis.json",
    "samples",
    "check.json",
    "index.html",
}
FOLDERS = ("reshoot", "cli", "benchmarks")


def path_literals(source: str) -> list[tuple[int, str]]:
    """(line, name) of every `expression / "name"` whose name is an artefact's."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant)
            and node.right.value in ARTEFACT_NAMES
        ):
            found.append((node.lineno, node.right.value))
    return found


def test_the_check_finds_a_path_literal():
    assert path_literals('x = root / "layout.json"\ny = ws.layout\n') == [(1, "layout.json")]
    assert path_literals('x = root / "registration" / "cameras.json"') == [(1, "cameras.json"), (1, "registration")]


def test_no_artefact_path_outside_workspace():
    problems = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == REPO / "reshoot" / "workspace.py":
                continue
            problems += [
                f"{path.relative_to(REPO)}:{line}: / {name!r}" for line, name in path_literals(path.read_text())
            ]
    assert not problems, "artefact paths spelled outside Workspace:\n" + "\n".join(problems)


def layout_document_calls(source: str) -> list[tuple[int, str]]:
    """(line, function) of every call of `read_json_document` / `write_json_document` with the kind
    "layout", and of every `json.loads` / `json.load` of something named `...layout...`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ("read_json_document", "write_json_document") and any(
            isinstance(a, ast.Constant) and a.value == "layout" for a in node.args
        ):
            found.append((node.lineno, name))
        if name in ("loads", "load") and "layout" in ast.unparse(node.args[0] if node.args else node).lower():
            found.append((node.lineno, name))
    return found


def test_the_check_finds_a_layout_reader():
    assert layout_document_calls('d = read_json_document(p, "layout", 1)\nc = read_json_document(p, "cameras", 1)') == [
        (1, "read_json_document")
    ]
    assert layout_document_calls("d = json.loads(ws.layout.read_text())") == [(1, "loads")]


def test_layout_json_has_one_reader_and_one_writer():
    """Only reshoot/layout_io.py reads or writes the layout format (the synthetic generator writes its
    ground truth, gt/entities.json, in it too: datasets/ may not import the pipeline)."""
    problems = []
    for folder in (*FOLDERS, "datasets"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path in (REPO / "reshoot" / "layout_io.py", REPO / "datasets" / "synthetic" / "take.py"):
                continue
            problems += [
                f"{path.relative_to(REPO)}:{line}: {name}" for line, name in layout_document_calls(path.read_text())
            ]
    assert not problems, "the layout format read or written outside reshoot/layout_io.py:\n" + "\n".join(problems)
