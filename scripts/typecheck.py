"""Type-check the package with mypy (run by `make test`; settings in pyproject.toml's [tool.mypy]).

The folders install as one package under other names (geometry/ is `reshoot.geometry`, DESIGN.md §2),
which mypy cannot map from the source tree, so this builds the package's layout out of symbolic links
in build/typecheck/ and checks `-p reshoot` there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = {
    "geometry": "geometry",
    "model": "model",
    "cli": "cli",
    "datasets": "datasets",
    "engines": "engines",
    "bench": "benchsuite",
}


def main() -> int:
    tree = REPO / "build" / "typecheck"
    shutil.rmtree(tree, ignore_errors=True)
    package = tree / "reshoot"
    package.mkdir(parents=True)
    for item in (REPO / "reshoot").iterdir():
        (package / item.name).symlink_to(item)
    for name, folder in SUBPACKAGES.items():
        (package / name).symlink_to(REPO / folder)
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "-p", "reshoot"]
    return subprocess.run(command, cwd=tree).returncode


if __name__ == "__main__":
    sys.exit(main())
