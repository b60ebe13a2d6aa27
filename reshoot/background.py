"""Background models of static cameras: the clean plate (the set without the action).

A static camera sees the same set in every frame; the temporal median of frames spread over the take
removes whatever moves through it (but keeps what stands still for most of the take: crews shoot
clean plates of the empty set for that, and `reshoot init --plates` takes them). The share of frames
that differ from the median marks moving pixels, which registration masks out and layout uses as
foreground evidence. A frame's foreground is
where it differs from the plate (`foreground_mask`), on images undistorted and downsampled alike
(`prepared_image`).

Where the action covers a pixel in a large share of the frames (a camera close to the actors), the
median is a blend of set and actors and is not trusted. The set is seen there all the same, in the
frames where nobody stands in front of it, and it looks the same in each of them: the *still* plate
(`still_plate`) keeps, per pixel, the colour the most sampled frames agree on, and how many do. The
static set learns from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from reshoot.datasets.footage import CameraFootage, Footage
from reshoot.geometry.camera import Camera, undistort_image
from reshoot.geometry.progress import ProgressFn, no_progress

FOREGROUND_DIFFERENCE = 0.04  # a frame differs from its clean plate by more than this (RGB in [0, 1])
MOVING_DIFFERENCE = 0.08  # a frame differs from the plate at a pixel by more than this (RGB in [0, 1])
STILL_ROWS = 64  # image rows per chunk of `still_plate` (bounds its memory to samples² x 64 rows)
BLANK_STD = 0.01  # a plate with less contrast than this is a blank or black video


@dataclass(frozen=True)
class CleanPlate:
    """The static background of one camera.

    Attributes:
        rgb: [H, W, 3] float32 in [0, 1], temporal median of the sampled frames.
        moving: [H, W] float32 in [0, 1], share of the sampled frames that differ from the plate.
        frames: take frame numbers sampled.
        still: [H, W, 3] float32 in [0, 1], the colour most sampled frames agree on (`still_plate`),
            or None where not asked for.
        support: [H, W] float32 in [0, 1], the share of the sampled frames that agree on `still`, or None.
    """

    rgb: np.ndarray
    moving: np.ndarray
    frames: tuple[int, ...]
    still: np.ndarray | None = None
    support: np.ndarray | None = None

    @property
    def is_blank(self) -> bool:
        """True for a black or blank (featureless) picture."""
        return float(self.rgb.std()) < BLANK_STD


def sample_frames(first: int, count: int, samples: int) -> tuple[int, ...]:
    """Up to `samples` take frames spread evenly over [first, first + count)."""
    if count <= samples:
        return tuple(range(first, first + count))
    return tuple(int(round(x)) for x in np.linspace(first, first + count - 1, samples))


def clean_plate(source: CameraFootage, frames: tuple[int, ...], still: bool = False) -> CleanPlate:
    """Temporal median and moving share of one camera over `frames` (decoded one at a time, kept 8-bit),
    and its still plate where `still` is asked for."""
    stack = np.stack([(source.read(f) * 255 + 0.5).astype(np.uint8) for f in frames])
    plate = np.median(stack, axis=0).astype(np.float32) / 255.0
    moving = (np.abs(stack.astype(np.float32) / 255.0 - plate[None]).max(axis=-1) > MOVING_DIFFERENCE).mean(axis=0)
    agreed, support = still_plate(stack) if still else (None, None)
    return CleanPlate(plate, moving.astype(np.float32), tuple(frames), agreed, support)


def still_plate(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the colour the most frames agree on: the temporal mode of a static camera.

    Each frame's colour is a candidate; its support is the number of frames within MOVING_DIFFERENCE
    of it in every channel. The candidate with the most support wins (the earliest on a tie) and its
    colour is the mean of the frames that support it. Unlike the median, this stays the set's colour
    where actors cover a pixel in most frames, as long as they move (a moving body's colour changes
    from frame to frame; the set's does not). Hand-written because OpenCV's mixture-of-Gaussians
    background (MOG2) is learned frame by frame in order and reports no support.

    Args:
        stack: [N, H, W, 3] uint8, the sampled frames.

    Returns:
        (still [H, W, 3] float32 in [0, 1], support [H, W] float32: share of the N frames agreeing).
    """
    count, height = stack.shape[0], stack.shape[1]
    tolerance = int(MOVING_DIFFERENCE * 255)
    still = np.empty(stack.shape[1:], np.float32)
    support = np.empty(stack.shape[1:3], np.float32)
    for top in range(0, height, STILL_ROWS):
        frames = torch.from_numpy(stack[:, top : top + STILL_ROWS])  # [N, h, W, 3] uint8
        votes = torch.stack([_agreeing(frames, candidate, tolerance).sum(0, dtype=torch.int16) for candidate in frames])
        winner = torch.gather(frames, 0, votes.argmax(0)[None, ..., None].expand(1, -1, -1, 3))[0]  # first of the most
        agree = _agreeing(frames, winner, tolerance)
        votes_of_winner = agree.sum(0)
        still[top : top + STILL_ROWS] = (
            (frames * agree[..., None]).sum(0) / votes_of_winner[..., None] / 255.0
        ).numpy()
        support[top : top + STILL_ROWS] = (votes_of_winner / count).numpy()
    return still, support


