"""Write the bytecode (.pyc) of what reshoot imports, once, at set-up (`make setup` runs this).

The Makefile installs packages with `pip install --no-compile`: pip would byte-compile every module of
every package, most of which reshoot never imports (torch alone: 30 s of its 36 s install on 2 cores).
This imports every module of reshoot, the top-level module of each library it depends on (several are
imported lazily, inside functions) and the test tools, with bytecode writing switched on, so that those
modules load from their .pyc in every later process. That matters where PYTHONDONTWRITEBYTECODE is set
(it is on this project's machines): there a module without a .pyc is compiled again at every start.
About 9 s; a library that fails to import is skipped (the tests say what is missing).

    PYTHONDONTWRITEBYTECODE= .venv/bin/python scripts/warm_bytecode.py
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import pkgutil
import re
import sys
import time

PACKAGE = "reshoot"


def _dependency_modules() -> list[str]:
    """Top-level import names of the distributions reshoot requires (its dev extra included)."""
    wanted = set()
    for requirement in importlib.metadata.requires(PACKAGE) or []:
        name = re.split(r"[\s;<>=!~\[]", requirement, maxsplit=1)[0]
        wanted.add(name.lower().replace("_", "-"))
    modules = []
    for module, distributions in importlib.metadata.packages_distributions().items():
        if module.startswith("_") or not module.isidentifier():
            continue
        if any(d.lower().replace("_", "-") in wanted for d in distributions):
            modules.append(module)
    return sorted(modules)


def _package_modules() -> list[str]:
    """Every module of reshoot (its subpackages live in other folders: walked one by one)."""
    names = []
    pending = [PACKAGE]
    while pending:
        package = importlib.import_module(pending.pop())
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if info.name.endswith(".__main__"):  # running it would start the CLI
                continue
            names.append(info.name)
            if info.ispkg:
                pending.append(info.name)
    return sorted(names)


def main() -> int:
    if sys.flags.dont_write_bytecode:
        print("warm_bytecode: bytecode writing is off; run with PYTHONDONTWRITEBYTECODE= (empty)")
        return 1
    logging.disable(logging.WARNING)  # e.g. "the C++ rasterizer is not built" when run before it is
    started = time.perf_counter()
    skipped = []
    for name in [*_dependency_modules(), *_package_modules()]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional or broken imports are the tests' business, not set-up's
            skipped.append(name)
    note = f" (could not import {', '.join(skipped)})" if skipped else ""
    print(f"reshoot: bytecode written for {len(sys.modules)} modules in {time.perf_counter() - started:.0f} s{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
