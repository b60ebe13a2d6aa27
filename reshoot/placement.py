"""Where each character and prop is in a shot's output frame, found in the pixels themselves.

The production cameras' footage of an entity, carried into the shot camera with the registered geometry
(`reprojection.py`), is a template of how the entity must look and where it must be: each of its
pixels is a correspondence between a source pixel, its 3D point (inside the layout's box of the
entity) and the shot pixel that point projects to. The template is searched for in the output frame,
within `SEARCH_RADIUS_PX` of that place, by masked zero-mean normalized cross-correlation (OpenCV's
`matchTemplate` does exactly this with a mask; normalized, so that a change of exposure between the
cameras and the output does not matter), refined to a fraction of a pixel. The offset between where
the entity is found and where the geometry puts it is the placement error, in pixels and, at the
entity's depth in the shot, in metres. An entity whose best correlation stays below the checks'
`found` threshold is not there (deleted, moved further than the search radius, or unrecognisable).

The same search with the template mirrored left-right, around the mirrored place, tells whether the
frame shows the scene the right way round (`mirrored=True`): a flipped output matches it better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEARCH_RADIUS_PX = 32
"""How far from where the geometry puts an entity it is looked for (full-resolution pixels)."""
MIN_TEMPLATE_PIXELS = 40
"""Fewer reference pixels of an entity than this, and it is not measured in that frame."""
SMOOTHING_SIGMA_PX = 1.0
"""Template and frame are smoothed (masked) this much first: the reference is resampled footage, so
single pixels are noisy and a pixel off; correlation of the smoothed images is stabler."""


@dataclass(frozen=True)
class EntityLocation:
    """One entity in one output frame.

    Attributes:
        entity_id: the layout's id.
        pixels: reference pixels of the entity (its template size).
        measured: the template had at least MIN_TEMPLATE_PIXELS pixels.
        offset_px: (dx, dy) where the entity is in the output minus where the geometry puts it, pixels
            (NaN when not measured).
        score: normalized cross-correlation of template and output at the found place, in [-1, 1].
        depth_m: median z-depth of the entity's template pixels in the shot camera (world units).
        expected_px: (x, y) mean pixel position of the template, where the geometry puts the entity.
    """

    entity_id: int
    pixels: int
    measured: bool
    offset_px: tuple[float, float]
    score: float
    depth_m: float
    expected_px: tuple[float, float]

    @property
    def error_px(self) -> float:
        """Length of the offset (pixels)."""
        return float(np.hypot(*self.offset_px))

    def error_m(self, focal_px: float) -> float:
        """The offset at the entity's depth, in world units (metres when the registration has a scale)."""
        return self.error_px * self.depth_m / focal_px


def _correlation_map(image: np.ndarray, template: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked normalized cross-correlation of `template` at every placement in `image` ([h', w'], -1
    where undefined, e.g. over a flat padded border)."""
    import cv2

    scores = cv2.matchTemplate(
        image, template, cv2.TM_CCOEFF_NORMED, mask=np.repeat(mask[..., None], 3, -1).astype(np.float32)
    )
    return np.nan_to_num(scores, nan=-1.0, posinf=-1.0, neginf=-1.0).clip(-1, 1)


def _subpixel(scores: np.ndarray, row: int, col: int) -> tuple[float, float]:
    """Parabola-fitted sub-pixel refinement of a score maximum (dx, dy in [-0.5, 0.5])."""

    def vertex(left: float, centre: float, right: float) -> float:
        curvature = 2 * centre - left - right
        return float(np.clip(0.5 * (right - left) / curvature, -0.5, 0.5)) if curvature > 1e-12 else 0.0

    dx = vertex(scores[row, col - 1], scores[row, col], scores[row, col + 1]) if 0 < col < scores.shape[1] - 1 else 0.0
    dy = vertex(scores[row - 1, col], scores[row, col], scores[row + 1, col]) if 0 < row < scores.shape[0] - 1 else 0.0
    return dx, dy


def smoothed(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Gaussian smoothing (SMOOTHING_SIGMA_PX) of [H, W, 3]; with a mask, only masked pixels contribute."""
    import cv2

    image = np.ascontiguousarray(image, np.float32)
    if mask is None:
        return cv2.GaussianBlur(image, (0, 0), SMOOTHING_SIGMA_PX)
    weight = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), SMOOTHING_SIGMA_PX)
    blurred = cv2.GaussianBlur(image * mask[..., None], (0, 0), SMOOTHING_SIGMA_PX)
    return blurred / np.maximum(weight, 1e-6)[..., None]


def locate_entity(
    output: np.ndarray, colour: np.ndarray, mask: np.ndarray, depth: np.ndarray, entity_id: int, mirrored: bool = False
) -> EntityLocation:
    """Find one entity's template in an output frame, near where the geometry puts it.

    Args:
        output: [H, W, 3] float32 in [0, 1], the shot's frame, smoothed with `smoothed`.
        colour: [H, W, 3] float32, the reference (footage carried into the shot), smoothed with
            `smoothed(colour, seen)`.
        mask: [H, W] bool, the reference pixels of this entity.
        depth: [H, W] float32 shot z-depth of the reference's surface.
        entity_id: the layout's id (copied into the result).
        mirrored: look for the left-right mirror image of the template around the mirrored place
            (the offset is then relative to the mirrored place).
    """
    import cv2

    count = int(mask.sum())
    ys, xs = np.nonzero(mask)
    nan = float("nan")
    if count < MIN_TEMPLATE_PIXELS:
        centre = (float(xs.mean()), float(ys.mean())) if count else (nan, nan)
        return EntityLocation(entity_id, count, False, (nan, nan), nan, nan, centre)
    height, width = mask.shape
    depth_m = float(np.median(depth[mask]))
    if mirrored:
        colour, mask, xs = colour[:, ::-1], mask[:, ::-1], width - 1 - xs
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    template = np.ascontiguousarray(colour[y0:y1, x0:x1], np.float32)
    weights = np.ascontiguousarray(mask[y0:y1, x0:x1], np.float32)
    th, tw = template.shape[:2]
    radius = SEARCH_RADIUS_PX
    # A flat border (correlates with nothing) lets an entity at the frame's edge be found partly outside it.
    padded = cv2.copyMakeBorder(
        np.ascontiguousarray(output, np.float32),
        radius,
        radius,
        radius,
        radius,
        cv2.BORDER_CONSTANT,
        value=(0.0, 0.0, 0.0),
    )
    window = padded[y0 : y1 + 2 * radius, x0 : x1 + 2 * radius]
    scores = _correlation_map(np.ascontiguousarray(window), template, weights)
    row, col = np.unravel_index(scores.argmax(), scores.shape)
    sub_x, sub_y = _subpixel(scores, row, col)
    offset = (col - radius + sub_x, row - radius + sub_y)
    return EntityLocation(
        entity_id,
        count,
        True,
        (float(offset[0]), float(offset[1])),
        float(scores[row, col]),
        depth_m,
        (float(xs.mean()), float(ys.mean())),
    )
