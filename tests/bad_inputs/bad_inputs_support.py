"""What every bad-input test needs: the CLI run in-process, a digest of a folder before and after, and tiny
hand-made takes and workspaces (no registration or reconstruction is ever run: each file a command reads
is written here, as small as it can be).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

CAMERAS = ("a_wide", "b_medium", "c_reverse")
SIZE = (96, 64)  # width, height
FRAMES = 4
FPS = 24.0


@dataclass(frozen=True)
class Result:
    """What a CLI run gave: exit code, stdout, stderr (whitespace collapsed, so wrapped lines still match)."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return " ".join(self.err.split())


def run(capsys, *args) -> Result:
    """`reshoot ARGS` in this process (capsys collects what it prints)."""
    from reshoot.cli.app import console, main

    capsys.readouterr()
    width = console._width
    console.width = 100_000  # one line per message: paths are not wrapped
    try:
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in args])
    finally:
        console._width = width
    out, err = capsys.readouterr()
    return Result(int(exit_.value.code or 0), out, err)


def _bookkeeping(relative: str) -> bool:
    """The workspace lock (who holds it, since when), rewritten by every command that takes it."""
    return relative == ".reshoot" or relative.endswith("/.reshoot") or relative.endswith(".reshoot/lock")


def digest(folder: Path) -> dict[str, str]:
    """Every file (its SHA-1) and folder under `folder`, by relative path (not the lock)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): ("<dir>" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if not _bookkeeping(str(p.relative_to(folder)))
    }


def shoot_args(workspace, description: str, *options, name: str = "new") -> tuple:
    """The arguments of `reshoot shoot WORKSPACE DESCRIPTION --name NAME --no-render OPTIONS...`."""
    return ("shoot", workspace, description, "--name", name, "--no-render", *options)


def refused(capsys, folder: Path, *args, says: tuple[str, ...] = (), code: int = 2) -> Result:
    """Run `reshoot ARGS` and check the convention for bad input: exit `code`, one error message on stderr
    naming what is wrong (each of `says`, case-insensitive), no traceback, and `folder` byte-identical."""
    before = digest(folder)
    result = run(capsys, *args)
    assert result.code == code, f"exit {result.code}, expected {code}: {result.err}"
    assert "Traceback" not in result.err + result.out
    if code == 2:
        assert result.text.lower().count("error:") == 1, result.err  # one message
    for word in says:
        assert word.lower() in result.text.lower(), f"{word!r} not in: {result.text}"
    after = digest(folder)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the command changed what it was refused for: {changed}"
    return result


# --------------------------------------------------------------------------------------------------
# Footage


def write_video(
    path: Path, frames: int = FRAMES, size: tuple[int, int] = SIZE, fps: float = FPS, seed: int = 0, black: bool = False
) -> Path:
    """A tiny H.264 video of noise (or black)."""
    import imageio.v3 as iio

    rng = np.random.default_rng(seed)
    shape = (frames, size[1], size[0], 3)
    data = np.zeros(shape, np.uint8) if black else rng.integers(0, 255, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, data, extension=".mp4", fps=fps, codec="libx264", macro_block_size=2)
    return path


def write_frames(folder: Path, frames: int = FRAMES, size: tuple[int, int] = SIZE, seed: int = 0) -> Path:
    """An image sequence NNNNNN.png of noise."""
    import imageio.v3 as iio

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        iio.imwrite(folder / f"{i:06d}.png", rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="session")
def base_footage(tmp_path_factory) -> Path:
    """Three cameras, 4 frames of 96x64 noise each (copied, never changed, by the tests)."""
    folder = tmp_path_factory.mktemp("base") / "footage"
    for i, name in enumerate(CAMERAS):
        write_video(folder / f"{name}.mp4", seed=i)
    return folder


@pytest.fixture
def footage(base_footage, tmp_path) -> Path:
    """A fresh copy of the base footage."""
    return Path(shutil.copytree(base_footage, tmp_path / "footage"))


# --------------------------------------------------------------------------------------------------
# A hand-made workspace: settings, registration, layout, a reconstruction and one shot


def camera_entry(name: str, eye, size=SIZE, focal: float = 80.0, **extra) -> dict:
    """A reshoot/cameras entry of a camera at `eye` looking at the origin."""
    from reshoot.geometry.conventions import look_at

    K = [[focal, 0.0, size[0] / 2 - 0.5], [0.0, focal, size[1] / 2 - 0.5], [0.0, 0.0, 1.0]]
    return {
        "name": name,
        "width": size[0],
        "height": size[1],
        "K": K,
        "distortion": [],
        "cam_from_world": look_at(eye, (0.0, 0.0, 0.8)).tolist(),
        **extra,
    }


def cameras_document(entries: list[dict], version: int = 1) -> dict:
    return {"format": "reshoot/cameras", "version": version, "cameras": entries}


def write_json(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


EYES = {"a_wide": (4.0, 0.0, 1.6), "b_medium": (0.0, 4.0, 1.6), "c_reverse": (-4.0, -1.0, 1.6)}


def layout_document(version: int = 1, name: str = "character_1") -> dict:
    character = {
        "id": 0,
        "name": name,
        "kind": "character",
        "frames": [
            {
                "frame": f,
                "position": [0.1 * f, 0.0, 0.85],
                "box_min": [0.1 * f - 0.25, -0.25, 0.0],
                "box_max": [0.1 * f + 0.25, 0.25, 1.7],
                "confidence": 1.0,
            }
            for f in range(FRAMES)
        ],
    }
    prop = {
        "id": 1,
        "name": "prop_1",
        "kind": "prop",
        "frames": [
            {
                "frame": None,
                "position": [1.0, 1.0, 0.3],
                "box_min": [0.7, 0.7, 0.0],
                "box_max": [1.3, 1.3, 0.6],
                "confidence": 1.0,
            }
        ],
    }
    return {"format": "reshoot/layout", "version": version, "floor": {"z": 0.0}, "entities": [character, prop]}


def write_points(path: Path, count: int = 200, seed: int = 0) -> Path:
    """An ASCII PLY of random points in a 6 x 6 x 2.5 m box (as registration/points.ply: only its extent is read)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform((-3, -3, 0), (3, 3, 2.5), (count, 3))
    header = (
        f"ply\nformat ascii 1.0\nelement vertex {count}\n"
        "property float x\nproperty float y\nproperty float z\nend_header\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(f"{x:.4f} {y:.4f} {z:.4f}\n" for x, y, z in points))
    return path


def write_splats(path: Path, count: int = 64, seed: int = 0) -> Path:
    """A few Gaussians around the origin as splats/background.ply."""
    import torch

    from reshoot.geometry.splats.gaussians import Gaussians
    from reshoot.geometry.splats.ply import write_splat_ply

    g = torch.Generator().manual_seed(seed)
    gaussians = Gaussians(
        torch.rand(count, 3, generator=g) * 2 - 1,
        torch.tensor([[1.0, 0, 0, 0]]).repeat(count, 1),
        torch.full((count, 3), -2.5),
        torch.full((count,), 2.0),
        torch.rand(count, 1, 3, generator=g),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_splat_ply(path, gaussians)
    return path


@pytest.fixture(scope="session")
def base_workspace(base_footage, tmp_path_factory) -> Path:
    """A workspace on the base footage with what each stage would have written: registration/cameras.json
    and points.ply, layout.json, splats/background.ply, and shot "overhead" designed by `reshoot shoot`."""
    from reshoot.shots import shoot
    from reshoot.workspace import init_workspace

    root = tmp_path_factory.mktemp("bases")
    footage = Path(shutil.copytree(base_footage, root / "footage"))
    ws = root / "ws"
    init_workspace(ws, footage)
    write_json(
        ws / "registration" / "cameras.json",
        cameras_document([camera_entry(n, EYES[n], role="production") for n in CAMERAS]),
    )
    write_points(ws / "registration" / "points.ply")
    write_json(ws / "layout.json", layout_document())
    write_splats(ws / "splats" / "background.ply")
    shoot(ws, "overhead wide", name="overhead")
    return ws


@pytest.fixture
def workspace(base_workspace, tmp_path) -> Path:
    """A fresh copy of the hand-made workspace, beside a copy of its footage (tmp_path/take/{ws,footage})."""
    return Path(shutil.copytree(base_workspace.parent, tmp_path / "take")) / "ws"
