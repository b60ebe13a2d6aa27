"""Floaters in front of a camera no stage saw: the reconstruction's alpha in front of the first true
surface, on a synthetic take (true depth from the generator; where it has none, the void beyond the
set, anything drawn counts) and on a real calibrated rig (caliscope_4cam, cam_3 held out; true depth
from the dense stereo of the other cameras, pixels without it not counted).

The issue's bar is alpha below 0.1 over 95 % of the pixels. It is not met yet (docs/benchmarks.md has
the measured shares: the soft edge of the floor over the void and the characters' soft, elongated
silhouettes from above take most of the rest); these tests hold the level reached, so that a change
that brings floaters back fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reshoot.geometry.cameras_io import read_cameras_json
from reshoot.geometry.splats.surfaces import alpha_in_front
from reshoot.ground_truth import cameras_in_registration_frame, registration_from_truth
from reshoot.render import load_splat_scene

FLOATER_ALPHA = 0.1
SYNTHETIC_SHARE = 0.75  # the scene take fitted at 160×90: 0.79 on its overhead (frame 0); the bar is 0.95
REAL_SHARE = 0.8


def test_alpha_in_front_sees_a_floater_and_not_the_surface():
    from reshoot.geometry.camera import Camera
    from reshoot.geometry.conventions import look_at
    from reshoot.geometry.splats.gaussians import Gaussians

    K = torch.tensor([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]], dtype=torch.float64)
    camera = Camera.create(["c"], K[None], look_at((0, -3, 1), (0, 0, 1))[None].numpy(), [64], [48])
    g = Gaussians(
        torch.tensor([[0.0, 0.0, 1.0], [0.0, -1.5, 1.0]]),
        torch.tensor([[1.0, 0, 0, 0]]).repeat(2, 1),
        torch.full((2, 3), -2.0),
        torch.full((2,), 4.0),
        torch.zeros(2, 1, 3),
    )
    wall = torch.full((48, 64), 3.0)  # the true surface: 3 m away, where the first Gaussian sits
    alpha = alpha_in_front(g, camera, wall)
    assert float(alpha.max()) > 0.9, "the Gaussian 1.5 m in front of the wall is a floater"
    alone = Gaussians(g.means[:1], g.quats_wxyz[:1], g.log_scales[:1], g.logit_opacities[:1], g.sh[:1])
    assert float(alpha_in_front(alone, camera, wall).max()) == 0
    assert float(alpha_in_front(g, camera, torch.zeros(48, 64), empty_is_free=False).max()) == 0


def test_no_floaters_in_front_of_the_synthetic_takes_held_out_cameras(reconstructed_workspace, scene_take: Path):
    ws, _ = reconstructed_workspace
    truth = read_cameras_json(scene_take / "gt" / "cameras.json").cameras
    registered = read_cameras_json(ws / "registration" / "cameras.json").cameras
    scale = float(np.cbrt(np.linalg.det(registration_from_truth(truth, registered)[:3, :3])))
    cameras = cameras_in_registration_frame(truth, registered)
    scene = load_splat_scene(ws)
    for name in ("overhead", "high_angle"):
        depth = np.load(scene_take / "gt" / "maps" / f"{name}.npz")["depth"]
        for frame in range(3):
            floaters = alpha_in_front(
                scene.at(frame), cameras.select(name).pinhole(), torch.from_numpy(depth[frame] * scale)
            )
            share = float((floaters < FLOATER_ALPHA).float().mean())
            assert share >= SYNTHETIC_SHARE, (
                f"{name} frame {frame}: only {share:.1%} of the pixels are free of floaters"
            )


@pytest.fixture(scope="module")
def caliscope_reconstructed(caliscope_registered, tmp_path_factory) -> Path:
    """caliscope_4cam: the set (and frame 0's actors) fitted on cam_0-cam_2 at a quarter of the size."""
    import shutil

    from reshoot.reconstruct import ReconstructOptions, reconstruct

    ws = tmp_path_factory.mktemp("caliscope_reconstructed") / "ws"
    shutil.copytree(caliscope_registered[0], ws)
    reconstruct(
        ws,
        ReconstructOptions(
            downscale=4,
            set_iterations=200,
            first_actor_iterations=30,
            actor_iterations=10,
            refine_actor_iterations=10,
            frames=(0, 1),
            cameras=("cam_0", "cam_1", "cam_2"),
        ),
    )
    return ws


def test_no_floaters_in_front_of_a_held_out_real_camera(caliscope_reconstructed: Path):
    """cam_3's first surface from the dense stereo of the three fitted cameras' clean plates."""
    from reshoot.background import prepared_plates
    from reshoot.geometry.stereo import StereoView, fuse_depths, stereo_depths
    from reshoot.reconstruct import PLATE_MOVING_SHARE
    from reshoot.static_set import read_sparse_points, scene_box
    from reshoot.workspace import load_workspace

    ws = caliscope_reconstructed
    cameras = read_cameras_json(ws / "registration" / "cameras.json").cameras
    training = ("cam_0", "cam_1", "cam_2")
    doc = json.loads((ws / "splats" / "reconstruction.json").read_text())
    assert doc["pruned"]["unseen"] > 0, "what fewer than two cameras see is pruned"

    seen = cameras.select(list(training))
    small = seen.scaled(4).pinhole()
    with load_workspace(ws).open_footage() as footage:
        plates = prepared_plates(footage, seen, 4, 12)
    views = [
        StereoView(small.select(i), plates[n][0], plates[n][1] < PLATE_MOVING_SHARE).reduced(2)
        for i, n in enumerate(training)
    ]
    points = fuse_depths(
        views, stereo_depths(views, *scene_box(read_sparse_points(ws / "registration" / "points.ply")[0], cameras))
    ).points.points
    held = cameras.select("cam_3").scaled(4).pinhole()
    hits = held.pixel_hits(points.double())
    depth = torch.full((int(held.height[0]), int(held.width[0])), float("inf"), dtype=torch.float64)
    inside = hits.inside[0]
    depth.view(-1).scatter_reduce_(
        0, hits.rows[0][inside] * depth.shape[1] + hits.cols[0][inside], hits.depth[0][inside], "amin"
    )
    depth = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))
    known = depth > 0
    assert int(known.sum()) > 20, "stereo of the other cameras sees part of cam_3's view"
    floaters = alpha_in_front(load_splat_scene(ws).at(0), held, depth, empty_is_free=False)
    share = float((floaters[known] < FLOATER_ALPHA).float().mean())
    assert share >= REAL_SHARE, f"only {share:.1%} of cam_3's pixels with a known surface are free of floaters"


