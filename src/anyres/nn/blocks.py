"""Reusable blocks: residual blocks and a plain MLP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ResBlock", "MLP", "conv3x3", "unet_down"]


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResBlock(nn.Module):
    """EDSR residual block: conv-ReLU-conv, scaled by ``res_scale``, added to the input; no BatchNorm."""

    def __init__(self, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(torch.relu(self.conv1(x)))
        return x + y * self.res_scale if self.res_scale != 1.0 else x + y


class MLP(nn.Module):
    """Linear + ReLU per hidden width, then a final Linear (no normalisation, no dropout)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int]):
        super().__init__()
        dims = [in_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


def unet_down(feat: torch.Tensor, blocks: Sequence[nn.Module]) -> list[torch.Tensor]:
    """The contracting path of a U-Net: each block after a 2x2 max pool (none before the first).

    Returns every level's output, shallowest first; the last is the bottleneck.
    """
    levels = []
    for level, block in enumerate(blocks):
        if level:
            feat = nn.functional.max_pool2d(feat, 2)
        feat = block(feat)
        levels.append(feat)
    return levels
