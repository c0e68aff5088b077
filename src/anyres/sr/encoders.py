"""Convolutional feature encoders (no upsampler): ``(B, 3, h, w)`` -> ``(B, C, h, w)``."""

from __future__ import annotations

import torch
from torch import nn

from anyres.nn.blocks import ResBlock, conv3x3
from anyres.registry import NETWORKS

__all__ = ["EDSREncoder", "RDNEncoder"]


class EDSREncoder(nn.Module):
    """EDSR body without its upsampler (Lim et al., 2017); the LIIF paper's ``edsr-baseline`` encoder.

    head conv 3 -> C, ``n_resblocks`` residual blocks, a final conv, and a global skip from the head.
    Input ``(B, 3, h, w)`` (LIIF feeds it ``(x - 0.5) / 0.5``); output ``(B, n_feats, h, w)``.
    """

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0, in_channels: int = 3):
        super().__init__()
        self.head = conv3x3(in_channels, n_feats)
        self.body = nn.Sequential(
            *[ResBlock(n_feats, res_scale) for _ in range(n_resblocks)], conv3x3(n_feats, n_feats)
        )
        self.out_dim = n_feats
        # Receptive-field radius in LR pixels: each 3x3 conv adds one.
        self.radius = 2 * n_resblocks + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        return self.body(head) + head


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.conv = conv3x3(cin, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.relu(self.conv(x))], dim=1)


class _RDB(nn.Module):
    """Residual dense block: ``n_layers`` densely connected convs, 1x1 local fusion, local residual."""

    def __init__(self, channels: int, growth: int, n_layers: int):
        super().__init__()
        self.layers = nn.Sequential(*[_DenseLayer(channels + i * growth, growth) for i in range(n_layers)])
        self.fuse = nn.Conv2d(channels + n_layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(self.layers(x))


class RDNEncoder(nn.Module):
    """RDN without its upsampler (Zhang et al., 2018), configuration B: 16 RDBs x 8 layers, growth 64.

    Output ``(B, G0, h, w)``.
    """

    def __init__(self, g0: int = 64, n_blocks: int = 16, n_layers: int = 8, growth: int = 64, in_channels: int = 3):
        super().__init__()
        self.sfe1 = conv3x3(in_channels, g0)
        self.sfe2 = conv3x3(g0, g0)
        self.blocks = nn.ModuleList(_RDB(g0, growth, n_layers) for _ in range(n_blocks))
        self.gff = nn.Sequential(nn.Conv2d(n_blocks * g0, g0, 1), conv3x3(g0, g0))
        self.out_dim = g0
        self.radius = 2 + n_blocks * n_layers + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.sfe1(x)
        x = self.sfe2(f1)
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return self.gff(torch.cat(outs, dim=1)) + f1


@NETWORKS.register(
    "edsr-baseline",
    "EDSR-baseline encoder without upsampler (16 blocks, 64 channels, 1.22 M params)",
    example={"n_resblocks": 1, "n_feats": 8},
)
def edsr_baseline(n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0) -> EDSREncoder:
    return EDSREncoder(n_resblocks, n_feats, res_scale)


@NETWORKS.register(
    "rdn",
    "RDN encoder without upsampler (16 RDBs x 8 layers, growth 64, ~22 M params)",
    example={"g0": 8, "n_blocks": 1, "n_layers": 2, "growth": 4},
)
def rdn(g0: int = 64, n_blocks: int = 16, n_layers: int = 8, growth: int = 64) -> RDNEncoder:
    return RDNEncoder(g0, n_blocks, n_layers, growth)
