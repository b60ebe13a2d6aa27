"""Sync (reshoot/datasets/sync.py): the cameras' offsets from timecode, sound and motion, against the
synthetic generator's known offsets; refusals; what `reshoot init --sync` records."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from reshoot.cli.app import main
from reshoot.datasets.footage import open_footage, probe_cameras
from reshoot.datasets.sync import (
    AUDIO_RATE,
    _gcc_phat,
    frames_to_timecode,
    joint_offsets,
    lag_curve,
    read_sound,
    read_timecode,
    synchronize,
    timecode_to_frames,
)
from reshoot.datasets.synthetic import SynthConfig, generate_take
from reshoot.geometry.errors import InputError
from reshoot.workspace import init_workspace, load_workspace

# The rig: cameras that start 0, 7, -12 and 31 frames late; small frames (sync works at 160 px).
OFFSETS = {"b_medium": 7, "c_medium": -12, "d_reverse": 31}
SYNCED_TAKE = dict(frames=48, width=160, height=90, survey_frames=0, offsets=OFFSETS, seed=0)


@pytest.fixture(scope="module")
def synced_take(tmp_path_factory) -> Path:
    """Walks that stop and start; a clap on every camera's sound; a start timecode on every video."""
    out = tmp_path_factory.mktemp("sync") / "varied"
    generate_take(out, SynthConfig(**SYNCED_TAKE, pace="varied", audio=True, timecode="10:00:00:00"))
    return out


@pytest.fixture(scope="module")
def steady_take(tmp_path_factory) -> Path:
    """Constant-speed walks over the take, standing before and after; no sound, no timecode."""
    out = tmp_path_factory.mktemp("sync") / "steady"
    generate_take(out, SynthConfig(**SYNCED_TAKE))
    return out


@pytest.fixture(scope="module")
def mixed_take(tmp_path_factory) -> Path:
    """The steady rig with cameras at 24, 25 and 30 fps (the take at 30), a clap and timecodes."""
    out = tmp_path_factory.mktemp("sync") / "mixed"
    rates = {"b_medium": 25, "c_medium": 30}
    generate_take(out, SynthConfig(**SYNCED_TAKE, camera_fps=rates, audio=True, timecode="10:00:00:00"))
    return out


def truth(take: Path) -> dict[str, int]:
    return json.loads((take / "take.json").read_text())["offsets"]


def sources(take: Path):
    return probe_cameras(take / "footage")


class TestTimecode:
    def test_non_drop_frame_round_trip(self):
        for count in (0, 1, 23, 24, 86399, 24 * 3600 * 10 + 5):
            assert timecode_to_frames(frames_to_timecode(count, 24), 24) == count
        assert frames_to_timecode(24 * 3600 * 24 + 3, 24) == "00:00:00:03"  # wraps at 24 hours

    def test_drop_frame(self):
        # 29.97 drop-frame: frames 00 and 01 of every minute but each tenth are skipped.
        assert timecode_to_frames("00:00:59;29", 29.97) == 1799
        assert timecode_to_frames("00:01:00;02", 29.97) == 1800
        assert timecode_to_frames("00:10:00;00", 29.97) == 17982
        assert timecode_to_frames("01:00:00;00", 29.97) == 107892

    def test_drop_frame_timecode_is_written_as_opentimelineio_writes_it(self):
        """Frames → HH:MM:SS;FF agrees with OTIO's drop-frame timecode (an independent implementation) at
        29.97 and 59.94 fps, across minute and ten-minute boundaries, and reads back to the same count."""
        import opentimelineio as otio

        for rate in (30, 60):
            fps = rate * 1000 / 1001
            for count in [*range(0, 40000, 13), 1799, 1800, 17982, 107892, 24 * 6 * 17982 - 1]:
                text = frames_to_timecode(count, rate, drop_frame=True)
                assert text == otio.opentime.to_timecode(otio.opentime.RationalTime(count, fps), fps, True)
                assert timecode_to_frames(text, fps) == count
        assert frames_to_timecode(1800, 30, drop_frame=True) == "00:01:00;02"
        assert frames_to_timecode(24 * 6 * 17982 + 5, 30, drop_frame=True) == "00:00:00;05"  # wraps at 24 hours

    def test_drop_frame_exists_at_29_97_and_59_94_only(self):
        with pytest.raises(InputError, match="29.97 and 59.94"):
            timecode_to_frames("01:00:00;00", 25)
        with pytest.raises(InputError, match="29.97 and 59.94"):
            frames_to_timecode(0, 24, drop_frame=True)
        with pytest.raises(InputError, match="skips"):
            timecode_to_frames("00:01:00;01", 29.97)

    @pytest.mark.parametrize("bad", ["10:00:00", "1:2:3:4:5", "00:61:00:00", "00:00:00:30", "noon"])
    def test_bad_timecode(self, bad):
        with pytest.raises(InputError, match="timecode"):
            timecode_to_frames(bad, 30)


