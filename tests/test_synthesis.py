"""`reshoot synthesize` on a laid-out workspace, and the guards of `reshoot train`."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from conftest import adaptation_budget
from reshoot.conditioning import read_conditioning_frame
from reshoot.engines import EngineOptions
from reshoot.geometry.errors import InputError
from reshoot.model.checkpoint import save_checkpoint
from reshoot.model.config import CONFIGS
from reshoot.model.network import UnifiedVideoModel
from reshoot.shots import revise
from reshoot.synthesis import synthesize

# Windows of 3 with 1 overlap over 5 frames: two windows that share a frame.
CONFIG = dataclasses.replace(
    CONFIGS["tiny"],
    dim=32,
    depth=1,
    heads=2,
    window=3,
    overlap=1,
    head_features=4,
    refine_channels=8,
    working_pixels=160 * 90,
)


@pytest.fixture(scope="module")
def shot_ws(conditioned_shot_workspace: Path, tmp_path_factory) -> Path:
    """This module's copy of the workspace with shot `top` (frames 0-4, 320×180) and its conditioning."""
    ws = tmp_path_factory.mktemp("synth_ws") / "ws"
    shutil.copytree(conditioned_shot_workspace, ws, symlinks=True)
    return ws


def _cpu(weights: Path) -> EngineOptions:
    return EngineOptions(weights=weights, device="cpu")


def _checkpoint(folder: Path, perturb: bool) -> Path:
    torch.manual_seed(0)
    model = UnifiedVideoModel(CONFIG)
    if perturb:
        with torch.no_grad():
            model.refine[2].bias.fill_(0.2)  # brighten everything: a correction we can see in the frames
    save_checkpoint(model, folder)
    return folder


def test_untrained_model_writes_every_frame_equal_to_the_render(shot_ws: Path, tmp_path: Path):
    summary = synthesize(shot_ws, "top", options=_cpu(_checkpoint(tmp_path / "zero", perturb=False)))
    assert summary.frames == [0, 1, 2, 3, 4]
    files = sorted(p.name for p in summary.frames_folder.glob("*.png"))
    assert files == [f"{f:06d}.png" for f in range(5)]
    for frame in summary.frames:
        image = iio.imread(summary.frames_folder / f"{frame:06d}.png")
        assert image.shape == (180, 320, 3) and image.dtype == np.uint8
        render = read_conditioning_frame(shot_ws / "shots" / "top" / "conditioning", frame).rgb
        # a zero correction, upsampled from the working size and blended over windows, is still zero
        assert np.abs(image / 255.0 - render).max() <= 0.5 / 255 + 1e-6
    frames = list(iio.imiter(summary.video))
    assert len(frames) == 5 and frames[0].shape == (180, 320, 3)
    record = json.loads((shot_ws / "shots" / "top" / "synthesis.json").read_text())
    assert record["format"] == "reshoot/synthesis" and record["working_size"] == [160, 90]


def test_the_model_s_correction_reaches_every_frame(shot_ws: Path, tmp_path: Path):
    summary = synthesize(
        shot_ws, "top", options=_cpu(_checkpoint(tmp_path / "bright", perturb=True)), keep_filmed=False
    )
    for frame in summary.frames:
        image = iio.imread(summary.frames_folder / f"{frame:06d}.png") / 255.0
        render = read_conditioning_frame(shot_ws / "shots" / "top" / "conditioning", frame).rgb
        brightened = np.clip(render + 0.2, 0, 1)
        assert np.abs(image - brightened).mean() < 0.01


