"""Interpolation baselines registered as upscalers (``--model bicubic``)."""

from __future__ import annotations

from typing import Any

from anyres.registry import UPSCALERS
from anyres.sr.upscaler import InterpolationUpscaler

_DESCRIPTIONS = {
    "bicubic": "MATLAB-compatible bicubic interpolation (a = -0.5, antialiased when downscaling)",
    "bilinear": "MATLAB-compatible bilinear interpolation (antialiased when downscaling)",
    "nearest": "nearest-neighbour interpolation",
    "lanczos": "Lanczos-3 interpolation (antialiased when downscaling)",
    "area": "area averaging (MATLAB box kernel)",
}


def _register(mode: str) -> None:
    @UPSCALERS.register(mode, _DESCRIPTIONS[mode], role="baseline")
    def build(device: str | None = None, options: Any = None) -> InterpolationUpscaler:
        return InterpolationUpscaler(mode)  # rendering options do not apply to a fixed kernel


for _mode in _DESCRIPTIONS:
    _register(_mode)
