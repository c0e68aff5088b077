"""Geometric augmentation of image tensors: mirror and transpose (the dihedral flips training draws)."""

from __future__ import annotations

import torch

__all__ = ["flip"]


def flip(x: torch.Tensor, hflip: bool, vflip: bool, transpose: bool = False) -> torch.Tensor:
    """``x`` ``(..., H, W)`` mirrored left-right, then up-down, then transposed (``(..., W, H)``), as asked."""
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if transpose:
        x = x.transpose(-1, -2)
    return x
