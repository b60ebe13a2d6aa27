"""Headless Chromium for the tests that open a page (test helper, not product code): Debian's chromium
with the flags the machine notes give, skipping the test where it is not installed."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from websockets.sync.client import connect

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


def screenshot_when(
    profile: Path,
    url: str,
    accept: Callable[[np.ndarray], bool],
    *arguments: str,
    size: tuple[int, int] = (800, 600),
    timeout: float = 240,
) -> np.ndarray:
    """Open `url` in headless Chromium with a viewport of `size` (width, height) pixels and take screenshots
    in real time until `accept(shot)` holds or `timeout` seconds pass; return the last shot, uint8 [H, W, 3].

    `--virtual-time-budget` runs the page on virtual time, which pages that stream their content over a
    websocket (viser's scene) outrun on a loaded machine. Here the page runs in real time and the shots are
    taken over the DevTools protocol (`Page.captureScreenshot`)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    profile.mkdir(parents=True, exist_ok=True)
    port_file = profile / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", *arguments, url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("headless Chromium did not open its DevTools port")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as devtools:

            def call(request: int, method: str, **params) -> dict:
                devtools.send(json.dumps({"id": request, "method": method, "params": params}))
                while (reply := json.loads(devtools.recv())).get("id") != request:
                    pass  # DevTools events
                return reply["result"]

            width, height = size
            call(0, "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
            for request in itertools.count(1):
                shot = iio.imread(base64.b64decode(call(request, "Page.captureScreenshot")["data"]))[..., :3]
                if accept(shot) or time.monotonic() > deadline:
                    return shot
                time.sleep(1.0)
    finally:
        process.terminate()
        process.wait(timeout=30)
    raise AssertionError("itertools.count does not end")
