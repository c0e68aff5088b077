"""Real-ESRGAN's high-order degradation (Wang, Xie, Dong & Shan, ICCVW 2021), every choice drawn per sample.

``(B, 3, H, W)`` HR in [0, 1] -> ``(B, 3, round(H / s), round(W / s))`` LR, any ``s >= 1``: two orders of
blur / resize / Gaussian or Poisson noise / JPEG, then a final resize + sinc filter + JPEG in either order,
rounded to 8 bits. Ranges, the record layout and the differences from the reference code:
docs/methods/realesrgan.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from anyres.checks import check_choices, check_prob, check_probs, check_range
from anyres.degrade.base import Draw, Pipeline, Range, resolve_range, scaled_size
from anyres.degrade.steps import apply_blur, apply_jpeg, apply_noise, apply_resize, quantize, resize_step
from anyres.errors import ConfigError

__all__ = ["RealESRGANConfig", "RealESRGANPipeline", "FINAL_ORDERS"]

MIXED_KERNELS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
FINAL_ORDERS = (["resize", "sinc", "jpeg"], ["jpeg", "resize", "sinc"])
_RESIZE_MODES = ("bilinear", "bicubic", "area", "nearest", "lanczos")


@dataclass(frozen=True)
class RealESRGANConfig:
    """Ranges of the Real-ESRGAN pipeline (names follow the reference's option files where they exist)."""

    # kernels (kernel 1 / kernel 2)
    kernel_size: Range = (7, 21)  # odd sizes, uniform
    kernel_list: tuple = MIXED_KERNELS
    kernel_prob: tuple = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    blur_sigma: Range = (0.2, 3.0)
    betag_range: Range = (0.5, 4.0)
    betap_range: Range = (1.0, 2.0)
    sinc_prob2: float = 0.1
    blur_sigma2: Range = (0.2, 1.5)
    betag_range2: Range = (0.5, 4.0)
    betap_range2: Range = (1.0, 2.0)
    rotation_range: Range = (-math.pi, math.pi)
    sinc_small_size: int = 13  # sinc kernels below this size use sinc_cutoff_small
    sinc_cutoff_small: Range = (math.pi / 3, math.pi)
    sinc_cutoff_large: Range = (math.pi / 5, math.pi)
    # first order
    resize_prob: tuple = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: Range = (0.15, 1.5)  # down U[low, 1], up U[1, high]
    gaussian_noise_prob: float = 0.5  # else Poisson
    noise_range: Range = (1.0, 30.0)  # Gaussian standard deviation, 0..255 scale
    poisson_scale_range: Range = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: Range = (30, 95)
    # second order
    second_blur_prob: float = 0.8
    resize_prob2: tuple = (0.3, 0.4, 0.3)
    resize_range2: Range = (0.3, 1.2)  # relative to the final LR size
    gaussian_noise_prob2: float = 0.5
    noise_range2: Range = (1.0, 25.0)
    poisson_scale_range2: Range = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: Range = (30, 95)  # the final stage's JPEG
    # final stage
    final_sinc_prob: float = 0.8
    final_sinc_cutoff: Range = (math.pi / 3, math.pi)
    final_resize_first_prob: float = 0.5  # resize -> sinc -> JPEG, else JPEG -> resize -> sinc
    # resizing, noise and output
    resize_modes: tuple = ("area", "bilinear", "bicubic")
    antialias: bool = False  # F.interpolate does not antialias
    poisson_peak: float | None = None  # None: content-dependent (reference); a number fixes it
    quantize: bool = True

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "kernel_size", check_range(self.kernel_size, "kernel_size", scaled=True, minimum=1, integer=True))
        s(self, "kernel_list", check_choices(self.kernel_list, "kernel_list", MIXED_KERNELS))
        s(self, "kernel_prob", check_probs(self.kernel_prob, "kernel_prob", len(self.kernel_list)))
        for name in (
            "sinc_prob",
            "sinc_prob2",
            "gaussian_noise_prob",
            "gray_noise_prob",
            "second_blur_prob",
            "gaussian_noise_prob2",
            "gray_noise_prob2",
            "final_sinc_prob",
            "final_resize_first_prob",
        ):
            s(self, name, check_prob(getattr(self, name), name))
        for name in (
            "blur_sigma",
            "blur_sigma2",
            "noise_range",
            "noise_range2",
            "poisson_scale_range",
            "poisson_scale_range2",
        ):
            s(self, name, check_range(getattr(self, name), name, scaled=True, minimum=0.0))
        for name in ("betag_range", "betap_range", "betag_range2", "betap_range2"):
            rng = check_range(getattr(self, name), name, scaled=True, minimum=1e-6)
            if not all(isinstance(b, (int, float)) for b in rng) or not rng[0] <= 1.0 <= rng[1]:
                raise ConfigError(f"{name} must be numbers with low <= 1 <= high, got {getattr(self, name)!r}")
            s(self, name, rng)
        s(self, "rotation_range", check_range(self.rotation_range, "rotation_range", scaled=True))
        if isinstance(self.sinc_small_size, bool) or not isinstance(self.sinc_small_size, int):
            raise ConfigError(f"sinc_small_size must be an int, got {self.sinc_small_size!r}")
        for name in ("sinc_cutoff_small", "sinc_cutoff_large", "final_sinc_cutoff"):
            s(self, name, check_range(getattr(self, name), name, scaled=True, minimum=1e-6, maximum=math.pi))
        for name in ("resize_prob", "resize_prob2"):
            s(self, name, check_probs(getattr(self, name), name, 3))
        for name in ("resize_range", "resize_range2"):
            rng = check_range(getattr(self, name), name, scaled=True, minimum=1e-6)
            if not all(isinstance(b, (int, float)) for b in rng) or not rng[0] <= 1.0 <= rng[1]:
                raise ConfigError(f"{name} must be numbers with low <= 1 <= high, got {getattr(self, name)!r}")
            s(self, name, rng)
        for name in ("jpeg_range", "jpeg_range2"):
            s(self, name, check_range(getattr(self, name), name, scaled=True, minimum=1, maximum=100, integer=True))
        s(self, "resize_modes", check_choices(self.resize_modes, "resize_modes", _RESIZE_MODES))
        s(self, "antialias", bool(self.antialias))
        if self.poisson_peak is not None and (
            isinstance(self.poisson_peak, bool)
            or not isinstance(self.poisson_peak, (int, float))
            or not self.poisson_peak > 0
        ):
            raise ConfigError(f"poisson_peak must be a positive number or null, got {self.poisson_peak!r}")
        s(self, "quantize", bool(self.quantize))


