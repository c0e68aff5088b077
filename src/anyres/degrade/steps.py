"""Recorded degradation steps: build each step's parameter dict (sampling side) and apply it to one image.

Every ``apply_*`` function takes a ``(1, C, H, W)`` float image and a step dict (plain JSON) from a record and is
deterministic: a noise field comes from the step's own ``seed`` through a fresh CPU ``torch.Generator``. The
step dicts (kernel, resize, Gaussian and Poisson noise, JPEG, camera) are listed in docs/methods/classical.md.
"""

from __future__ import annotations

import math

import torch

from anyres.ops.camera import camera_sensor_noise
from anyres.ops.color import quantize
from anyres.ops.filtering import filter2d
from anyres.ops.jpeg import jpeg
from anyres.ops.kernels import (
    bsrgan_anisotropic_kernel,
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
    sinc_kernel,
)
from anyres.ops.noise import correlated_gaussian_noise, gaussian_noise, poisson_noise
from anyres.ops.resize import MODES, imresize

__all__ = [
    "KERNEL_KINDS",
    "build_kernel",
    "apply_blur",
    "resize_step",
    "apply_resize",
    "apply_block_sample",
    "apply_gaussian_noise",
    "apply_poisson_noise",
    "apply_noise",
    "apply_jpeg",
    "apply_camera",
    "quantize",
    "kernel_size_for",
]

