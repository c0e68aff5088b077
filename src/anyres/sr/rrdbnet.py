"""RRDBNet (ESRGAN, Wang et al. 2018; Real-ESRGAN 2021): a fixed-scale x4 network, x2 / x1 by pixel-unshuffled input.

The network is split into :meth:`RRDBNet.trunk` (on the LR grid, almost all of the receptive field) and
:meth:`RRDBNet.tail` (two nearest x2 upsamplings with convs), so that
:class:`~anyres.sr.fixed.FixedScaleUpscaler` can tile each stage exactly with its own margin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from anyres.nn.blocks import conv3x3
from anyres.nn.config import config_from_dict
from anyres.registry import NETWORKS

__all__ = ["RRDBNet", "RRDBNetConfig"]

_SLOPE = 0.2  # leaky ReLU slope
_RESIDUAL = 0.2  # residual scaling inside every dense block and every RRDB
TAIL_RADIUS = 2  # trunk cells of context one tail output needs (1/2 + 3/4 of a cell, rounded up)


@dataclass
class RRDBNetConfig:
    """Everything needed to rebuild an RRDBNet (saved as ``config.json`` beside the weights).

    ``unshuffle``: the input's pixel-unshuffle factor: 1 for the x4 model, 2 for x2, 4 for x1; the network
    always upsamples its (unshuffled) grid x4, so its scale is ``4 / unshuffle``.
    """

    n_feats: int = 64
    n_blocks: int = 23
    growth: int = 32
    unshuffle: int = 1

    def __post_init__(self) -> None:
        for name in ("n_feats", "n_blocks", "growth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RRDBNet {name} must be a positive int, got {value!r}")
        if self.unshuffle not in (1, 2, 4) or isinstance(self.unshuffle, bool):
            raise ValueError(f"RRDBNet unshuffle must be 1, 2 or 4, got {self.unshuffle!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RRDBNetConfig:
        return config_from_dict(cls, d, "RRDBNet")


class _DenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier output; scaled residual."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(channels + i * growth, growth) for i in range(4))
        self.fuse = conv3x3(channels + 4 * growth, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x
        for conv in self.convs:
            feats = torch.cat((feats, F.leaky_relu(conv(feats), _SLOPE)), dim=1)
        return x + _RESIDUAL * self.fuse(feats)


class _RRDB(nn.Module):
    """Three dense blocks in a row inside one scaled residual."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.dense = nn.Sequential(*(_DenseBlock(channels, growth) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + _RESIDUAL * self.dense(x)


class RRDBNet(nn.Module):
    """``(B, 3, h, w)`` in [0, 1] (no normalisation) -> ``(B, 3, h * scale, w * scale)``, not clamped.

    ``h`` and ``w`` must be multiples of ``unshuffle`` (the upscaler pads them).
    """

    fixed_scale = True

    def __init__(self, config: RRDBNetConfig | None = None, **kwargs: Any):
        super().__init__()
        cfg = config or RRDBNetConfig(**kwargs)
        self.config = cfg
        c = cfg.n_feats
        self.head = conv3x3(3 * cfg.unshuffle**2, c)
        self.blocks = nn.Sequential(*(_RRDB(c, cfg.growth) for _ in range(cfg.n_blocks)))
        self.body_out = conv3x3(c, c)
        self.up1 = conv3x3(c, c)
        self.up2 = conv3x3(c, c)
        self.hr = conv3x3(c, c)
        self.out = conv3x3(c, 3)

    @property
    def scale(self) -> int:
        return 4 // self.config.unshuffle

    @property
    def trunk_radius(self) -> int:
        """Trunk cells (LR pixels / ``unshuffle``) of context one trunk feature needs: one per 3x3 conv."""
        return 2 + 15 * self.config.n_blocks

    def config_dict(self) -> dict[str, Any]:
        return {"arch": "rrdbnet", **asdict(self.config)}

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` -> features ``(B, C, h / u, w / u)`` on the unshuffled grid."""
        u = self.config.unshuffle
        if x.shape[-2] % u or x.shape[-1] % u:
            raise ValueError(f"RRDBNet x{self.scale} needs sides divisible by {u}, got {tuple(x.shape[-2:])}")
        if u > 1:
            x = F.pixel_unshuffle(x, u)
        head = self.head(x)
        return head + self.body_out(self.blocks(head))

    def tail(self, feat: torch.Tensor) -> torch.Tensor:
        """Features ``(B, C, h', w')`` -> image ``(B, 3, 4 h', 4 w')``."""
        x = F.leaky_relu(self.up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")), _SLOPE)
        x = F.leaky_relu(self.up2(F.interpolate(x, scale_factor=2.0, mode="nearest")), _SLOPE)
        return self.out(F.leaky_relu(self.hr(x), _SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.trunk(x))


@NETWORKS.register(
    "rrdbnet",
    "RRDBNet (ESRGAN / Real-ESRGAN), fixed x4 / x2 / x1; any other size by bicubic from its native output",
    role="upscaler",
    example={"n_feats": 8, "n_blocks": 1, "growth": 4, "unshuffle": 2},
)
def build_rrdbnet(**kwargs: Any) -> RRDBNet:
    return RRDBNet(RRDBNetConfig.from_dict(kwargs))


build_rrdbnet.config_class = RRDBNetConfig  # lets hub.load_network pick the config keys out of config.json
build_rrdbnet.fixed_scale = True  # not an implicit (coordinate-query) network: the contract tests branch on it