class TestSyntheticOffsets:
    def test_each_camera_rolls_at_its_own_moment(self, synced_take: Path):
        take = json.loads((synced_take / "take.json").read_text())
        spread = max(OFFSETS.values()) - min(0, *OFFSETS.values())
        assert take["offsets"] == {"a_wide": -31, "b_medium": -24, "c_medium": -43, "d_reverse": 0}
        assert spread == 43
        for s in sources(synced_take):
            assert s.num_frames == 48 - take["offsets"][s.name]  # from its start to the common cut
            assert read_timecode(s.path) == frames_to_timecode(10 * 3600 * 24 + take["offsets"][s.name], 24)
            sound, start = read_sound(s.path)
            assert abs(len(sound) / AUDIO_RATE - s.num_frames / 24) < 0.05 and abs(start) < 0.05
        maps = np.load(synced_take / "gt" / "maps" / "a_wide.npz")
        assert maps["entity_ids"].shape[0] == 48 and maps["frames"].tolist() == list(range(48))

    def test_offsets_must_name_cameras_with_whole_frames(self):
        with pytest.raises(InputError, match="not a camera"):
            SynthConfig(offsets={"z_crane": 3})
        with pytest.raises(InputError, match="whole number"):
            SynthConfig(offsets={"b_medium": 2.5})
        with pytest.raises(InputError, match="whole-number fps"):
            SynthConfig(timecode="01:00:00:00", fps=29.97)


class TestSync:
    def test_timecode_is_exact(self, synced_take: Path):
        result = synchronize(sources(synced_take), "timecode")
        assert result.source == "timecode" and result.offsets == truth(synced_take)

    def test_audio_within_a_millisecond(self, synced_take: Path):
        result = synchronize(sources(synced_take), "audio")
        errors_ms = [abs(result.offsets[n] - t) * 1000 / 24 for n, t in truth(synced_take).items()]
        assert result.source == "audio" and max(errors_ms) < 1.0, errors_ms
        assert result.closure_frames < 0.05

    def test_motion_on_walks_that_stop_and_start(self, synced_take: Path):
        # Within a frame on this seed; over other seeds it is within a frame or refuses (docs/benchmarks.md).
        result = synchronize(sources(synced_take), "motion")
        errors = [abs(result.frame_offsets[n] - t) for n, t in truth(synced_take).items()]
        assert result.source == "motion" and max(errors) <= 1, result.frame_offsets
        assert set(result.extra["motion_contrast"]) == set(truth(synced_take))

    def test_motion_refuses_a_camera_that_sees_no_start_or_stop(self, steady_take: Path):
        # d_reverse starts rolling as the walks start, and they go on to the cut: its clip is all strides.
        with pytest.raises(InputError, match=r"d_reverse \(\d\.\d\) nothing starts or stops moving"):
            synchronize(sources(steady_take), "motion")

    def test_auto_prefers_timecode_then_sound_then_same_length_then_motion(self, synced_take, steady_take, small_take):
        assert synchronize(sources(synced_take), "auto").source == "timecode"
        assert synchronize(sources(small_take), "auto").source == "none"  # one length, nothing to go by
        fallback = synchronize(sources(steady_take), "auto")  # lengths differ: motion, which refuses here
        assert fallback.source == "none" and "nothing starts or stops moving" in fallback.note

    def test_refuses_what_the_footage_does_not_have(self, steady_take: Path):
        with pytest.raises(InputError, match="no start timecode"):
            synchronize(sources(steady_take), "timecode")
        with pytest.raises(InputError, match="no sound track"):
            synchronize(sources(steady_take), "audio")
        with pytest.raises(InputError, match="choose one of"):
            synchronize(sources(steady_take), "clapperboard")

    def test_motion_refuses_still_footage(self, tmp_path: Path):
        rng = np.random.default_rng(0)
        still = (rng.random((36, 64, 3)) * 255).astype(np.uint8)
        for camera, count in (("a", 30), ("b", 24)):
            (tmp_path / camera).mkdir()
            for i in range(count):
                iio.imwrite(tmp_path / camera / f"{i:04d}.png", still)
        with pytest.raises(InputError, match="nothing moves"):
            synchronize(probe_cameras(tmp_path), "motion")
        assert "nothing moves" in synchronize(probe_cameras(tmp_path), "auto").note  # lengths differ: motion