KERNEL_KINDS = (
    "iso",
    "aniso",
    "bsrgan_aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
    "sinc",
)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def _t(value: float) -> torch.Tensor:
    return torch.tensor([float(value)], dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------------
# Blur


def build_kernel(step: dict) -> torch.Tensor:
    """The ``(1, k, k)`` float64 kernel (summing to 1) described by a kernel step dict."""
    kind, size = step["kind"], int(step["size"])
    if kind == "iso":
        return gaussian_kernel(size, _t(step["sigma"]))
    if kind == "aniso":
        sx, sy = step["sigma"]
        return gaussian_kernel(size, _t(sx), _t(sy), _t(step["theta"]))
    if kind == "bsrgan_aniso":
        v1, v2 = step["var"]
        return bsrgan_anisotropic_kernel(size, _t(v1), _t(v2), _t(step["theta"]))
    if kind in ("generalized_iso", "plateau_iso", "generalized_aniso", "plateau_aniso"):
        builder = generalized_gaussian_kernel if kind.startswith("generalized") else plateau_kernel
        if kind.endswith("_iso"):
            return builder(size, _t(step["sigma"]), None, None, _t(step["beta"]))
        sx, sy = step["sigma"]
        return builder(size, _t(sx), _t(sy), _t(step["theta"]), _t(step["beta"]))
    if kind == "sinc":
        return sinc_kernel(size, _t(step["cutoff"]))
    raise ValueError(f"unknown kernel kind {kind!r}; expected one of {KERNEL_KINDS}")


def apply_blur(x: torch.Tensor, step: dict) -> torch.Tensor:
    """Filter ``(1, C, H, W)`` with the step's kernel (reflect-101 borders, as both references)."""
    return filter2d(x, build_kernel(step))


# ---------------------------------------------------------------------------------------------------------
# Resizing


def resize_step(mode: str, size: list[int], antialias: bool) -> dict:
    """A resize step dict. ``area`` always averages (it is the antialiased box); without antialiasing
    ``area`` would be a nearest-neighbour pick, which is not what any reference means by area."""
    return {"mode": mode, "antialias": True if mode == "area" else bool(antialias), "size": [int(v) for v in size]}


def apply_resize(x: torch.Tensor, step: dict) -> torch.Tensor:
    """Resize ``(1, C, H, W)`` to exactly ``step["size"]``, mapping the whole extent onto the whole extent.

    The factor of each axis is ``out / in`` (``imresize`` given a size only), which is what keeps LR and HR
    aligned through any chain of resizes. Same size in and out is the identity.
    """
    if step["mode"] not in MODES:
        raise ValueError(f"unknown resize mode {step['mode']!r}; expected one of {sorted(MODES)}")
    size = [int(v) for v in step["size"]]
    if size == list(x.shape[-2:]):
        return x
    return imresize(x, size=size, kernel=MODES[step["mode"]], antialias=bool(step["antialias"]))


def _point_sampling_matrix(n_in: int, n_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(n_out, n_in)`` linear-interpolation weights that read the input at the output pixels' centres.

    Output pixel ``m`` reads input coordinate ``c = (m + 0.5) n_in / n_out - 0.5`` (clamped to the image).
    For an integer factor ``s = n_in / n_out`` that is ``m s + (s - 1) / 2``: a single pixel for odd ``s``,
    the mean of two neighbours for even ``s``.
    """
    m = torch.arange(n_out, dtype=torch.float64)
    c = ((m + 0.5) * (n_in / n_out) - 0.5).clamp(0.0, n_in - 1)
    i0 = c.floor()
    frac = c - i0
    i0 = i0.long()
    i1 = (i0 + 1).clamp_max(n_in - 1)
    mat = torch.zeros(n_out, n_in, dtype=torch.float64)
    mat[torch.arange(n_out), i0] += 1.0 - frac
    mat[torch.arange(n_out), i1] += frac
    return mat.to(device=device, dtype=dtype)


def apply_block_sample(x: torch.Tensor, step: dict) -> torch.Tensor:
    """BSRGAN's "nearest" downsampling: Gaussian blur, then one sample per LR pixel at its block centre.

    ``step``: ``{"sigma", "kernel_size", "size": [h, w]}``. The image is filtered with the centred isotropic
    Gaussian, then read at the centre of each LR pixel's HR block (:func:`_point_sampling_matrix`). For an
    integer factor ``s`` this is the reference's construction exactly: a kernel shifted by ``(s - 1) / 2``
    pixels with bilinear weights, then every ``s``-th pixel from 0 (in ``filter2d``'s correlation convention
    the shift is towards +x and +y; BSRGAN convolves and so shifts by ``-(s - 1) / 2``). For any other
    factor the same rule holds with a per-pixel sub-pixel offset, which a single shifted kernel cannot give.
    """
    k = gaussian_kernel(int(step["kernel_size"]), _t(step["sigma"]))
    blurred = filter2d(x, k)
    h, w = (int(v) for v in step["size"])
    mh = _point_sampling_matrix(x.shape[-2], h, x.dtype, x.device)
    mw = _point_sampling_matrix(x.shape[-1], w, x.dtype, x.device)
    return torch.matmul(torch.matmul(mh, blurred), mw.t())


# ---------------------------------------------------------------------------------------------------------
# Noise and compression


def apply_gaussian_noise(x: torch.Tensor, step: dict) -> torch.Tensor:
    """Add the step's Gaussian noise (colour, gray or channel-correlated) and clip to [0, 1]."""
    sigma = torch.tensor([step["level"] / 255.0], dtype=x.dtype, device=x.device)
    gen = _seeded(step["seed"])
    if step["kind"] == "correlated":
        cov = torch.tensor(step["covariance"], dtype=torch.float64).unsqueeze(0)
        return correlated_gaussian_noise(x, cov, generator=gen)
    if step["kind"] not in ("color", "gray"):
        raise ValueError(f"unknown Gaussian noise kind {step['kind']!r}")
    gray = torch.tensor([step["kind"] == "gray"], device=x.device)
    return gaussian_noise(x, sigma, generator=gen, gray=gray)


def apply_poisson_noise(x: torch.Tensor, step: dict) -> torch.Tensor:
    """Add the step's Poisson noise (Real-ESRGAN's semantics, ``ops.noise.poisson_noise``) and clip."""
    scale = torch.tensor([float(step["scale"])], dtype=x.dtype, device=x.device)
    gray = torch.tensor([bool(step["gray"])], device=x.device)
    peak = None if step.get("peak") is None else torch.tensor([float(step["peak"])], dtype=x.dtype, device=x.device)
    return poisson_noise(x, scale, generator=_seeded(step["seed"]), gray=gray, peak=peak)


def apply_noise(x: torch.Tensor, step: dict) -> torch.Tensor:
    """Dispatch a Gaussian or Poisson noise step by its ``kind``."""
    if step["kind"] == "poisson":
        return apply_poisson_noise(x, step)
    return apply_gaussian_noise(x, step)


def apply_jpeg(x: torch.Tensor, step: dict) -> torch.Tensor:
    """JPEG-compress with Pillow at the step's quality (clamps to [0, 1] and rounds to 8 bits first)."""
    return jpeg(x, torch.tensor([int(step["quality"])]))


def apply_camera(x: torch.Tensor, step: dict) -> torch.Tensor:
    """Processed camera-sensor noise (unprocess, RAW shot + read noise, process) with recorded parameters."""

    def t(name: str) -> torch.Tensor:
        return torch.tensor([float(step[name])], dtype=x.dtype, device=x.device)

    ccm = torch.tensor(step["ccm"], dtype=x.dtype, device=x.device).unsqueeze(0)
    return camera_sensor_noise(
        x,
        ccm=ccm,
        red_gain=t("red_gain"),
        blue_gain=t("blue_gain"),
        brightness=t("brightness"),
        shot=t("shot"),
        read=t("read"),
        generator=_seeded(step["seed"]),
    )


def kernel_size_for(sigma_max: float, minimum: int = 3) -> int:
    """The smallest odd size holding +-3 sigma around the centre (at least ``minimum``)."""
    return max(minimum, 2 * math.ceil(3.0 * sigma_max) + 1)
