"""Shot design on a small synthetic scene: framing, moves, level horizons, smooth keyframes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_shot_language import CAMERAS, ENTITIES, small_scene

from reshoot import ReshootError
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import CameraPath, CamerasDocument
from reshoot.geometry.conventions import look_at
from reshoot.shot_design import BOX_PAD_M, default_heading, design_shot, ease
from reshoot.shot_language import apply_description, default_spec, load_vocabulary
from reshoot.shot_spec import ShotSpec

VOCABULARY = load_vocabulary()


def designed(description: str, facts=None, **changes):
    facts = facts or small_scene()
    spec = apply_description(default_spec(VOCABULARY), description, VOCABULARY, ENTITIES, CAMERAS)
    return design_shot(dataclasses.replace(spec, **changes), facts), facts


def eyes(path) -> np.ndarray:
    R = path.cam_from_world[:, :3, :3]
    return -np.einsum("tji,tj->ti", R, path.cam_from_world[:, :3, 3])


def inside_share(path, boxes: np.ndarray) -> np.ndarray:
    """[T] whether every corner of `boxes` ([T, E, 2, 3]) projects inside the image."""
    pick = np.array([[i & 1, i >> 1 & 1, i >> 2 & 1] for i in range(8)], dtype=bool)
    corners = np.where(pick[None, None], boxes[:, :, None, 1], boxes[:, :, None, 0]).reshape(len(boxes), -1, 3)
    cam = np.einsum("tij,tpj->tpi", path.cam_from_world[:, :3, :3], corners) + path.cam_from_world[:, None, :3, 3]
    u = path.K[0, 0] * cam[..., 0] / cam[..., 2] + path.K[0, 2]
    v = path.K[1, 1] * cam[..., 1] / cam[..., 2] + path.K[1, 2]
    ok = (cam[..., 2] > 0) & (u > -0.5) & (u < path.width - 0.5) & (v > -0.5) & (v < path.height - 0.5)
    return ok.all(axis=1)


def test_overhead_looks_straight_down_and_frames_everyone_all_shot_long():
    path, facts = designed("overhead wide")
    forward = path.cam_from_world[:, 2, :3]
    assert np.allclose(forward, [0, 0, -1], atol=1e-9)
    boxes = np.stack([e.boxes for e in facts.entities.values()], axis=1)
    assert inside_share(path, boxes).all()
    # Tight: 20 % nearer the floor some padded box leaves the frame.
    closer = dataclasses.replace(path, cam_from_world=path.cam_from_world.copy())
    closer.cam_from_world[:, 2, 3] *= 0.8  # looking straight down, the z translation is the height
    padded = boxes + np.array([-BOX_PAD_M, BOX_PAD_M])[None, None, :, None]
    assert not inside_share(closer, padded).all()
    # Screen left and right as the A-camera: its heading points to the top of the overhead image.
    up_in_world = -path.cam_from_world[0, 1, :3]
    heading = default_heading(facts.cameras)
    assert np.allclose(up_in_world[:2], [np.cos(heading), np.sin(heading)], atol=1e-9)


def test_moves_push_orbit_and_crane_by_their_amounts():
    static, facts = designed("high wide static")
    push, _ = designed("high wide, push in on character_1")
    orbit, _ = designed("high wide, orbit left")
    crane, _ = designed("high wide, crane up")
    assert np.allclose(eyes(static), eyes(static)[0])
    target = facts.entities["character_1"].boxes.mean(axis=1)  # [T, 3]
    distance = np.linalg.norm(eyes(push) - target, axis=1)
    assert distance[-1] < 0.75 * distance[0]
    headings = np.degrees(np.arctan2(orbit.cam_from_world[:, 2, 1], orbit.cam_from_world[:, 2, 0]))
    assert (headings[-1] - headings[0]) % 360 == pytest.approx(60.0, abs=0.5)
    assert eyes(crane)[-1, 2] > eyes(crane)[0, 2] + 1.0
    # Eased: no velocity at either end.
    for path in (push, orbit, crane):
        e = eyes(path)
        assert np.linalg.norm(e[1] - e[0]) < 0.2 * np.abs(np.diff(e, axis=0)).max() * np.sqrt(3)
    assert facts.frame_count == len(static.frames)


def test_horizons_stay_level_unless_dutch():
    for description in (
        "high wide",
        "low angle on character_1",
        "eye level, orbit around prop_1",
        "match a_wide",
        "medium, follow character_2, crane down",
    ):
        path, _ = designed(description)
        right = path.cam_from_world[:, 0, :3]
        assert np.abs(right[:, 2]).max() < 1e-9, description
    level, _ = designed("high wide")
    dutch, _ = designed("high wide, dutch")
    turn = np.degrees(np.arccos(np.clip(dutch.cam_from_world[0, 0, :3] @ level.cam_from_world[0, 0, :3], -1, 1)))
    assert turn == pytest.approx(15.0, abs=1e-6)  # rolled about the unchanged optical axis
    assert np.allclose(dutch.cam_from_world[:, 2, :3], level.cam_from_world[:, 2, :3])


def test_keep_in_frame_pulls_the_shot_back_until_the_entity_fits():
    loose, facts = designed("close up on character_1")
    kept, _ = designed("close up on character_1, keep Maya in frame")
    maya = facts.entities["Maya"].boxes[:, None]
    assert not inside_share(loose, maya).all()
    assert inside_share(kept, maya).all() and kept.widened_by > 1.0


def test_match_takes_the_cameras_height_and_lens_from_a_new_side():
    path, facts = designed("match b_medium")
    b = facts.cameras.select("b_medium")
    assert np.allclose(eyes(path)[:, 2], float(b.centers[0, 2]))
    assert path.K[0, 0] == pytest.approx(float(b.K[0, 0, 0]))
    assert np.linalg.norm(eyes(path)[0, :2] - b.centers[0, :2].numpy()) > 1.0


def test_frames_outside_the_take_and_unknown_entities_are_refused():
    facts = small_scene()
    with pytest.raises(ReshootError, match="outside the take"):
        design_shot(ShotSpec(frames=(5, 40)), facts)
    with pytest.raises(ReshootError, match="not in the layout"):
        design_shot(ShotSpec(target="nobody"), facts)


def _keyed(frames, centres, targets) -> CamerasDocument:
    poses = torch.stack([look_at(c, t) for c, t in zip(centres, targets)])
    K = torch.tensor([[400.0, 0, 319.5], [0, 400, 179.5], [0, 0, 1]], dtype=torch.float64)
    camera = Camera.create(["crane"], K[None], poses[:1], [640], [360])
    return CamerasDocument(camera, {"crane": CameraPath(torch.tensor(frames), poses)})


def test_keyframes_pass_through_their_keys_without_jerk():
    facts = small_scene(frames=40)
    keys = [0, 10, 25, 39]
    centres = [[-4, -4, 1.5], [0, -5, 3.0], [4, -3, 2.0], [5, 1, 4.0]]
    document = _keyed(keys, centres, [[0, 0, 1]] * 4)
    path = design_shot(ShotSpec(angle="explicit", elevation_deg=None, keyframes="keys.json"), facts, document)
    assert list(path.frames) == list(range(40))
    assert np.allclose(eyes(path)[keys], centres, atol=1e-9)
    assert np.allclose(path.cam_from_world[keys], document.paths["crane"].cam_from_world.numpy(), atol=1e-9)
    # C2 splines: the acceleration changes little from frame to frame, unlike a piecewise-linear path
    # whose velocity jumps at every key.
    linear = np.stack([np.interp(np.arange(40), keys, np.asarray(centres)[:, k]) for k in range(3)], axis=1)
    jerk = np.abs(np.diff(eyes(path), n=3, axis=0)).max()
    assert jerk < 0.1 * np.abs(np.diff(linear, n=3, axis=0)).max()
    velocity = np.diff(eyes(path), axis=0)
    assert np.linalg.norm(velocity[0]) < 0.2 * np.linalg.norm(velocity, axis=1).max()  # clamped: eases in


def test_ease_is_a_smooth_step():
    s = np.linspace(0, 1, 101)
    e = ease(s)
    assert e[0] == 0 and e[-1] == 1 and (np.diff(e) >= 0).all()
    acceleration = np.abs(np.diff(e, n=2))
    assert acceleration[0] < 0.15 * acceleration.max() and acceleration[-1] < 0.15 * acceleration.max()