class TestLags:
    def test_gcc_phat_finds_a_delay_and_its_sign(self):
        rng = np.random.default_rng(1)
        source = rng.normal(size=4000)
        a = source[100:3100] + 0.3 * rng.normal(size=3000)
        b = source[137:3137] + 0.3 * rng.normal(size=3000)  # the same sound 37 samples earlier in b
        lag, peak, ratio = _gcc_phat(a, b, 500)
        assert lag == pytest.approx(37, abs=0.05) and ratio > 2

    def test_lag_curve_sign_and_overlap(self):
        signal = np.random.default_rng(2).normal(size=80)
        a, b = signal[10:70], signal[4:64]  # a's sample t is b's sample t + 6: b started 6 earlier
        lags, scores = lag_curve(a, b)
        assert lags[np.argmax(scores)] == -6 and scores.max() == pytest.approx(1.0)
        assert lags.min() == -30 and lags.max() == 30  # at least half of the shorter overlaps

    def test_motion_of_another_rate_is_resampled_on_the_take_clock(self, tmp_path: Path):
        from reshoot.datasets.footage import CameraFootage
        from reshoot.datasets.sync import _on_the_take_clock

        camera = CameraFootage("a", tmp_path, "images", 64, 36, 24.0, 49)  # 2 s at 24 fps
        step_times = (np.arange(48) + 0.5) / 24  # when each step between frames happens
        on_take = _on_the_take_clock(camera, step_times, 30.0)  # a signal that reads its own time
        assert len(on_take) == 60  # its 2 s span take frames 0..60 at 30 fps: 60 steps
        assert on_take[1:-1] == pytest.approx((np.arange(1, 59) + 0.5) / 30)  # the ends held
        assert _on_the_take_clock(camera, step_times, 24.0) is step_times  # its own rate: as it is

    def test_joint_offsets_outvote_one_wrong_pair(self):
        names = ["a", "b", "c"]
        truth = {"a": 0, "b": 5, "c": -3}
        lags = np.arange(-20, 21)

        def curve(peak_at: int, height: float) -> tuple[np.ndarray, np.ndarray]:
            return lags, height * np.exp(-0.5 * (lags - peak_at) ** 2) - 0.2

        curves = {("a", "b"): curve(5, 1.0), ("b", "c"): curve(-8, 1.0), ("a", "c"): curve(11, 1.2)}
        curves[("a", "c")][1][:] = np.maximum(curves[("a", "c")][1], curve(-3, 0.9)[1])  # the true lag, lower
        offsets, agreement, lead = joint_offsets(names, curves, dict.fromkeys(curves, 1.0), beat=2)
        assert offsets == truth and agreement > 0.7 and lead > 0.1


def _iou(shown: np.ndarray, truth_masks: np.ndarray, shift: int) -> float:
    """IoU of [T, H, W] masks, frame t of `shown` against frame t + shift of `truth_masks`."""
    a, b = (shown[: len(shown) - shift], truth_masks[shift:]) if shift >= 0 else (shown[-shift:], truth_masks[:shift])
    n = min(len(a), len(b))
    return float((a[:n] & b[:n]).sum() / max((a[:n] | b[:n]).sum(), 1))


