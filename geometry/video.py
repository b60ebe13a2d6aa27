"""Writing review videos (H.264 mp4) that players decode to the colours they were given.

ffmpeg converts RGB to YUV with the BT.601 matrix unless told otherwise and leaves the stream untagged,
so players guess (most guess BT.709 for HD) and saturated colours shift. Here the conversion uses the
BT.709 matrix (limited range) and the stream is tagged BT.709 in primaries, transfer and matrix: the
display-referred sRGB / Rec.709 values of our frames come back as they went in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BT709_OUTPUT = [
    "-vf",
    "scale=out_color_matrix=bt709:out_range=tv,setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709",
    "-colorspace",
    "bt709",
    "-color_primaries",
    "bt709",
    "-color_trc",
    "bt709",
    "-color_range",
    "tv",
]


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, timecode: str | None = None) -> None:
    """Encode frames as an H.264 mp4 at `path` (imageio's ffmpeg), BT.709 matrix and tags; an mp4 whatever
    `path`'s suffix.

    Args:
        frames: [T, H, W, 3] uint8 display-encoded RGB; H and W even (yuv420p).
        timecode: the first frame's SMPTE timecode HH:MM:SS:FF, written as the mp4's timecode track; None: none.
    """
    import imageio.v3 as iio

    iio.imwrite(
        path,
        np.ascontiguousarray(frames),
        extension=".mp4",  # `path` may be a temporary name
        fps=fps,
        codec="libx264",
        macro_block_size=2,
        pixelformat="yuv420p",
        output_params=[*BT709_OUTPUT, *(["-timecode", timecode] if timecode else []), "-f", "mp4"],
        ffmpeg_log_level="error",
    )