def test_a_held_out_calibrated_camera_renders_from_the_calibration_file(
    caliscope_reconstructed: Path, shared_data: Path, tmp_path: Path
):
    """`reshoot render --cameras camera_array.toml --calibration-frame`: cam_3, given in the calibration's
    own frame, renders the same pixels as cam_3 given in the registration's world frame."""
    from reshoot.cli.app import main
    from reshoot.geometry.cameras_io import write_cameras_json

    ws = caliscope_reconstructed
    registered = read_cameras_json(ws / "registration" / "cameras.json").cameras
    write_cameras_json(tmp_path / "world.json", registered.select("cam_3"))
    toml = shared_data / "caliscope_4cam" / "camera_array.toml"
    for cameras, out, extra in ((toml, "calibrated", ["--calibration-frame"]), (tmp_path / "world.json", "world", [])):
        args = ["render", str(ws), "--cameras", str(cameras), "--out", str(tmp_path / out), "--frames", "0:1"]
        with pytest.raises(SystemExit) as done:
            main(args + extra)
        assert done.value.code == 0, args
    import imageio.v3 as iio

    from_calibration = iio.imread(tmp_path / "calibrated" / "cam_3" / "000000.png").astype(int)
    from_world = iio.imread(tmp_path / "world" / "cam_3" / "000000.png").astype(int)
    assert sorted(p.name for p in (tmp_path / "calibrated").iterdir()) == ["cam_0", "cam_1", "cam_2", "cam_3"]
    assert np.abs(from_calibration - from_world).max() <= 1
    assert from_world.std() > 5, "the render shows something"
