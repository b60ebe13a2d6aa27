"""Builds and loads the C++/OpenMP CPU splat kernels (`csrc/`: the rasterizer and the fused projection).

The kernels register themselves as torch operators (`torch.ops.reshoot_splats_cpu.*`, `TORCH_LIBRARY`)
rather than as a pybind11 module: that needs only `<torch/library.h>` and a few ATen headers, where
`<torch/extension.h>` alone took 29 of the build's 35 s to parse (now about 11 s in all). The library
is compiled just in time by `torch.utils.cpp_extension.load` (ninja, the system C++ compiler), once:
`python -m reshoot.geometry.splats.build`, which the Makefile's setup runs. It lands in
`build/splats_cpu/` of the source checkout (or `$RESHOOT_SPLATS_BUILD_DIR`, or a user cache folder for
an installed copy) next to a stamp holding the fingerprint of what was built (sources, flags, torch and
Python versions). Importing the rasterizer only loads a build whose stamp matches, so an import never
starts a compiler; anything else falls back to the pure-torch twin.

Flags: -O3 and OpenMP; no -march=native, because the build must run on similar but different CPUs
(the hot loops are instantiated for AVX2 and for the baseline and picked at run time instead);
-ffp-contract=off, so that no multiply-add is fused and the forward and backward passes evaluate every
Gaussian with the very same roundings as each other and as the twin; -Wno-psabi silences GCC's notes
about the ABI of vector types, which never cross a library boundary here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

EXTENSION_NAME = "reshoot_splats_cpu"
CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = (CSRC / "rasterize_cpu.cpp", CSRC / "project_cpu.cpp")
CFLAGS = ("-O3", "-fopenmp", "-ffp-contract=off", "-Wno-psabi")
LDFLAGS = ("-fopenmp",)
BUILD_DIR_ENV = "RESHOOT_SPLATS_BUILD_DIR"
STAMP_NAME = "reshoot-build.stamp"


def build_directory() -> Path:
    """Where the extension is built and looked for.

    Returns:
        `$RESHOOT_SPLATS_BUILD_DIR` if set; else `build/splats_cpu/` of the source checkout this module
        lives in (an editable install); else `~/.cache/reshoot/splats_cpu/` (an installed copy).
    """
    if os.environ.get(BUILD_DIR_ENV):
        return Path(os.environ[BUILD_DIR_ENV])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "geometry" / "splats").is_dir():
        return checkout / "build" / "splats_cpu"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "reshoot" / "splats_cpu"


def fingerprint() -> str:
    """Hash of everything the binary depends on: sources, flags, torch and Python versions."""
    import torch

    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(source.read_bytes())
    for part in (*CFLAGS, "|", *LDFLAGS, "|", torch.__version__, sys.version, EXTENSION_NAME):
        digest.update(part.encode())
    return digest.hexdigest()


def _library_path(directory: Path) -> Path:
    from torch.utils.cpp_extension import LIB_EXT

    return directory / f"{EXTENSION_NAME}{LIB_EXT}"


def _operators() -> Any:
    """The kernels' operator namespace, `torch.ops.reshoot_splats_cpu` (attributes `rasterize_forward`,
    `project_forward`, ..., called like functions)."""
    import torch

    return getattr(torch.ops, EXTENSION_NAME)


def load_prebuilt() -> Any | None:
    """Load the kernels if they were built from the current sources; never compiles.

    Returns:
        Their operator namespace (`rasterize_forward`, `rasterize_backward`, `project_forward`, ...), or
        None when there is no build, it is stale (other sources, flags or torch), or it does not load.
        The reason is logged at debug level; the caller decides how loudly to fall back.
    """
    directory = build_directory()
    stamp = directory / STAMP_NAME
    library = _library_path(directory)
    if not library.is_file() or not stamp.is_file():
        LOG.debug("no CPU rasterizer build in %s", directory)
        return None
    if stamp.read_text().strip() != fingerprint():
        LOG.debug("the CPU rasterizer build in %s is stale", directory)
        return None
    import torch

    try:
        torch.ops.load_library(str(library))
    except (ImportError, OSError, RuntimeError) as error:
        LOG.debug("the CPU rasterizer in %s does not load: %s", library, error)
        return None
    return _operators()


def build(verbose: bool = False) -> Any:
    """Compile the extension (if needed) and record its fingerprint.

    Args:
        verbose: show the compiler's command lines and output.

    Returns:
        The kernels' operator namespace (see `load_prebuilt`).

    Raises:
        Whatever `torch.utils.cpp_extension.load` raises when the toolchain (a C++ compiler with
        OpenMP, ninja) is missing or the compilation fails.
    """
    from torch.utils.cpp_extension import load

    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    load(  # also loads the library into torch.ops
        name=EXTENSION_NAME,
        sources=[str(s) for s in SOURCES],
        extra_cflags=list(CFLAGS),
        extra_ldflags=list(LDFLAGS),
        build_directory=str(directory),
        verbose=verbose,
        is_python_module=False,
    )
    # Written last and atomically: a stamp always describes a complete, loadable build.
    temporary = directory / (STAMP_NAME + ".tmp")
    temporary.write_text(fingerprint() + "\n")
    temporary.replace(directory / STAMP_NAME)
    return _operators()


def main(argv: list[str] | None = None) -> int:
    """`python -m reshoot.geometry.splats.build [-v]`: build if needed; exit 1 (with a warning) on failure."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="reshoot: %(message)s")
    if load_prebuilt() is not None:
        LOG.info("CPU rasterizer is up to date (%s)", build_directory())
        return 0
    LOG.info("building the CPU rasterizer into %s (some 15 s)", build_directory())
    start = time.perf_counter()
    try:
        build(verbose="-v" in argv or "--verbose" in argv)
    except Exception as error:  # noqa: BLE001 - any toolchain failure means: fall back, loudly
        lines = str(error).strip().splitlines()
        LOG.warning(
            "WARNING: the CPU rasterizer did not build (%s: %s). Splat rendering on CPU falls back to "
            "the pure-torch reference, which is much slower. Install a C++ compiler with OpenMP "
            "(e.g. g++) and ninja, then run `python -m reshoot.geometry.splats.build -v` to see why.",
            type(error).__name__,
            lines[-1] if lines else "no message",
        )
        return 1
    LOG.info("CPU rasterizer built in %.0f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