def test_the_deliverable_exr_timeline_and_video(shot_ws: Path, tmp_path: Path):
    """exr/top.NNNN.exr numbered from 1001, linear and layered with the conditioning's geometry, filmed mask and
    Cryptomatte; the timeline and EDL (read by OpenTimelineIO) and the mp4 (PyAV) carry the shot's timecodes."""
    import av
    import OpenEXR
    import opentimelineio as otio
    from test_deliverables import decode

    from reshoot.workspace import load_workspace

    ws = tmp_path / "ws"
    shutil.copytree(shot_ws, ws, symlinks=True)
    settings = load_workspace(ws)
    synthesize(ws, "top", options=_cpu(_checkpoint(tmp_path / "zero", perturb=False)))
    shot = ws / "shots" / "top"
    assert sorted(p.name for p in (shot / "exr").iterdir()) == [f"top.{n}.exr" for n in range(1001, 1006)]
    record = json.loads((shot / "synthesis.json").read_text())
    conditioning = json.loads((shot / "conditioning" / "conditioning.json").read_text())
    names = set(conditioning["entities"].values())
    assert names, "the laid-out workspace has entities"
    shares = []
    for number, frame in zip(range(1001, 1006), range(5)):
        with OpenEXR.File(str(shot / "exr" / f"top.{number}.exr"), separate_channels=True) as exr:
            header = dict(exr.header())
            channels = {k: np.array(c.pixels) for k, c in exr.channels().items()}
        rgb = np.stack([channels[c] for c in "RGB"], -1).astype(np.float32)
        png = iio.imread(shot / "frames" / f"{frame:06d}.png") / 255.0
        # Linear: sRGB-encoded PNG values decode to the EXR's (the sRGB curve, half precision, 8-bit PNG).
        srgb = np.where(png <= 0.04045, png / 12.92, ((png + 0.055) / 1.055) ** 2.4)
        assert np.abs(srgb - rgb).max() < 0.01 and np.abs(png - rgb).mean() > 0.05
        assert channels["R"].dtype == np.float16 and channels["depth.Z"].dtype == np.float32
        passes = read_conditioning_frame(shot / "conditioning", frame)
        np.testing.assert_array_equal(channels["depth.Z"], passes.depth)
        filmed = iio.imread(shot / "conditioning" / "filmed" / f"{frame:06d}.png") > 0
        np.testing.assert_array_equal(channels["filmed"] > 0.5, filmed)
        shares.append(round(float(filmed.mean()), 4))
        timecode = header["timeCode"]
        expected = settings.timecode_of(frame)
        assert f"{timecode.hours:02d}:{timecode.minutes:02d}:{timecode.seconds:02d}:{timecode.frame:02d}" == expected
        manifest = json.loads(next(v for k, v in header.items() if k.endswith("/manifest")))
        assert set(manifest) == names  # every entity named
        first = decode(channels["CryptoObject00.R"], manifest)
        assert "?" not in set(first.ravel())
        # Where the entity pass (the largest weight, at least 0.5) names an entity, rank 0 is that entity.
        labelled = passes.entity_ids >= 0
        assert labelled.any()
        by_id = {int(k): v for k, v in conditioning["entities"].items()}
        expected_names = np.vectorize(by_id.get, otypes=[object])(passes.entity_ids[labelled])
        assert (first[labelled] == expected_names).all()
    assert record["filmed_share"] == shares and 0 < np.mean(shares) < 1
    assert record["deliverable"]["numbers"] == [1001, 1005]

    timeline = otio.adapters.read_from_file(str(shot / "top.otio"))
    rate = settings.fps
    assert timeline.duration().to_frames() == 5
    assert otio.opentime.to_timecode(timeline.global_start_time, rate) == settings.timecode_of(0)
    generated = timeline.tracks[0][0]
    assert generated.media_reference.abstract_target_url("#") == "exr/top.#.exr"
    assert generated.media_reference.start_frame == 1001 and generated.duration().to_frames() == 5
    sources = {t.name: t[0] for t in timeline.tracks[1:]}
    assert set(sources) == set(settings.cameras)
    assert all(c.duration().to_frames() == 5 for c in sources.values())
    edl = otio.adapters.read_from_file(str(shot / "top.edl"), rate=rate)
    (clip,) = [c for c in edl.find_clips()]
    assert otio.opentime.to_timecode(clip.source_range.start_time, rate) == settings.timecode_of(0)
    assert clip.source_range.duration.to_frames() == 5
    camera_edls = record["deliverable"]["camera_edls"]
    assert sorted(camera_edls) == sorted(settings.cameras)
    for camera, edl_name in camera_edls.items():
        (clip,) = otio.adapters.read_from_file(str(shot / edl_name), rate=rate).find_clips()
        assert clip.name == camera and clip.source_range.duration.to_frames() == 5
    with av.open(str(shot / "top.mp4")) as container:
        tags = [container.metadata.get("timecode")] + [s.metadata.get("timecode") for s in container.streams]
    assert settings.timecode_of(0) in tags


