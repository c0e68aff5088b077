"""Interpolation baselines registered as models: the first entries of the registry."""

from __future__ import annotations

from anyres.sr.upscaler import InterpolationUpscaler
from anyres.registry import MODELS

_DESCRIPTIONS = {
    "bicubic": "MATLAB-compatible bicubic interpolation (a = -0.5, antialiased when downscaling)",
    "bilinear": "MATLAB-compatible bilinear interpolation (antialiased when downscaling)",
    "nearest": "nearest-neighbour interpolation",
    "lanczos": "Lanczos-3 interpolation (antialiased when downscaling)",
    "area": "area averaging (MATLAB box kernel)",
}


def _register(mode: str) -> None:
    @MODELS.register(mode, _DESCRIPTIONS[mode])
    def build(device: str | None = None, **_: object) -> InterpolationUpscaler:
        return InterpolationUpscaler(mode)


for _mode in _DESCRIPTIONS:
    _register(_mode)
