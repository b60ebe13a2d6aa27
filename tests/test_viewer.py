"""`reshoot view`: the viser scene of a workspace, and its page rendered by headless Chromium."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers_browser import run_chromium, screenshot_when

from reshoot.geometry.errors import InputError


@pytest.fixture(scope="module")
def viewed_ws(laid_out_workspace: Path, tmp_path_factory) -> Path:
    """A copy of the laid-out workspace with a shot `top` (frames 0-4)."""
    from reshoot.shots import shoot

    ws = tmp_path_factory.mktemp("view") / "ws"
    shutil.copytree(laid_out_workspace, ws, symlinks=True, ignore=shutil.ignore_patterns("shots"))
    shoot(ws, "overhead wide", name="top", frames=(0, 5), resolution=(160, 90))
    return ws


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _screenshot(url: str, out: Path) -> np.ndarray:
    run_chromium(
        out.parent / (out.stem + "_profile"),
        "--use-angle=swiftshader",  # WebGL on the CPU
        "--enable-unsafe-swiftshader",
        "--window-size=800,600",
        "--virtual-time-budget=15000",
        f"--screenshot={out}",
        url,
        timeout=180,
    )
    return iio.imread(out)[..., :3].astype(np.int16)


def test_content_of_a_laid_out_workspace(viewed_ws: Path):
    from reshoot.viewer import load_viewer_content

    content = load_viewer_content(viewed_ws, "top")
    assert content.scene is not None and content.entities and content.points is not None
    production = [n for n in content.cameras.names if content.roles[n] == "production"]
    assert production == ["a_wide", "b_medium", "c_medium", "d_reverse"]
    assert all(n.startswith("survey/") for n in content.cameras.names if n not in production)
    name, camera, poses = content.shot
    assert name == "top" and len(camera) == 1 and sorted(poses) == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match="does not exist"):
        load_viewer_content(viewed_ws, "nope")


def test_unregistered_workspace_is_refused(scene_take: Path, tmp_path: Path):
    from reshoot.viewer import load_viewer_content
    from reshoot.workspace import init_workspace

    init_workspace(tmp_path / "ws", scene_take / "footage")
    with pytest.raises(InputError, match="reshoot register"):
        load_viewer_content(tmp_path / "ws")

    from reshoot.cli.app import main

    with pytest.raises(SystemExit) as exit_:
        main(["view", str(tmp_path / "ws"), "--port", "0"])
    assert exit_.value.code == 2  # bad input: refused before anything is served


def test_splat_arrays_keep_the_most_opaque():
    from reshoot.geometry.splats.gaussians import Gaussians
    from reshoot.viewer import splat_arrays

    n = 10
    gaussians = Gaussians(
        torch.arange(n * 3, dtype=torch.float32).reshape(n, 3),
        torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        torch.full((n, 3), -2.0),
        torch.linspace(-3, 3, n),
        torch.zeros(n, 1, 3),
    )
    arrays = splat_arrays(gaussians, limit=4)
    assert arrays["centers"].shape == (4, 3) and arrays["covariances"].shape == (4, 3, 3)
    assert arrays["opacities"].min() > 0.5  # the four most opaque of logits -3..3
    np.testing.assert_allclose(arrays["covariances"][0], np.eye(3) * np.exp(-4.0), rtol=1e-5)
    np.testing.assert_allclose(arrays["rgbs"], 0.5)  # SH band 0 of zero is mid grey


def test_the_page_shows_the_scene_in_headless_chromium(viewed_ws: Path, tmp_path: Path):
    import viser

    from reshoot.viewer import Viewer, load_viewer_content

    empty = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        blank = _screenshot(f"http://127.0.0.1:{empty.get_port()}/", tmp_path / "empty.png")
    finally:
        empty.stop()

    def scene_arrived(shot: np.ndarray) -> bool:
        changed, colours = _scene_in_view(shot, blank)
        return changed > 0.2 and colours > 40

    server = viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        viewer = Viewer(server, load_viewer_content(viewed_ws, "top"))
        viewer.slider.value = 2  # as a user dragging the slider: the actors, boxes and shot camera follow
        # The scene reaches the page over a websocket: shots are taken in real time until it has arrived.
        shot = screenshot_when(
            tmp_path / "scene_profile",
            f"http://127.0.0.1:{server.get_port()}/",
            scene_arrived,
            "--use-angle=swiftshader",  # WebGL on the CPU
            "--enable-unsafe-swiftshader",
        )
    finally:
        server.stop()
    iio.imwrite(tmp_path / "scene.png", shot)
    changed, colours = _scene_in_view(shot, blank)
    assert changed > 0.2, changed
    assert colours > 40, colours


def _scene_in_view(shot: np.ndarray, blank: np.ndarray) -> tuple[float, int]:
    """The share of the 3D view that differs from the empty scene's `blank`, and how many colours it shows (16
    levels a channel). The view is left of viser's panel, below its notifications: the scene changes a large
    share of it, in many colours (the set's splats), where an empty scene is a plain background."""
    view, empty_view = shot[160:580, 0:440].astype(np.int16), blank[160:580, 0:440]
    changed = float((np.abs(view - empty_view).sum(axis=-1) > 30).mean())
    return changed, len(np.unique((view // 16).reshape(-1, 3), axis=0))
