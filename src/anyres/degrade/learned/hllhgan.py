"""HLLHGAN (Bulat, Yang & Tzimiropoulos, ECCV 2018): learn the x4 degradation from unpaired HR and real LR.

``G_h2l``: HR ``(B, 3, 4h, 4w)`` in [-1, 1] plus noise -> LR ``(B, 3, h, w)``, judged by ``D_low`` against real LR
crops and held to the 4x4 average pool by an MSE loss; ``G_l2h``: LR -> SR ``(B, 3, 4h, 4w)``, trained on
``(HR, G_h2l(HR))`` pairs. Each generator minimises ``L_pixel + 0.05 L_GAN`` (hinge). The trained ``G_h2l``
is the ``hllhgan`` degradation pipeline. Architecture, hyperparameters and anyres's choices (noise map, skip,
widths): docs/methods/hllhgan.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from anyres.degrade.base import Draw, Pipeline
from anyres.errors import ConfigError

__all__ = [
    "H2LGenerator",
    "L2HGenerator",
    "ResDiscriminator",
    "HLLHGANPipelineConfig",
    "HLLHGANPipeline",
    "hinge_d_loss",
    "hinge_g_loss",
    "h2l_pixel_target",
    "load_generator",
    "SCALE",
]

SCALE = 4  # the method is x4 (64 -> 16 -> 64)


# ---------------------------------------------------------------------------------------------------------
# Networks


class _ResBlockBN(nn.Module):
    """conv-BN-ReLU-conv-BN plus identity (the H2L generator's block)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class H2LGenerator(nn.Module):
    """High-to-Low generator: ``(B, 3, H, W)`` in [-1, 1] and noise -> ``(B, 3, H / 4, W / 4)``.

    ``H`` and ``W`` must be multiples of 16 (four stride-2 stages, then two pixel-shuffle x2 stages).
    ``noise`` is ``(B, 1, H, W)`` for ``noise="map"`` and ``(B, z_dim)`` for ``noise="fc"``; ``None`` draws
    it from torch's global generator.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64, 128),
        noise: str = "map",
        z_dim: int = 64,
        skip: bool = True,
        fc_size: int = 64,
    ):
        super().__init__()
        if noise not in ("map", "fc"):
            raise ConfigError(f"noise must be 'map' or 'fc', got {noise!r}")
        channels = [int(c) for c in channels]
        if len(channels) != 4 or min(channels) < 1:
            raise ConfigError(f"channels must be four positive widths (one per down stage), got {channels}")
        self.noise, self.z_dim, self.skip, self.fc_size = noise, z_dim, skip, fc_size
        self.channels = channels
        if noise == "fc":
            self.fc = nn.Linear(z_dim, fc_size * fc_size)
        self.head = nn.Conv2d(4, channels[0], 3, padding=1)
        down = []
        for i, c in enumerate(channels):
            nxt = channels[min(i + 1, 3)]
            down += [
                _ResBlockBN(c),
                _ResBlockBN(c),
                nn.BatchNorm2d(c),
                nn.ReLU(True),
                nn.Conv2d(c, nxt, 3, stride=2, padding=1),
            ]
        self.down = nn.Sequential(*down)
        c = channels[3]
        up = []
        for _ in range(2):
            up += [_ResBlockBN(c), _ResBlockBN(c), nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(True)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(c, 3, 3, padding=1)
        if skip:  # start at the pixel-loss target: the residual branch begins at zero
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def config_dict(self) -> dict[str, Any]:
        return {
            "arch": "hllhgan-h2l",
            "channels": self.channels,
            "noise": self.noise,
            "z_dim": self.z_dim,
            "skip": self.skip,
            "fc_size": self.fc_size,
        }

    def noise_shape(self, height: int, width: int) -> tuple[int, ...]:
        """The shape of one sample's noise for a ``height x width`` input."""
        return (self.z_dim,) if self.noise == "fc" else (1, height, width)

    def make_noise(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        return torch.randn((batch, *self.noise_shape(height, width)), generator=generator).to(device)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        if h % 16 or w % 16:
            raise ValueError(f"H2L input sides must be multiples of 16, got {h}x{w}")
        if noise is None:
            noise = self.make_noise(b, h, w, device=x.device)
        if self.noise == "fc":
            if (h, w) != (self.fc_size, self.fc_size):
                raise ValueError(f"noise='fc' takes {self.fc_size}x{self.fc_size} inputs only, got {h}x{w}")
            plane = self.fc(noise.to(x.dtype)).reshape(b, 1, h, w)
        else:
            plane = noise.to(x.dtype)
        y = self.tail(self.up(self.down(self.head(torch.cat([x, plane], 1)))))
        if self.skip:
            return F.avg_pool2d(x, SCALE) + y
        return torch.tanh(y)


class _DBlock(nn.Module):
    """SNGAN residual block: [ReLU] conv3 ReLU conv3 [avgpool], shortcut 1x1 conv [avgpool]; spectral norm."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool):
        super().__init__()
        self.down, self.first = down, first
        self.c1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.c2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.sc = spectral_norm(nn.Conv2d(cin, cout, 1)) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        s = x if self.sc is None else self.sc(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class ResDiscriminator(nn.Module):
    """SNGAN-style discriminator for ``size x size`` inputs: residual blocks whose last ``log2(size / 4)``
    downsample to 4 x 4, then FC(16 C -> C) -> ReLU -> FC(-> 1). No batch norm; spectral norm everywhere.
    Returns one logit per image, ``(B,)``."""

    def __init__(self, size: int, channels: Sequence[int] = (32, 32, 64, 64, 128, 128)):
        super().__init__()
        n_down = int(round(math.log2(size / 4)))
        if size < 4 or 4 * 2**n_down != size:
            raise ConfigError(f"discriminator input size must be 4 * 2^k, got {size}")
        channels = [int(c) for c in channels]
        if n_down > len(channels):
            raise ConfigError(f"{size}x{size} needs at least {n_down} blocks, got {len(channels)}")
        blocks, cin = [], 3
        for i, c in enumerate(channels):
            blocks.append(_DBlock(cin, c, down=i >= len(channels) - n_down, first=i == 0))
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc1 = spectral_norm(nn.Linear(16 * cin, cin))
        self.fc2 = spectral_norm(nn.Linear(cin, 1))
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"discriminator expects {self.size}x{self.size} inputs, got {tuple(x.shape[-2:])}")
        h = F.relu(self.blocks(x)).flatten(1)
        return self.fc2(F.relu(self.fc1(h))).squeeze(1)


class _PreActBlock(nn.Module):
    """BN-ReLU-conv3-BN-ReLU-conv3 plus a shortcut (1x1 conv when the width changes)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(True),
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.sc = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sc(x) + self.body(x)


class L2HGenerator(nn.Module):
    """Low-to-High generator (the reference's deep variant): ``(B, 3, h, w)`` in [-1, 1] -> ``(B, 3, 4h, 4w)``.

    conv3 -> ``n_blocks`` pre-activation blocks at ``width`` with a global skip; bilinear x2, BN, ReLU,
    1x1 transposed conv; 3 blocks ``width -> width2`` (1x1 projection skip); bilinear x2, BN, ReLU, 1x1
    transposed conv; conv3 ``width2 -> 96``, ReLU, 1x1 96 -> 96, ReLU, 1x1 -> 3, tanh.
    """

    def __init__(self, width: int = 256, width2: int = 128, n_blocks: int = 12):
        super().__init__()
        self.width, self.width2, self.n_blocks = width, width2, n_blocks
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*[_PreActBlock(width, width) for _ in range(n_blocks)])
        self.up1 = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(True), nn.ConvTranspose2d(width, width, 1))
        self.mid = nn.Sequential(
            _PreActBlock(width, width2), _PreActBlock(width2, width2), _PreActBlock(width2, width2)
        )
        self.up2 = nn.Sequential(nn.BatchNorm2d(width2), nn.ReLU(True), nn.ConvTranspose2d(width2, width2, 1))
        self.tail = nn.Sequential(
            nn.Conv2d(width2, 96, 3, padding=1), nn.ReLU(True), nn.Conv2d(96, 96, 1), nn.ReLU(True), nn.Conv2d(96, 3, 1)
        )

    def config_dict(self) -> dict[str, Any]:
        return {"arch": "hllhgan-l2h", "width": self.width, "width2": self.width2, "n_blocks": self.n_blocks}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body(h)
        h = self.up1(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
        h = self.up2(F.interpolate(self.mid(h), scale_factor=2, mode="bilinear", align_corners=False))
        return torch.tanh(self.tail(h))


# ---------------------------------------------------------------------------------------------------------
# Losses and data


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean relu(1 - D(real)) + mean relu(1 + D(fake))``."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean D(fake)``."""
    return -fake_logits.mean()


def h2l_pixel_target(hr: torch.Tensor) -> torch.Tensor:
    """The H2L pixel-loss target: the HR average-pooled by 4 (keeps content and colour)."""
    return F.avg_pool2d(hr, SCALE)


def load_generator(folder: str | Path, device: str | torch.device = "cpu") -> H2LGenerator:
    """Load an ``h2l`` weights folder written by :func:`train_hllhgan` (eval mode)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, weights = folder / "config.json", folder / "model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise ConfigError(f"{folder} is not an HLLHGAN h2l weights folder (needs config.json and model.safetensors)")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("arch") != "hllhgan-h2l":
        raise ConfigError(f"{folder}: arch {cfg.get('arch')!r} is not 'hllhgan-h2l'")
    net = H2LGenerator(cfg["channels"], cfg["noise"], cfg["z_dim"], cfg["skip"], cfg["fc_size"])
    net.load_state_dict(load_file(str(weights)))
    return net.to(device).eval()


# ---------------------------------------------------------------------------------------------------------
# As a degradation pipeline


@dataclass(frozen=True)
class HLLHGANPipelineConfig:
    """``weights``: an ``h2l`` folder written by :func:`train_hllhgan` (required)."""

    weights: str | None = None


class HLLHGANPipeline(Pipeline):
    """A trained High-to-Low generator as a degradation pipeline (x4 only).

    Each record holds one noise seed. Images whose sides are not multiples of 16 are reflect-padded (or
    edge-padded when smaller than the pad) to the next multiple, degraded, and the LR cropped to
    ``round(H / 4) x round(W / 4)`` (the pipelines' LR size); LR pixel ``m`` covers HR pixels
    ``[4 m, 4 m + 4)``.
    """

    name = "hllhgan"
    Config = HLLHGANPipelineConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        if not self.config.weights:
            raise ConfigError(
                "the hllhgan pipeline needs weights: an h2l folder written by `anyres hllhgan` "
                "(--weights FOLDER on the command line)"
            )
        self._nets: dict[str, H2LGenerator] = {}

    def _net(self, device: torch.device) -> H2LGenerator:
        key = str(device)
        if key not in self._nets:
            net = load_generator(self.config.weights, device)
            if net.noise != "map":
                raise ConfigError(
                    f"{self.config.weights}: a noise='fc' generator takes 64x64 crops only; "
                    f"the pipeline needs a noise='map' generator"
                )
            self._nets[key] = net
        return self._nets[key]

    def _sample_one(self, draw: Draw, scale: float, hr_size: list[int], lr_size: list[int]) -> dict:
        if abs(scale - SCALE) > 1e-9:
            raise ConfigError(f"the hllhgan pipeline is x{SCALE} only, got scale {scale:g}")
        return {"seed": draw.seed()}

    @torch.no_grad()
    def _apply_one(self, hr: torch.Tensor, record: dict) -> torch.Tensor:
        net = self._net(hr.device)
        h, w = hr.shape[-2:]
        ph, pw = -h % 16, -w % 16
        x = hr.float() * 2 - 1
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        noise = net.make_noise(
            1, x.shape[-2], x.shape[-1], torch.Generator().manual_seed(int(record["seed"])), device=hr.device
        )
        lr = net(x, noise)
        lh, lw = record["lr_size"]
        return ((lr[..., :lh, :lw] + 1) / 2).clamp(0, 1).to(hr.dtype)
