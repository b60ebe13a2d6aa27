"""Clean plates as a crew shoots them (`reshoot init --plates DIR`): checked at init, used instead of the
footage's temporal median by registration, reconstruction and layout; and the still plate the static
set learns from where no crew plate was shot."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from reshoot import InputError
from reshoot.background import MOVING_DIFFERENCE, STILL_ROWS, prepared_plates, still_plate
from reshoot.datasets.footage import open_plates
from reshoot.workspace import init_workspace, load_workspace

CAMERAS = ("a_wide", "b_medium", "c_medium", "d_reverse")


def _plates(root: Path, size=(224, 128), names=CAMERAS, value=0.25) -> Path:
    """A plates folder: per camera a 3-frame image sequence of one flat grey."""
    for name in names:
        (root / name).mkdir(parents=True)
        for k in range(3):
            iio.imwrite(root / name / f"{k:03d}.png", np.full((size[1], size[0], 3), round(value * 255), np.uint8))
    return root


def test_plates_replace_the_temporal_median(small_take: Path, tmp_path: Path):
    plates = _plates(tmp_path / "plates")
    settings = init_workspace(tmp_path / "ws", small_take / "footage", plates=plates)
    assert load_workspace(tmp_path / "ws").plates == plates.resolve() == settings.plates
    assert "[plates]" in (tmp_path / "ws" / "reshoot.toml").read_text()
    from reshoot.geometry.camera import Camera

    with settings.open_footage() as footage:
        cameras = Camera.create(
            CAMERAS, np.tile(np.eye(3), (4, 1, 1)), np.tile(np.eye(4), (4, 1, 1)), [224] * 4, [128] * 4
        )
        given = prepared_plates(footage, cameras, 2, 8, shot_plates=settings.open_plates(footage))
        median = prepared_plates(footage, cameras, 2, 8)
    for name in CAMERAS:
        rgb, moving = given[name].rgb, given[name].moving
        assert rgb.shape == (64, 112, 3) and np.allclose(rgb.numpy(), round(0.25 * 255) / 255, atol=1e-6)
        assert float(moving.max()) == 0, "a shot plate has nothing moving"
        assert not np.allclose(median[name][0].numpy(), rgb.numpy()), "without plates: the take's own median"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda root: _plates(root, names=CAMERAS[:3]), "no plate for camera(s) ['d_reverse']"),
        (lambda root: _plates(root, names=(*CAMERAS, "z_cam")), "match no camera"),
        (lambda root: _plates(root, size=(112, 64)), "is 112x64 but its footage is 224x128"),
        (lambda root: root, "no such plates folder"),
    ],
)
def test_bad_plates_are_named_and_nothing_is_written(small_take: Path, tmp_path: Path, make, words):
    plates = make(tmp_path / "plates")
    with pytest.raises(InputError) as error:
        init_workspace(tmp_path / "ws", small_take / "footage", plates=plates)
    assert words in str(error.value)
    assert not (tmp_path / "ws" / "reshoot.toml").exists()
    from reshoot.cli.app import main

    with pytest.raises(SystemExit) as cli:
        main(["init", str(tmp_path / "ws"), "--footage", str(small_take / "footage"), "--plates", str(plates)])
    assert cli.value.code == 2 and not (tmp_path / "ws" / "reshoot.toml").exists()


def test_open_plates_reads_videos_and_sequences(tmp_path: Path):
    _plates(tmp_path / "plates", names=("cam_0",))
    iio.imwrite(tmp_path / "plates" / "cam_1.mp4", np.full((4, 128, 224, 3), 100, np.uint8), fps=24)
    plates = open_plates(tmp_path / "plates", {"cam_0": (224, 128), "cam_1": (224, 128)})
    assert plates["cam_0"].kind == "images" and plates["cam_0"].num_frames == 3
    assert plates["cam_1"].kind == "video" and plates["cam_1"].num_frames == 4
    assert abs(float(plates["cam_1"].read(0).mean()) - 100 / 255) < 0.02
    for plate in plates.values():
        plate.close()


def test_the_generator_shoots_plates_that_the_footage_matches_off_the_characters(scene_take: Path):
    """`reshoot synth --plates`: each production camera's plate of the empty set matches its footage
    wherever no character stands (the same render, the same encoding), and differs where one does.
    Against the plates, the footage's temporal median (12 frames of characters walking slowly) holds
    the characters, and `lingering` says where."""
    from scipy.ndimage import binary_dilation

    from reshoot.background import FOREGROUND_DIFFERENCE, clean_plate, lingering
    from reshoot.datasets.footage import open_footage

    maps = {name: np.load(scene_take / "gt" / "maps" / f"{name}.npz")["entity_ids"] for name in CAMERAS}
    characters = [0, 1]  # the generator numbers characters first
    with open_footage(scene_take / "footage") as footage:
        plates = open_plates(scene_take / "plates", {s.name: (s.width, s.height) for s in footage.sources})
        for name in CAMERAS:
            plate = plates[name].read(0)
            frame = footage.source(name).read(0)
            difference = np.abs(frame - plate).max(-1)
            on_character = np.isin(maps[name][0], characters)
            near_character = binary_dilation(on_character, np.ones((9, 9), bool))  # antialiased edges, codec
            assert on_character.any()
            # H.264 of two different clips: a few scattered pixels over the foreground's threshold (the
            # foreground mask's opening removes such specks), nowhere a region.
            assert np.mean(difference[~near_character] > FOREGROUND_DIFFERENCE) < 0.03, name
            assert np.mean(difference[on_character] > 0.1) > 0.5, name
            median = clean_plate(footage.source(name), tuple(footage.frames))
            report = lingering(torch.from_numpy(median.moving))
            assert report["share"] > 0, (name, "the temporal median of a short take holds lingering characters")
            plates[name].close()


def _still_reference(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`still_plate` written pixel by pixel: the colour with the most frames within the tolerance."""
    tolerance = int(MOVING_DIFFERENCE * 255)
    count, height, width = stack.shape[:3]
    still, support = np.zeros((height, width, 3), np.float32), np.zeros((height, width), np.float32)
    for y in range(height):
        for x in range(width):
            values = stack[:, y, x].astype(np.int32)
            votes = [(np.abs(values - v).max(-1) <= tolerance) for v in values]
            best = int(np.argmax([v.sum() for v in votes]))
            still[y, x] = values[votes[best]].mean(0) / 255
            support[y, x] = votes[best].sum() / count
    return still, support


