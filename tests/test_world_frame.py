"""The world frame: gravity from the floor (or levelled cameras), floor at z = 0, scale from hints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.geometry.errors import InputError
from reshoot.geometry.world_frame import ScaleHint, cameras_up, estimate_world_frame


def _scene(rng):
    """World-frame points (floor, a higher table top, a wall) and three levelled cameras looking down."""
    floor = np.c_[rng.uniform(-3, 3, (600, 2)), np.zeros(600)]
    table = np.c_[rng.uniform(-0.5, 0.5, (900, 2)), np.full(900, 0.75)]  # more points than the floor
    wall = np.c_[rng.uniform(-3, 3, 300), np.full(300, 3.0), rng.uniform(0, 2.5, 300)]
    points = np.concatenate([floor, table, wall]) + rng.normal(0, 0.002, (1800, 3))
    eyes = [(-2.5, -2.5, 1.6), (2.5, -2.0, 1.5), (0.0, -3.0, 1.8)]
    poses = np.stack([look_at(e, (0, 0, 0.5)).numpy() for e in eyes])
    cameras = Camera.create(["a", "b", "c"], np.stack([np.eye(3)] * 3), poses, [640] * 3, [360] * 3)
    return points, cameras


def _arbitrary_frame(points: np.ndarray, cameras: Camera, scale: float, seed: int):
    """The same scene in an SfM-like frame: rotated, shifted and scaled."""
    rot = Rotation.random(random_state=seed).as_matrix()
    shift = np.array([3.0, -1.0, 7.0])
    sfm_from_world = np.eye(4)
    sfm_from_world[:3, :3], sfm_from_world[:3, 3] = scale * rot, shift
    centres = cameras.centers.numpy() @ sfm_from_world[:3, :3].T + shift
    cam_rot = cameras.cam_from_world[:, :3, :3].numpy() @ rot.T
    poses = np.tile(np.eye(4), (len(cameras), 1, 1))
    poses[:, :3, :3] = cam_rot
    poses[:, :3, 3] = -np.einsum("vij,vj->vi", cam_rot, centres)
    moved = Camera.create(cameras.names, cameras.K, poses, cameras.width, cameras.height)
    return points @ sfm_from_world[:3, :3].T + shift, moved


def test_cameras_up_is_exact_for_levelled_cameras_that_pitch():
    _, cameras = _scene(np.random.default_rng(0))
    assert np.allclose(cameras_up(cameras), [0, 0, 1], atol=1e-9)
    # The mean image-up vector would be tilted by the common pitch:
    image_up = -cameras.cam_from_world[:, 1, :3].numpy().sum(0)
    assert np.degrees(np.arccos(image_up[2] / np.linalg.norm(image_up))) > 5


def test_floor_found_in_an_arbitrary_frame_and_scale_from_camera_heights():
    points, cameras = _scene(np.random.default_rng(1))
    sfm_points, sfm_cameras = _arbitrary_frame(points, cameras, 0.37, seed=3)
    frame = estimate_world_frame(sfm_cameras, sfm_points, ScaleHint(camera_heights={"a": 1.6}))
    assert frame.up_source == "floor_plane" and frame.scale_source == "camera_height"
    world = frame.apply_to_points(sfm_points)
    assert np.abs(world[:600, 2]).max() < 0.02, "floor at z = 0"
    assert np.allclose(world[600:1500, 2], 0.75, atol=0.02), "the table top is not taken for the floor"
    world_cameras = frame.apply_to_cameras(sfm_cameras)
    assert np.allclose(world_cameras.centers[:, 2].numpy(), [1.6, 1.5, 1.8], atol=0.01)
    # Cameras keep their view of the scene: a point projects to the same pixel in both frames.
    before = sfm_cameras.project(torch.from_numpy(sfm_points[:5])).pixels
    after = world_cameras.project(torch.from_numpy(world[:5])).pixels
    assert np.allclose(before.numpy(), after.numpy(), atol=1e-6)


def test_known_distance_sets_the_scale_and_arbitrary_is_recorded():
    points, cameras = _scene(np.random.default_rng(2))
    sfm_points, sfm_cameras = _arbitrary_frame(points, cameras, 2.5, seed=4)
    true_ab = float(np.linalg.norm(cameras.centers[0] - cameras.centers[1]))
    frame = estimate_world_frame(sfm_cameras, sfm_points, ScaleHint(known_distance=("a", "b", true_ab)))
    assert frame.scale_source == "known_distance" and frame.scale == pytest.approx(1 / 2.5, rel=1e-9)
    frame = estimate_world_frame(sfm_cameras, sfm_points)
    assert frame.scale_source == "arbitrary"


def test_without_a_floor_up_comes_from_the_cameras():
    points, cameras = _scene(np.random.default_rng(3))
    frame = estimate_world_frame(cameras, points[1500:])  # the wall only
    assert frame.up_source == "camera_up" and frame.floor_points == 0
    assert np.allclose(frame.world_from_sfm[2, :3] / frame.scale, [0, 0, 1], atol=1e-6)
    with pytest.raises(InputError, match="needs the floor"):
        estimate_world_frame(cameras, points[1500:], ScaleHint(camera_heights={"*": 1.6}))
    with pytest.raises(InputError, match="no camera named"):
        estimate_world_frame(cameras, points, ScaleHint(known_distance=("a", "zz", 1.0)))


def test_no_points_is_a_clear_error_not_a_crash():
    """A calibrated rig whose plates share no static feature triangulates nothing: say so (it was an
    IndexError from numpy's percentile of an empty array)."""
    _, cameras = _scene(np.random.default_rng(3))
    for metric in (False, True):
        with pytest.raises(InputError, match="no static point of the set was triangulated"):
            estimate_world_frame(cameras, np.zeros((0, 3)), metric=metric)
