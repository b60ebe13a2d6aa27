"""Bad footage and calibrations are refused by `reshoot init` with one message, and nothing is written."""

from __future__ import annotations

import json
import math

import bad_inputs_support as support
from bad_inputs_support import (
    CAMERAS,
    EYES,
    camera_entry,
    cameras_document,
    refused,
    run,
    write_frames,
    write_json,
    write_video,
)

# the fixtures of bad_inputs_support (a plain module, not a conftest: tests/conftest.py is imported as
# `conftest` by other tests)
base_footage, footage = support.base_footage, support.footage
base_workspace, workspace = support.base_workspace, support.workspace


def test_zero_length_video(capsys, footage, tmp_path):
    (footage / "a_wide.mp4").write_bytes(b"")
    refused(capsys, tmp_path, "init", tmp_path / "ws", "--footage", footage, says=("a_wide.mp4", "empty"))
    assert not (tmp_path / "ws").exists()


def test_truncated_video(capsys, footage, tmp_path):
    video = footage / "b_medium.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    refused(capsys, tmp_path, "init", tmp_path / "ws", "--footage", footage, says=("b_medium.mp4", "re-"))


def test_text_file_named_like_a_video(capsys, footage, tmp_path):
    (footage / "c_reverse.mp4").write_text("this is not a video\n" * 50)
    refused(capsys, tmp_path, "init", tmp_path / "ws", "--footage", footage, says=("c_reverse.mp4",))


def test_camera_with_another_frame_rate_and_length(capsys, footage, tmp_path):
    """A camera at another rate joins the take's clock (issue 19); one that also lasts another time
    is refused like any camera of another length, its count at the take's rate."""
    write_video(footage / "c_reverse.mp4", frames=8, fps=30.0)  # 0.23 s against 0.13 s at 24 fps
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        says=("different frame counts", "at the take's 30 fps", "sync"),
    )


def test_camera_with_another_frame_count_and_no_offsets(capsys, footage, tmp_path):
    """Was accepted and the take silently shortened to the shortest camera (issue 18)."""
    write_video(footage / "c_reverse.mp4", frames=7)
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        says=("different frame counts", "c_reverse 7", "offset"),
    )


def test_offsets_still_allow_different_lengths(capsys, footage, tmp_path):
    write_video(footage / "c_reverse.mp4", frames=7)
    result = run(capsys, "init", tmp_path / "ws", "--footage", footage, "--offset", "c_reverse=-1")
    assert result.code == 0, result.err


def test_camera_file_name_with_a_space(capsys, footage, tmp_path):
    """pycolmap never registers such a camera; init used to accept it."""
    (footage / "c_reverse.mp4").rename(footage / "c reverse.mp4")
    refused(capsys, tmp_path, "init", tmp_path / "ws", "--footage", footage, says=("'c reverse'", "rename"))


def test_camera_name_that_is_not_ascii(capsys, footage, tmp_path):
    (footage / "c_reverse.mp4").rename(footage / "caméra.mp4")
    refused(capsys, tmp_path, "init", tmp_path / "ws", "--footage", footage, says=("caméra", "rename"))


def test_paths_with_spaces_and_non_ascii_work(capsys, base_footage, tmp_path):
    import shutil

    footage = shutil.copytree(base_footage, tmp_path / "prise de vue ü" / "rushes été")
    result = run(capsys, "init", tmp_path / "mon espace ü", "--footage", footage)
    assert result.code == 0, result.err
    assert (tmp_path / "mon espace ü" / "reshoot.toml").is_file()
    assert run(capsys, "shots", tmp_path / "mon espace ü").code == 0


def test_corrupt_frame_in_an_image_sequence(capsys, tmp_path):
    folder = tmp_path / "footage"
    for i, name in enumerate(CAMERAS):
        write_frames(folder / name, seed=i)
    (folder / "b_medium" / "000002.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    refused(capsys, tmp_path, "init", tmp_path / "ws", "--footage", folder, says=("000002.png", "cannot be read"))


def test_image_sequence_with_mixed_resolutions(capsys, tmp_path):
    folder = tmp_path / "footage"
    for i, name in enumerate(CAMERAS):
        write_frames(folder / name, seed=i)
    write_frames(tmp_path / "other", frames=1, size=(64, 48))
    (tmp_path / "other" / "000000.png").replace(folder / "a_wide" / "000003.png")
    refused(capsys, tmp_path, "init", tmp_path / "ws", "--footage", folder, says=("000003.png", "64x48", "one size"))


def _calibration(tmp_path, entries) -> str:
    return str(write_json(tmp_path / "calibration.json", cameras_document(entries)))


def test_calibration_naming_a_camera_without_footage(capsys, footage, tmp_path):
    entries = [camera_entry(n, EYES[n]) for n in CAMERAS] + [camera_entry("d_witness", (3.0, 3.0, 2.0))]
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        "--calibration",
        _calibration(tmp_path, entries),
        says=("d_witness", "no footage"),
    )


