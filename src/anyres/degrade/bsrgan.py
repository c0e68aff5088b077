"""BSRGAN's degradation model (Zhang, Liang, Van Gool & Timofte, ICCV 2021), drawn per sample, at any scale.

``(B, 3, H, W)`` HR in [0, 1] -> ``(B, 3, round(H / s), round(W / s))`` LR: an optional halving, then two blurs
(isotropic and anisotropic), two resizes, Gaussian noise, JPEG and camera-sensor noise in a random order
(``down1`` before ``down2``), then a final JPEG. Ranges, the record layout and where anyres follows the paper
rather than the reference code: docs/methods/bsrgan.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from anyres.checks import check_choices, check_prob, check_probs, check_range
from anyres.degrade.base import Draw, Pipeline, Range, resolve_range, scaled_size
from anyres.degrade.base import lr_size as lr_size_for
from anyres.degrade.steps import (
    apply_block_sample,
    apply_blur,
    apply_camera,
    apply_gaussian_noise,
    apply_jpeg,
    apply_resize,
    kernel_size_for,
    resize_step,
)
from anyres.errors import ConfigError
from anyres.ops.camera import random_camera_params
from anyres.ops.noise import random_channel_covariance

__all__ = ["BSRGANConfig", "BSRGANPipeline", "STEPS", "sample_order"]

STEPS = ("blur1", "blur2", "down1", "down2", "noise", "jpeg", "camera")
NOISE_KINDS = ("color", "gray", "correlated")
_RESIZE_MODES = ("bilinear", "bicubic", "area", "nearest", "lanczos")


@dataclass(frozen=True)
class BSRGANConfig:
    """Ranges of the BSRGAN pipeline; bounds may be ``(c, k)`` = ``c + k * s`` for the scale in effect."""

    halve_prob: float = 0.25  # reference "scale2_prob"
    halve_min_scale: float = 4.0  # halving only at scales >= this (reference: x4 only)
    halve_matlab_prob: float = 0.5  # halve with MATLAB antialiased bicubic, else a random mode
    blur_kernel_size: Range = (7, 21)  # odd sizes, uniform (paper; code 7..25)
    iso_sigma: Range = (0.1, (2.0, 0.2))  # isotropic standard deviation (paper; code from 0)
    aniso_var: Range = (0.5, (4.0, 1.0))  # anisotropic covariance eigenvalues, pixels^2 (paper; code from 0)
    aniso_theta: Range = (0.0, math.pi)
    blur_coin: bool = False  # True: each blur is iso or aniso with p 0.5 (code behaviour)
    nearest_prob: float = 0.25  # down1 is the shifted-kernel "nearest" downsampling
    nearest_sigma: Range = (0.1, (0.0, 0.6))
    nearest_kernel_size: int = 21  # paper 21 (code 25); grown to hold +-3 sigma
    down_factor: Range = (1.0, (0.0, 2.0))  # down1 divides the size by a ~ U[1, 2 s]
    resize_modes: tuple = ("bilinear", "bicubic", "area")
    antialias: bool = False  # OpenCV resize does not antialias bilinear/bicubic
    noise_level: Range = (2, 25)  # whole levels on the 0..255 scale, both ends included
    noise_kind_prob: tuple = (0.4, 0.4, 0.2)  # colour, gray, correlated
    jpeg_prob: float = 0.9
    jpeg_range: Range = (30, 95)
    camera_prob: float = 0.25  # paper; the reference code never applies it (no ISP released)
    final_jpeg_range: Range = (30, 95)

    def __post_init__(self) -> None:
        s = object.__setattr__
        for name in ("halve_prob", "halve_matlab_prob", "nearest_prob", "jpeg_prob", "camera_prob"):
            s(self, name, check_prob(getattr(self, name), name))
        if isinstance(self.halve_min_scale, bool) or not isinstance(self.halve_min_scale, (int, float)):
            raise ConfigError(f"halve_min_scale must be a number, got {self.halve_min_scale!r}")
        s(
            self,
            "blur_kernel_size",
            check_range(self.blur_kernel_size, "blur_kernel_size", scaled=True, minimum=1, integer=True),
        )
        s(self, "iso_sigma", check_range(self.iso_sigma, "iso_sigma", scaled=True, minimum=0.0))
        s(self, "aniso_var", check_range(self.aniso_var, "aniso_var", scaled=True, minimum=1e-6))
        s(self, "aniso_theta", check_range(self.aniso_theta, "aniso_theta", scaled=True))
        s(self, "blur_coin", bool(self.blur_coin))
        s(self, "nearest_sigma", check_range(self.nearest_sigma, "nearest_sigma", scaled=True, minimum=0.0))
        k = self.nearest_kernel_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ConfigError(f"nearest_kernel_size must be an odd int >= 1, got {k!r}")
        s(self, "down_factor", check_range(self.down_factor, "down_factor", scaled=True, minimum=1e-6))
        s(self, "resize_modes", check_choices(self.resize_modes, "resize_modes", _RESIZE_MODES))
        s(self, "antialias", bool(self.antialias))
        s(self, "noise_level", check_range(self.noise_level, "noise_level", scaled=True, minimum=0, integer=True))
        s(self, "noise_kind_prob", check_probs(self.noise_kind_prob, "noise_kind_prob", 3))
        s(
            self,
            "jpeg_range",
            check_range(self.jpeg_range, "jpeg_range", scaled=True, minimum=1, maximum=100, integer=True),
        )
        s(
            self,
            "final_jpeg_range",
            check_range(self.final_jpeg_range, "final_jpeg_range", scaled=True, minimum=1, maximum=100, integer=True),
        )


def sample_order(draw: Draw) -> list[str]:
    """A uniformly random order of the seven steps with ``down1`` before ``down2`` (2520 orders).

    A uniform permutation in which the two downsampling steps are swapped when ``down2`` comes first: each
    admissible order arises from exactly two permutations, so all are equally likely (the reference's rule).
    """
    perm = [STEPS[i] for i in draw.permutation(len(STEPS))]
    i1, i2 = perm.index("down1"), perm.index("down2")
    if i2 < i1:
        perm[i1], perm[i2] = perm[i2], perm[i1]
    return perm


class BSRGANPipeline(Pipeline):
    """BSRGAN's shuffled degradation, sampled per sample (differences: docs/methods/bsrgan.md)."""

    name = "bsrgan"
    Config = BSRGANConfig

    # -- sampling ------------------------------------------------------------------------------------------

    def _blur(self, draw: Draw, kind: str, scale: float) -> dict:
        c = self.config
        lo, hi = resolve_range(c.blur_kernel_size, scale)
        size = draw.odd(int(lo), int(hi))
        if kind == "iso":
            return {"kind": "iso", "size": size, "sigma": draw.uniform(*resolve_range(c.iso_sigma, scale))}
        var_lo, var_hi = resolve_range(c.aniso_var, scale)
        return {
            "kind": "bsrgan_aniso",
            "size": size,
            "var": [draw.uniform(var_lo, var_hi), draw.uniform(var_lo, var_hi)],
            "theta": draw.uniform(*resolve_range(c.aniso_theta, scale)),
        }

    def _sample_one(self, draw: Draw, scale: float, hr_size: list[int], lr_size: list[int]) -> dict:
        c = self.config
        local_scale, size = scale, hr_size
        halve = None
        if scale >= c.halve_min_scale and draw.coin(c.halve_prob):
            local_scale, size = scale / 2.0, lr_size_for(hr_size, 2.0)
            if draw.coin(c.halve_matlab_prob):
                halve = resize_step("bicubic", size, True)
            else:
                halve = resize_step(draw.choice(c.resize_modes), size, c.antialias)

        perm = sample_order(draw)

        if c.blur_coin:
            kinds = ["iso" if draw.coin(0.5) else "aniso", "iso" if draw.coin(0.5) else "aniso"]
        else:
            kinds = ["iso", "aniso"]
        blur1, blur2 = (self._blur(draw, kind, local_scale) for kind in kinds)

        if draw.coin(c.nearest_prob):
            sigma = draw.uniform(*resolve_range(c.nearest_sigma, local_scale))
            down1 = {
                "kind": "nearest",
                "sigma": sigma,
                "kernel_size": max(c.nearest_kernel_size, kernel_size_for(sigma)),
                "size": lr_size_for(size, local_scale),
            }
        else:
            factor = draw.uniform(*resolve_range(c.down_factor, local_scale))
            down1 = {
                "kind": "resize",
                "factor": factor,
                **resize_step(draw.choice(c.resize_modes), scaled_size(size, 1.0 / factor), c.antialias),
            }
        down2 = resize_step(draw.choice(c.resize_modes), lr_size, c.antialias)

        kind = draw.choice(NOISE_KINDS, c.noise_kind_prob)
        level = draw.integer(*resolve_range(c.noise_level, local_scale))
        noise = {"kind": kind, "level": level}
        if kind == "correlated":
            sigma = torch.tensor([level / 255.0], dtype=torch.float64)
            noise["covariance"] = random_channel_covariance(sigma, generator=draw.generator)[0].tolist()
        noise["seed"] = draw.seed()

        jpeg = {"quality": draw.integer(*resolve_range(c.jpeg_range, local_scale))} if draw.coin(c.jpeg_prob) else None
        camera = None
        if draw.coin(c.camera_prob):
            params = random_camera_params(1, generator=draw.generator, dtype=torch.float64)
            camera = {k: v[0].tolist() for k, v in params.items()}
            camera["seed"] = draw.seed()
        final_jpeg = {"quality": draw.integer(*resolve_range(c.final_jpeg_range, local_scale))}
        return {
            "halve": halve,
            "order": perm,
            "blur1": blur1,
            "blur2": blur2,
            "down1": down1,
            "down2": down2,
            "noise": noise,
            "jpeg": jpeg,
            "camera": camera,
            "final_jpeg": final_jpeg,
        }

    # -- applying ------------------------------------------------------------------------------------------

    def _apply_one(self, hr: torch.Tensor, record: dict) -> torch.Tensor:
        if sorted(record["order"]) != sorted(STEPS):
            raise ValueError(f"a BSRGAN record's order must be a permutation of {list(STEPS)}, got {record['order']}")
        x = hr
        if record["halve"] is not None:
            x = apply_resize(x, record["halve"]).clamp(0.0, 1.0)
        for step in record["order"]:
            if step in ("blur1", "blur2"):
                x = apply_blur(x, record[step])
            elif step == "down1":
                down = record["down1"]
                x = apply_block_sample(x, down) if down["kind"] == "nearest" else apply_resize(x, down)
                x = x.clamp(0.0, 1.0)
            elif step == "down2":
                x = apply_resize(x, record["down2"]).clamp(0.0, 1.0)
            elif step == "noise":
                x = apply_gaussian_noise(x, record["noise"])
            elif step == "jpeg":
                if record["jpeg"] is not None:
                    x = apply_jpeg(x, record["jpeg"])
            elif step == "camera":
                if record["camera"] is not None:
                    x = apply_camera(x, record["camera"])
        return apply_jpeg(x, record["final_jpeg"])
