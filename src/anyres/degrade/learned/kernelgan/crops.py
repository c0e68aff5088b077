"""Where KernelGAN crops: gradient-weighted maps of the image's edges, and crop corners drawn from them.

Maps are ``(H, W)``; corners are ``(count, 2)`` int64 ``(top, left)``, even so that ``G``'s stride-2 grid keeps
one phase.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from anyres.ops.color import from_rgb_gray

__all__ = ["gradient_map", "crop_probability", "sample_crop_corners"]


def _box_blur(m: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a ``size`` x ``size`` window (zeros outside the map; even sizes reach one more pixel back
    than forth), same-size output. ``m`` is ``(H, W)``."""
    before, after = size // 2, size - 1 - size // 2
    x = F.pad(m[None, None], (before, after, before, after))
    ones = torch.full((1, 1, 1, size), 1.0 / size, dtype=m.dtype, device=m.device)
    x = F.conv2d(x, ones)
    x = F.conv2d(x, ones.transpose(-1, -2))
    return x[0, 0]


def _zero_border(m: torch.Tensor, width: int) -> torch.Tensor:
    out = torch.zeros_like(m)
    h, w = m.shape
    if 2 * width < h and 2 * width < w:
        out[width : h - width, width : w - width] = m[width : h - width, width : w - width]
    return out


def _top_fraction(m: torch.Tensor, keep: float) -> torch.Tensor:
    """Indicator of the values above the ``1 - keep`` quantile (nearest rank), normalised to sum 1; all
    zeros if no value stands out (e.g. no vertical gradient anywhere: that map then casts no vote)."""
    flat = m.flatten()
    rank = min(int((1.0 - keep) * flat.numel()), flat.numel() - 1)
    pivot = torch.kthvalue(flat, rank + 1).values
    top = (m > pivot).to(m.dtype)
    total = top.sum()
    return top / total if total > 0 else top


def gradient_map(image: torch.Tensor, border: int = 5, keep: float = 0.03, window: int = 5) -> torch.Tensor:
    """Where an image has its strongest edges: KernelGAN's "loss map", ``(H, W)`` with mean 1.

    From the gray image (BT.601): central-difference gradients ``gx, gy`` (one-sided at the borders, like
    ``numpy.gradient``); for each of ``|gx|``, ``|gy|`` and ``sqrt(gx^2 + gy^2)``: zero ``border`` pixels at
    the edges, keep the top ``keep`` fraction as an indicator, normalise to sum 1; add the three, blur
    with a ``window`` x ``window`` box, normalise to mean 1. A map without any gradient is uniform.

    Args:
        image: ``(1, C, H, W)`` or ``(C, H, W)``, C in {1, 3}, any range.
    """
    img = image if image.dim() == 4 else image[None]
    gray = from_rgb_gray(img)[0, 0].to(torch.float64)
    gy, gx = torch.gradient(gray)
    comb = torch.zeros_like(gray)
    for g in (gx.abs(), gy.abs(), torch.sqrt(gx * gx + gy * gy)):
        comb += _top_fraction(_zero_border(g, border), keep)
    if not comb.sum() > 0:  # no edges at all (the reference divides 0 by 0 here): every pixel counts the same
        comb = torch.ones_like(comb)
    blurred = _box_blur(comb, window)
    return blurred / blurred.mean()


def crop_probability(loss_map: torch.Tensor, crop: int) -> torch.Tensor:
    """Probability of each pixel being a crop centre: ``loss_map`` box-blurred over ``crop // 2`` pixels,
    zero within ``crop // 2`` of the edges, normalised to sum 1 (uniform if nothing is left). ``(H, W)``."""
    half = crop // 2
    prob = _zero_border(_box_blur(loss_map, half), half)
    total = prob.sum()
    if not total > 0:
        return torch.full_like(loss_map, 1.0 / loss_map.numel())
    return prob / total


def sample_crop_corners(prob: torch.Tensor, crop: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``count`` crop centres from ``prob`` (``(H, W)``, summing to 1) and turn them into top-left corners.

    A centre ``(r, c)`` gives ``top = clamp(r - crop // 2, 0, H - crop)`` rounded down to even (and the same
    for ``left``), so G's stride-2 grid keeps one phase. Returns ``(count, 2)`` int64 ``(top, left)``.
    """
    h, w = prob.shape
    cdf = torch.cumsum(prob.flatten().to(torch.float64).cpu(), 0)
    u = torch.rand(count, generator=generator, dtype=torch.float64) * cdf[-1]
    idx = torch.searchsorted(cdf, u, right=True).clamp_max(h * w - 1)  # never a zero-probability pixel
    rows, cols = idx // w, idx % w
    top = (rows - crop // 2).clamp(0, h - crop)
    left = (cols - crop // 2).clamp(0, w - crop)
    return torch.stack([top - top % 2, left - left % 2], dim=1)
