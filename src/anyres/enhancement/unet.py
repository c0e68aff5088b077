"""A plain U-Net enhancer: the baseline DeepLPF is compared against (same parameter count, same recipe).

``(B, 3, H, W)`` RGB in [0, 1] -> same shape: ``out = clamp(x + r(x), 0, 1)``, ``r`` a U-Net whose final 1x1 conv
starts at zero (an untrained network is the identity); any size by pad-and-crop. Layers and parameter count:
docs/methods/enhancement-tasks.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from anyres.checks import check_image
from anyres.nn.blocks import unet_down
from anyres.nn.config import config_from_dict, resolve_config
from anyres.registry import NETWORKS

__all__ = ["UNetEnhancer", "UNetEnhancerConfig", "parameter_count", "DEEPLPF_PARAMETERS"]

_LEAK = 0.01
# DeepLPF's default parameter count (anyres.enhancement.deeplpf, the released layer list), the width target.
DEEPLPF_PARAMETERS = 1_715_779


def _is_int(v: Any, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


@dataclass
class UNetEnhancerConfig:
    """``width``: channels of the first level (level ``i`` has ``width 2^i``); ``levels``: U-Net depth (>= 1)."""

    width: int = 30
    levels: int = 4

    def __post_init__(self) -> None:
        if not _is_int(self.width, 1):
            raise ValueError(f"unet-enhancer width must be an int >= 1, got {self.width!r}")
        if not _is_int(self.levels, 1):
            raise ValueError(f"unet-enhancer levels must be an int >= 1, got {self.levels!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetEnhancerConfig:
        return config_from_dict(cls, d, "unet-enhancer")


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.LeakyReLU(_LEAK),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.LeakyReLU(_LEAK),
        )


class UNetEnhancer(nn.Module):
    """Residual U-Net enhancer; ``forward(x) -> out``, both ``(B, 3, H, W)`` in [0, 1], any ``H, W >= 1``."""

    config_class = UNetEnhancerConfig

    def __init__(self, config: UNetEnhancerConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__()
        self.config = config = resolve_config(UNetEnhancerConfig, config, kwargs)
        widths = [config.width * 2**i for i in range(config.levels)]
        self.down = nn.ModuleList(_DoubleConv(cin, cout) for cin, cout in zip([3, *widths[:-1]], widths))
        deep_to_shallow = list(zip(widths[:0:-1], widths[-2::-1]))  # (deep, skip) pairs, deepest first
        self.up_convs = nn.ModuleList(nn.ConvTranspose2d(deep, skip, 2, stride=2) for deep, skip in deep_to_shallow)
        self.up = nn.ModuleList(_DoubleConv(2 * skip, skip) for _, skip in deep_to_shallow)
        self.to_residual = nn.Conv2d(widths[0], 3, 1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

    def config_dict(self) -> dict[str, Any]:
        return {"arch": "unet-enhancer", **asdict(self.config)}

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2 ** (self.config.levels - 1)
        h, w = x.shape[-2:]
        ph, pw = -h % multiple, -w % multiple
        if ph == 0 and pw == 0:
            return x
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> enhanced ``(B, 3, H, W)`` in [0, 1]."""
        check_image(x, "unet-enhancer input", channels=3, nonempty=True)
        h, w = x.shape[-2:]
        skips = unet_down(self._pad(x), self.down)
        feat = skips.pop()
        for up_conv, block in zip(self.up_convs, self.up):
            feat = block(torch.cat([up_conv(feat), skips.pop()], dim=1))
        residual = self.to_residual(feat)[..., :h, :w]
        return torch.clamp(x + residual, 0.0, 1.0)


def parameter_count(width: int = 30, levels: int = 4) -> int:
    """Parameters of a ``unet-enhancer`` of this width and depth, in closed form (no network is built)."""
    widths = [width * 2**i for i in range(levels)]
    n = 0
    for cin, cout in zip([3, *widths[:-1]], widths):
        n += cin * cout * 9 + cout + cout * cout * 9 + cout
    for deep, skip in zip(widths[:0:-1], widths[-2::-1]):
        n += deep * skip * 4 + skip  # transposed 2x2 conv
        n += 2 * skip * skip * 9 + skip + skip * skip * 9 + skip  # double conv after the concatenation
    return n + widths[0] * 3 + 3


@NETWORKS.register(
    "unet-enhancer",
    "plain residual U-Net enhancer (the DeepLPF baseline at equal parameter count)",
    role="enhancer",
    example={"width": 4, "levels": 3},
)
def build_unet_enhancer(**kwargs: Any) -> UNetEnhancer:
    return UNetEnhancer(UNetEnhancerConfig.from_dict(kwargs))


build_unet_enhancer.config_class = UNetEnhancerConfig  # lets hub.load_network pick the config keys out of config.json
