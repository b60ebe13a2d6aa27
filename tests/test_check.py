"""`reshoot check` and `reshoot report`: every metric reacts to a deliberate corruption of a good output.

The good output is the ground truth itself: the synthetic take's true high-angle camera, moved into the
registration's frame, with its true frames as the shot's frames. Corruptions: a character shifted by
N pixels, a prop deleted, the frame mirrored, flicker; each must move its metric by the right amount.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_browser import run_chromium

from reshoot.check import CheckThresholds, check_shot
from reshoot.geometry.errors import InputError

FRAMES = (0, 3)  # the frames the test reconstruction has actors for
SHIFT_PX = 8
MISPLACED_M = 0.25  # a layout character farther than this from the true one in a checked frame is misplaced


def _read(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(path)[..., :3].astype(np.float32) / 255


def _write(path: Path, image: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))


@pytest.fixture(scope="module")
def truth_shot(laid_out_workspace, scene_take, tmp_path_factory):
    """(workspace copy, shot name, clean check): the true high-angle camera as a shot, its true frames as output."""
    from reshoot.ground_truth import ground_truth_shot

    ws = tmp_path_factory.mktemp("check") / "ws"
    shutil.copytree(laid_out_workspace, ws, symlinks=True)  # same depth: its relative footage path holds
    folder = ground_truth_shot(ws, scene_take, "high_angle", "truth")
    shutil.copytree(folder / "truth", folder / "frames", ignore=shutil.ignore_patterns("entity"))
    clean = check_shot(ws, "truth", frames=FRAMES, truth=folder / "truth")
    return ws, "truth", clean


def _corrupt(ws: Path, name: str, change) -> Path:
    """A copy of shot `name` whose frames are `change(frame number, image)`; returns the new shot's name."""
    target = ws / "shots" / f"{name}_bad"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ws / "shots" / name, target, ignore=shutil.ignore_patterns("check*"))
    document = json.loads((target / "shot.json").read_text())
    document["cameras"][0]["name"] = target.name
    (target / "shot.json").write_text(json.dumps(document))
    for png in sorted((target / "frames").glob("*.png")):
        if int(png.stem) in range(*FRAMES):
            _write(png, change(int(png.stem), _read(png)))
    return target


def _entity(check: dict, name: str) -> dict:
    return next(e for e in check["entities"] if e["name"] == name)


def _found(check: dict, kind: str) -> list[dict]:
    return [e for e in check["entities"] if e["kind"] == kind and e["frames_found"] == len(check["frames"])]


def _best_found(check: dict) -> dict:
    """The entity found in every frame with the largest template (the most reliable to corrupt)."""
    found = _found(check, "character") + _found(check, "prop")
    return max(found, key=lambda e: min(row["template_pixels"] for row in e["frames"]))


