"""The upscaler interface every ``--model`` resolves to, and the interpolation baselines."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from anyres.checks import check_image
from anyres.ops.resize import MODES, resize

__all__ = ["Upscaler", "InterpolationUpscaler"]


class Upscaler:
    """Maps a low-resolution image to any output size.

    Subclasses implement :meth:`upscale_rgb` on ``(B, 3, h, w)`` RGB; :meth:`upscale` adds grayscale
    handling (models see RGB; a grayscale image is replicated, then the result is averaged back).
    """

    name: str = "upscaler"
    description: str = ""

    def upscale(self, lr: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """``(B, C, h, w)`` in [0, 1], C in {1, 3} -> ``(B, C, H, W)`` with ``(H, W) = size`` (not clamped)."""
        check_image(lr, "lr", channels=(1, 3))
        out_h, out_w = int(size[0]), int(size[1])
        if out_h < 1 or out_w < 1:
            raise ValueError(f"output size must be positive, got {tuple(size)}")
        if lr.shape[1] == 1:
            return self.upscale_rgb(lr.expand(-1, 3, -1, -1), (out_h, out_w)).mean(dim=1, keepdim=True)
        return self.upscale_rgb(lr, (out_h, out_w))

    def upscale_rgb(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError

    def to(self, device: torch.device | str) -> Upscaler:
        return self


class InterpolationUpscaler(Upscaler):
    """A fixed interpolation kernel (MATLAB ``imresize`` semantics) as a baseline model."""

    def __init__(self, mode: str):
        if mode not in MODES:
            raise ValueError(f"unknown interpolation {mode!r}; expected one of {sorted(MODES)}")
        self.name = mode
        self.mode = mode

    def upscale(self, lr: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        check_image(lr, "lr", channels=(1, 3))
        return resize(lr, size=(int(size[0]), int(size[1])), mode=self.mode)

    def upscale_rgb(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return resize(lr, size=size, mode=self.mode)
