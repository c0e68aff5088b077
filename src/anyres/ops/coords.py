"""Pixel-centre coordinate grids in [-1, 1], the convention of LIIF (Chen et al., CVPR 2021).

For an axis of n pixels the centres are ``-1 + (2 i + 1) / n``, so the outer pixel *edges* lie at -1 and
+1. Channel 0 is the row (height) coordinate and channel 1 the column (width) coordinate. A *cell* is
a query pixel's size in the same units: ``(2 / H, 2 / W)`` for an ``H x W`` output.
"""

from __future__ import annotations

import torch

__all__ = ["make_coord", "make_cell", "coord_to_index", "centres"]


def centres(n: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``(n,)`` pixel-centre coordinates of one axis: ``-1 + (2 i + 1) / n``."""
    return -1.0 + (2.0 * torch.arange(n, dtype=dtype, device=device) + 1.0) / n


def make_coord(
    height: int,
    width: int,
    *,
    flatten: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Centres of an ``height x width`` grid: ``(H * W, 2)`` in raster order, or ``(H, W, 2)`` if not flattened."""
    if height < 1 or width < 1:
        raise ValueError(f"grid size must be positive, got {height}x{width}")
    rows = centres(height, dtype, device)
    cols = centres(width, dtype, device)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2) if flatten else grid


def make_cell(
    height: int, width: int, n: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """``(n, 2)`` cells, every row ``(2 / height, 2 / width)``."""
    cell = torch.tensor([2.0 / height, 2.0 / width], dtype=dtype, device=device)
    return cell.expand(n, 2).clone()


def coord_to_index(coord: torch.Tensor, size: int) -> torch.Tensor:
    """Index of the pixel whose cell contains ``coord`` on an axis of ``size`` pixels.

    Computes exactly what ``grid_sample(mode='nearest', align_corners=False)`` computes
    (``round_half_even(((c + 1) * size - 1) / 2)``), so a gather with these indices equals a nearest
    grid_sample bit for bit; the result is clamped to ``[0, size - 1]``.
    """
    return torch.round(((coord + 1.0) * size - 1.0) / 2.0).long().clamp_(0, size - 1)
