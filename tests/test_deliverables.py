"""The shot's VFX hand-off, each part read back by an independent reader: Cryptomatte (its published hashing
rule re-implemented here), colour (OpenEXR and OCIO), the filmed mask (against ground-truth depth), timecode."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from reshoot.geometry import cryptomatte
from reshoot.geometry.errors import InputError


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, written from Austin Appleby's reference (independent of the mmh3 package)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    h = seed
    blocks = len(data) // 4
    for i in range(blocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = rotl((k * c1) & mask, 15) * c2 & mask
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & mask
    tail = data[4 * blocks :]
    if tail:
        k = int.from_bytes(tail, "little")
        h ^= rotl((k * c1) & mask, 15) * c2 & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


def spec_id(name: str) -> float:
    """The Cryptomatte specification's id of a name: its hash's bits as a float32, exponent 0 or 255 nudged."""
    bits = murmur3_32(name.encode())
    if ((bits >> 23) & 0xFF) in (0, 255):
        bits ^= 1 << 23
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def decode(ids: np.ndarray, manifest: dict[str, str]) -> np.ndarray:
    """Entity names of float32 ids through the manifest ("" for id 0, "?" for an id it lacks)."""
    by_hex = {value: name for name, value in manifest.items()}
    hexes = [f"{b:08x}" for b in ids.astype(np.float32).view(np.uint32).ravel()]
    names = ["" if h == "00000000" else by_hex.get(h, "?") for h in hexes]
    return np.array(names, dtype=object).reshape(ids.shape)


class TestCryptomatte:
    def test_reference_vectors_of_the_independent_hash(self):
        assert murmur3_32(b"") == 0
        assert murmur3_32(b"hello") == 0x248BFA47
        assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723

    def test_ids_follow_the_published_rule(self):
        names = ["char_1", "char_2", "table", "chair 2", "ünïcode"] + [f"prop_{i}" for i in range(300)]
        nudged = 0
        for name in names:
            ours, theirs = float(cryptomatte.name_id(name)), spec_id(name)
            assert struct.pack("<f", ours) == struct.pack("<f", theirs), name
            assert np.isfinite(ours) and (ours == 0 or abs(ours) >= np.finfo(np.float32).tiny)
            nudged += ((murmur3_32(name.encode()) >> 23) & 0xFF) in (0, 255)
        assert nudged >= 1  # the exponent rule was exercised

    def test_manifest_and_key(self):
        names = ["char_1", "table"]
        attributes = cryptomatte.header_attributes(names)
        key = f"{murmur3_32(b'CryptoObject'):08x}"[:7]
        assert attributes[f"cryptomatte/{key}/name"] == "CryptoObject"
        assert attributes[f"cryptomatte/{key}/hash"] == "MurmurHash3_32"
        assert attributes[f"cryptomatte/{key}/conversion"] == "uint32_to_float32"
        manifest = json.loads(attributes[f"cryptomatte/{key}/manifest"])
        assert manifest == {n: f"{struct.unpack('<I', struct.pack('<f', spec_id(n)))[0]:08x}" for n in names}

    def test_channels_rank_entities_by_coverage(self):
        names = ["a", "b", "c"]
        coverage = np.zeros((2, 3, 3), np.float32)
        coverage[0, 0] = [0.2, 0.7, 0.1]  # b, a, c
        coverage[0, 1] = [0.0, 0.0, 1.0]  # c alone
        channels = cryptomatte.channels(coverage, names)
        assert sorted(channels) == [f"CryptoObject0{g}.{c}" for g in (0, 1) for c in "ABGR"]
        manifest = json.loads(
            next(v for k, v in cryptomatte.header_attributes(names).items() if k.endswith("manifest"))
        )
        first, second = decode(channels["CryptoObject00.R"], manifest), decode(channels["CryptoObject00.B"], manifest)
        third = decode(channels["CryptoObject01.R"], manifest)
        assert (first[0, 0], second[0, 0], third[0, 0]) == ("b", "a", "c")
        assert channels["CryptoObject00.G"][0, 0] == pytest.approx(0.7) and channels["CryptoObject00.A"][
            0, 0
        ] == pytest.approx(0.2)
        assert (first[0, 1], second[0, 1]) == ("c", "") and channels["CryptoObject00.A"][0, 1] == 0
        assert (first[1] == "").all() and (channels["CryptoObject00.G"][1] == 0).all()

    def test_bad_shape(self):
        with pytest.raises(ValueError, match="coverage"):
            cryptomatte.channels(np.zeros((2, 2, 2)), ["a"])


class TestColour:
    RAMP = np.linspace(0.0, 1.0, 64, dtype=np.float32)

    def ramp_image(self) -> np.ndarray:
        return np.repeat(np.stack([self.RAMP, self.RAMP**2, 1 - self.RAMP], -1)[None], 4, axis=0)  # [4, 64, 3]

    def test_exr_of_a_linear_ramp_reads_back_linear_with_chromaticities(self, tmp_path: Path):
        import OpenEXR

        from reshoot.colour import ColourPipeline, ColourSettings
        from reshoot.conditioning import DeliverablePasses
        from reshoot.deliverable import write_shot_exr

        colour = ColourPipeline(ColourSettings())
        ramp = self.ramp_image()
        passes = DeliverablePasses(np.ones((4, 64), bool), cryptomatte.channels(np.zeros((4, 64, 0)), []), {})
        write_shot_exr(
            tmp_path / "r.1001.exr", ramp, np.ones((4, 64)), np.ones((4, 64)), passes, np.zeros((4, 64)), 24.0,
            "01:02:03:04", colour.exr_attributes,
        )  # fmt: skip
        with OpenEXR.File(str(tmp_path / "r.1001.exr"), separate_channels=True) as exr:
            channels, header = exr.channels(), dict(exr.header())
            back = np.stack([channels[c].pixels for c in "RGB"], -1)
            depth_type = channels["depth.Z"].pixels.dtype
        assert back.dtype == np.float16 and depth_type == np.float32
        np.testing.assert_allclose(back.astype(np.float32), ramp, rtol=1e-3, atol=1e-4)  # half precision
        rec709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)  # ITU-R BT.709, D65
        np.testing.assert_allclose(header["chromaticities"], rec709, atol=1e-6)
        timecode = header["timeCode"]
        assert (timecode.hours, timecode.minutes, timecode.seconds, timecode.frame) == (1, 2, 3, 4)
        assert float(header["framesPerSecond"]) == 24.0

    def test_srgb_png_of_the_ramp_decodes_to_it_through_ocio(self, tmp_path: Path):
        import PyOpenColorIO as ocio

        from reshoot.colour import ColourPipeline, ColourSettings

        ramp = self.ramp_image()
        iio.imwrite(tmp_path / "ramp.png", ColourPipeline(ColourSettings()).to_8bit(ramp))
        encoded = iio.imread(tmp_path / "ramp.png").astype(np.float32) / 255
        config = ocio.Config.CreateFromFile("ocio://cg-config-latest")
        processor = config.getProcessor("sRGB Encoded Rec.709 (sRGB)", "Linear Rec.709 (sRGB)").getDefaultCPUProcessor()
        decoded = encoded.copy()
        processor.applyRGB(decoded)
        # 8 bits of sRGB: half a code value is at most ~0.0065 of linear near white.
        np.testing.assert_allclose(decoded, ramp, atol=0.007)
        assert np.abs(encoded - ramp).max() > 0.1  # the PNG really is display-encoded, not linear

    def test_acescg_working_space_has_ap1_primaries(self):
        from reshoot.colour import ColourPipeline, ColourSettings

        colour = ColourPipeline(ColourSettings(working_space="ACEScg"))
        np.testing.assert_allclose(colour.chromaticities[:6], (0.713, 0.293, 0.165, 0.830, 0.128, 0.044), atol=1e-6)
        grey = colour.to_working(np.full((1, 3), 0.5, np.float32))  # sRGB 0.5 is linear 0.214 in any primaries
        np.testing.assert_allclose(grey, 0.2140, atol=1e-3)

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"working_space": "sRGB Encoded Rec.709 (sRGB)"}, "not a scene-linear"),
            ({"working_space": "Rec.2020 please"}, "not a colour space"),
            ({"footage_space": "log?"}, "not a colour space"),
            ({"config": "/nowhere/config.ocio"}, "could not be read"),
            ({"gamma": "2.2"}, "unknown settings"),
        ],
    )
    def test_bad_settings_are_refused(self, settings, message):
        from reshoot.colour import ColourPipeline, ColourSettings

        with pytest.raises(InputError, match=message):
            ColourPipeline(ColourSettings.from_dict(settings))


def test_filmed_mask_against_ground_truth_depth(reconstructed_workspace, scene_take: Path):
    """The overhead camera of the scene take: our mask (the reconstruction's depth) against the truth's."""
    import torch

    from reshoot.datasets.synthetic import TakePaths
    from reshoot.geometry.cameras_io import read_cameras_json
    from reshoot.ground_truth import cameras_in_registration_frame, true_filmed_mask
    from reshoot.render import load_splat_scene
    from reshoot.reprojection import filmed_mask, render_depth
    from reshoot.workspace import Workspace

    ws = reconstructed_workspace[0]
    take = TakePaths(scene_take)
    truth = read_cameras_json(take.cameras).cameras
    registered = read_cameras_json(Workspace(ws).cameras)
    production = registered.names_with_role("production", default="production")
    shot = cameras_in_registration_frame(truth, registered.cameras).select(["overhead"]).pinhole()
    maps = {n: np.load(take.maps(n)) for n in [*production, "overhead"]}
    scene = load_splat_scene(ws)
    frame = 1  # a frame with reconstructed actors
    gaussians = scene.at(frame)
    depth, alpha = render_depth(gaussians, shot, "cpu")
    ours = filmed_mask(gaussians, shot, depth[0], alpha[0], registered.cameras.select(production), "cpu").numpy()
    true = true_filmed_mask(
        maps["overhead"]["depth"][frame],
        truth.select(["overhead"]),
        truth.select(production),
        [maps[n]["depth"][frame] for n in production],
    )
    iou = (ours & true).sum() / (ours | true).sum()
    assert 0.2 < true.mean() < 0.9  # the truth has both filmed and unfilmed pixels
    assert iou >= IOU_FLOOR, iou
    with torch.no_grad():  # a mask that ignores occlusion (every covered pixel) scores clearly worse
        everything = alpha[0].numpy() >= 0.5
    assert (everything & true).sum() / (everything | true).sum() < iou - 0.05


IOU_FLOOR = 0.75
"""The scene take is fitted at 160×90 with small budgets (conftest); the default take reaches 0.87 overhead
(benchmarks/filmed_mask.py)."""


def test_take_timecode_is_read_from_the_videos(tmp_path: Path):
    """A take whose cameras start at different moments, each video with its own start timecode: the take's
    first frame gets the timecode of the moment all cameras roll; --timecode overrides it."""
    from reshoot.datasets.synthetic import SynthConfig, generate_take
    from reshoot.workspace import init_workspace, load_workspace

    take = tmp_path / "take"
    offsets = {"b_medium": 5, "c_medium": -3}
    generate_take(
        take,
        SynthConfig(frames=8, width=64, height=36, survey_frames=0, offsets=offsets, timecode="10:00:00:00", seed=3),
    )
    settings = init_workspace(tmp_path / "ws", take / "footage", sync="timecode")
    # The generator's take frame 0 (10:00:00:00) is the first frame every camera shows: the workspace's first.
    assert settings.offsets == json.loads((take / "take.json").read_text())["offsets"]
    assert settings.first_frame == 0 and settings.timecode == "10:00:00:00"
    assert settings.timecode_of(30) == "10:00:01:06"
    assert load_workspace(tmp_path / "ws").timecode == "10:00:00:00"
    forced = init_workspace(tmp_path / "ws2", take / "footage", sync="timecode", timecode="01:00:00:00")
    assert forced.timecode == "01:00:00:00" and forced.timecode_of(forced.first_frame + 25) == "01:00:01:01"
    with pytest.raises(InputError, match="timecode"):
        init_workspace(tmp_path / "ws3", take / "footage", sync="timecode", timecode="25:00:00")


def test_a_camera_in_another_encoding_is_decoded_into_the_footage_space(tmp_path: Path):
    """[colour.cameras]: b_medium recorded gamma 2.4 Rec.709 video; its frames (and only its) come out of the
    footage reader in the workspace's footage space, as OCIO converts them; bad names are refused."""
    import PyOpenColorIO as ocio

    from reshoot.datasets.footage import open_footage
    from reshoot.datasets.synthetic import SynthConfig, generate_take
    from reshoot.workspace import init_workspace, load_workspace

    take = tmp_path / "take"
    generate_take(take, SynthConfig(frames=4, width=64, height=36, survey_frames=0, seed=5))
    space = "Gamma 2.4 Encoded Rec.709"
    init_workspace(tmp_path / "ws", take / "footage", colour={"cameras": {"b_medium": space}})
    settings = load_workspace(tmp_path / "ws")
    assert settings.colour == {"cameras": {"b_medium": space}}
    raw = open_footage(take / "footage")
    with settings.open_footage() as footage:
        config = ocio.Config.CreateFromFile("ocio://cg-config-latest")
        processor = config.getProcessor(space, "sRGB Encoded Rec.709 (sRGB)").getDefaultCPUProcessor()
        expected = raw.source("b_medium").read(2).copy()
        processor.applyRGB(expected)
        decoded = footage.source("b_medium").read(2)
        np.testing.assert_allclose(decoded, np.clip(expected, 0, 1), atol=1e-4)
        assert np.abs(decoded - raw.source("b_medium").read(2)).max() > 0.01  # the decode changed it
        np.testing.assert_array_equal(footage.source("a_wide").read(2), raw.source("a_wide").read(2))
    raw.close()
    with pytest.raises(InputError, match="cameras without footage"):
        init_workspace(tmp_path / "ws2", take / "footage", colour={"cameras": {"z_crane": space}})
    with pytest.raises(InputError, match="not a colour space"):
        init_workspace(tmp_path / "ws3", take / "footage", colour={"cameras": {"b_medium": "Kodak 5219"}})
    assert not (tmp_path / "ws2").exists() and not (tmp_path / "ws3").exists()

    from reshoot.cli.app import main

    def run(*args):
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        return exit_.value.code

    footage = str(take / "footage")
    assert run("init", str(tmp_path / "ws4"), "--footage", footage, "--camera-space", f"b_medium={space}") == 0
    assert load_workspace(tmp_path / "ws4").colour == {"cameras": {"b_medium": space}}
    assert run("init", str(tmp_path / "ws5"), "--footage", footage, "--camera-space", "b_medium") == 2
    assert run("init", str(tmp_path / "ws6"), "--footage", footage, "--working-space", "sRGB - Display") == 2


def test_timeline_at_a_rate_without_smpte_timecode(tmp_path: Path):
    """A 6 fps webcam rig (caliscope_4cam): the .otio holds the shot's timecodes exactly, and no EDL is written
    (CMX 3600 has no 6 fps timecode), an earlier one removed; at 24 fps both are written."""
    import opentimelineio as otio

    from reshoot.editorial import SourceClip, edl_supported, shot_timeline, write_timeline

    source = SourceClip("cam_0", tmp_path / "cam_0.mp4", 6.0, "00:00:10:00", 20, 3, 57)
    timeline = shot_timeline("top", 6.0, "01:00:03:05", 3, 101, "exr", "top.mp4", [source])
    (tmp_path / "top.edl").write_text("an EDL of an earlier run")
    assert not write_timeline(timeline, tmp_path / "top.otio", tmp_path / "top.edl", _camera_edl(tmp_path))
    assert not (tmp_path / "top.edl").exists()
    read = otio.adapters.read_from_file(str(tmp_path / "top.otio"))
    assert read.global_start_time.to_frames() == (3600 + 3) * 6 + 5 and read.duration().to_frames() == 3
    camera = read.tracks[1][0]
    assert camera.source_range.start_time.to_frames() == 10 * 6 + 20 and camera.source_range.duration.to_frames() == 3
    assert not edl_supported(6.0) and not edl_supported(12.0)
    assert edl_supported(24.0) and edl_supported(23.976) and edl_supported(30000 / 1001)
    at_24 = shot_timeline("top", 24.0, "01:00:03:05", 3, 101, "exr", "top.mp4", [])
    assert write_timeline(at_24, tmp_path / "top.otio", tmp_path / "top.edl", _camera_edl(tmp_path))
    assert (tmp_path / "top.edl").is_file()


def _camera_edl(folder: Path):
    return lambda camera: folder / f"top.{camera}.edl"


def test_each_camera_gets_an_edl_of_its_span_recorded_beside_the_shot(tmp_path: Path):
    """A 24 fps shot at 01:00:00:10 over two cameras: cam_a (24 fps, its own timecode 10 s later) gets an EDL whose
    source timecodes are its own span and whose record timecodes are the shot's; cam_b at 25 fps cannot be
    in a 24 fps EDL and gets none; an EDL of a camera an earlier run had is removed."""
    import opentimelineio as otio

    from reshoot.editorial import SourceClip, shot_timeline, write_timeline

    sources = [
        SourceClip("cam_a", tmp_path / "cam_a.mp4", 24.0, "01:00:10:00", 10, 5, 100),
        SourceClip("cam_b", tmp_path / "cam_b.mp4", 25.0, "01:00:00:00", 10, 5, 100),
    ]
    timeline = shot_timeline("top", 24.0, "01:00:00:10", 5, 1001, "exr", "top.mp4", sources)
    (tmp_path / "top.cam_old.edl").write_text("an EDL of an earlier run")
    written = write_timeline(timeline, tmp_path / "top.otio", tmp_path / "top.edl", _camera_edl(tmp_path))
    assert list(written) == ["generated", "cam_a"]
    assert sorted(p.name for p in tmp_path.glob("*.edl")) == ["top.cam_a.edl", "top.edl"]
    text = (tmp_path / "top.cam_a.edl").read_text()
    # Event 1: reel (the camera's name, in CMX 3600's 8 letters and digits), source in and out, record in and out.
    assert "001  cama     V     C        01:00:10:10 01:00:10:15 01:00:00:10 01:00:00:15" in text
    (clip,) = otio.adapters.read_from_file(str(tmp_path / "top.cam_a.edl"), rate=24).find_clips()
    assert clip.name == "cam_a" and clip.source_range.duration.to_frames() == 5
    assert otio.opentime.to_timecode(clip.source_range.start_time, 24) == "01:00:10:10"
    assert "01:00:00:10 01:00:00:15 01:00:00:10 01:00:00:15" in (tmp_path / "top.edl").read_text()


def test_drop_frame_timecode_stays_drop_frame_in_every_deliverable(tmp_path: Path):
    """29.97 fps footage whose videos start at 00:00:59;28 (drop-frame): the workspace keeps drop-frame, two
    frames on is 00:01:00;02 (00 and 01 are skipped at minute 1), and the EXR header (its drop-frame flag,
    read by OpenEXR), the mp4 tag (PyAV), the timeline (OTIO) and the CMX 3600 EDL say the same."""
    import OpenEXR
    import opentimelineio as otio

    from reshoot.datasets.sync import read_timecode
    from reshoot.deliverable import exr_timecode
    from reshoot.editorial import shot_timeline, write_timeline
    from reshoot.geometry.video import write_mp4
    from reshoot.workspace import init_workspace

    fps, start = 30000 / 1001, "00:00:59;28"
    g = np.random.default_rng(0)
    for name in ("cam_a", "cam_b"):
        (tmp_path / "footage").mkdir(exist_ok=True)
        frames = g.integers(0, 255, (6, 36, 64, 3), dtype=np.uint8)
        write_mp4(tmp_path / "footage" / f"{name}.mp4", frames, fps, start)
    settings = init_workspace(tmp_path / "ws", tmp_path / "footage", sync="timecode")
    assert settings.timecode == start
    later = settings.timecode_of(settings.first_frame + 2)
    assert later == "00:01:00;02" and settings.timecode_of(settings.first_frame + 1) == "00:00:59;29"

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, "timeCode": exr_timecode(later)}
    with OpenEXR.File(header, {"R": np.zeros((4, 4), np.float16)}) as part:
        part.write(str(tmp_path / "tc.exr"))
    with OpenEXR.File(str(tmp_path / "tc.exr")) as part:
        code = part.header()["timeCode"]
    assert code.dropFrame and (code.hours, code.minutes, code.seconds, code.frame) == (0, 1, 0, 2)
    assert not exr_timecode("00:01:00:02").dropFrame

    write_mp4(tmp_path / "shot.mp4", np.zeros((3, 36, 64, 3), np.uint8), fps, later)
    assert read_timecode(tmp_path / "shot.mp4") == later
    timeline = shot_timeline("top", fps, later, 3, 1001, "exr", "top.mp4", [])
    assert otio.opentime.to_timecode(timeline.global_start_time, fps, True) == later
    assert write_timeline(timeline, tmp_path / "top.otio", tmp_path / "top.edl", _camera_edl(tmp_path))
    assert "00:01:00;02 00:01:00;05" in (tmp_path / "top.edl").read_text()  # record in and out, drop-frame
