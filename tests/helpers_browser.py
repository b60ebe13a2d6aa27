"""Headless Chromium for the tests that open a page (test helper, not product code): Debian's chromium
with the flags the machine notes give, skipping the test where it is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


def run_chromium(profile: Path, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with its own profile folder and `arguments`; skip the test without Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