def test_conditioning_without_the_deliverable_passes_is_refused(shot_ws: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    shutil.copytree(shot_ws, ws, symlinks=True)
    shutil.rmtree(ws / "shots" / "top" / "conditioning" / "filmed")
    shot = ws / "shots" / "top"
    before = {p: p.stat().st_mtime_ns for p in shot.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="reshoot condition"):
        synthesize(ws, "top", options=_cpu(_checkpoint(tmp_path / "zero", perturb=False)))
    assert {p: p.stat().st_mtime_ns for p in shot.rglob("*") if p.is_file()} == before  # nothing touched


def test_stale_conditioning_and_missing_checkpoint_are_refused(shot_ws: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    shutil.copytree(shot_ws, ws, symlinks=True)
    synthesize(ws, "top", options=_cpu(_checkpoint(tmp_path / "zero", perturb=False)))
    before = {p.name: p.read_bytes() for p in (ws / "shots" / "top" / "frames").iterdir()}
    with pytest.raises(InputError, match="no model checkpoint"):
        synthesize(ws, "top", options=_cpu(tmp_path / "none"))
    revise(ws, "top", "lower")
    with pytest.raises(InputError, match="revision"):
        synthesize(ws, "top", options=_cpu(tmp_path / "zero"))
    after = {p.name: p.read_bytes() for p in (ws / "shots" / "top" / "frames").iterdir()}
    assert after == before  # a refused run leaves the frames already written alone


def test_adaptation_refuses_sensitive_footage(scene_take: Path, tmp_path: Path):
    from reshoot.model_training import AdaptOptions, adapt_model
    from reshoot.workspace import init_workspace

    ws = tmp_path / "private"
    init_workspace(ws, scene_take / "footage", sensitive=True)
    with pytest.raises(InputError, match="--sensitive"):
        adapt_model(ws, AdaptOptions())
    assert not (ws / "model").exists()


def test_cli_synthesize(shot_ws: Path, tmp_path: Path, capsys):
    from reshoot.cli.app import main

    def run(*args):
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        return exit_.value.code

    ckpt = _checkpoint(tmp_path / "cli", perturb=False)
    assert run("synthesize", str(shot_ws), "top", "--checkpoint", str(ckpt), "--device", "cpu") == 0
    assert (shot_ws / "shots" / "top" / "top.mp4").is_file()
    assert run("synthesize", str(shot_ws), "nope", "--checkpoint", str(ckpt)) == 2
    assert "does not exist" in capsys.readouterr().err


def test_adaptation_leaves_cameras_out_and_cross_validates_the_correction(shot_ws: Path, tmp_path: Path, capsys):
    from reshoot.model.checkpoint import from_pretrained, read_checkpoint_config
    from reshoot.model_data import load_scene
    from reshoot.model_training import CORRECTION_SCALES, AdaptOptions, adapt_model, correction_scale_scores

    ws = tmp_path / "ws"
    shutil.copytree(shot_ws, ws, symlinks=True, ignore=shutil.ignore_patterns("shots"))
    budget = adaptation_budget()
    start = _checkpoint(tmp_path / "start", perturb=False)
    summary = adapt_model(
        ws,
        AdaptOptions(held_out=("c_medium", "d_reverse"), start_from=start, steps=3, reconstruct=budget, device="cpu"),
    )
    assert summary.steps == 3 and np.isfinite(summary.last_loss)
    scenes = {}
    for name in ("c_medium", "d_reverse"):
        scenes[name] = load_scene(ws / "model" / f"adapt_{name}")
        assert scenes[name].targets.names == (name,) and name not in scenes[name].sources.names
        assert scenes[name].truth.shape[2:4] == (90, 160)  # the held-out camera at the model's working size
    reconstructed = json.loads((ws / "model" / "adapt_d_reverse" / "ws" / "splats" / "reconstruction.json").read_text())
    assert reconstructed["cameras"] == ["a_wide", "b_medium", "c_medium"]
    config, training = read_checkpoint_config(ws / "model" / "adapted")
    assert config.keep_exposure  # a camera's own exposure is not a correction to learn
    assert training["data"] == {"kind": "adaptation", "workspace": str(ws), "held_out": ["c_medium", "d_reverse"]}
    # each camera is scored by the model trained without it; scored again here, the same scale wins
    gains = {}
    for name, other in (("c_medium", "d_reverse"), ("d_reverse", "c_medium")):
        fold = ws / "model" / "adapted" / "validation" / f"without_{name}"
        assert read_checkpoint_config(fold)[1]["data"]["held_out"] == [other]
        scores = correction_scale_scores(from_pretrained(fold), scenes[name], config.window, config.source_scale)
        assert training["validation"]["psnr_by_camera"][name] == {str(s): round(v, 3) for s, v in scores.items()}
        truth = scenes[name].truth[0].float() / 255
        render = scenes[name].render_rgb[0].float().clamp(0, 1)
        assert scores[0.0] == pytest.approx(10 * np.log10(1 / float(((render - truth) ** 2).mean())), abs=1e-3)
        gains[name] = {s: scores[s] - scores[0.0] for s in CORRECTION_SCALES}
    worst = {s: min(g[s] for g in gains.values()) for s in CORRECTION_SCALES}
    assert config.correction_scale == max(CORRECTION_SCALES, key=lambda s: (round(worst[s], 3), -s))
    assert training["validation"]["correction_scale"] == config.correction_scale
    # the same adaptation from the command line finds everything done and says what scale it kept
    from reshoot.cli.app import main

    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "train",
                "--adapt",
                str(ws),
                "--held-out",
                "c_medium",
                "--held-out",
                "d_reverse",
                "--steps",
                "3",
                "--from",
                str(start),
                "--device",
                "cpu",
            ]
        )
    assert exit_.value.code == 0
    assert f"correction scale {config.correction_scale} kept" in capsys.readouterr().err  # rich writes to stderr
    assert read_checkpoint_config(ws / "model" / "adapted")[0] == config
    with pytest.raises(InputError, match="not a production camera"):
        adapt_model(ws, AdaptOptions(held_out="nobody"))
    with pytest.raises(InputError, match="twice"):
        AdaptOptions(held_out=("c_medium", "c_medium"))
