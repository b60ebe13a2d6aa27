"""Real spherical harmonics up to degree 3, as 3DGS and gsplat evaluate view-dependent colour.

colour(d) = sum_k sh[k] * Y_k(d) + 0.5, clamped at 0, with d the unit direction from the camera centre
to the Gaussian. The basis is orthonormal on the sphere (tested); signs follow 3DGS so that
coefficients trained elsewhere (gsplat, 3DGS .ply files) mean the same here.
"""

from __future__ import annotations

import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """Real SH basis functions.

    Args:
        degree: 0 to 3.
        dirs: [..., 3] unit directions.

    Returns:
        [..., (degree + 1)^2].
    """
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0 to 3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [C2[0] * xy, C2[1] * yz, C2[2] * (2 * zz - xx - yy), C2[3] * xz, C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            C3[0] * y * (3 * xx - yy),
            C3[1] * xy * z,
            C3[2] * y * (4 * zz - xx - yy),
            C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            C3[4] * x * (4 * zz - xx - yy),
            C3[5] * z * (xx - yy),
            C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def sh_to_rgb(sh: torch.Tensor, dirs: torch.Tensor, degree: int | None = None) -> torch.Tensor:
    """Colour of SH coefficients seen along `dirs`.

    Args:
        sh: [..., K, 3] coefficients.
        dirs: [..., 3] directions (normalized here).
        degree: use coefficients up to this degree (the SH schedule of training); default all.

    Returns:
        [..., 3] colour, >= 0 (not clamped above, as in gsplat).
    """
    k = sh.shape[-2]
    degree = int(round(k**0.5)) - 1 if degree is None else degree
    basis = sh_basis(degree, dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12))
    n = (degree + 1) ** 2
    return torch.clamp_min((basis[..., :n, None] * sh[..., :n, :]).sum(-2) + 0.5, 0.0)


def rgb_to_sh_dc(rgb: torch.Tensor) -> torch.Tensor:
    """The degree-0 coefficient that shows colour `rgb` [..., 3] from every direction."""
    return (rgb - 0.5) / C0
