"""A shot's EXR deliverable: one layered, scene-linear EXR per frame, `shots/NAME/exr/NAME.NNNN.exr`.

Frame numbers start at the workspace's `deliverable_start` (1001 unless set) for the shot's first frame.
One part, ZIP-compressed scanlines, channels:

| channel | type | what |
|---|---|---|
| R, G, B, A | half | the synthesized frame, scene-linear in the working space; A = 1 (a full picture) |
| depth.Z | float | z-depth of the reconstruction's surface in the shot camera (world units), 0 where none |
| coverage | half | the reconstruction's coverage of the pixel, in [0, 1] (the rest is the environment colour) |
| filmed | half | 1 where a production camera filmed that surface at that frame, 0 where none did |
| generated | half | how much of the pixel the synthesis engine made (0: the reconstruction's render, kept where it was filmed and agrees; reshoot/engines/keep.py) |
| CryptoObject00.RGBA, CryptoObject01.RGBA | float | the layout's entities as Cryptomatte (geometry/cryptomatte.py) |

Header: `chromaticities` (the working space's primaries and white), `timeCode` (SMPTE, of that frame),
`framesPerSecond`, the Cryptomatte manifest (`cryptomatte/<key>/...`), and `reshoot/colourSpace`,
`reshoot/takeFrame`, `reshoot/shot`. depth.Z, coverage, filmed and the mattes describe the reconstruction's
render the frame was made from (the conditioning); the model's correction moves colour, not geometry.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from reshoot.conditioning import DeliverablePasses, write_exr_channels
from reshoot.geometry.errors import InputError


def deliverable_numbers(frames: list[int], start: int) -> list[int]:
    """The deliverable frame number of each take frame of a shot: `start` for the first, consecutively on."""
    return [start + frame - frames[0] for frame in frames]


def exr_timecode(timecode: str):
    """An OpenEXR `TimeCode` of "HH:MM:SS:FF" (its drop-frame flag set for "HH:MM:SS;FF")."""
    import OpenEXR

    from reshoot.datasets.sync import TIMECODE, is_drop_frame

    match = TIMECODE.match(timecode.strip())
    if match is None:
        raise InputError(f"timecode {timecode!r} is not HH:MM:SS:FF.")
    hours, minutes, seconds, _, frames = match.groups()
    value = OpenEXR.TimeCode()
    value.hours, value.minutes, value.seconds, value.frame = int(hours), int(minutes), int(seconds), int(frames)
    value.dropFrame = is_drop_frame(timecode)
    return value


def write_shot_exr(
    path: Path,
    rgb: np.ndarray,
    depth: np.ndarray,
    coverage: np.ndarray,
    passes: DeliverablePasses,
    generated: np.ndarray,
    fps: float,
    timecode: str,
    attributes: dict,
) -> None:
    """Write one frame of the deliverable (see the module docstring).

    Args:
        rgb: [H, W, 3] scene-linear colour in the working space.
        depth: [H, W] z-depth in world units, 0 where there is no surface.
        coverage: [H, W] in [0, 1].
        passes: the frame's filmed mask and Cryptomatte (from the conditioning).
        generated: [H, W] in [0, 1], how much of each pixel the engine made.
        fps: the take's frame rate.
        timecode: this frame's SMPTE timecode.
        attributes: more header attributes: the colour's (`ColourPipeline.exr_attributes`: chromaticities,
            reshoot/colourSpace) and reshoot/... strings.
    """
    half = np.float16
    channels = {
        "R": rgb[..., 0].astype(half),
        "G": rgb[..., 1].astype(half),
        "B": rgb[..., 2].astype(half),
        "A": np.ones(rgb.shape[:2], half),
        "depth.Z": depth.astype(np.float32),
        "coverage": np.clip(coverage, 0, 1).astype(half),
        "filmed": passes.filmed.astype(half),
        "generated": np.clip(generated, 0, 1).astype(half),
        **{name: pixels.astype(np.float32) for name, pixels in passes.cryptomatte.items()},
    }
    header = {
        "timeCode": exr_timecode(timecode),
        "framesPerSecond": Fraction(fps).limit_denominator(1001),
        **passes.attributes,
        **attributes,
    }
    write_exr_channels(path, {k: np.ascontiguousarray(v) for k, v in channels.items()}, header)
