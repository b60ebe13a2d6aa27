"""Shots in a real (synthetic, registered, reconstructed, laid out) workspace: the overhead bar against
ground truth, revisions and their replay, explicit cameras, conditioning renders, exports and the CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from reshoot import ReshootError
from reshoot.geometry.cameras_io import CameraPath, read_cameras_json, write_cameras_json
from reshoot.geometry.conventions import look_at
from reshoot.geometry.splats.render import rasterize
from reshoot.ground_truth import registration_from_truth, true_boxes_in_frame
from reshoot.layout_io import read_layout
from reshoot.render import load_splat_scene
from reshoot.shots import list_shots, read_history, replay_history, revise, shoot
from reshoot.workspace import Workspace


@pytest.fixture()
def ws(laid_out_workspace: Path, tmp_path_factory) -> Path:
    """A private copy (same folder depth, so the footage's relative path still holds)."""
    copy = tmp_path_factory.mktemp("shot_ws") / "ws"
    shutil.copytree(laid_out_workspace, copy, symlinks=True, ignore=shutil.ignore_patterns("shots"))
    return copy


def test_auto_framed_overhead_keeps_every_true_entity_in_frame_and_looks_straight_down(ws: Path, scene_take: Path):
    result = shoot(ws, "overhead wide")
    path = result.path
    truth_cameras = read_cameras_json(scene_take / "gt" / "cameras.json").cameras
    transform = registration_from_truth(truth_cameras, read_cameras_json(ws / "registration" / "cameras.json").cameras)
    inside = true_boxes_in_frame(path, read_layout(scene_take / "gt" / "entities.json").entities, transform)
    assert all(inside), f"{np.mean(inside):.0%} of frames keep every true box in frame"
    tilt = np.degrees(np.arccos(np.clip(-path.cam_from_world[:, 2, 2], -1, 1)))
    assert tilt.max() <= 2.0
    assert len(path.frames) == 12


def test_a_chain_of_five_revisions_and_a_branch_replay_exactly(ws: Path):
    shoot(ws, "high wide, slow push in on character_1", name="push")
    steps = ["higher", "keep character_2 in frame", "orbit left, faster", "closer, 50mm", "lower, dutch"]
    for step in steps:
        revise(ws, "push", step)
    branch = revise(ws, "push", "overhead, release character_2", from_revision=2)
    history = read_history(ws / "shots" / "push")
    assert [r.parent for r in history] == [None, 0, 1, 2, 3, 4, 2]
    assert history[3].spec.move == "orbit_left" and history[4].spec.lens_mm == 50.0
    assert branch.revision.spec.angle == "overhead" and "character_2" not in branch.revision.spec.keep
    replayed = replay_history(ws, "push")
    assert len(replayed) == 7
    shot = read_cameras_json(ws / "shots" / "push" / "shot.json")
    assert np.array_equal(replayed[-1].cam_from_world, shot.paths["push"].cam_from_world.numpy())
    assert np.array_equal(replayed[-1].cam_from_world, branch.path.cam_from_world)
    assert shot.extra["shot"]["revision"] == 6
    # A tampered history no longer reproduces, and says so.
    lines = (ws / "shots" / "push" / "history.jsonl").read_text().splitlines()
    doctored = json.loads(lines[1])
    doctored["spec"]["elevation_deg"] += 1
    lines[1] = json.dumps(doctored)
    (ws / "shots" / "push" / "history.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ReshootError, match="revision 1 .* no longer gives its recorded shot"):
        replay_history(ws, "push")


def test_bad_shot_requests_fail_cleanly_and_write_nothing(ws: Path):
    with pytest.raises(ReshootError, match="not understood"):
        shoot(ws, "overhead sideways-ish", name="bad")
    assert not (ws / "shots" / "bad").exists()
    shoot(ws, "overhead wide", name="top")
    before = (ws / "shots" / "top" / "shot.json").read_bytes()
    with pytest.raises(ReshootError, match="already exists"):
        shoot(ws, "high wide", name="top")
    with pytest.raises(ReshootError, match="--from 9 is not one"):
        revise(ws, "top", "higher", from_revision=9)
    with pytest.raises(ReshootError, match="does not exist"):
        revise(ws, "nope", "higher")
    with pytest.raises(ReshootError, match="shot name"):
        shoot(ws, "overhead", name="../escape")
    assert (ws / "shots" / "top" / "shot.json").read_bytes() == before
    assert [s.name for s in list_shots(ws)] == ["top"]


def test_explicit_keyed_cameras_become_a_smooth_shot_that_revisions_move(ws: Path, tmp_path: Path):
    registered = read_cameras_json(ws / "registration" / "cameras.json").cameras.select("a_wide")
    keys = torch.tensor([0, 5, 11])
    poses = torch.stack(
        [look_at([-3, -4, 2], [0, 0, 1]), look_at([0, -5, 3], [0, 0, 1]), look_at([3, -4, 2.5], [0, 0, 1])]
    )
    write_cameras_json(tmp_path / "crane.json", registered.renamed(["crane"]), {"crane": CameraPath(keys, poses)})
    result = shoot(ws, None, name="crane", cameras_file=tmp_path / "crane.json")
    assert list(result.path.frames) == list(range(12))
    assert np.allclose(result.path.cam_from_world[[0, 5, 11]], poses.numpy(), atol=1e-9)
    raised = revise(ws, "crane", "higher")
    centres = -np.einsum("tji,tj->ti", raised.path.cam_from_world[:, :3, :3], raised.path.cam_from_world[:, :3, 3])
    assert np.allclose(centres[[0, 5, 11], 2], [2.5, 3.5, 3.0], atol=1e-9)
    with pytest.raises(ReshootError, match="cameras come from a file"):
        revise(ws, "crane", "orbit left")
    assert len(replay_history(ws, "crane")) == 2


def test_conditioning_passes_match_the_render_and_name_the_entities(ws: Path):
    from reshoot.conditioning import read_conditioning_frame, render_conditioning

    shoot(ws, "overhead wide", name="top", frames=(0, 3))
    summary = render_conditioning(ws, "top", backend="cpu")
    assert summary.frames == [0, 1, 2] and not summary.without_actors
    folder = ws / "shots" / "top" / "conditioning"
    assert (folder / "preview.mp4").stat().st_size > 1000
    frame = read_conditioning_frame(folder, 1)
    assert frame.rgb.shape == (180, 320, 3) and frame.rgb.dtype == np.float32
    covered = frame.alpha > 0.9
    assert covered.mean() > 0.3
    # The files hold the render exactly (EXR float32, 16-bit alpha).
    shot = read_cameras_json(ws / "shots" / "top" / "shot.json")
    camera = shot.cameras.select(0)
    posed = dataclasses.replace(
        camera.pinhole(), cam_from_world=shot.paths["top"].cam_from_world[1:2].to(camera.K.dtype)
    )
    scene = load_splat_scene(ws)
    with torch.no_grad():
        direct = rasterize(scene.at(1), posed, background=scene.environment, backend="cpu")
    assert np.abs(frame.depth - direct.depth[0].numpy()).max() < 1e-5
    assert np.abs(frame.rgb - direct.rgb[0].clamp(0, 1).numpy()).max() < 1e-6
    assert np.abs(frame.alpha - direct.alpha[0].numpy()).max() <= 1 / 65535
    assert (frame.depth[covered] > 0).all()  # covered pixels have a depth
    # Entity ids: only layout entities show, and every one present at frame 1 shows up from above, inside
    # where its (padded) box projects (an entity absent at a frame keeps its nearest frame's box).
    entities = json.loads((ws / "layout.json").read_text())["entities"]
    layout = [e for e in entities if any(f["frame"] in (None, 1) for f in e["frames"])]
    shown = set(np.unique(frame.entity_ids).tolist()) - {-1}
    assert {e["id"] for e in layout} <= shown <= {e["id"] for e in entities}, shown
    K, pose = shot.cameras.K[0].numpy(), shot.paths["top"].cam_from_world[1].numpy()
    rows, cols = np.indices(frame.entity_ids.shape)
    for e in layout:
        entry = next(f for f in e["frames"] if f["frame"] in (None, 1))
        lo, hi = np.asarray(entry["box_min"]) - 0.2, np.asarray(entry["box_max"]) + 0.2
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        cam = corners @ pose[:3, :3].T + pose[:3, 3]
        u, v = K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2], K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]
        mine = frame.entity_ids == e["id"]
        inside = (cols[mine] >= u.min()) & (cols[mine] <= u.max()) & (rows[mine] >= v.min()) & (rows[mine] <= v.max())
        assert mine.sum() > 20 and inside.mean() > 0.95, (e["name"], int(mine.sum()), inside.mean())
    with pytest.raises(ReshootError, match="was not rendered"):
        read_conditioning_frame(folder, 7)