class TestStillPlate:
    def test_the_set_behind_a_moving_body_that_covers_it_in_most_frames(self):
        rng = np.random.default_rng(0)
        frames, height, width = 12, 20, 30
        set_colour = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        stack = np.repeat(set_colour[None], frames, axis=0)
        covered = np.arange(frames) < 8  # a body over the middle columns in 8 of the 12 frames
        for frame, shift in zip(np.flatnonzero(covered), range(60, 256, 25)):  # unlike the set, and each other
            stack[frame, :, 10:20] = (set_colour[:, 10:20].astype(int) + shift) % 256

        still, support = still_plate(stack)

        median_off = np.abs(np.median(stack, 0) / 255 - set_colour / 255).max(-1)[:, 10:20]
        assert float((median_off > MOVING_DIFFERENCE).mean()) > 0.5, "the median blends set and body"
        assert np.abs(still - set_colour / 255).max() < 1e-6, "the still plate is the set everywhere"
        assert np.allclose(support[:, 10:20], 4 / 12) and np.allclose(support[:, :10], 1.0)

    def test_it_equals_its_pixel_by_pixel_twin_across_row_chunks(self):
        rng = np.random.default_rng(1)
        base = rng.integers(0, 256, (STILL_ROWS + 6, 5, 3), dtype=np.uint8)
        stack = np.stack(
            [base] * 4
            + [np.clip(base.astype(int) + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8) for _ in range(5)]
        )
        still, support = still_plate(stack)
        want_still, want_support = _still_reference(stack)
        assert np.allclose(support, want_support) and np.abs(still - want_still).max() < 1e-5

    def test_a_body_that_stands_still_longer_than_the_set_is_seen_wins_and_says_so(self):
        stack = np.zeros((10, 2, 2, 3), np.uint8)
        stack[:6] = 200  # a body standing still in 6 of 10 frames
        still, support = still_plate(stack)
        assert np.allclose(still, 200 / 255) and np.allclose(support, 0.6)
