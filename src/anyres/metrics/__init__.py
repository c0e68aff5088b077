"""Image-quality metrics under explicitly named evaluation protocols.

Computed in float64 on images rounded to 8 bits: ``benchmark`` (Y of MATLAB ``rgb2ycbcr``, shave ``ceil(s)``),
``div2k`` (RGB, shave ``ceil(s) + 6``) and ``rgb`` (RGB, no shave; enhancement). PSNR with peak 255; SSIM is
MATLAB's (Gaussian 11x11, sigma 1.5, 'valid'). LPIPS (:mod:`anyres.metrics.lpips`) reads its weights on first
use. The protocols in full: docs/methods/classical.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The function shadows its submodule's name here on purpose: ``from anyres.metrics import lpips`` is the
# function; reach the module with ``from anyres.metrics.lpips import ...`` or ``importlib.import_module``.
# Importing it reads no weights (they load on the first call).
from anyres.metrics.lpips import lpips
from anyres.ops.color import quantize, rgb_to_y_matlab

__all__ = ["PROTOCOLS", "RGB_PROTOCOL", "psnr", "ssim", "lpips", "prepare", "shave_for", "measure"]

PROTOCOLS = ("benchmark", "div2k")  # the SR protocols
RGB_PROTOCOL = "rgb"  # same-size results (enhancement): RGB, no shave


def shave_for(scale: float, protocol: str) -> int:
    """Border width removed on each side before measuring."""
    _check_protocol(protocol)
    if protocol == RGB_PROTOCOL:
        return 0
    base = int(math.ceil(float(scale) - 1e-9))
    return base if protocol == "benchmark" else base + 6


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS and protocol != RGB_PROTOCOL:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {[*PROTOCOLS, RGB_PROTOCOL]}")


def prepare(img: torch.Tensor, scale: float, protocol: str = "benchmark") -> torch.Tensor:
    """Turn an image into the float64 0-255 array a protocol measures.

    Args:
        img: ``(B, C, H, W)`` with C = 1 (grayscale) or 3 (RGB), values in [0, 1] (clamped).
    Returns:
        ``(B, C', H - 2 b, W - 2 b)`` float64 in [0, 255], b = :func:`shave_for`; C' = 1 for ``benchmark``.
    """
    _check_protocol(protocol)
    if img.dim() != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 1|3, H, W), got shape {tuple(img.shape)}")
    x = quantize(img.detach().to(torch.float64))
    if protocol == "benchmark":
        x = torch.round(rgb_to_y_matlab(x)) if x.shape[1] == 3 else x * 255.0
    else:
        x = x * 255.0
    b = shave_for(scale, protocol)
    if b:
        if x.shape[-2] <= 2 * b or x.shape[-1] <= 2 * b:
            raise ValueError(f"image of size {tuple(x.shape[-2:])} is too small to shave {b} pixels per side")
        x = x[..., b:-b, b:-b]
    return x


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 255.0) -> torch.Tensor:
    """PSNR in dB per batch item between two same-shaped ``(B, C, H, W)`` arrays (inf when equal)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = (a.to(torch.float64) - b.to(torch.float64)).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(peak**2 / mse)


def gaussian_taps(size: int, sigma: float) -> torch.Tensor:
    """``(size,)`` float64 Gaussian taps summing to 1, centred: one axis of SSIM's window."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(r**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim_statistics(
    a: torch.Tensor, b: torch.Tensor, filt: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Local means, variances and covariance of SSIM under the window filter ``filt``:
    ``(mu_a, mu_b, var_a, var_b, cov)``, each ``filt``'s output shape."""
    mu_a, mu_b = filt(a), filt(b)
    return mu_a, mu_b, filt(a * a) - mu_a**2, filt(b * b) - mu_b**2, filt(a * b) - mu_a * mu_b


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 255.0, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """MATLAB-style SSIM per batch item of ``(B, C, H, W)`` arrays in [0, peak], mean over channels and the valid map."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.shape[-1] < window or a.shape[-2] < window:
        raise ValueError(f"SSIM needs at least {window}x{window} pixels, got {tuple(a.shape[-2:])}")
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    c = a.shape[1]
    g = gaussian_taps(window, sigma).to(a.device)
    w = (g[:, None] * g[None, :]).expand(c, 1, window, window)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b, var_a, var_b, cov = ssim_statistics(a, b, filt)
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).flatten(1).mean(dim=1)


@dataclass
class Score:
    psnr: float
    ssim: float


def measure(sr: torch.Tensor, hr: torch.Tensor, scale: float, protocol: str = "benchmark") -> Score:
    """PSNR and SSIM of one ``(1, C, H, W)`` result against its ground truth under a protocol."""
    if sr.shape != hr.shape:
        raise ValueError(f"SR shape {tuple(sr.shape)} differs from HR shape {tuple(hr.shape)}")
    a, b = prepare(sr, scale, protocol), prepare(hr, scale, protocol)
    return Score(psnr=float(psnr(a, b)[0]), ssim=float(ssim(a, b)[0]))
