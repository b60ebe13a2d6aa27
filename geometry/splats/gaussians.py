"""Gaussian splat parameters in gsplat's conventions (DESIGN.md §3).

Stored unconstrained, as optimized: log scales, logit opacities, unnormalized wxyz quaternions, and
colour as real spherical-harmonic coefficients (degree 0 is the DC term, 3DGS's C0 convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def rotation_matrices(quats_wxyz: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] rotation matrices of [..., 4] quaternions (w, x, y, z), normalized first."""
    q = quats_wxyz / quats_wxyz.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*quats_wxyz.shape[:-1], 3, 3)


@dataclass(frozen=True, eq=False)
class Gaussians:
    """N 3D Gaussians.

    Attributes:
        means: [N, 3] world metres.
        quats_wxyz: [N, 4] rotation (world_from_local), Hamilton wxyz, not necessarily unit.
        log_scales: [N, 3] natural log of the standard deviations along the local axes, metres.
        logit_opacities: [N] logit of the opacity.
        sh: [N, K, 3] spherical-harmonic colour coefficients, K = (degree + 1)^2, RGB.
    """

    means: torch.Tensor
    quats_wxyz: torch.Tensor
    log_scales: torch.Tensor
    logit_opacities: torch.Tensor
    sh: torch.Tensor

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        assert self.means.shape == (n, 3) and self.quats_wxyz.shape == (n, 4), "means [N,3], quats [N,4]"
        assert self.log_scales.shape == (n, 3) and self.logit_opacities.shape == (n,), "scales [N,3], opacities [N]"
        assert self.sh.dim() == 3 and self.sh.shape[0] == n and self.sh.shape[2] == 3, "sh [N,K,3]"
        k = self.sh.shape[1]
        assert int(round(k**0.5)) ** 2 == k, f"sh must have a square number of coefficients, got {k}"

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        """Highest SH degree the coefficients hold."""
        return int(round(self.sh.shape[1] ** 0.5)) - 1

    @property
    def scales(self) -> torch.Tensor:
        """[N, 3] standard deviations in metres."""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> torch.Tensor:
        """[N] opacities in (0, 1)."""
        return torch.sigmoid(self.logit_opacities)

    @property
    def rotations(self) -> torch.Tensor:
        """[N, 3, 3] world_from_local rotation matrices of the normalized quaternions."""
        return rotation_matrices(self.quats_wxyz)

    def covariances(self) -> torch.Tensor:
        """[N, 3, 3] world covariances R S S^T R^T (metres^2)."""
        rs = self.rotations * self.scales[:, None, :]
        return rs @ rs.transpose(-1, -2)


def select_gaussians(g: Gaussians, keep: torch.Tensor) -> Gaussians:
    """The Gaussians where `keep` [N] bool is True."""
    return Gaussians(g.means[keep], g.quats_wxyz[keep], g.log_scales[keep], g.logit_opacities[keep], g.sh[keep])