def _layout_projects_through_pxr_as_ours(ws: Path, usda: Path, stored, frames: list[int], poses) -> None:
    """Every layout entity's box centre, at every fourth frame, lands where pxr's camera model (`Gf.Camera`'s
    frustum at that time code) and ours (the lens as stored in the file) put it, to 1e-6 px."""
    from pxr import Gf, Usd, UsdGeom

    from reshoot.geometry.camera import Camera
    from reshoot.scene import scene_facts

    facts = scene_facts(ws)
    stage = Usd.Stage.Open(str(usda))  # held: a prim of a released stage is invalid
    usd_camera = UsdGeom.Camera(stage.GetPrimAtPath("/cameras/orbit"))
    width, height = int(stored.width[0]), int(stored.height[0])
    checked = 0
    for i in range(0, len(frames), 4):
        centres = [e.box_at(frames[i] - facts.first_frame).mean(axis=0) for e in facts.entities.values()]
        frustum = usd_camera.GetCamera(Usd.TimeCode(frames[i])).frustum
        to_ndc = frustum.ComputeViewMatrix() * frustum.ComputeProjectionMatrix()
        ours = Camera.create(["c"], stored.K.double(), poses[i : i + 1].double(), [width], [height])
        pixels = ours.project(torch.tensor(np.array(centres), dtype=torch.float64)).pixels[0]
        for centre, (u, v) in zip(centres, pixels.tolist()):
            ndc = to_ndc.Transform(Gf.Vec3d(*(float(c) for c in centre)))
            assert ((ndc[0] + 1) / 2 * width - 0.5, (1 - ndc[1]) / 2 * height - 0.5) == pytest.approx((u, v), abs=1e-6)
            checked += 1
    assert checked >= len(facts.entities) * 2


