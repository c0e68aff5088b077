"""The classical degradation model: ``y = (x * k) downscaled by s + n``, optionally JPEG-compressed.

Per sample: a Gaussian kernel ``k`` (isotropic with probability ``iso_prob``, else anisotropic), a resize to
the LR size (MATLAB-compatible antialiased bicubic by default), white Gaussian noise ``n``, optional JPEG,
8-bit rounding. ``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, round(H / s), round(W / s))``. Defaults, their sources
and the record layout: docs/methods/classical.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from anyres.checks import check_prob, check_range
from anyres.degrade.base import Draw, Pipeline, Range, resolve_range
from anyres.degrade.steps import (
    apply_blur,
    apply_gaussian_noise,
    apply_jpeg,
    apply_resize,
    kernel_size_for,
    quantize,
    resize_step,
)
from anyres.errors import ConfigError
from anyres.ops.resize import MODES

__all__ = ["ClassicalConfig", "ClassicalPipeline"]


@dataclass(frozen=True)
class ClassicalConfig:
    """Ranges of the classical pipeline. Bounds may be ``(c, k)`` = ``c + k * scale`` (see ``base``)."""

    iso_prob: float = 0.5  # isotropic kernel, else anisotropic
    sigma: Range = (0.2, (0.0, 1.0))  # standard deviations, pixels: [0.2, s]
    theta: Range = (0.0, math.pi)  # angle of the first axis, radians
    kernel_size: int | None = None  # odd side; None: 2 ceil(3 sigma_max) + 1 per sample
    downsample: str = "bicubic"  # ops.resize mode of the final resize
    antialias: bool = True  # MATLAB imresize antialiasing when downscaling
    noise_prob: float = 1.0
    noise_level: Range = (0.0, 10.0)  # standard deviation on the 0..255 scale
    gray_noise_prob: float = 0.0
    jpeg_prob: float = 0.0
    jpeg_range: Range = (30, 95)  # whole qualities, both ends included
    quantize: bool = True  # round the result to 8 bits

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "iso_prob", check_prob(self.iso_prob, "iso_prob"))
        s(self, "sigma", check_range(self.sigma, "sigma", scaled=True, minimum=0.0))
        s(self, "theta", check_range(self.theta, "theta", scaled=True))
        if self.kernel_size is not None and (
            isinstance(self.kernel_size, bool)
            or not isinstance(self.kernel_size, int)
            or self.kernel_size < 1
            or self.kernel_size % 2 == 0
        ):
            raise ConfigError(f"kernel_size must be an odd int >= 1 or null, got {self.kernel_size!r}")
        if self.downsample not in MODES:
            raise ConfigError(f"downsample must be one of {sorted(MODES)}, got {self.downsample!r}")
        s(self, "antialias", bool(self.antialias))
        s(self, "noise_prob", check_prob(self.noise_prob, "noise_prob"))
        s(self, "noise_level", check_range(self.noise_level, "noise_level", scaled=True, minimum=0.0))
        s(self, "gray_noise_prob", check_prob(self.gray_noise_prob, "gray_noise_prob"))
        s(self, "jpeg_prob", check_prob(self.jpeg_prob, "jpeg_prob"))
        s(
            self,
            "jpeg_range",
            check_range(self.jpeg_range, "jpeg_range", scaled=True, minimum=1, maximum=100, integer=True),
        )
        s(self, "quantize", bool(self.quantize))


class ClassicalPipeline(Pipeline):
    """Blur with a Gaussian kernel, resize to the LR size, add Gaussian noise, optionally JPEG."""

    name = "classical"
    Config = ClassicalConfig

    def _sample_one(self, draw: Draw, scale: float, hr_size: list[int], lr_size: list[int]) -> dict:
        c = self.config
        sigma_lo, sigma_hi = resolve_range(c.sigma, scale)
        if draw.coin(c.iso_prob):
            sigma = draw.uniform(sigma_lo, sigma_hi)
            blur = {"kind": "iso", "sigma": sigma}
            widest = sigma
        else:
            sx, sy = draw.uniform(sigma_lo, sigma_hi), draw.uniform(sigma_lo, sigma_hi)
            blur = {"kind": "aniso", "sigma": [sx, sy], "theta": draw.uniform(*resolve_range(c.theta, scale))}
            widest = max(sx, sy)
        blur["size"] = c.kernel_size if c.kernel_size is not None else kernel_size_for(widest)

        noise = None
        if draw.coin(c.noise_prob):
            level = draw.uniform(*resolve_range(c.noise_level, scale))
            kind = "gray" if draw.coin(c.gray_noise_prob) else "color"
            noise = {"kind": kind, "level": level, "seed": draw.seed()}
        jpeg = {"quality": draw.integer(*resolve_range(c.jpeg_range, scale))} if draw.coin(c.jpeg_prob) else None
        return {
            "blur": blur,
            "resize": resize_step(c.downsample, lr_size, c.antialias),
            "noise": noise,
            "jpeg": jpeg,
            "quantize": c.quantize,
        }

    def _apply_one(self, hr, record: dict):
        x = apply_blur(hr, record["blur"])
        x = apply_resize(x, record["resize"])
        if record["noise"] is not None:
            x = apply_gaussian_noise(x, record["noise"])
        x = x.clamp(0.0, 1.0)
        if record["jpeg"] is not None:
            x = apply_jpeg(x, record["jpeg"])
        return quantize(x) if record["quantize"] else x
