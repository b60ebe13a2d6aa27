"""The folders of DESIGN.md §2 install as one package `reshoot`, editable and not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

ROOTS = {
    "reshoot": "reshoot",
    "reshoot.geometry": "geometry",
    "reshoot.model": "model",
    "reshoot.cli": "cli",
    "reshoot.datasets": "datasets",
    "reshoot.engines": "engines",
    "reshoot.bench": "benchsuite",
}


def _discover() -> dict[str, str]:
    """Every package in the source tree (a folder with __init__.py) → its folder, relative to REPO."""
    found = {}
    for module, folder in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found[".".join((module, *rel))] = str(init.parent.relative_to(REPO))
    return found


FOLDERS = _discover()
SUBPACKAGES = sorted(FOLDERS)


def _locations(python_path: str | None, cwd: Path) -> dict[str, str]:
    code = f"import importlib, json; print(json.dumps({{m: importlib.import_module(m).__file__ for m in {SUBPACKAGES!r}}}))"
    env = None
    if python_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": python_path}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout)


def test_editable_install_maps_the_folders(tmp_path: Path):
    found = _locations(None, tmp_path)
    for module, folder in FOLDERS.items():
        assert Path(found[module]) == REPO / folder / "__init__.py", (module, found[module])


@pytest.mark.slow
def test_installed_copy_imports_every_subpackage(tmp_path: Path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    found = _locations(str(target), tmp_path)
    for module in SUBPACKAGES:
        assert Path(found[module]).is_relative_to(target), (module, found[module])
    cli = subprocess.run(
        [sys.executable, "-m", "reshoot.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(target)},
    )
    assert cli.returncode == 0 and cli.stdout.startswith("reshoot "), cli.stderr