def test_conditioning_in_frame_ranges_serially_and_on_ray(ws: Path):
    """Three frames in two ranges (a job each, one thread): the same passes serially and on Ray to the bit,
    and those of one loop to within float rounding."""
    from reshoot.conditioning import read_conditioning_frame, render_conditioning

    shoot(ws, "overhead wide", name="top", frames=(0, 3))
    folder = ws / "shots" / "top" / "conditioning"

    def passes() -> list:
        return [read_conditioning_frame(folder, f) for f in (0, 1, 2)]

    render_conditioning(ws, "top", backend="cpu")
    one = passes()
    render_conditioning(ws, "top", backend="cpu", ranges=2)
    split = passes()
    for a, b in zip(one, split):
        assert np.abs(a.rgb - b.rgb).max() < 1e-5 and np.abs(a.depth - b.depth).max() < 1e-4
        assert np.array_equal(a.entity_ids, b.entity_ids) and np.array_equal(a.filmed, b.filmed)
    with pytest.raises(ReshootError, match="--ranges 0"):
        render_conditioning(ws, "top", ranges=0)
    pytest.importorskip("ray")
    render_conditioning(ws, "top", backend="cpu", ranges=2, executor="ray")
    for a, b in zip(split, passes()):
        for name in ("rgb", "depth", "alpha", "entity_ids", "filmed"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_exports_of_a_shot_round_trip(ws: Path):
    from reshoot.export import export_cameras
    from reshoot.geometry.exports import read_colmap_model, read_nerfstudio_transforms, read_nuke_chan, read_usd_cameras

    shoot(ws, "high wide, orbit left", name="orbit")
    summary = export_cameras(ws, "orbit")
    poses = read_cameras_json(ws / "shots" / "orbit" / "shot.json").paths["orbit"].cam_from_world
    frames, chan, _ = read_nuke_chan(summary.folder / "orbit.chan")
    assert frames == list(range(12)) and (chan - poses).abs().max() < 1e-6
    stored, moving = read_usd_cameras(summary.folder / "orbit.usda")
    assert (moving["orbit"][1] - poses).abs().max() < 1e-6
    _layout_projects_through_pxr_as_ours(ws, summary.folder / "orbit.usda", stored.select("orbit"), frames, poses)
    colmap = read_colmap_model(summary.folder / "colmap")
    assert (
        colmap.select("000004.png" if "000004.png" in colmap.names else "000004").cam_from_world[0] - poses[4]
    ).abs().max() < 1e-6
    nerf = read_nerfstudio_transforms(summary.folder / "transforms.json")
    assert nerf.image_paths["000004"] == "../frames/000004.png"  # beside the json: shots/orbit/frames/
    frames_folder = Workspace(ws).shot("orbit").frames.resolve()
    assert (summary.folder / nerf.image_paths["000004"]).parent.resolve() == frames_folder
    camera = read_cameras_json(ws / "shots" / "orbit" / "shot.json").cameras
    angle = json.loads((summary.folder / "transforms.json").read_text())["camera_angle_x"]
    assert angle == pytest.approx(2 * np.arctan(float(camera.width[0]) / 2 / float(camera.K[0, 0, 0])))
    assert (nerf.cameras.select("000004").cam_from_world[0] - poses[4]).abs().max() < 1e-6
    assert json.loads((summary.folder / "orbit.json").read_text())["format"] == "reshoot/cameras"
    with pytest.raises(ReshootError, match="already exists"):
        export_cameras(ws, "orbit")
    with pytest.raises(ReshootError, match="choose from"):
        export_cameras(ws, "orbit", formats=["fbx"], overwrite=True)
    registered = export_cameras(ws)
    assert all(w.endswith("dropped from the .chan") and "distortion" in w for w in registered.warnings)
    document = read_cameras_json(ws / "registration" / "cameras.json").cameras
    lensed = [n for n, d in zip(document.names, document.has_distortion.tolist()) if d]
    expected = {f"{n}_{kind}.exr" for n in lensed for kind in ("undistort", "distort")}
    assert {p.name for p in registered.files if p.suffix == ".exr"} == expected
    assert not [p for p in summary.folder.iterdir() if p.suffix == ".exr"]  # a shot's camera is a pinhole
    assert sorted(p.name for p in registered.folder.glob("*.chan")) == [
        "a_wide.chan",
        "b_medium.chan",
        "c_medium.chan",
        "d_reverse.chan",
    ]


def test_cli_shoot_revise_shots_export(ws: Path, capsys):
    from reshoot.cli.app import main

    def run(*args):
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        return exit_.value.code

    assert run("shoot", str(ws), "overhead wide", "--name", "top", "--no-render") == 0
    assert run("revise", str(ws), "top", "higher", "--no-render") == 0
    assert run("revise", str(ws), "top", "wider", "--from", "0", "--no-render") == 0
    assert run("shots", str(ws)) == 0
    out = capsys.readouterr()
    assert "higher" in out.err and "wider" in out.err
    assert run("shoot", str(ws), "overhead gibberish", "--no-render") == 2
    assert "not understood" in capsys.readouterr().err
    assert run("export", str(ws), "top", "--format", "chan", "--format", "usd") == 0
    assert sorted(p.name for p in (ws / "shots" / "top" / "export").iterdir()) == [
        ".reshoot-output.json",
        "top.chan",
        "top.usda",
    ]  # the marker lets --overwrite replace it
