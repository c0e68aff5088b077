"""Colour conversions used by the metrics and the models."""

from __future__ import annotations

import torch

__all__ = ["rgb_to_y_matlab", "quantize"]

# MATLAB rgb2ycbcr, Y row, for RGB in [0, 1] and Y in [16, 235] (ITU-R BT.601, studio swing).
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y_matlab(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` luma: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1, H, W)`` Y in [16, 235] (unrounded)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) RGB, got shape {tuple(rgb.shape)}")
    w = torch.tensor(_Y_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return 16.0 + (rgb * w).sum(dim=1, keepdim=True)


def quantize(x: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Clamp to [0, 1] and round to ``levels`` steps, as saving an 8-bit image does (still a float in [0, 1])."""
    return torch.round(x.clamp(0.0, 1.0) * levels) / levels
