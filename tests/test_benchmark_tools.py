"""Tools the benchmarks use to compare revisions (not the benchmarks themselves: those are measured, not tested)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_at_checkout_imports_every_package_from_the_other_checkout(tmp_path: Path):
    """A checkout whose package-dir maps `reshoot` and `reshoot.geometry` to folders of its own: the script
    sees both from there, not from this repository's editable install (which maps `reshoot.geometry` here)."""
    checkout = tmp_path / "checkout"
    for folder, mark in (("pkg", "old reshoot"), ("geo", "old geometry"), ("geo/splats", "old splats")):
        (checkout / folder).mkdir(parents=True)
        (checkout / folder / "__init__.py").write_text(f"MARK = {mark!r}\n")
    (checkout / "geo" / "planes.py").write_text("MARK = 'old planes'\n")
    (checkout / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "reshoot" = "pkg", "reshoot.geometry" = "geo" }\n'
    )
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys, reshoot, reshoot.geometry.splats, reshoot.geometry.planes\n"
        "print(reshoot.MARK, '|', reshoot.geometry.MARK, '|', reshoot.geometry.splats.MARK, '|',"
        " reshoot.geometry.planes.MARK, '|', sys.argv[1:])\n"
    )
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "at_checkout.py"), str(checkout), str(script), "--x", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == "old reshoot | old geometry | old splats | old planes | ['--x', '1']"
    refused = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "at_checkout.py"), str(tmp_path), str(script)],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "not a checkout of reshoot" in refused.stderr
