"""Review videos decode to the colours they were given: BT.709 matrix and tags, read back by PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RED, GREEN = (200, 40, 30), (20, 180, 60)


def _luma(rgb, weights) -> float:
    """Limited-range 8-bit Y of an RGB colour with the given matrix weights (kr, kg, kb)."""
    return 16 + 219 * float(np.dot(weights, rgb)) / 255


def test_mp4_is_bt709_in_its_tags_and_its_matrix(tmp_path: Path):
    import av

    from reshoot.geometry.video import write_mp4

    frames = np.zeros((3, 64, 96, 3), np.uint8)
    frames[:, :, :48], frames[:, :, 48:] = RED, GREEN
    write_mp4(tmp_path / ".clip.tmp", frames, fps=24)  # an mp4 under a temporary name too
    with av.open(str(tmp_path / ".clip.tmp"), format="mp4") as container:
        frame = next(container.decode(video=0))
        # FFmpeg's enums: 1 = BT.709 for primaries, transfer and matrix; range 1 = limited ("tv").
        assert (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range) == (1, 1, 1, 1)
        y = frame.to_ndarray(format="yuv420p")[:64]  # the luma plane
    bt709, bt601 = (0.2126, 0.7152, 0.0722), (0.299, 0.587, 0.114)
    for colour, column in ((RED, 10), (GREEN, 80)):
        measured = float(np.median(y[8:56, column - 4 : column + 4]))
        assert abs(measured - _luma(colour, bt709)) < 2, (colour, measured)
        assert abs(measured - _luma(colour, bt601)) > 8  # the two matrices differ for these colours
