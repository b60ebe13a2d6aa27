"""Reading a take: per-camera videos and image sequences, offsets, lazy decoding, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from reshoot.datasets import footage as footage_module
from reshoot.datasets.footage import CameraFootage, Footage, open_footage
from reshoot.geometry.camera import Camera
from reshoot.geometry.cameras_io import write_cameras_json
from reshoot.geometry.errors import InputError

W, H = 64, 48
LEVEL_STEP = 20  # grey level per frame index: survives H.264 with a wide margin


def frame_image(index: int, camera: int = 0) -> np.ndarray:
    """[H, W, 3] uint8 whose right half's grey level encodes `index` mod 12; the left half, the camera."""
    image = np.empty((H, W, 3), dtype=np.uint8)
    image[:, W // 2 :] = 10 + LEVEL_STEP * (index % 12)
    image[:, : W // 2] = 40 + 60 * camera
    return image


def frame_index(image: np.ndarray) -> int:
    """Inverse of `frame_image` on a decoded [H, W, 3] float image in [0, 1]."""
    return int(round((image[:, W // 2 + 4 : -4].mean() * 255 - 10) / LEVEL_STEP))


def write_video(path: Path, num_frames: int, fps: float = 24.0, camera: int = 0) -> Path:
    import imageio_ffmpeg

    # Short GOP with B-frames, so that seeking has to decode from a keyframe and reorder frames.
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (W, H),
        fps=fps,
        codec="libx264",
        quality=None,
        macro_block_size=16,
        output_params=["-g", "8", "-bf", "2", "-crf", "12"],
    )
    writer.send(None)
    for i in range(num_frames):
        writer.send(np.ascontiguousarray(frame_image(i, camera)))
    writer.close()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Videos written once for the module: copy them into each test's take folder."""
    root = tmp_path_factory.mktemp("videos")
    return {
        "a10": write_video(root / "a10.mp4", 10, camera=0),
        "b10": write_video(root / "b10.mp4", 10, camera=1),
        "b12": write_video(root / "b12.mp4", 12, camera=1),
        "b10_25fps": write_video(root / "b10_25fps.mp4", 10, fps=25.0, camera=1),
        "long": write_video(root / "long.mp4", 60, camera=2),
    }


def make_take(folder: Path, videos: dict[str, Path], **cameras: str) -> Path:
    """A take folder with camera name → video key."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, key in cameras.items():
        shutil.copy(videos[key], folder / f"{name}.mp4")
    return folder


def make_sequence(folder: Path, num_frames: int, camera: int = 0, size: tuple[int, int] = (W, H)) -> Path:
    folder.mkdir(parents=True)
    for i in range(num_frames):
        image = frame_image(i, camera)
        if size != (W, H):
            image = np.zeros((size[1], size[0], 3), np.uint8)
        iio.imwrite(folder / f"frame_{i + 1}.png", image)  # frame_10 sorts after frame_9
    return folder


def calibration_for(names, width=W, height=H) -> Camera:
    v = len(names)
    K = torch.tensor([[50.0, 0, (width - 1) / 2], [0, 50.0, (height - 1) / 2], [0, 0, 1]]).expand(v, 3, 3)
    return Camera.create(names, K, torch.eye(4).expand(v, 4, 4), [width] * v, [height] * v)


# ------------------------------------------------------------------------------------------------
# Reading


def test_video_take(tmp_path, videos):
    take = open_footage(make_take(tmp_path / "take", videos, cam_b="b10", cam_a="a10"))
    assert isinstance(take, Footage)
    assert take.camera_names == ("cam_a", "cam_b")
    assert (take.fps, take.num_frames, take.first_frame, take.calibration) == (24.0, 10, 0, None)
    assert take.frames == range(0, 10)
    source = take.source("cam_b")
    assert isinstance(source, CameraFootage)
    assert (source.kind, source.width, source.height, source.num_frames, source.offset) == ("video", W, H, 10, 0)
    assert source.path == tmp_path / "take" / "cam_b.mp4"
    image = source.read(3)
    assert image.shape == (H, W, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert frame_index(image) == 3
    assert abs(image[:, : W // 2 - 4].mean() * 255 - 100) < 4  # camera 1's left half
    assert [(f, frame_index(im)) for f, im in source.iter_frames()] == [(i, i) for i in range(10)]
    assert [f for f, _ in take.source("cam_a").iter_frames(start=7)] == [7, 8, 9]
    with pytest.raises(InputError, match="cam_b.*10"):
        source.read(10)
    with pytest.raises(InputError, match="no camera named 'cam_c'"):
        take.source("cam_c")
    take.close()


def test_random_access_matches_sequential_decode(tmp_path, videos):
    take = open_footage(make_take(tmp_path / "take", videos, cam="long"))
    source = take.source("cam")
    sequential = [image for _, image in source.iter_frames()]
    assert [frame_index(im) for im in sequential[:12]] == list(range(12))  # grey levels wrap after 12
    for frame in (57, 5, 6, 0, 59, 30, 29, 31):  # far ahead, back, next, start, end, ...
        assert np.array_equal(source.read(frame), sequential[frame]), frame
    source.close()


def test_decoding_is_lazy_and_sequential_reads_reuse_one_decoder(tmp_path, videos, monkeypatch):
    opened, decoded = [], []
    real_open = footage_module._open_video_stream

    def counting_open(path, start, fps):
        opened.append((Path(path).stem, start))
        stream = real_open(path, start, fps)
        yield next(stream)  # the header
        for data in stream:
            decoded.append(Path(path).stem)
            yield data

    monkeypatch.setattr(footage_module, "_open_video_stream", counting_open)
    take = open_footage(make_take(tmp_path / "take", videos, cam_a="a10", cam_b="b10"))
    assert opened == [] and decoded == []  # opening a take decodes nothing
    frames = [f for f, _ in take.source("cam_a").iter_frames()]
    assert frames == list(range(10))
    assert opened == [("cam_a", 0)] and decoded == ["cam_a"] * 10
    take.source("cam_a").read(4)  # backwards: re-opens with a seek
    assert opened[-1] == ("cam_a", 4) and len(decoded) == 11
    take.source("cam_a").read(5)  # next frame: same decoder
    assert len(opened) == 2 and len(decoded) == 12
    take.close()


def test_image_sequence_take(tmp_path):
    folder = tmp_path / "take"
    make_sequence(folder / "witness", 11, camera=2)
    (folder / "notes.csv").write_text("a,b\n1,2\n")
    (folder / "CHARUCO").mkdir()
    (folder / "CHARUCO" / "xy.csv").write_text("x,y\n")
    (folder / "empty_dir").mkdir()
    take = open_footage(folder)
    assert take.camera_names == ("witness",)
    assert take.fps == 24.0 and take.num_frames == 11
    source = take.source("witness")
    assert source.kind == "images" and source.path == folder / "witness"
    assert source.frame_paths[9].name == "frame_10.png"  # natural order, not frame_1, frame_10, frame_11, frame_2
    for i in (0, 9, 10):
        assert np.array_equal(source.read(i), frame_image(i, 2).astype(np.float32) / 255.0)
    assert open_footage(folder, fps=12).fps == 12.0


def test_image_sequence_pixel_formats(tmp_path):
    folder = tmp_path / "take" / "cam"
    folder.mkdir(parents=True)
    grey = np.tile(np.arange(W, dtype=np.uint8)[None] * 4, (H, 1))
    iio.imwrite(folder / "0.png", grey)
    iio.imwrite(folder / "1.png", np.dstack([frame_image(1)] + [np.full((H, W, 1), 128, np.uint8)]))  # RGBA
    iio.imwrite(folder / "2.png", (grey.astype(np.uint16) * 257))  # 16-bit grey
    source = open_footage(folder.parent).source("cam")
    assert np.allclose(source.read(0), np.repeat(grey[..., None], 3, 2) / 255.0)
    assert np.array_equal(source.read(1), frame_image(1).astype(np.float32) / 255.0)
    assert np.allclose(source.read(2), source.read(0), atol=1e-6)


def test_mixed_video_and_images(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    make_sequence(folder / "cam_b", 10, camera=1)
    take = open_footage(folder)
    assert take.camera_names == ("cam_a", "cam_b")
    assert [s.kind for s in take.sources] == ["video", "images"]
    assert frame_index(take.source("cam_b").read(6)) == 6


def test_offsets_make_the_take_the_common_range(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10", cam_b="b12")
    # cam_b started 2 frames early: its frame i shows take frame i - 2.
    take = open_footage(folder, offsets={"cam_b": -2})
    assert (take.first_frame, take.num_frames) == (0, 10)
    cam_b = take.source("cam_b")
    assert cam_b.offset == -2 and cam_b.frames == range(-2, 10)
    assert frame_index(cam_b.read(0)) == 2 and frame_index(cam_b.read(-2)) == 0
    assert [f for f, _ in cam_b.iter_frames(start=8)] == [8, 9]
    # cam_b started 3 frames late: the take is frames 3..9, which both show.
    take = open_footage(folder, offsets={"cam_b": 3})
    assert (take.first_frame, take.num_frames, take.frames) == (3, 7, range(3, 10))
    assert frame_index(take.source("cam_b").read(3)) == 0 and frame_index(take.source("cam_a").read(3)) == 3
    with pytest.raises(InputError, match="cam_a"):
        take.source("cam_a").read(10)


def test_calibration_is_attached_in_footage_order(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_0="a10", cam_1="b10")
    # Auto-detected calibration.json, written in the other order.
    write_cameras_json(folder / "calibration.json", calibration_for(["cam_1", "cam_0"]))
    take = open_footage(folder)
    assert take.calibration is not None and take.calibration.names == take.camera_names == ("cam_0", "cam_1")
    # A given calibration: a Camera, or a caliscope TOML path.
    assert open_footage(folder, calibration=calibration_for(["cam_1", "cam_0"])).calibration.names == (
        "cam_0",
        "cam_1",
    )
    toml = "".join(
        f"[cameras.{i}]\ncam_id = {i}\nsize = [{W}, {H}]\nmatrix = [[50, 0, 31.5], [0, 50, 23.5], [0, 0, 1]]\n"
        f"distortions = [0, 0, 0, 0, 0]\nrotation = [0, 0, 0]\ntranslation = [0, 0, {i}]\n"
        for i in (1, 0)
    )
    (tmp_path / "camera_array.toml").write_text(toml)
    take = open_footage(folder, calibration=tmp_path / "camera_array.toml")
    assert take.calibration.names == ("cam_0", "cam_1")
    assert take.calibration.cam_from_world[1, 2, 3].item() == 1.0


def test_caliscope_real_footage(shared_data):
    root = shared_data / "caliscope_4cam"
    if not root.is_dir():
        pytest.skip(f"real data {root} not found")
    with open_footage(root / "calibration" / "extrinsic", calibration=root / "camera_array.toml") as take:
        assert take.camera_names == ("cam_0", "cam_1", "cam_2", "cam_3")
        assert all((s.kind, s.width, s.height) == ("video", 1280, 720) for s in take.sources)
        assert (take.num_frames, take.first_frame, take.fps) == (57, 0, 6.0)
        assert take.calibration.names == take.camera_names
        assert take.calibration.width.tolist() == [1280] * 4
        cam = take.source("cam_3")
        late, early = cam.read(40), cam.read(2)
        assert late.shape == (720, 1280, 3)
        sequential = dict(cam.iter_frames(stop=41))
        assert np.array_equal(sequential[40], late) and np.array_equal(sequential[2], early)


# ------------------------------------------------------------------------------------------------
# Bad input: every error says which file or camera


def _error(*args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        open_footage(*args, **kwargs)
    return str(info.value)


def test_missing_folder(tmp_path):
    message = _error(tmp_path / "nowhere")
    assert "nowhere" in message and "no such folder" in message
    (tmp_path / "file.mp4").write_bytes(b"x")
    assert "file.mp4" in _error(tmp_path / "file.mp4")


def test_folder_without_footage(tmp_path):
    (tmp_path / "take").mkdir()
    (tmp_path / "take" / "timestamps.csv").write_text("a\n")
    (tmp_path / "take" / "CHARUCO").mkdir()
    (tmp_path / "take" / "CHARUCO" / "xy.csv").write_text("a\n")
    message = _error(tmp_path / "take")
    assert "take" in message and "no footage" in message and ".mp4" in message


def test_empty_video(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    (folder / "cam_b.mp4").write_bytes(b"")
    message = _error(folder)
    assert "cam_b.mp4" in message and "empty" in message


def test_truncated_video(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    data = videos["b10"].read_bytes()
    (folder / "cam_b.mp4").write_bytes(data[: len(data) // 2])  # ffmpeg writes the moov atom last
    message = _error(folder)
    assert "cam_b.mp4" in message and "truncated" in message


def test_not_a_video(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    (folder / "cam_b.mov").write_text("this is not a video\n" * 100)
    assert "cam_b.mov" in _error(folder)


def test_mixed_rates_share_the_take_clock_at_the_highest(tmp_path, videos):
    """cam_a at 24 fps, cam_b at 25: the take runs at 25; at each take frame cam_a shows its frame
    nearest in time (every 24th of a second), cam_b its own."""
    folder = make_take(tmp_path / "take", videos, cam_a="a10", cam_b="b10_25fps")
    with open_footage(folder) as take:
        assert take.fps == 25.0 and take.num_frames == 10  # cam_a's 10 frames last 9/24 s: take frames 0-9
        a, b = take.source("cam_a"), take.source("cam_b")
        for t in take.frames:
            assert frame_index(b.read(t)) == t % 12
            assert frame_index(a.read(t)) == round(t * 24 / 25) % 12
    folder = make_take(tmp_path / "take2", videos, cam_a="a10")
    make_sequence(folder / "cam_b", 12)  # 12 frames at 30 fps; cam_a's last (9/24 s) is take frame 11.25
    with open_footage(folder, fps=30) as take:
        assert take.fps == 30 and take.num_frames == 12
        assert [take.source("cam_a").source_index(t) for t in (0, 1, 4, 5, 10)] == [0, 1, 3, 4, 8]
    folder = make_take(tmp_path / "take3", videos, cam_a="a10", cam_b="b12")
    make_sequence(folder / "cam_c", 20)  # 20 frames at 30 fps: 0.63 s, against 0.38 s and 0.46 s at 24 (in take frames)
    assert "different frame counts (cam_a 12, cam_b 14, cam_c 20, at the take's 30 fps)" in _error(folder, fps=30)


def _variable_rate_video(path: Path, intervals_ms: list[int]) -> Path:
    """A video whose frames come `intervals_ms` apart (as a phone records), frame i showing index i."""
    import fractions

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = fractions.Fraction(1, 1000)
        pts = 0
        for i, interval in enumerate([*intervals_ms, 0]):
            frame = av.VideoFrame.from_ndarray(frame_image(i), format="rgb24")
            frame.pts, frame.time_base = pts, stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            pts += interval
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_variable_frame_rate_video_is_placed_by_its_timestamps(tmp_path, videos):
    """Frames 33 or 67 ms apart: read by index (ffmpeg would repeat frames to hold a rate) and shown at
    the take frame nearest their timestamps."""
    folder = make_take(tmp_path / "take", videos, cam_a="long")  # 60 frames at 24 fps: 2.46 s
    intervals = [33, 67] * 8 + [33]  # 17 intervals, 0.833 s
    _variable_rate_video(folder / "phone.mp4", intervals)
    with open_footage(folder, offsets={"phone": 0}) as take:
        phone = take.source("phone")
        times = np.concatenate([[0], np.cumsum(intervals)]) / 1000
        assert phone.timestamps == pytest.approx(tuple(times), abs=1e-3) and phone.num_frames == 18
        assert take.fps == pytest.approx(24.0) and len(phone.frames) == int(times[-1] * 24) + 1
        for t in phone.frames:
            nearest = int(np.argmin(np.abs(times - t / 24)))
            assert frame_index(phone.read(t)) == nearest % 12


def test_different_frame_counts(tmp_path, videos):
    message = _error(make_take(tmp_path / "take", videos, cam_a="a10", cam_b="b12"))
    assert "cam_a 10" in message and "cam_b 12" in message and "offsets" in message


def test_offsets_without_common_frames(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10", cam_b="b10")
    message = _error(folder, offsets={"cam_b": 10})
    assert "cam_b 10..19" in message and "cam_a 0..9" in message


def test_offsets_naming_unknown_camera(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    assert "cam_z" in _error(folder, offsets={"cam_z": 1})
    assert "cam_a" in _error(folder, offsets={"cam_a": 1.5})


def test_calibration_names_camera_without_footage(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    write_cameras_json(folder / "calibration.json", calibration_for(["cam_a", "cam_x"]))
    message = _error(folder)
    assert "cam_x" in message and "calibration.json" in message


def test_camera_missing_from_calibration(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10", cam_b="b10")
    write_cameras_json(tmp_path / "calibration.json", calibration_for(["cam_a"]))
    message = _error(folder, calibration=tmp_path / "calibration.json")
    assert "cam_b" in message and "no entry" in message


def test_calibration_of_another_image_size(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    write_cameras_json(folder / "calibration.json", calibration_for(["cam_a"], width=1280, height=720))
    message = _error(folder)
    assert "cam_a" in message and "1280x720" in message and f"{W}x{H}" in message


def test_image_sequence_of_mixed_sizes(tmp_path):
    folder = tmp_path / "take"
    make_sequence(folder / "cam", 3)
    iio.imwrite(folder / "cam" / "frame_4.png", np.zeros((H + 2, W, 3), np.uint8))
    message = _error(folder)
    assert "frame_4.png" in message and f"{W}x{H + 2}" in message and "cam" in message


def test_unreadable_image(tmp_path):
    folder = tmp_path / "take"
    make_sequence(folder / "cam", 2)
    (folder / "cam" / "frame_3.png").write_bytes(b"not a png")
    assert "frame_3.png" in _error(folder)


def test_two_sources_for_one_camera(tmp_path, videos):
    folder = make_take(tmp_path / "take", videos, cam="a10")
    make_sequence(folder / "cam", 10)
    message = _error(folder)
    assert "'cam'" in message and "cam.mp4" in message


def test_calibration_of_the_coded_picture_fits_its_cropped_video(tmp_path, videos):
    """A phone's 1080-wide video is a 1088-wide coded picture with 8 columns cropped off the right: a
    calibration made on the full picture fits it (same K, the footage's size); 16 or more pixels more,
    or a calibration smaller than the footage, is another resolution."""
    folder = make_take(tmp_path / "take", videos, cam_a="a10")
    calibration = calibration_for(["cam_a"], width=W + 8, height=H + 15)
    take = open_footage(folder, calibration=calibration)
    assert take.calibration.width.tolist() == [W] and take.calibration.height.tolist() == [H]
    assert torch.equal(take.calibration.K, calibration.K.to(take.calibration.K.dtype))
    for width, height in ((W + 16, H), (W - 1, H)):
        message = _error(folder, calibration=calibration_for(["cam_a"], width=width, height=height))
        assert f"{width}x{height}" in message and "Use the calibration made for this resolution" in message
