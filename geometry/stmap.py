"""Lens distortion as ST-maps for compositing (Nuke's STMap node; Fusion, Flame and Resolve read the same).

An ST-map is an image whose red and green channels say, for each of its pixels, where to sample the
*input* image, as (s, t) in [0, 1]: s from the left edge, t from the **bottom** edge (Nuke's y-up
image space), pixel (x, y) of the input (reshoot's pixels: (0, 0) the centre of the top-left pixel,
y down) at s = (x + 0.5) / W, t = 1 - (y + 0.5) / H. Two maps per distorted camera:

- `<camera>_undistort.exr`: plate → pinhole. Each pixel of the undistorted (pinhole, same K) image
  samples the plate where the lens put that ray (OpenCV's distortion applied to it).
- `<camera>_distort.exr`: pinhole → plate. Each pixel of the plate samples the undistorted image
  where its ray lands without the lens (the distortion inverted; kornia's fixed-point iteration).

The maps are float32 (half precision would round s, t to about 0.3 px at 640 px) and B is 0.
Distortion is `Camera`'s (`distort_pixels`, `undistort_pixels`: OpenCV k1 k2 p1 p2 k3 via kornia), as
everywhere in reshoot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .camera import Camera
from .errors import FormatError, InputError


def _pixel_grid(width: int, height: int) -> torch.Tensor:
    """[H * W, 2] float64 (x, y) of every pixel centre, row by row."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    return torch.stack([xs.ravel(), ys.ravel()], dim=-1)


def _to_st(pixels: torch.Tensor, width: int, height: int) -> np.ndarray:
    """[H * W, 2] pixels (x, y) → [H, W, 2] (s, t), Nuke's convention (module docstring)."""
    s = (pixels[:, 0] + 0.5) / width
    t = 1.0 - (pixels[:, 1] + 0.5) / height
    return torch.stack([s, t], dim=-1).reshape(height, width, 2).numpy()


def st_to_pixels(st: np.ndarray, width: int, height: int) -> np.ndarray:
    """[..., 2] (s, t) → [..., 2] (x, y) pixels of an image of `width` × `height` (reshoot's pixels)."""
    st = np.asarray(st, np.float64)
    return np.stack([st[..., 0] * width - 0.5, (1.0 - st[..., 1]) * height - 0.5], axis=-1)


def stmaps(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """The undistort and distort maps of camera 0 (see the module docstring).

    Returns:
        (undistort, distort): each [H, W, 2] float64 (s, t).
    """
    width, height = int(camera.width[0]), int(camera.height[0])
    lens = camera.select([0]).to(torch.float64, "cpu")
    grid = _pixel_grid(width, height)[None]
    on_plate = lens.distort_pixels(grid)[0]
    on_pinhole = lens.undistort_pixels(grid)[0]
    return _to_st(on_plate, width, height), _to_st(on_pinhole, width, height)


def write_stmaps(folder: str | Path, cameras: Camera) -> list[Path]:
    """Write `<camera>_undistort.exr` and `<camera>_distort.exr` into `folder` for every camera with lens
    distortion (none for pinhole cameras). Returns the files written."""
    import OpenEXR

    folder = Path(folder)
    written = []
    for i, name in enumerate(cameras.names):
        if not bool(cameras.has_distortion[i]):
            continue
        for kind, st in zip(("undistort", "distort"), stmaps(cameras.select([i]))):
            rgb = np.concatenate([st, np.zeros(st.shape[:2] + (1,))], axis=-1).astype(np.float32)
            header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
            path = folder / f"{name}_{kind}.exr"
            with OpenEXR.File(header, {"RGB": rgb}) as exr:
                exr.write(str(path))
            written.append(path)
    return written


def read_stmap(path: str | Path) -> np.ndarray:
    """[H, W, 2] float32 (s, t) of an ST-map EXR (its R and G channels).

    Raises:
        InputError: the file is missing; FormatError: no R and G channels.
    """
    import OpenEXR

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist.")
    with OpenEXR.File(str(path)) as exr:
        channels = exr.channels()
        if "RGB" in channels:
            return np.array(channels["RGB"].pixels[..., :2], dtype=np.float32)
        if "R" in channels and "G" in channels:
            return np.stack([channels["R"].pixels, channels["G"].pixels], axis=-1).astype(np.float32)
    raise FormatError(f"{path}: an ST-map needs R and G channels (has {sorted(channels)}).")
