"""Run a benchmark against another checkout of reshoot (an older revision), for before/after comparisons.

    git worktree add /tmp/base REV
    .venv/bin/python benchmarks/at_checkout.py /tmp/base benchmarks/set_from_above.py --workspace W ...

SCRIPT is this checkout's (or any) benchmark file; it runs with the `reshoot` package imported from the checkout's sources. Putting the checkout
first on PYTHONPATH is not enough: the editable install maps `reshoot.geometry`, `reshoot.model`, ... (the
folders `package-dir` names in pyproject.toml) to this checkout, so a PYTHONPATH run mixes the two
revisions. Here the checkout's own `package-dir` is read and its packages are found there, ahead of the
editable install's finder (importlib's `MetaPathFinder`; no library does this for a foreign tree). The
CPU rasterizer is loaded from this checkout's build when the checkout has none of its own and the
sources match (`RESHOOT_SPLATS_BUILD_DIR`; the fingerprint check refuses a stale binary).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import runpy
import sys
import tomllib
from pathlib import Path


class CheckoutFinder(importlib.abc.MetaPathFinder):
    """Finds `reshoot` and its subpackages in a source checkout, by the checkout's `package-dir`."""

    def __init__(self, root: Path) -> None:
        config = tomllib.loads((root / "pyproject.toml").read_text())
        folders = config["tool"]["setuptools"]["package-dir"]
        self.folders = sorted(
            ((package, root / folder) for package, folder in folders.items()), key=lambda p: -len(p[0])
        )

    def find_spec(self, fullname, path=None, target=None):
        for package, folder in self.folders:
            if fullname != package and not fullname.startswith(package + "."):
                continue
            base = folder.joinpath(*fullname[len(package) :].split(".")[1:])
            if (base / "__init__.py").is_file():
                return importlib.util.spec_from_file_location(
                    fullname, base / "__init__.py", submodule_search_locations=[str(base)]
                )
            if base.with_suffix(".py").is_file():
                return importlib.util.spec_from_file_location(fullname, base.with_suffix(".py"))
            return None
        return None


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} CHECKOUT SCRIPT [ARGS...]  (see the module docstring)")
    root, script = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    if not (root / "pyproject.toml").is_file():
        sys.exit(f"{root} is not a checkout of reshoot (no pyproject.toml): make one with `git worktree add`.")
    own_build = Path(__file__).resolve().parents[1] / "build" / "splats_cpu"
    if not (root / "build" / "splats_cpu").is_dir() and own_build.is_dir():
        os.environ.setdefault("RESHOOT_SPLATS_BUILD_DIR", str(own_build))
    sys.meta_path.insert(0, CheckoutFinder(root))
    sys.argv = [str(script), *sys.argv[3:]]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
