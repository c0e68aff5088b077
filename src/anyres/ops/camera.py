"""Processed camera-sensor noise: a simulated camera pipeline (ISP) run backwards, noised, and forwards.

``unprocess``: sRGB ``(B, 3, H, W)`` in [0, 1] -> linear RGGB Bayer ``(B, 1, H, W)`` (inverse tone curve,
inverse gamma 2.2, inverse colour matrix and white-balance gains, mosaic); noise with a signal-dependent
variance ``shot * raw + read`` is added to the mosaic; ``process`` demosaics (Malvar, He & Cutler) and runs
the forward pipeline back to sRGB. Parameters are per sample; randomness from an explicit ``torch.Generator``
(the conventions of :mod:`anyres.ops.noise`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from anyres.checks import check_image
from anyres.ops.filtering import pad2d
from anyres.ops.noise import _finish, _per_sample, _randn

__all__ = ["mosaic", "demosaic", "unprocess", "process", "camera_sensor_noise", "random_camera_params"]


def _bayer_masks(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """RGGB sites as (1, 1, H, W) float masks: red, green-in-red-row, green-in-blue-row, blue."""
    rows = torch.arange(h, device=like.device).view(h, 1) % 2
    cols = torch.arange(w, device=like.device).view(1, w) % 2
    masks = [(rows == r) & (cols == q) for r, q in ((0, 0), (0, 1), (1, 0), (1, 1))]
    return tuple(m.to(like.dtype).view(1, 1, h, w) for m in masks)


def mosaic(rgb: torch.Tensor) -> torch.Tensor:
    """Sample ``(B, 3, H, W)`` RGB on an RGGB Bayer pattern (red at even row, even column): ``(B, 1, H, W)``."""
    _, _, h, w = check_image(rgb, "rgb", channels=3)
    red, g_r, g_b, blue = _bayer_masks(h, w, rgb)
    return rgb[:, 0:1] * red + rgb[:, 1:2] * (g_r + g_b) + rgb[:, 2:3] * blue


# Gradient-corrected bilinear demosaicing filters (Malvar, He & Cutler, ICASSP 2004; the method of
# MATLAB's demosaic), in eighths. Each estimates a missing colour at a site from that colour's
# neighbours plus a Laplacian of the colour measured at the site.
_M_GREEN_AT_RB = [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]
_M_ROW_NEIGHBOURS = [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]]
_M_COL_NEIGHBOURS = [list(r) for r in zip(*_M_ROW_NEIGHBOURS)]
_M_DIAGONAL = [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]


def _extend_bayer(raw: torch.Tensor, dim: int) -> torch.Tensor:
    """Pad 2 pixels at both ends of ``dim`` by linear extrapolation within each Bayer phase.

    A mirror would put a kink into any slope at the border, which the demosaicing filters' Laplacian
    terms turn into visible error; extrapolating each colour from its own sites 2 and 4 pixels in keeps
    affine images exact up to the border.
    """
    n = raw.shape[dim]
    if n < 4:
        return pad2d(raw, (2, 2, 0, 0) if dim == -1 else (0, 0, 2, 2), "reflect")
    before = 2 * raw.narrow(dim, 0, 2) - raw.narrow(dim, 2, 2)
    after = 2 * raw.narrow(dim, n - 2, 2) - raw.narrow(dim, n - 4, 2)
    return torch.cat([before, raw, after], dim=dim)


def demosaic(raw: torch.Tensor) -> torch.Tensor:
    """Demosaic an RGGB Bayer image ``(B, 1, H, W)`` to ``(B, 3, H, W)`` with Malvar-He-Cutler filters.

    Borders are extended by per-phase linear extrapolation (reflected when a side is under 4 pixels),
    so images whose channels are affine functions of position, flat colours included, come back exactly.
    Differentiable; values may leave [0, 1] slightly near strong edges (the filters overshoot).
    """
    b, c, h, w = check_image(raw, "raw", channels=1)
    weight = raw.new_tensor([_M_GREEN_AT_RB, _M_ROW_NEIGHBOURS, _M_COL_NEIGHBOURS, _M_DIAGONAL]) / 8.0
    padded = _extend_bayer(_extend_bayer(raw, -2), -1)
    est = F.conv2d(padded, weight.unsqueeze(1))  # (B, 4, H, W)
    green_rb, row_nb, col_nb, diag = est.unbind(1)
    site = raw[:, 0]
    red_m, gr_m, gb_m, blue_m = (m[:, 0] for m in _bayer_masks(h, w, raw))
    red = red_m * site + gr_m * row_nb + gb_m * col_nb + blue_m * diag
    green = (gr_m + gb_m) * site + (red_m + blue_m) * green_rb
    blue = blue_m * site + gb_m * row_nb + gr_m * col_nb + red_m * diag
    return torch.stack([red, green, blue], dim=1)


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    return x * x * (3.0 - 2.0 * x)


def _inverse_smoothstep(y: torch.Tensor) -> torch.Tensor:
    # Closed-form inverse of 3x^2 - 2x^3 on [0, 1].
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y.clamp(0.0, 1.0)) / 3.0)


_GAMMA = 2.2
_GAMMA_FLOOR = 1e-8  # keeps x ** (1 / 2.2) differentiable at 0


def _check_camera(x: torch.Tensor, ccm, red_gain, blue_gain, brightness):
    b = x.shape[0]
    if not isinstance(ccm, torch.Tensor) or ccm.shape != (b, 3, 3):
        shape = tuple(ccm.shape) if isinstance(ccm, torch.Tensor) else type(ccm).__name__
        raise ValueError(f"ccm must have shape ({b}, 3, 3) for a batch of {b}, got {shape}")
    gains = [
        _per_sample(n, v, b, x)
        for n, v in (("red_gain", red_gain), ("blue_gain", blue_gain), ("brightness", brightness))
    ]
    if any((g <= 0).any() for g in gains):
        raise ValueError("red_gain, blue_gain and brightness must be > 0")
    one = torch.ones_like(gains[0])
    # Per-channel white-balance times brightness gain, (B, 3, 1, 1).
    wb = torch.stack([gains[0], one, gains[1]], dim=1) * gains[2].view(b, 1)
    return ccm.to(device=x.device, dtype=x.dtype), wb.view(b, 3, 1, 1)


def _apply_ccm(ccm: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    b, c, h, w = img.shape
    return (ccm @ img.reshape(b, c, h * w)).view(b, c, h, w)


def unprocess(
    x: torch.Tensor, ccm: torch.Tensor, red_gain: torch.Tensor, blue_gain: torch.Tensor, brightness: torch.Tensor
) -> torch.Tensor:
    """Invert a simple camera ISP: sRGB ``(B, 3, H, W)`` in [0, 1] -> linear Bayer RAW ``(B, 1, H, W)``.

    Steps (Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019; the inverse of
    :func:`process`): inverse smoothstep tone curve, inverse gamma 2.2, linear RGB -> camera RGB with
    ``ccm``, divide by white-balance and brightness gains, RGGB mosaic.

    Args:
        x: ``(B, 3, H, W)`` sRGB in [0, 1].
        ccm: ``(B, 3, 3)`` invertible linear-RGB -> camera-RGB matrices (rows summing to 1 keep white white).
        red_gain, blue_gain, brightness: ``(B,)`` positive gains (Brooks: U[1.9, 2.4], U[1.5, 1.9] and
            ``1 / N(0.8, 0.1)``).
    Returns:
        ``(B, 1, H, W)`` linear RAW, in [0, 1] when the gains are >= 1 and ``ccm`` is row-stochastic.
    """
    check_image(x, "x", channels=3)
    ccm, wb = _check_camera(x, ccm, red_gain, blue_gain, brightness)
    linear = _inverse_smoothstep(x).clamp_min(0.0) ** _GAMMA
    camera = _apply_ccm(ccm, linear) / wb
    return mosaic(camera)


def process(
    raw: torch.Tensor, ccm: torch.Tensor, red_gain: torch.Tensor, blue_gain: torch.Tensor, brightness: torch.Tensor
) -> torch.Tensor:
    """A simple camera ISP: linear Bayer RAW ``(B, 1, H, W)`` -> sRGB ``(B, 3, H, W)`` in [0, 1].

    Demosaic (:func:`demosaic`), white-balance and brightness gains, clip (the sensor's white point),
    camera RGB -> linear RGB with ``ccm^-1``, clip, gamma 2.2, smoothstep tone curve. Parameters as in
    :func:`unprocess`; ``process(unprocess(x))`` returns ``x`` up to demosaicing error (exact on flat
    colours) and clipping.
    """
    check_image(raw, "raw", channels=1)
    ccm, wb = _check_camera(raw, ccm, red_gain, blue_gain, brightness)
    camera = (demosaic(raw) * wb).clamp(0.0, 1.0)
    linear = _apply_ccm(torch.linalg.inv(ccm), camera).clamp(0.0, 1.0)
    return _smoothstep(linear.clamp_min(_GAMMA_FLOOR) ** (1.0 / _GAMMA))


def camera_sensor_noise(
    x: torch.Tensor,
    *,
    ccm: torch.Tensor,
    red_gain: torch.Tensor,
    blue_gain: torch.Tensor,
    brightness: torch.Tensor,
    shot: torch.Tensor,
    read: torch.Tensor,
    generator: torch.Generator,
    clip: bool = True,
) -> torch.Tensor:
    """Processed camera-sensor noise: unprocess to RAW, add shot + read noise, process back to sRGB.

    This is the BSRGAN paper's "processed camera sensor noise" (reverse ISP, RAW noise, forward ISP,
    following Brooks et al.). The BSRGAN code never released its ISP model
    (``isp_model=None``), so this is our own simulation, chosen to be simple, batched and exactly
    invertible without noise:

    - tone curve: the smoothstep ``3x^2 - 2x^3`` and its closed-form inverse (not per-camera fitted curves);
    - gamma 2.2 (not the piecewise sRGB curve);
    - colour: a per-sample matrix ``ccm`` (linear RGB -> camera RGB) and its inverse; we draw it as a
      random mixture near identity (:func:`random_camera_params`), not from measured camera matrices;
    - white balance: red and blue gains, and a brightness gain (Brooks' ranges);
    - RGGB mosaic; Malvar-He-Cutler demosaicing (MATLAB's ``demosaic`` method, which the paper names);
    - RAW noise (Brooks): ``raw + sqrt(shot * raw + read) * N(0, 1)``, then clipped to [0, 1]
      (``shot`` and ``read`` are variances per unit signal and constant variances);
    - no XYZ(D50) stage: a single matrix stands for sRGB -> XYZ -> camera.

    Because ``process(unprocess(x)) == x`` without noise (flat colours exactly; demosaicing error on
    edges is the only other change), the HR image need not go through the ISP, unlike the BSRGAN
    interface, which returns the HQ image through the forward ISP as well.

    Args:
        x: ``(B, 3, H, W)`` sRGB in [0, 1].
        ccm, red_gain, blue_gain, brightness: ISP parameters, see :func:`unprocess`.
        shot: ``(B,)`` shot-noise variance per unit RAW signal (Brooks: log-uniform in [1e-4, 1.2e-2]).
        read: ``(B,)`` read-noise variance (Brooks: ``log read = 2.18 log shot + 1.20 + N(0, 0.26)``).
        generator: source of randomness.
        clip: clamp the result to [0, 1] (process already returns [0, 1]; kept for a uniform signature).
    Returns:
        ``(B, 3, H, W)`` noisy sRGB images; differentiable in ``x`` and the parameters.
    """
    b, _, h, w = check_image(x, "x", channels=3)
    shot = _per_sample("shot", shot, b, x)
    read = _per_sample("read", read, b, x)
    raw = unprocess(x, ccm, red_gain, blue_gain, brightness)
    variance = shot.view(b, 1, 1, 1) * raw.clamp_min(0.0) + read.view(b, 1, 1, 1)
    z = _randn((b, 1, h, w), generator, x)
    noisy = (raw + variance.clamp_min(torch.finfo(x.dtype).tiny).sqrt() * z).clamp(0.0, 1.0)
    return _finish(process(noisy, ccm, red_gain, blue_gain, brightness), clip)


def random_camera_params(
    batch: int,
    *,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Sample per-sample parameters for :func:`camera_sensor_noise` (a parameter sampler, not an op).

    - ``ccm``: ``(1 - a) I + a M``, ``a ~ U[0.1, 0.4]``, ``M`` with U[0, 1] entries and rows normalised to
      sum 1. Rows sum to 1 (white stays white), entries are >= 0 (RAW stays in [0, 1]) and every
      eigenvalue has real part >= 1 - 2a > 0, so the matrix is invertible; its inverse has negative
      off-diagonal entries, so processing amplifies and colours the RAW noise as real cameras do.
    - ``red_gain ~ U[1.9, 2.4]``, ``blue_gain ~ U[1.5, 1.9]``, ``brightness = 1 / N(0.8, 0.1)`` (the normal
      clamped to >= 0.5); ``shot`` log-uniform in [1e-4, 1.2e-2]; ``log read = 2.18 log shot + 1.20 +
      N(0, 0.26)``. These are Brooks et al.'s ranges as recalled in the project's reference notes
      (unverified against the paper).

    Draws happen in float64 on the generator's device; returns a dict of ``(B,)`` tensors and ``ccm``
    ``(B, 3, 3)`` on ``device`` (default: the generator's) in ``dtype``.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    dev = generator.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand((batch, *shape), generator=generator, device=dev, dtype=torch.float64)

    def normal() -> torch.Tensor:
        return torch.randn((batch,), generator=generator, device=dev, dtype=torch.float64)

    mix = uniform(0.0, 1.0, 3, 3)
    mix = mix / mix.sum(dim=-1, keepdim=True)
    a = uniform(0.1, 0.4).view(batch, 1, 1)
    ccm = (1.0 - a) * torch.eye(3, dtype=torch.float64, device=dev) + a * mix
    red_gain = uniform(1.9, 2.4)
    blue_gain = uniform(1.5, 1.9)
    brightness = 1.0 / (0.8 + 0.1 * normal()).clamp_min(0.5)
    log_shot = uniform(math.log(1e-4), math.log(1.2e-2))
    log_read = 2.18 * log_shot + 1.20 + 0.26 * normal()
    out = {
        "ccm": ccm,
        "red_gain": red_gain,
        "blue_gain": blue_gain,
        "brightness": brightness,
        "shot": log_shot.exp(),
        "read": log_read.exp(),
    }
    target = dev if device is None else torch.device(device)
    return {k: v.to(device=target, dtype=dtype) for k, v in out.items()}