class TestInit:
    def test_init_records_the_sync(self, synced_take: Path, tmp_path: Path, capsys):
        ws = tmp_path / "ws"
        with pytest.raises(SystemExit) as done:
            main(["init", str(ws), "--footage", str(synced_take / "footage"), "--sync", "audio"])
        assert done.value.code == 0
        assert "sync audio" in capsys.readouterr().err
        doc = tomllib.loads((ws / "reshoot.toml").read_text())
        assert doc["footage"]["offsets"] == truth(synced_take) and doc["footage"]["frames"] == 48
        record = doc["footage"]["sync"]
        assert record["source"] == "audio" and len(record["pairs"]) == 6
        assert all(abs(v) < 0.05 for v in record["residual_frames"].values())
        settings = load_workspace(ws)
        assert settings.sync["source"] == "audio"
        with settings.open_footage() as footage:
            assert list(footage.frames) == list(range(48))
            assert {s.name: s.offset for s in footage.sources} == truth(synced_take)

    def test_given_offsets_win_and_the_measured_ones_are_kept(self, synced_take: Path, tmp_path: Path):
        given = {"a_wide": 0, "b_medium": 7, "c_medium": -12, "d_reverse": 31}
        settings = init_workspace(tmp_path / "ws", synced_take / "footage", offsets=given, sync="timecode")
        assert settings.offsets == given and settings.first_frame == 31
        assert settings.sync["source"] == "user"
        assert settings.sync["measured"]["offsets_frames"] == {n: float(v) for n, v in truth(synced_take).items()}

    def test_none_keeps_cameras_of_different_lengths_apart(self, steady_take: Path, tmp_path: Path):
        with pytest.raises(InputError, match="different frame counts"):
            init_workspace(tmp_path / "ws", steady_take / "footage", sync="none")
        assert not (tmp_path / "ws").exists()

    @pytest.mark.parametrize("rig", ["steady_take", "mixed_take"])
    def test_every_camera_shows_the_ground_truth_instant(self, rig: str, request):
        """With the take's offsets, each camera's frame t shows the characters where the ground truth has
        them at take frame t: a few frames earlier or later, they stood elsewhere. In the mixed rig
        (24, 25 and 30 fps cameras) the take runs at 30 and the others show their nearest frame."""
        take = request.getfixturevalue(rig)
        with open_footage(take / "footage", offsets=truth(take)) as footage:
            assert footage.first_frame == 0 and footage.num_frames == 48
            assert footage.fps == json.loads((take / "take.json").read_text())["fps"]
            for s in footage.sources:
                frames = np.stack([s.read(t).mean(axis=2) for t in range(s.frames.start, s.frames.stop)])
                foreground = np.abs(frames - np.median(frames, axis=0)) > 0.08
                characters = np.load(take / "gt" / "maps" / f"{s.name}.npz")["entity_ids"]
                characters = (characters >= 0) & (characters < 2)
                shown = foreground[-s.frames.start :][:48]  # take frames 0..47

                scores = {shift: _iou(shown, characters, shift) for shift in range(-4, 5)}
                assert max(scores, key=scores.get) == 0 and scores[0] > 0.2, (s.name, scores)

    def test_sync_across_rates(self, mixed_take: Path):
        """Sound places a 24-fps camera in the 30-fps take to the millisecond; start timecodes, counted
        at each camera's own rate, to its nearest frame (a 24-fps frame is 1.25 take frames)."""
        by_sound = synchronize(sources(mixed_take), "audio")
        errors_ms = [abs(by_sound.offsets[n] - t) * 1000 / 30 for n, t in truth(mixed_take).items()]
        assert max(errors_ms) < 1.0, errors_ms
        by_timecode = synchronize(sources(mixed_take), "timecode")
        assert by_timecode.frame_offsets == truth(mixed_take)
        assert max(abs(r) for r in by_timecode.residuals.values()) <= 30 / 24 / 2
