"""Colour conversions: MATLAB luma for the metrics, the BT.601 gray convention, 8-bit quantisation."""

from __future__ import annotations

import torch

__all__ = ["rgb_to_y_matlab", "quantize", "to_rgb", "from_rgb_gray", "LUMA"]

# MATLAB rgb2ycbcr, Y row, for RGB in [0, 1] and Y in [16, 235] (ITU-R BT.601, studio swing).
_Y_WEIGHTS = (65.481, 128.553, 24.966)
# The gray convention everywhere else: ITU-R BT.601 luma weights, same range as the RGB.
LUMA = (0.299, 0.587, 0.114)


def rgb_to_y_matlab(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` luma: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1, H, W)`` Y in [16, 235] (unrounded)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) RGB, got shape {tuple(rgb.shape)}")
    w = torch.tensor(_Y_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return 16.0 + (rgb * w).sum(dim=1, keepdim=True)


def quantize(x: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Clamp to [0, 1] and round to ``levels`` steps, as saving an 8-bit image does (still a float in [0, 1])."""
    return torch.round(x.clamp(0.0, 1.0) * levels) / levels


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 3, H, W) by repeating the gray channel; (B, 3, H, W) is returned unchanged."""
    if x.shape[1] == 3:
        return x
    if x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x.repeat(1, 3, 1, 1)


def from_rgb_gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) ITU-R BT.601 luma (same range as the input); 1 channel is returned unchanged."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)