def test_calibration_missing_a_camera(capsys, footage, tmp_path):
    entries = [camera_entry(n, EYES[n]) for n in CAMERAS[:2]]
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        "--calibration",
        _calibration(tmp_path, entries),
        says=("c_reverse",),
    )


def test_calibration_with_nan(capsys, footage, tmp_path):
    entries = [camera_entry(n, EYES[n]) for n in CAMERAS]
    entries[1]["K"][0][2] = math.nan  # json writes NaN, which Python's json reads back
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        "--calibration",
        _calibration(tmp_path, entries),
        says=("b_medium", "finite"),
    )


def test_calibration_with_a_zero_focal_length(capsys, footage, tmp_path):
    entries = [camera_entry(n, EYES[n]) for n in CAMERAS]
    entries[0]["K"][0][0] = 0.0
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        "--calibration",
        _calibration(tmp_path, entries),
        says=("a_wide", "focal"),
    )


def test_calibration_of_a_future_version(capsys, footage, tmp_path):
    path = tmp_path / "calibration.json"
    write_json(path, {**cameras_document([camera_entry(n, EYES[n]) for n in CAMERAS]), "version": 7})
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        "--calibration",
        path,
        says=("version 7", "upgrade"),
    )


def test_bad_offset_option(capsys, footage, tmp_path):
    refused(
        capsys, tmp_path, "init", tmp_path / "ws", "--footage", footage, "--offset", "a_wide:3", says=("camera=frames",)
    )


def test_force_onto_a_workspace_of_another_take(capsys, workspace, tmp_path):
    """Its registration, splats, layout and shots would have passed for the other take's (issue 18)."""
    other = tmp_path / "other"
    for i, name in enumerate(("x_cam", "y_cam")):
        write_video(other / f"{name}.mp4", seed=10 + i)
    refused(
        capsys,
        workspace,
        "init",
        workspace,
        "--footage",
        other,
        "--force",
        says=("another take", "registration", "new workspace"),
    )


def test_force_onto_the_same_take_is_allowed_and_keeps_sensitive(capsys, workspace):
    settings = (workspace / "reshoot.toml").read_text().replace("sensitive = false", "sensitive = true")
    (workspace / "reshoot.toml").write_text(settings)
    result = run(capsys, "init", workspace, "--footage", workspace.parent / "footage", "--force")
    assert result.code == 0, result.err
    assert "sensitive = true" in (workspace / "reshoot.toml").read_text()


def test_calibration_json_is_not_json(capsys, footage, tmp_path):
    (tmp_path / "calibration.json").write_text(json.dumps(cameras_document([]))[:-9])
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        "--calibration",
        tmp_path / "calibration.json",
        says=("not valid JSON",),
    )


def _workspace_on(capsys, tmp_path, cameras: dict, calibration=None):
    """A workspace on videos {name: write_video keyword arguments}, made by `reshoot init`."""
    for i, (name, options) in enumerate(cameras.items()):
        write_video(tmp_path / "footage" / f"{name}.mp4", seed=i, **options)
    extra = ["--calibration", calibration] if calibration else []
    assert run(capsys, "init", tmp_path / "ws", "--footage", tmp_path / "footage", *extra).code == 0
    return tmp_path / "ws"


def test_one_camera_only(capsys, tmp_path):
    ws = _workspace_on(capsys, tmp_path, {"a_wide": {}})
    refused(capsys, ws, "register", ws, says=("fewer than two cameras", "nothing was written"))


def test_all_black_video(capsys, tmp_path):
    ws = _workspace_on(capsys, tmp_path, {"a_wide": {}, "b_medium": {"black": True}})
    refused(capsys, ws, "register", ws, says=("b_medium: a blank or black video",))


def test_calibration_in_centimetres(capsys, tmp_path):
    """Told from the cameras' spacing and named (issue 19); declared as metres, registration refuses it."""
    entries = [camera_entry(n, [100 * x for x in EYES[n]]) for n in CAMERAS]
    calibration = write_json(tmp_path / "calibration.json", cameras_document(entries))
    for i, name in enumerate(CAMERAS):
        write_video(tmp_path / "footage" / f"{name}.mp4", seed=i)
    common = ["init", tmp_path / "ws", "--footage", tmp_path / "footage", "--calibration", calibration]
    result = run(capsys, *common)
    assert result.code == 0 and "calibration.json" in result.err and "centimetres" in result.err, result.err
    assert run(capsys, *common, "--force", "--calibration-units", "m").code == 0
    refused(capsys, tmp_path / "ws", "register", tmp_path / "ws", says=("centimetres", "--calibration-units"))


def test_survey_photo_name_with_a_space(capsys, footage, tmp_path):
    survey = write_frames(tmp_path / "survey", frames=2)
    (survey / "000001.png").rename(survey / "IMG 0001 (1).png")
    refused(
        capsys,
        tmp_path,
        "init",
        tmp_path / "ws",
        "--footage",
        footage,
        "--survey",
        survey,
        says=("'IMG 0001 (1)'", "rename the photo"),
    )
