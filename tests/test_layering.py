"""DESIGN.md §2: dependencies go one way. cli → reshoot → {model, geometry, datasets};
model → geometry; datasets → geometry; geometry imports none of the others."""

from __future__ import annotations

import ast

import pytest

from conftest import REPO

FOLDER_LAYER = {
    "geometry": "geometry",
    "model": "model",
    "datasets": "datasets",
    "cli": "cli",
    "reshoot": "pipeline",
    "engines": "pipeline",  # reshoot.engines: the synthesize stage's libraries
    "benchsuite": "pipeline",  # reshoot.bench: the benchmark suites, over the pipeline's stages
}
ALLOWED = {
    "geometry": {"geometry"},
    "datasets": {"datasets", "geometry"},
    "model": {"model", "geometry"},
    "pipeline": {"pipeline", "model", "geometry", "datasets"},
    "cli": {"cli", "pipeline"},
}
HEAVY = {"torch", "open3d", "pycolmap", "kornia", "gsplat", "cv2", "scipy", "imageio"}


def layer_of_module(name: str) -> str | None:
    """Layer of an absolute module name inside the project, None for third-party modules."""
    parts = name.split(".")
    if parts[0] != "reshoot":
        return None
    if len(parts) > 1 and parts[1] in ("geometry", "model", "datasets", "cli"):
        return parts[1]
    return "pipeline"


def imports(source: str) -> list[tuple[str, bool]]:
    """(absolute module, at module level?) for every import in a source file."""
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, id(node) in top_level))
    return found


def violations(layer: str, source: str) -> list[str]:
    return [
        f"{layer} imports {module}"
        for module, _ in imports(source)
        if (target := layer_of_module(module)) is not None and target not in ALLOWED[layer]
    ]


def project_files():
    for folder, layer in FOLDER_LAYER.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            yield layer, path


def test_dependencies_follow_the_design():
    problems = [
        f"{path.relative_to(REPO)}: {v}" for layer, path in project_files() for v in violations(layer, path.read_text())
    ]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_violation():
    assert violations("geometry", "from reshoot.datasets.footage import open_footage") == [
        "geometry imports reshoot.datasets.footage"
    ]
    assert violations("cli", "import reshoot.geometry.camera") == ["cli imports reshoot.geometry.camera"]
    assert violations("model", "from reshoot.datasets import synthetic") != []
    assert violations("datasets", "from reshoot.geometry.camera import Camera") == []


def test_cli_imports_nothing_heavy_at_start_up():
    """`reshoot --help` must answer at once: torch & co. load inside commands only."""
    for layer, path in project_files():
        if layer != "cli":
            continue
        eager = [m for m, top in imports(path.read_text()) if top and m.split(".")[0] in HEAVY]
        assert not eager, f"{path.relative_to(REPO)} imports {eager} at module level"


@pytest.mark.parametrize("module", ["reshoot", "reshoot.workspace"])
def test_pipeline_package_root_is_light(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