def _entity_mask(ws: Path, shot: str, entity_id: int, frame: int) -> np.ndarray:
    """Where the geometry puts an entity in a shot frame (the reference's labels, dilated a little)."""
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.render import load_splat_scene
    from reshoot.reprojection import shot_frame_reference
    from reshoot.scene import scene_facts
    from reshoot.workspace import load_workspace

    facts = scene_facts(ws)
    document = read_cameras_json(ws / "shots" / shot / "shot.json")
    registered = read_cameras_json(ws / "registration" / "cameras.json")
    names = registered.names_with_role("production", default="production")
    with load_workspace(ws).open_footage() as footage:
        images = [footage.source(n).read(frame) for n in names]
    camera = (
        document.cameras.select(0).pinhole().with_pose(document.paths[shot].cam_from_world[frame - facts.first_frame])
    )
    reference = shot_frame_reference(
        load_splat_scene(ws).at(frame),
        camera,
        registered.cameras.select(names),
        images,
        list(facts.entities.values()),
        frame - facts.first_frame,
    )
    return cv2.dilate((reference.entity == entity_id).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0


def _inpainted(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    filled = cv2.inpaint((image * 255 + 0.5).astype(np.uint8), mask.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    return filled.astype(np.float32) / 255


def test_clean_output_passes(truth_shot, scene_take):
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import compare_layouts, registration_from_truth
    from reshoot.layout_io import read_layout

    ws, name, clean = truth_shot
    check = clean.document
    assert check["frames"] == list(range(*FRAMES))
    found = _found(check, "character") + _found(check, "prop")
    assert found, "the true frames must show some entity where the geometry puts it"
    # A phantom of the layout (an entity where no true one stands: test_layout's known regression) is
    # rightly flagged by the check; every entity the layout has right must pass.
    transform = registration_from_truth(
        read_cameras_json(scene_take / "gt" / "cameras.json").cameras,
        read_cameras_json(ws / "registration" / "cameras.json").cameras,
    )
    truth_entities = read_layout(scene_take / "gt" / "entities.json").entities
    scores = compare_layouts(read_layout(ws / "layout.json").entities, truth_entities, transform)
    phantoms = set(scores.phantoms)
    # So is the order of two characters on screen where the layout puts one of them far from where it
    # stands; the rules are held wherever the layout has the characters within MISPLACED_M.
    true_name = scores.matches
    misplaced = {
        name
        for name in true_name
        if max(scores.floor_errors.get(true_name[name], [0.0])[slice(*FRAMES)], default=0.0) > MISPLACED_M
    }
    for entity in [e for e in found if e["name"] not in phantoms]:
        assert entity["placement_error_px"] <= CheckThresholds().placement_warn_px, entity
        assert entity["placement_error_m"] is not None
        assert len(entity["frames"]) == len(check["frames"])
    assert check["mirrored_frames"] == []
    assert check["temporal"]["verdict"] == "pass"
    assert check["cross_view"]["verdict"] != "fail"
    # The true high-angle camera may itself stand across a line the production cameras agree on: a rule
    # may flag exactly the frames where the true positions, seen by the true cameras, cross it.
    crossings = _true_crossings(scene_take, ws, transform, truth_entities)
    span = CheckThresholds().direction_span
    for rule in check["continuity"]["axis_of_action"]:
        if not set(rule["pair"]) & (phantoms | misplaced):
            a, b = (true_name[n] for n in rule["pair"])
            expected = {f for f in range(*FRAMES) if crossings(a, f, b, f)}
            assert set(rule["flipped_frames"]) <= expected, (rule, expected)
            if rule["decidable_frames"] == FRAMES[1] - FRAMES[0]:
                assert set(rule["flipped_frames"]) == expected, (rule, expected)
    for rule in check["continuity"]["screen_direction"]:
        if rule["entity"] not in phantoms | misplaced:
            c = true_name[rule["entity"]]
            expected = {f for f in range(FRAMES[0] + span, FRAMES[1]) if crossings(c, f - span, c, f)}
            assert set(rule["flipped_frames"]) <= expected, (rule, expected)
    truth = check["ground_truth"]
    assert truth["regions"]["all"]["psnr"] > 60 and truth["regions"]["all"]["flip"] < 1e-3
    assert (ws / "shots" / name / "check.json").is_file()
    assert sorted((ws / "shots" / name / "check").glob("*_error.png"))


def _true_crossings(scene_take: Path, ws: Path, transform: np.ndarray, truth_entities):
    """crosses(a, fa, b, fb): whether the true high-angle camera sees true character `b` at frame `fb` on
    the other side of `a` at frame `fa` (left/right) than most production cameras do (chest height)."""
    import torch

    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import cameras_in_registration_frame

    registered = read_cameras_json(ws / "registration" / "cameras.json").cameras
    cameras = cameras_in_registration_frame(read_cameras_json(scene_take / "gt" / "cameras.json").cameras, registered)
    floors = {e.name: {f.frame: f.floor for f in e.frames} for e in truth_entities if e.kind == "character"}

    def x(name: str, frame: int) -> np.ndarray:
        chest = transform[:3, :3] @ (floors[name][frame] + [0.0, 0.0, 1.2]) + transform[:3, 3]
        projection = cameras.to(torch.float64).project(torch.from_numpy(chest[None]))
        inside = (projection.depth[:, 0] > 0).numpy()
        return np.where(inside, projection.pixels[:, 0, 0].numpy(), np.nan)

    production = [cameras.names.index(n) for n in registered.names]
    shot = cameras.names.index("high_angle")

    def crosses(a: str, fa: int, b: str, fb: int) -> bool:
        difference = x(b, fb) - x(a, fa)
        majority = np.sign(np.nansum(np.sign(difference[production])))
        return bool(majority != 0 and np.sign(difference[shot]) == -majority)

    return crosses


def test_shifted_character_placement_error_is_the_shift(truth_shot):
    ws, name, clean = truth_shot
    entity = _best_found(clean.document)
    masks = {f: _entity_mask(ws, name, entity["id"], f) for f in range(*FRAMES)}

    def shift(frame: int, image: np.ndarray) -> np.ndarray:
        mask = masks[frame]
        out = _inpainted(image, mask)
        moved = np.roll(image, SHIFT_PX, axis=1)
        moved_mask = np.roll(mask, SHIFT_PX, axis=1)
        out[moved_mask] = moved[moved_mask]
        return out

    bad = _corrupt(ws, name, shift)
    check = check_shot(ws, bad.name, frames=FRAMES).document
    shifted = _entity(check, entity["name"])
    assert shifted["placement_error_px"] == pytest.approx(SHIFT_PX, abs=2.0)
    for before, after in zip(entity["frames"], shifted["frames"]):
        assert after["found"]
        assert after["offset_px"][0] - before["offset_px"][0] == pytest.approx(SHIFT_PX, abs=1.5)
        assert after["offset_px"][1] == pytest.approx(before["offset_px"][1], abs=1.5)
    assert shifted["placement_error_m"] > 0


def test_deleted_entity_is_flagged_missing(truth_shot):
    ws, name, clean = truth_shot
    entity = _best_found(clean.document)
    masks = {
        f: cv2.dilate(_entity_mask(ws, name, entity["id"], f).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        for f in range(*FRAMES)
    }
    bad = _corrupt(ws, name, lambda frame, image: _inpainted(image, masks[frame]))
    check = check_shot(ws, bad.name, frames=FRAMES).document
    deleted = _entity(check, entity["name"])
    assert deleted["verdict"] == "fail" and check["verdict"] == "fail"
    # Gone from its place in every frame: not found at all, or only a look-alike further than the fail limit.
    limit = CheckThresholds().placement_fail_px
    for row in deleted["frames"]:
        assert not row["found"] or row["placement_error_px"] > limit, row
    if entity["kind"] == "prop":
        prop = next(p for p in check["continuity"]["props"] if p["entity"] == entity["name"])
        assert sorted(prop["missing_frames"] + prop["moved_frames"]) == check["frames"]
        assert prop["verdict"] == "fail"


def test_mirrored_frames_are_flagged(truth_shot):
    ws, name, clean = truth_shot
    bad = _corrupt(ws, name, lambda frame, image: image[:, ::-1].copy())
    check = check_shot(ws, bad.name, frames=FRAMES).document
    assert check["mirrored_frames"] == check["frames"]
    # Mirrored, every frame a rule can decide turns over: what crossed the line (the clean check's flips:
    # the true high-angle camera may stand across it) no longer does, and the rest does.
    continuity = check["continuity"]
    clean_rules = {
        tuple(r.get("pair") or [r.get("entity")]): r
        for r in clean.document["continuity"]["axis_of_action"] + clean.document["continuity"]["screen_direction"]
    }
    decidable = [r for r in continuity["axis_of_action"] + continuity["screen_direction"] if r["decidable_frames"]]
    for rule in decidable:
        before = clean_rules[tuple(rule.get("pair") or [rule.get("entity")])]
        assert not set(rule["flipped_frames"]) & set(before["flipped_frames"]), (rule, before)
        assert len(rule["flipped_frames"]) + len(before["flipped_frames"]) >= rule["decidable_frames"], (rule, before)
    if any(r["flipped_frames"] for r in decidable):
        assert continuity["verdict"] == "fail"


def test_flicker_lowers_stability(truth_shot):
    ws, name, clean = truth_shot
    bad = _corrupt(ws, name, lambda frame, image: np.clip(image * (1.12 if frame % 2 else 0.88), 0, 1))
    check = check_shot(ws, bad.name, frames=FRAMES).document
    assert check["temporal"]["mean_change"] > 10 * max(clean.document["temporal"]["mean_change"], 1e-3)
    assert check["temporal"]["verdict"] == "fail"


def test_thresholds_are_configurable_and_validated():
    limits = CheckThresholds().with_overrides(["placement_fail_px=20", "direction-span=6"])
    assert limits.placement_fail_px == 20.0 and limits.direction_span == 6
    with pytest.raises(InputError, match="NAME=VALUE"):
        CheckThresholds().with_overrides(["no_such_threshold=1"])
    with pytest.raises(InputError, match="not a number"):
        CheckThresholds().with_overrides(["found_score=high"])


def test_check_without_frames_says_to_synthesize(truth_shot):
    ws, name, _ = truth_shot
    from reshoot.shots import shoot

    shoot(ws, "overhead wide", "unsynthesized", frames=FRAMES, overwrite=True)
    with pytest.raises(InputError, match="reshoot synthesize"):
        check_shot(ws, "unsynthesized")


def test_cli_check_exit_status_and_json(truth_shot):
    from typer.testing import CliRunner

    from reshoot.cli.app import app

    ws, name, clean = truth_shot
    runner = CliRunner()
    result = runner.invoke(app, ["check", str(ws), name, "--frames", "0:3", "--json"])
    document = json.loads(result.stdout[result.stdout.index("{") :])
    assert document["format"] == "reshoot/check" and document["verdict"] == clean.verdict
    assert result.exit_code == (1 if clean.verdict == "fail" else 0)
    # A threshold nothing can meet fails the shot, and the exit status says so.
    strict = runner.invoke(app, ["check", str(ws), name, "--frames", "0:3", "--threshold", "agreement_fail=1.01"])
    assert strict.exit_code == 1, strict.output
    bad = runner.invoke(app, ["check", str(ws), name, "--threshold", "nonsense"])
    assert bad.exit_code != 0 and isinstance(bad.exception, InputError) and "NAME=VALUE" in str(bad.exception)


def test_report_opens_in_headless_chromium(truth_shot, tmp_path):
    from reshoot.conditioning import render_conditioning
    from reshoot.engines import EngineOptions
    from reshoot.report import write_report
    from reshoot.synthesis import synthesize

    source, name, _ = truth_shot
    ws = tmp_path / "ws"  # a copy (same depth: the footage path holds) whose shot is synthesized too
    shutil.copytree(source, ws, symlinks=True)
    render_conditioning(ws, name)
    synthesize(
        ws, name, options=EngineOptions(device="cpu")
    )  # the repository's tiny model; its check.json stays the truth's
    summary = write_report(ws)
    page = summary.path.read_text()
    assert name in summary.shots
    assert "http://" not in page and "https://" not in page  # nothing to fetch: self-contained
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.replace(
            "</body>",
            """<script>
window.addEventListener('load', () => { setTimeout(() => {
  const figures = [...document.querySelectorAll('figure[data-figure]:not([data-figure=clip])')];
  const loaded = figures.filter(f => { const i = f.querySelector('img'); return i && i.complete && i.naturalWidth > 0; });
  const clips = [...document.querySelectorAll('figure[data-figure=clip] video')];
  const playable = clips.filter(v => v.readyState >= 1 && v.videoWidth > 0);
  document.title = 'figures ' + loaded.length + '/' + figures.length + ' ' +
    [...new Set(loaded.map(f => f.dataset.figure))].sort().join(',') + ' clips ' + playable.length + '/' + clips.length;
}, 1000); });
</script></body>""",
        )
    )
    result = run_chromium(tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    title = result.stdout.split("<title>")[1].split("</title>")[0]
    count, kinds, clips = title.split()[1], title.split()[2], title.split()[4]
    loaded, total = (int(v) for v in count.split("/"))
    assert loaded == total and total >= 4, title
    assert set(kinds.split(",")) >= {"plan", "entity-error", "series", "side-by-side"}, title
    assert clips == "1/1", title  # the synthesized shot's mp4 decodes in the page
    for link in ("exr", f"{name}.otio", f"{name}.edl", f"{name}.mp4"):
        assert f'href="../shots/{name}/{link}"' in page, link  # the deliverables, relative to the page


def test_image_metrics_react_to_differences():
    from reshoot.image_metrics import flip_map, mask_iou, mean_ssim, psnr

    rng = np.random.default_rng(0)
    image = rng.random((48, 64, 3)).astype(np.float32)
    noisy = np.clip(image + 0.1 * np.sign(rng.standard_normal(image.shape)), 0, 1).astype(np.float32)
    mse = float(((image - noisy) ** 2).mean())
    assert psnr(noisy, image) == pytest.approx(10 * np.log10(1 / mse), rel=1e-6)
    left = np.zeros((48, 64), bool)
    left[:, :32] = True
    assert np.isnan(psnr(noisy, image, np.zeros_like(left)))
    assert mean_ssim(image, image) == pytest.approx(1.0, abs=1e-5) and mean_ssim(noisy, image) < 0.95
    assert float(flip_map(image, image).max()) == pytest.approx(0.0, abs=1e-6)
    assert float(flip_map(noisy, image).mean()) > 0.05
    right = np.roll(left, 16, axis=1)
    assert mask_iou(left, right) == pytest.approx(16 * 48 / (48 * 48))
