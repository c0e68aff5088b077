"""DeepLPF's networks before the filters: the U-Net backbone and the filter-parameter heads.

``UNetBackbone``: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, C, H, W)`` (channels 0-2 the backbone image ``Y1``,
unbounded; any ``H, W``: padded to a multiple of 16, at least 32, then cropped back). ``ParameterHead``:
``(B, C, H, W)`` -> raw ``(B, P)``, computed at a fixed ``300 x 300``. Layer lists: docs/methods/deeplpf.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anyres.nn.blocks import unet_down

__all__ = ["ParameterHead", "UNetBackbone"]

_LEVELS = 5  # U-Net levels; 4 poolings, bottleneck at 1/16
_MULTIPLE = 2 ** (_LEVELS - 1)  # the backbone's padded sides are multiples of this ...
_MIN_SIDE = 2 * _MULTIPLE  # ... and at least this, so the bottleneck keeps 2 pixels for ReflectionPad(1)
_LEAK = 0.01


class _LocalNet(nn.Sequential):
    """Twice [ReflectionPad(1), Conv3x3, LeakyReLU(0.01)]: ``cin -> cout -> cout`` at the same resolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.ReflectionPad2d(1),
            nn.Conv2d(cin, cout, 3),
            nn.LeakyReLU(_LEAK),
            nn.ReflectionPad2d(1),
            nn.Conv2d(cout, cout, 3),
            nn.LeakyReLU(_LEAK),
        )


def _pad_for_backbone(x: torch.Tensor) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` at the bottom and right to sides that are multiples of 16 and at least 32."""
    h, w = x.shape[-2:]
    ph = max(-(-h // _MULTIPLE) * _MULTIPLE, _MIN_SIDE) - h
    pw = max(-(-w // _MULTIPLE) * _MULTIPLE, _MIN_SIDE) - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class UNetBackbone(nn.Module):
    """DeepLPF's U-Net: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, features, H, W)`` (channels 0-2 are ``Y1``).

    Any ``H, W >= 1`` (pad, run, crop: :func:`_pad_for_backbone`). Output unbounded.
    """

    def __init__(self, width: int = 16, features: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.down = nn.ModuleList(_LocalNet(cin, cout) for cin, cout in zip([3, *widths[:-1]], widths))
        self.up_convs = nn.ModuleList()
        self.up = nn.ModuleList()
        deep = widths[-1]
        for skip in reversed(widths[:-1]):
            self.up_convs.append(nn.Conv2d(deep, deep, 1))
            self.up.append(_LocalNet(deep + skip, skip))
            deep = skip
        self.to_rgb = _LocalNet(width, 3)
        self.to_features = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, features, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = _pad_for_backbone(x)
        skips = unet_down(padded, self.down)
        feat = skips.pop()
        for up_conv, block in zip(self.up_convs, self.up):
            feat = up_conv(F.interpolate(feat, scale_factor=2.0, mode="nearest"))
            feat = block(torch.cat([feat, skips.pop()], dim=1))
        rgb = self.to_rgb(feat) + padded  # the global residual
        return self.to_features(rgb)[..., :h, :w]


class ParameterHead(nn.Module):
    """A filter-parameter block: ``(B, channels, H, W)`` -> raw ``(B, outputs)`` (bounded by the caller).

    Resizes to ``size x size`` first (bilinear; ``None``: no resize), then four stride-2 convs with max
    pools between them, global average pooling, dropout and a linear layer (docs/methods/deeplpf.md).
    """

    def __init__(self, channels: int, outputs: int, size: int | None = 300, dropout: float = 0.5):
        super().__init__()
        self.size = size
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.LeakyReLU(_LEAK)]
            if i < 3:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        self.convs = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, outputs)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        if self.size is not None and tuple(feat.shape[-2:]) != (self.size, self.size):
            feat = F.interpolate(feat, size=(self.size, self.size), mode="bilinear", align_corners=False)
        pooled = self.convs(feat).mean(dim=(-2, -1))
        return self.fc(self.dropout(pooled))