class RealESRGANPipeline(Pipeline):
    """Real-ESRGAN's second-order degradation with per-sample draws (docs/methods/realesrgan.md)."""

    name = "realesrgan"
    Config = RealESRGANConfig

    # -- sampling ------------------------------------------------------------------------------------------

    @staticmethod
    def _beta(draw: Draw, rng: Range) -> float:
        # Half of the draws below 1 (heavier tails), half above (flatter top), whatever the range's width.
        return draw.uniform(rng[0], 1.0) if draw.coin(0.5) else draw.uniform(1.0, rng[1])

    def _kernel(self, draw: Draw, scale: float, sinc_prob: float, sigma: Range, betag: Range, betap: Range) -> dict:
        c = self.config
        size = draw.odd(*(int(v) for v in resolve_range(c.kernel_size, scale)))
        if draw.coin(sinc_prob):
            cutoff = c.sinc_cutoff_small if size < c.sinc_small_size else c.sinc_cutoff_large
            return {"kind": "sinc", "size": size, "cutoff": draw.uniform(*resolve_range(cutoff, scale))}
        kind = draw.choice(c.kernel_list, c.kernel_prob)
        lo, hi = resolve_range(sigma, scale)
        step = {"kind": kind, "size": size}
        if kind.endswith("iso") and not kind.endswith("aniso"):
            step["sigma"] = draw.uniform(lo, hi)
        else:
            step["sigma"] = [draw.uniform(lo, hi), draw.uniform(lo, hi)]
            step["theta"] = draw.uniform(*resolve_range(c.rotation_range, scale))
        if kind.startswith("generalized"):
            step["beta"] = self._beta(draw, betag)
        elif kind.startswith("plateau"):
            step["beta"] = self._beta(draw, betap)
        return step

    def _resize(self, draw: Draw, probs, rng: Range, base_size: list[int]) -> dict:
        """Up / down / keep relative to ``base_size``: the current size in the first order, the final LR size
        in the second (so "keep" there means "to the LR size", as in the reference)."""
        c = self.config
        kind = draw.choice(("up", "down", "keep"), probs)
        if kind == "up":
            factor = draw.uniform(1.0, rng[1])
        elif kind == "down":
            factor = draw.uniform(rng[0], 1.0)
        else:
            factor = 1.0
        size = scaled_size(base_size, factor)
        return {"kind": kind, "factor": factor, **resize_step(draw.choice(c.resize_modes), size, c.antialias)}

    def _noise(
        self, draw: Draw, scale: float, gaussian_prob: float, level: Range, poisson: Range, gray_prob: float
    ) -> dict:
        if draw.coin(gaussian_prob):
            step = {"level": draw.uniform(*resolve_range(level, scale))}
            step = {"kind": "gray" if draw.coin(gray_prob) else "color", **step}
        else:
            step = {
                "kind": "poisson",
                "scale": draw.uniform(*resolve_range(poisson, scale)),
                "gray": draw.coin(gray_prob),
                "peak": self.config.poisson_peak,
            }
        step["seed"] = draw.seed()
        return step

    def _sample_one(self, draw: Draw, scale: float, hr_size: list[int], lr_size: list[int]) -> dict:
        c = self.config
        blur1 = self._kernel(draw, scale, c.sinc_prob, c.blur_sigma, c.betag_range, c.betap_range)
        resize1 = self._resize(draw, c.resize_prob, c.resize_range, hr_size)
        noise1 = self._noise(
            draw, scale, c.gaussian_noise_prob, c.noise_range, c.poisson_scale_range, c.gray_noise_prob
        )
        jpeg1 = {"quality": draw.integer(*resolve_range(c.jpeg_range, scale))}

        blur2 = None
        if draw.coin(c.second_blur_prob):
            blur2 = self._kernel(draw, scale, c.sinc_prob2, c.blur_sigma2, c.betag_range2, c.betap_range2)
        resize2 = self._resize(draw, c.resize_prob2, c.resize_range2, lr_size)
        noise2 = self._noise(
            draw, scale, c.gaussian_noise_prob2, c.noise_range2, c.poisson_scale_range2, c.gray_noise_prob2
        )

        order = list(FINAL_ORDERS[0] if draw.coin(c.final_resize_first_prob) else FINAL_ORDERS[1])
        final_resize = resize_step(draw.choice(c.resize_modes), lr_size, c.antialias)
        final_sinc = None
        if draw.coin(c.final_sinc_prob):
            size = draw.odd(*(int(v) for v in resolve_range(c.kernel_size, scale)))
            final_sinc = {
                "kind": "sinc",
                "size": size,
                "cutoff": draw.uniform(*resolve_range(c.final_sinc_cutoff, scale)),
            }
        final_jpeg = {"quality": draw.integer(*resolve_range(c.jpeg_range2, scale))}
        return {
            "blur1": blur1,
            "resize1": resize1,
            "noise1": noise1,
            "jpeg1": jpeg1,
            "blur2": blur2,
            "resize2": resize2,
            "noise2": noise2,
            "final_order": order,
            "final_resize": final_resize,
            "final_sinc": final_sinc,
            "final_jpeg": final_jpeg,
            "quantize": c.quantize,
        }

    # -- applying ------------------------------------------------------------------------------------------

    def _apply_one(self, hr: torch.Tensor, record: dict) -> torch.Tensor:
        if record["final_order"] not in FINAL_ORDERS:
            raise ValueError(f"final_order must be one of {list(FINAL_ORDERS)}, got {record['final_order']}")
        x = apply_blur(hr, record["blur1"])
        x = apply_resize(x, record["resize1"])
        x = apply_noise(x, record["noise1"])
        x = apply_jpeg(x, record["jpeg1"])
        if record["blur2"] is not None:
            x = apply_blur(x, record["blur2"])
        x = apply_resize(x, record["resize2"])
        x = apply_noise(x, record["noise2"])
        for step in record["final_order"]:
            if step == "resize":
                x = apply_resize(x, record["final_resize"])
            elif step == "sinc":
                if record["final_sinc"] is not None:
                    x = apply_blur(x, record["final_sinc"])
            else:
                x = apply_jpeg(x, record["final_jpeg"])
        return quantize(x) if record["quantize"] else x.clamp(0.0, 1.0)
