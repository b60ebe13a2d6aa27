"""Synthesis engines by name: reshoot's own and those plug-ins register.

A plug-in package registers an engine class (or any no-argument callable returning an `Engine`) under the
entry-point group `reshoot.engines`:
```toml
[project.entry-points."reshoot.engines"]
myengine = "my_package.engine:MyEngine"
```
and `reshoot synthesize WS SHOT --engine myengine` runs it. reshoot's own engines are listed here rather
than as entry points of its own, so a source checkout that was never `pip install`ed still has them; a
plug-in cannot take one of their names.
"""

from __future__ import annotations

import importlib
from importlib import metadata

from reshoot.engines.contract import Engine
from reshoot.geometry.errors import InputError

ENTRY_POINT_GROUP = "reshoot.engines"
BUILTIN_ENGINES = {
    "render": "reshoot.engines.render:RenderEngine",
    "unified": "reshoot.engines.unified:UnifiedEngine",
    "diffusers": "reshoot.engines.diffusers_vace:DiffusersEngine",
}
"""reshoot's own engines: name → "module:attribute"."""
DEFAULT_ENGINE = "unified"


def _plugins() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN_ENGINES}


def engine_names() -> list[str]:
    """Every engine that can be asked for: reshoot's own, then the plug-ins', sorted."""
    return [*BUILTIN_ENGINES, *sorted(_plugins())]


def load_engine(name: str) -> Engine:
    """A fresh engine of that name.

    Raises:
        InputError: no engine has that name, or its plug-in does not load or is not an `Engine`.
    """
    if name in BUILTIN_ENGINES:
        module, attribute = BUILTIN_ENGINES[name].split(":")
        factory = getattr(importlib.import_module(module), attribute)
    else:
        plugins = _plugins()
        if name not in plugins:
            raise InputError(f"--engine {name!r}: no such engine; the engines are {', '.join(engine_names())}.")
        try:
            factory = plugins[name].load()
        except Exception as error:  # a plug-in's own import error, whatever it is
            raise InputError(
                f"--engine {name!r}: its plug-in ({plugins[name].value}) failed to load: {error}"
            ) from error
    engine = factory() if callable(factory) else factory
    if not isinstance(engine, Engine):
        raise InputError(
            f"--engine {name!r}: {factory!r} did not make an engine (it needs a `name`, `check_inputs` and "
            "`synthesize`; reshoot/engines/contract.py)."
        )
    return engine
