"""`reshoot reconstruct` and `reshoot render` on a small synthetic take, checked against its ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from reshoot import InputError
from reshoot.geometry.cameras_io import read_cameras_json, write_cameras_json
from reshoot.geometry.splats.ply import read_splat_ply
from reshoot.reconstruct import ReconstructOptions, reconstruct
from reshoot.registration import register
from reshoot.workspace import init_workspace

PRODUCTION = ["a_wide", "b_medium", "c_medium", "d_reverse"]
# Small budgets: the test checks the stage's plumbing and that each part does its job, not the bars
# (those are measured by benchmarks/reconstruct_take.py on the default take).
OPTIONS = ReconstructOptions(downscale=1, set_iterations=300, first_actor_iterations=60, actor_iterations=20,
                             frames=(0, 3), voxel_size=0.04, checkpoint_every=100)


def _registered_workspace(take: Path, root: Path) -> Path:
    """A workspace calibrated with the true production cameras (registration then only triangulates)."""
    truth = read_cameras_json(take / "gt" / "cameras.json").cameras.select(PRODUCTION)
    write_cameras_json(root / "calibration.json", truth)
    ws = root / "ws"
    init_workspace(ws, take / "footage", calibration=root / "calibration.json")
    register(ws)
    return ws


@pytest.fixture(scope="module")
def reconstructed(small_take: Path, tmp_path_factory):
    ws = _registered_workspace(small_take, tmp_path_factory.mktemp("reconstruct"))
    return ws, reconstruct(ws, OPTIONS)


def test_outputs_are_complete_and_the_actors_improve_the_frames(reconstructed):
    ws, summary = reconstructed
    splats = ws / "splats"
    assert sorted(p.name for p in splats.iterdir()) == ["actors", "background.ply", "log.json", "reconstruction.json"]
    assert not (ws / "splats.work").exists(), "work in progress is removed once the stage is done"
    assert sorted(p.name for p in (splats / "actors").iterdir()) == ["000000.ply", "000001.ply", "000002.ply"]
    assert len(read_splat_ply(splats / "background.ply")) == summary.set_gaussians > 0
    doc = json.loads((splats / "reconstruction.json").read_text())
    assert doc["format"] == "reshoot/reconstruction" and doc["options"]["seed"] == 0 and doc["frames"] == [0, 1, 2]
    assert min(summary.set_psnr.values()) > 24, summary.set_psnr
    log = json.loads((splats / "log.json").read_text())
    assert log["set"][-1]["step"] == OPTIONS.set_iterations - 1
    for entry in log["actors"]:
        gains = [entry["psnr"][n] - entry["psnr_set_only"][n] for n in PRODUCTION]
        assert min(gains) > 1.0, entry  # every camera sees the actors better with them than without


def test_actors_stand_where_the_ground_truth_characters_are(reconstructed, small_take: Path):
    ws, _ = reconstructed
    entities = json.loads((small_take / "gt" / "entities.json").read_text())["entities"]
    for frame in range(3):
        actors = read_splat_ply(ws / "splats" / "actors" / f"{frame:06d}.ply")
        boxes = [next(f for f in e["frames"] if f["frame"] == frame) for e in entities if e["kind"] == "character"]
        near = torch.zeros(len(actors), dtype=torch.bool)
        for box in boxes:
            lo, hi = torch.tensor(box["box_min"]) - 0.15, torch.tensor(box["box_max"]) + 0.15
            near |= ((actors.means >= lo) & (actors.means <= hi)).all(-1)
        weight = actors.opacities
        share = float((weight * near).sum() / weight.sum())
        assert share > 0.85, f"frame {frame}: only {share:.0%} of the actors' opacity is on a character"


def test_render_writes_every_pass_for_held_out_cameras(reconstructed, small_take: Path, tmp_path: Path):
    from reshoot.cli.app import main

    ws, _ = reconstructed
    out = tmp_path / "renders"
    with pytest.raises(SystemExit) as done:
        main(["render", str(ws), "--cameras", str(small_take / "gt" / "cameras.json"), "--frames", "1:3", "--out", str(out)])
    assert done.value.code == 0
    truth = read_cameras_json(small_take / "gt" / "cameras.json").cameras
    for name in truth.names:
        assert sorted(p.name for p in (out / name).glob("*.png")) == ["000001.png", "000002.png"]
        rgb = iio.imread(out / name / "000001.png")
        assert rgb.shape == (int(truth.select(name).height[0]), int(truth.select(name).width[0]), 3)
        assert iio.imread(out / name / "depth" / "000001.png").dtype == np.uint16
        assert iio.imread(out / name / "alpha" / "000001.png").dtype == np.uint8
    # The held-out overhead camera: its rendered depth agrees with the true depth where it is covered.
    depth = iio.imread(out / "overhead" / "depth" / "000001.png").astype(np.float64) / 1000
    alpha = iio.imread(out / "overhead" / "alpha" / "000001.png") / 255
    true_depth = np.load(small_take / "gt" / "maps" / "overhead.npz")["depth"][1]
    valid = (alpha > 0.9) & (true_depth > 0)
    assert valid.mean() > 0.5, "most of the overhead view is covered"
    relative = np.abs(depth[valid] - true_depth[valid]) / true_depth[valid]
    assert np.median(relative) < 0.03, np.median(relative)
    # A second render into the same folder needs --overwrite and leaves the first untouched.
    before = (out / "overhead" / "000001.png").read_bytes()
    with pytest.raises(SystemExit) as refused:
        main(["render", str(ws), "--cameras", str(small_take / "gt" / "cameras.json"), "--frames", "1", "--out", str(out)])
    assert refused.value.code == 2 and (out / "overhead" / "000001.png").read_bytes() == before


class _Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_and_gives_the_same_splats(reconstructed, small_take: Path, tmp_path: Path):
    ws, _ = reconstructed
    copy = tmp_path / "ws"
    init_workspace(copy, small_take / "footage", calibration=ws.parent / "calibration.json")
    shutil.copytree(ws / "registration", copy / "registration")

    def stop_at_second_frame(what, done, total):
        if what == "actors" and done == 2:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        reconstruct(copy, OPTIONS, stop_at_second_frame)
    assert (copy / "splats.work" / "actors" / "000001.ply").is_file() and not (copy / "splats").exists()
    summary = reconstruct(copy, OPTIONS)
    assert summary.resumed_from == "frame 1"
    for name in ["background.ply", "actors/000000.ply", "actors/000001.ply", "actors/000002.ply"]:
        assert (copy / "splats" / name).read_bytes() == (ws / "splats" / name).read_bytes(), name


def test_bad_inputs_are_named(small_take: Path, reconstructed, tmp_path: Path):
    ws, _ = reconstructed
    bare = tmp_path / "bare"
    init_workspace(bare, small_take / "footage")
    with pytest.raises(InputError, match="reshoot register"):
        reconstruct(bare, OPTIONS)
    with pytest.raises(InputError, match="not registered"):
        reconstruct(ws, ReconstructOptions(cameras=("a_wide", "z_cam")))
    with pytest.raises(InputError, match="not inside the take"):
        reconstruct(ws, ReconstructOptions(frames=(5, 40)))
    from reshoot.render import render_cameras

    with pytest.raises(InputError, match="reshoot reconstruct"):
        render_cameras(bare, small_take / "gt" / "cameras.json", tmp_path / "r")
    with pytest.raises(InputError, match="outside the take"):
        render_cameras(ws, small_take / "gt" / "cameras.json", tmp_path / "r", frames=(8, 20))
    assert not (tmp_path / "r").exists()
