"""sRGB <-> CIE 1976 L*a*b* (D65) as pure, batched, differentiable functions.

sRGB decoded to linear light, :data:`SRGB_TO_XYZ`, division by :data:`WHITE_D65` (the matrix's row sums),
then ``L = 116 f(Y) - 16``, ``a = 500 (f(X) - f(Y))``, ``b = 200 (f(Y) - f(Z))``. Every function maps
``(B, 3, H, W)`` float to ``(B, 3, H, W)`` in the input's dtype and device; RGB nominally in [0, 1], ``L`` in
[0, 100]; gradients finite everywhere. The chain, ranges and clamping: docs/methods/deeplpf.md, "sRGB <-> CIELab".
"""

from __future__ import annotations

import torch

from anyres.checks import check_image

__all__ = [
    "SRGB_TO_XYZ",
    "WHITE_D65",
    "srgb_to_linear",
    "linear_to_srgb",
    "rgb_to_xyz",
    "xyz_to_rgb",
    "xyz_to_lab",
    "lab_to_xyz",
    "rgb_to_lab",
    "lab_to_rgb",
]

# Linear sRGB -> CIE XYZ (D65), the IEC 61966-2-1 primaries to seven decimals.
SRGB_TO_XYZ: tuple[tuple[float, float, float], ...] = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
# The XYZ of sRGB white under that matrix (its row sums): (0.95047, 1.0000001, 1.08883).
WHITE_D65: tuple[float, float, float] = tuple(sum(row) for row in SRGB_TO_XYZ)  # type: ignore[assignment]

_SRGB_KNEE = 0.04045  # encoded value where the sRGB curve turns from linear to the power law
_LINEAR_KNEE = 0.04045 / 12.92  # the same point in linear light (0.0031308...)
_DELTA = 6.0 / 29.0  # CIE Lab: f is a cube root above DELTA^3, linear below


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix, x)


def _matrix(like: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    m = torch.tensor(SRGB_TO_XYZ, dtype=torch.float64)
    if inverse:
        m = torch.linalg.inv(m)
    return m.to(device=like.device, dtype=like.dtype)


def _white(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(WHITE_D65, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Decode the sRGB transfer function: ``(B, 3, H, W)`` encoded values -> linear light, same shape."""
    check_image(rgb, "rgb", channels=3)
    power = ((rgb.clamp_min(_SRGB_KNEE) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb <= _SRGB_KNEE, rgb / 12.92, power)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Encode linear light with the sRGB transfer function (inverse of :func:`srgb_to_linear`), same shape."""
    check_image(linear, "linear", channels=3)
    power = 1.055 * linear.clamp_min(_LINEAR_KNEE) ** (1.0 / 2.4) - 0.055
    return torch.where(linear <= _LINEAR_KNEE, linear * 12.92, power)


def rgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] -> CIE XYZ (D65, Y of white = 1), same shape."""
    return _mix(_matrix(rgb), srgb_to_linear(rgb))


def xyz_to_rgb(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) -> sRGB, the inverse of :func:`rgb_to_xyz` (not clamped to the gamut)."""
    check_image(xyz, "xyz", channels=3)
    return linear_to_srgb(_mix(_matrix(xyz, inverse=True), xyz))


def xyz_to_lab(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) ``(B, 3, H, W)`` -> ``(L, a, b)``, same shape; white ``WHITE_D65`` -> ``(100, 0, 0)``."""
    check_image(xyz, "xyz", channels=3)
    t = xyz / _white(xyz)
    cube_root = t.clamp_min(_DELTA**3) ** (1.0 / 3.0)
    f = torch.where(t > _DELTA**3, cube_root, t / (3.0 * _DELTA**2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_xyz(lab: torch.Tensor) -> torch.Tensor:
    """``(L, a, b)`` -> CIE XYZ (D65), the inverse of :func:`xyz_to_lab`."""
    check_image(lab, "lab", channels=3)
    light, a, b = lab.unbind(1)
    fy = (light + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=1)
    t = torch.where(f > _DELTA, f**3, 3.0 * _DELTA**2 * (f - 4.0 / 29.0))
    return t * _white(lab)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] -> CIE L*a*b* (D65): ``L`` in [0, 100], ``a``, ``b`` unscaled.

    Known values: white -> (100, 0, 0), black -> (0, 0, 0), red (1, 0, 0) -> (53.24, 80.09, 67.20).
    """
    return xyz_to_lab(rgb_to_xyz(rgb))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (D65) -> sRGB, the inverse of :func:`rgb_to_lab` (not clamped to the gamut)."""
    return xyz_to_rgb(lab_to_xyz(lab))
