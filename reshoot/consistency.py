"""Per-frame consistency measurements of a shot's output, from its pixels and the sources' pixels.

Each function takes what one or two output frames and their `ShotFrameReference` hold and returns
numbers; `reshoot/check.py` runs them over a shot, aggregates, and gives verdicts. Nothing here reads
the shot's conditioning renders: the output is graded against the real footage carried into the shot
camera with the registered geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reshoot.geometry.camera import Camera
from reshoot.placement import EntityLocation, locate_entity
from reshoot.reprojection import ShotFrameReference, points_in_camera


@dataclass(frozen=True)
class CrossViewAgreement:
    """Output vs the footage carried into the shot (a MEt3R-style score with our own geometry).

    Attributes:
        seen_share: share of the frame's pixels some production camera saw.
        mean_error: mean |output − reference| (0-1 colour scale, channels averaged) over seen pixels.
        agreement: share of seen pixels whose error is below the threshold.
        per_camera: camera name → (pixels, mean error) over the pixels whose colour came from it.
        error_map: [H, W] float32 per-pixel error, NaN where unseen.
    """

    seen_share: float
    mean_error: float
    agreement: float
    per_camera: dict[str, tuple[int, float]]
    error_map: np.ndarray


def cross_view_agreement(
    output: np.ndarray, reference: ShotFrameReference, camera_names: list[str], error_threshold: float
) -> CrossViewAgreement:
    """Compare an output frame ([H, W, 3] in [0, 1]) with the reference where a camera saw the surface."""
    error = np.abs(output - reference.colour).mean(axis=-1)
    error_map = np.where(reference.seen, error, np.nan).astype(np.float32)
    seen = reference.seen
    if not seen.any():
        return CrossViewAgreement(0.0, float("nan"), float("nan"), {}, error_map)
    per_camera = {}
    for v, name in enumerate(camera_names):
        mine = reference.source == v
        if mine.any():
            per_camera[name] = (int(mine.sum()), float(error[mine].mean()))
    return CrossViewAgreement(
        float(seen.mean()),
        float(error[seen].mean()),
        float((error[seen] < error_threshold).mean()),
        per_camera,
        error_map,
    )


def locate_entities(
    output_smooth: np.ndarray, reference_smooth: np.ndarray, reference: ShotFrameReference, entity_ids: list[int]
) -> dict[int, tuple[EntityLocation, EntityLocation]]:
    """Every entity looked for in a frame, as is and mirrored: id → (direct, mirrored) locations."""
    out = {}
    for entity_id in entity_ids:
        mask = reference.seen & (reference.entity == entity_id)
        out[entity_id] = tuple(
            locate_entity(output_smooth, reference_smooth, mask, reference.depth, entity_id, m) for m in (False, True)
        )
    return out


def static_change(
    previous_output: np.ndarray,
    previous: ShotFrameReference,
    previous_camera: Camera,
    output: np.ndarray,
    reference: ShotFrameReference,
    character_ids: set[int],
) -> tuple[float, int]:
    """Flow-free warped frame-to-frame change on the static set.

    Each pixel of the later frame is lifted with the reconstruction's depth, projected into the earlier
    frame's camera and compared with the earlier output there (bilinear). Only pixels on the static set in
    both frames (not inside a character's box, same surface in both: depths agree) count.

    Args:
        previous_output, output: [H, W, 3] in [0, 1], consecutive frames of the shot.
        previous, reference: their references (depth, points, entity labels).
        previous_camera: the shot's pinhole camera at the earlier frame.
        character_ids: entity ids of characters (moving; excluded).

    Returns:
        (mean |difference| over the channels and the static pixels, number of such pixels).
    """
    characters = np.array(sorted(character_ids), dtype=np.int32)
    static_now = reference.surface & ~np.isin(reference.entity, characters)
    then = points_in_camera(previous_camera, torch.from_numpy(reference.points.reshape(-1, 3)))

    def sample(image: np.ndarray, mode: str) -> np.ndarray:
        return then.sample(torch.from_numpy(np.ascontiguousarray(image, np.float32)), mode).numpy()

    then_depth = sample(previous.depth, "nearest")
    then_entity = sample(previous.entity.astype(np.float32), "nearest").round().astype(np.int32)
    then_colour = sample(previous_output, "bilinear")
    z = then.depth.numpy()
    same_surface = then.inside.numpy() & (then_depth > 0) & (np.abs(then_depth - z) <= 0.02 * np.maximum(z, 1e-6))
    valid = static_now.reshape(-1) & same_surface & ~np.isin(then_entity, characters)
    if not valid.any():
        return float("nan"), 0
    difference = np.abs(output.reshape(-1, 3)[valid] - then_colour[valid]).mean()
    return float(difference), int(valid.sum())


def screen_x(camera: Camera, points: np.ndarray) -> np.ndarray:
    """Horizontal pixel position of world points in each of V cameras, NaN where behind or outside.

    Args:
        camera: V cameras.
        points: [N, 3] world.

    Returns:
        [V, N] float.
    """
    projection = camera.to(torch.float64).project(torch.from_numpy(np.asarray(points, np.float64)))
    x = projection.pixels[..., 0].numpy()
    y = projection.pixels[..., 1].numpy()
    width = camera.width.numpy()[:, None]
    height = camera.height.numpy()[:, None]
    ok = (projection.depth.numpy() > 0) & (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    return np.where(ok, x, np.nan)


def established_sign(values: np.ndarray) -> int:
    """The sign most production cameras agree on (+1, -1), or 0 (tie, or none measurable).

    Args:
        values: [V] signed quantities per camera (NaN where the camera cannot tell).
    """
    signs = np.sign(values[np.isfinite(values)])
    total = int(signs.sum())
    return int(np.sign(total))
