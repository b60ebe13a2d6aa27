"""Filmed pixels are kept: where a production camera filmed a surface and the render agrees with what it
filmed, the shot shows the render, whatever an engine made there.

A pixel's keep weight is 1 when all of these hold, 0 otherwise, then feathered inward (it ramps from 0 at
the edge of the region to 1 at `FEATHER_PX` pixels inside, so no seam shows and nothing outside the region
is kept):
- filmed: a production camera had a clear line of sight to its surface at that frame (the conditioning's
  `filmed` pass, `reprojection.filmed_mask`: the cameras agree on the geometry);
- covered: the render's coverage is at least `KEEP_MIN_COVERAGE` (the rest of the pixel is environment);
- agreeing: the render's colour is within `KEEP_COLOUR_TOLERANCE` of the footage of some camera whose
  image holds the point (mean absolute difference over R, G, B, footage-encoded), averaged over
  `KEEP_AREA_PX` × `KEEP_AREA_PX` pixels: per pixel, a sub-pixel misregistration on fine texture (brick
  joints) disagrees in speckles, which the feathering would turn into a sieve. A character the
  reconstruction smeared is filmed but disagrees over its whole area, and is left to the engine.
  The local disagreement is also averaged over `KEEP_TEMPORAL_FRAMES` consecutive frames (image space):
  decided frame by frame, the region's edge flickers and the shot with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reshoot.geometry.camera import Camera
from reshoot.reprojection import pixel_points

KEEP_MIN_COVERAGE = 0.5
KEEP_COLOUR_TOLERANCE = 0.08
KEEP_AREA_PX = 9
KEEP_TEMPORAL_FRAMES = 5
FEATHER_PX = 12.0


def colour_disagreement(
    rgb: torch.Tensor, depth: torch.Tensor, shot: Camera, sources: Camera, footage: Sequence[torch.Tensor]
) -> torch.Tensor:
    """How far the render's colour is from the footage that holds each pixel's surface point.

    Args:
        rgb: [H, W, 3] the render in the shot camera, [0, 1].
        depth: [H, W] its z-depth (world units); pixels without depth get inf.
        shot: one pinhole shot camera.
        sources: V production cameras (lens distortion applied: `footage` is what they recorded).
        footage: V frames [h_v, w_v, 3] in [0, 1], each at its camera's own size (a rig may mix sizes).

    Returns:
        [H, W] float32: the smallest mean |render − footage| over the sources whose image holds the point in
        front of them (bilinear sample), inf where none does.
    """
    height, width = depth.shape
    projection = sources.to(torch.float64).project(pixel_points(shot, depth))
    colour = rgb.reshape(-1, 3).T.float()  # [3, N]
    best = torch.full((height * width,), np.inf)
    for v, frame in enumerate(footage):
        fh, fw = frame.shape[:2]
        x, y = projection.pixels[v, :, 0], projection.pixels[v, :, 1]
        inside = (projection.depth[v] > 0) & (x >= -0.5) & (x <= fw - 0.5) & (y >= -0.5) & (y <= fh - 0.5)
        grid = torch.stack([(x + 0.5) / fw * 2 - 1, (y + 0.5) / fh * 2 - 1], dim=-1)[None, None].float()
        sampled = F.grid_sample(frame.permute(2, 0, 1)[None].float(), grid, mode="bilinear", align_corners=False)
        difference = (sampled[0, :, 0] - colour).abs().mean(dim=0)
        best = torch.where(inside, torch.minimum(best, difference), best)
    best[depth.reshape(-1) <= 0] = np.inf
    return best.reshape(height, width)


def feathered(region: np.ndarray, feather_px: float = FEATHER_PX) -> np.ndarray:
    """[H, W] float32 weight of a bool region: its distance to the nearest pixel outside, / feather_px,
    capped at 1 (0 outside)."""
    if not region.any():
        return np.zeros(region.shape, np.float32)
    distance = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(distance / feather_px, 0, 1).astype(np.float32)


def keep_weights(filmed: np.ndarray, alpha: np.ndarray, disagreement: np.ndarray) -> np.ndarray:
    """[T, H, W] float32 keep weights of a shot's frames (see the module docstring) from their filmed masks,
    coverage and colour disagreement ([T, H, W] each, consecutive frames)."""
    from scipy.ndimage import uniform_filter1d

    local = np.stack(
        [cv2.blur(np.minimum(d, 1.0).astype(np.float32), (KEEP_AREA_PX, KEEP_AREA_PX)) for d in disagreement]
    )
    steady = uniform_filter1d(local, KEEP_TEMPORAL_FRAMES, axis=0, mode="nearest")
    regions = filmed & (alpha >= KEEP_MIN_COVERAGE) & (steady <= KEEP_COLOUR_TOLERANCE)
    return np.stack([feathered(region) for region in regions])


def composite(
    render: torch.Tensor, made: torch.Tensor, generated: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The shot's frames: the render where it is kept, the engine's frames elsewhere, blended by weight.

    Args:
        render: [T, H, W, 3] the conditioning's render.
        made: [T, H, W, 3] the engine's frames.
        generated: [T, H, W] how much of each the engine made.
        keep: [T, H, W] the keep weight.

    Returns:
        ([T, H, W, 3] frames, [T, H, W] how much of each pixel the engine made in the end).
    """
    w = keep[..., None]
    return w * render + (1 - w) * made, (1 - keep) * generated