def _agreeing(frames: torch.Tensor, colour: torch.Tensor, tolerance: int) -> torch.Tensor:
    """[N, h, W] bool: frames [N, h, W, 3] (uint8) within `tolerance` of `colour` [h, W, 3] in every channel."""
    return (torch.maximum(frames, colour) - torch.minimum(frames, colour)).amax(-1) <= tolerance


def camera_plate(
    source: CameraFootage,
    frames: tuple[int, ...],
    shot_plate: CameraFootage | None,
    samples: int,
    still: bool = False,
) -> CleanPlate:
    """A camera's clean plate: from the plate the crew shot (its frames sampled), else the temporal median
    of the footage's `frames`; with its still plate where `still` is asked for."""
    if shot_plate is None:
        return clean_plate(source, frames, still)
    plate = clean_plate(shot_plate, sample_frames(0, shot_plate.num_frames, samples), still)
    shot_plate.close()
    return plate


def prepared_image(image: np.ndarray, camera: Camera, downscale: int) -> torch.Tensor:
    """[H, W, C] array of a (distorted) camera → undistorted, box-downsampled [H/d, W/d, C] tensor."""
    tensor = undistort_image(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), camera)
    h, w = tensor.shape[0] // downscale * downscale, tensor.shape[1] // downscale * downscale
    c = tensor.shape[2]
    return tensor[:h, :w].reshape(h // downscale, downscale, w // downscale, downscale, c).mean((1, 3)).contiguous()


class PreparedPlate(NamedTuple):
    """A camera's `CleanPlate` at the fitting resolution (undistorted and downsampled like the frames).

    Attributes:
        rgb: [H/d, W/d, 3] the temporal median; moving: [H/d, W/d] the share of frames that differ from it.
        still: [H/d, W/d, 3] the still plate and support: [H/d, W/d] its share of agreeing frames, or
            None where not asked for.
    """

    rgb: torch.Tensor
    moving: torch.Tensor
    still: torch.Tensor | None = None
    support: torch.Tensor | None = None


def prepared_plates(
    footage: Footage,
    cameras: Camera,
    downscale: int,
    samples: int,
    progress: ProgressFn | None = None,
    shot_plates: dict[str, CameraFootage] | None = None,
    still: bool = False,
) -> dict[str, PreparedPlate]:
    """Per camera name: its clean plate (`camera_plate`: shot by the crew, else over `samples` frames of
    the take), with its still plate where `still` is asked for, undistorted and downsampled like the
    frames (`prepared_image`)."""
    report = progress or no_progress
    frames = sample_frames(footage.frames.start, len(footage.frames), samples)
    plates = {}
    for i, name in enumerate(cameras.names):
        plate = camera_plate(footage.source(name), frames, (shot_plates or {}).get(name), samples, still)
        camera = cameras.select(i)
        plates[name] = PreparedPlate(
            prepared_image(plate.rgb, camera, downscale),
            prepared_image(plate.moving[..., None], camera, downscale)[..., 0],
            None if plate.still is None else prepared_image(plate.still, camera, downscale),
            None if plate.support is None else prepared_image(plate.support[..., None], camera, downscale)[..., 0],
        )
        report("clean plates", i + 1, len(cameras))
    return plates


def foreground_mask(image: torch.Tensor, plate: torch.Tensor) -> torch.Tensor:
    """[H, W] bool: pixels that differ from the clean plate, specks removed (3x3 opening), gaps where a
    costume matches the set behind it closed (7x7 closing) and enclosed holes filled, so that carving
    does not cut through a body that one camera sees partly as background."""
    from scipy.ndimage import binary_closing, binary_fill_holes, binary_opening

    mask = ((image - plate).abs().amax(-1) > FOREGROUND_DIFFERENCE).numpy()
    mask = binary_opening(mask, np.ones((3, 3), bool))
    mask = binary_closing(mask, np.ones((7, 7), bool), border_value=0)
    return torch.from_numpy(binary_fill_holes(mask))


LINGERING_SHARE = (0.25, 0.5)  # something moving covered a pixel in this share of the sampled frames


def lingering(moving: torch.Tensor) -> dict:
    """Where something moving stayed a while in a camera's temporal-median plate: the share of the
    plate's pixels covered in 25-50 % of the sampled frames, and their bounding box (x0, y0, x1, y1,
    pixels of the plate). Whatever stood there for more than half the take is in the plate itself, as
    set: a character who lingers longer than this is invisible to the foreground and part of the set.

    Args:
        moving: [H, W] share of the sampled frames that differ from the plate (`CleanPlate.moving`).
    """
    low, high = LINGERING_SHARE
    mask = (moving >= low) & (moving < high)
    if not bool(mask.any()):
        return {"share": 0.0, "box": None}
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    return {
        "share": round(float(mask.float().mean()), 4),
        "box": [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1],
    }
