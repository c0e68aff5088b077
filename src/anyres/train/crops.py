"""Random square crops with flips of ``(3, H, W)`` uint8 training photos, as the recipes draw them."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from anyres.errors import ConfigError
from anyres.ops.augment import flip

__all__ = ["random_crops"]


def random_crops(images: Sequence[torch.Tensor], size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random ``size x size`` crops ``(count, 3, size, size)`` float in [0, 1], each from a random
    image large enough, with random horizontal/vertical flips and transposes. Images are ``(3, H, W)`` uint8."""
    eligible = [i for i, img in enumerate(images) if min(img.shape[-2:]) >= size]
    if not eligible:
        raise ConfigError(f"no training image holds a {size}x{size} crop")
    out = []
    for _ in range(count):
        img = images[eligible[int(torch.randint(len(eligible), (), generator=generator))]]
        y0 = int(torch.randint(img.shape[-2] - size + 1, (), generator=generator))
        x0 = int(torch.randint(img.shape[-1] - size + 1, (), generator=generator))
        flips = torch.rand(3, generator=generator) < 0.5
        out.append(flip(img[:, y0 : y0 + size, x0 : x0 + size], bool(flips[0]), bool(flips[1]), bool(flips[2])))
    return torch.stack(out).float() / 255.0
