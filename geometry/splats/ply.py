"""Gaussian splats as the de-facto standard 3DGS `.ply` (read by SuperSplat and other viewers).

One vertex per Gaussian with float32 properties: x y z, nx ny nz (zeros), f_dc_0..2 (SH degree 0),
f_rest_0..M (higher SH, channel-major: all of red's coefficients, then green's, then blue's),
opacity (logit), scale_0..2 (log), rot_0..3 (quaternion wxyz, unnormalized). Written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import FormatError
from ..files import atomic_path
from .gaussians import Gaussians


def write_splat_ply(path: str | Path, gaussians: Gaussians) -> None:
    """Write Gaussians as a binary little-endian 3DGS .ply."""
    from plyfile import PlyData, PlyElement

    n, k = len(gaussians), gaussians.sh.shape[1]
    sh = gaussians.sh.detach().cpu().float().numpy()
    rest = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1))  # channel-major, as 3DGS
    values = [
        gaussians.means.detach().cpu().float().numpy(),
        np.zeros((n, 3), np.float32),
        sh[:, 0, :],
        rest,
        gaussians.logit_opacities.detach().cpu().float().numpy()[:, None],
        gaussians.log_scales.detach().cpu().float().numpy(),
        gaussians.quats_wxyz.detach().cpu().float().numpy(),
    ]
    names = (
        ["x", "y", "z", "nx", "ny", "nz"]
        + [f"f_dc_{i}" for i in range(3)]
        + [f"f_rest_{i}" for i in range(3 * (k - 1))]
        + ["opacity"]
        + [f"scale_{i}" for i in range(3)]
        + [f"rot_{i}" for i in range(4)]
    )
    data = np.concatenate(values, axis=1).astype(np.float32)
    vertices = np.empty(n, dtype=[(name, "f4") for name in names])
    for i, name in enumerate(names):
        vertices[name] = data[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(vertices, "vertex")], byte_order="<").write(str(tmp))


def read_splat_ply(path: str | Path) -> Gaussians:
    """Read a 3DGS .ply (ours or another tool's) into Gaussians (float32).

    Raises:
        FormatError: the file lacks the 3DGS vertex properties.
    """
    from plyfile import PlyData

    vertex = PlyData.read(str(path))["vertex"]
    names = [p.name for p in vertex.properties]
    needed = [
        "x",
        "y",
        "z",
        "f_dc_0",
        "f_dc_1",
        "f_dc_2",
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]
    missing = [n for n in needed if n not in names]
    if missing:
        raise FormatError(f"{path}: not a Gaussian-splat .ply (missing vertex properties {missing}).")
    rest = sorted((n for n in names if n.startswith("f_rest_")), key=lambda n: int(n.split("_")[-1]))
    k = 1 + len(rest) // 3

    def stack(keys):
        return torch.from_numpy(np.stack([np.asarray(vertex[key], np.float32) for key in keys], axis=1))

    dc = stack(["f_dc_0", "f_dc_1", "f_dc_2"])[:, None, :]
    higher = stack(rest).reshape(-1, 3, k - 1).transpose(1, 2) if rest else torch.zeros(len(dc), 0, 3)
    return Gaussians(
        stack(["x", "y", "z"]),
        stack([f"rot_{i}" for i in range(4)]),
        stack([f"scale_{i}" for i in range(3)]),
        stack(["opacity"])[:, 0],
        torch.cat([dc, higher], 1),
    )
