"""Noise models for degradation pipelines: Gaussian, Poisson and processed camera-sensor noise.

Every function takes a batch ``x`` of shape ``(B, C, H, W)`` (float, nominally in [0, 1]), per-sample
parameters as ``(B,)`` (or ``(B, ...)``) tensors, and an explicit ``torch.Generator``; the same generator
state and inputs give bit-identical output. The noise is drawn on the generator's device (so a CPU
generator also serves a GPU batch, reproducibly) and moved to ``x``'s device; the result has ``x``'s dtype.
``clip=True`` (the default, as in both reference pipelines) clamps the result to [0, 1].

Units: noise levels are in the image's [0, 1] units, so BSRGAN's level ``L`` in 0..255 is ``L / 255``
and Real-ESRGAN's ``sigma`` in [1, 30] is ``sigma / 255``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from anyres.ops.filtering import pad2d

__all__ = [
    "gaussian_noise",
    "correlated_gaussian_noise",
    "random_channel_covariance",
    "poisson_noise",
    "poisson_peak",
    "mosaic",
    "demosaic",
    "unprocess",
    "process",
    "camera_sensor_noise",
    "random_camera_params",
]

# Luma weights of Real-ESRGAN's gray Poisson noise (ITU-R BT.601, as torchvision's rgb_to_grayscale).
_LUMA = (0.299, 0.587, 0.114)


# ---------------------------------------------------------------------------------------------------------
# Validation and drawing


def _check_image(x: torch.Tensor, channels: int | None = None) -> tuple[int, int, int, int]:
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float (B, C, H, W) tensor, got shape {tuple(x.shape)} and dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"x must have {channels} channels, got shape {tuple(x.shape)}")
    return tuple(x.shape)  # type: ignore[return-value]


def _per_sample(
    name: str, value: torch.Tensor, batch: int, x: torch.Tensor, *, nonnegative: bool = True
) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.shape != (batch,):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name} must have shape ({batch},) for a batch of {batch}, got {shape}")
    if not torch.isfinite(value).all() or (nonnegative and (value < 0).any()):
        raise ValueError(f"{name} must be finite{' and >= 0' if nonnegative else ''}, got {value.tolist()}")
    return value.to(device=x.device, dtype=x.dtype)


def _gray_flags(gray: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
    if gray is None:
        return None
    if not isinstance(gray, torch.Tensor) or gray.shape != (batch,):
        shape = tuple(gray.shape) if isinstance(gray, torch.Tensor) else type(gray).__name__
        raise ValueError(f"gray must have shape ({batch},) for a batch of {batch}, got {shape}")
    return gray.to(device=device, dtype=torch.bool).view(batch, 1, 1, 1)


def _draw_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _randn(shape, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    z = torch.randn(shape, generator=generator, device=generator.device, dtype=_draw_dtype(like.dtype))
    return z.to(device=like.device, dtype=like.dtype)


def _finish(out: torch.Tensor, clip: bool) -> torch.Tensor:
    return out.clamp(0.0, 1.0) if clip else out


# ---------------------------------------------------------------------------------------------------------
# Gaussian noise


def gaussian_noise(
    x: torch.Tensor,
    sigma: torch.Tensor,
    *,
    generator: torch.Generator,
    gray: torch.Tensor | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """Add white Gaussian noise with a per-sample standard deviation.

    Colour noise draws every channel independently; gray noise draws one ``H x W`` field per sample and
    adds it to all channels (pure luminance noise). BSRGAN picks colour / gray / channel-correlated with
    probabilities 0.4 / 0.4 / 0.2 (the correlated kind is :func:`correlated_gaussian_noise`);
    Real-ESRGAN picks gray with probability 0.4. Unlike Real-ESRGAN's torch code, which draws one gray
    field for the whole batch, each sample gets its own field here. A field of ``(B, C, H, W)`` values is
    drawn whatever ``gray`` says (gray samples use their first channel), so ``gray`` does not shift the
    random stream of later draws.

    Args:
        x: ``(B, C, H, W)`` float images in [0, 1].
        sigma: ``(B,)`` standard deviations in [0, 1] units (>= 0).
        generator: source of randomness.
        gray: optional ``(B,)`` bool, True where the sample gets gray noise.
        clip: clamp the result to [0, 1].
    Returns:
        ``(B, C, H, W)`` noisy images; differentiable in ``x`` and ``sigma``.
    """
    b, c, h, w = _check_image(x)
    sigma = _per_sample("sigma", sigma, b, x)
    flags = _gray_flags(gray, b, x.device)
    z = _randn((b, c, h, w), generator, x)
    if flags is not None:
        z = torch.where(flags, z[:, :1].expand(b, c, h, w), z)
    return _finish(x + sigma.view(b, 1, 1, 1) * z, clip)


def correlated_gaussian_noise(
    x: torch.Tensor, covariance: torch.Tensor, *, generator: torch.Generator, clip: bool = True
) -> torch.Tensor:
    """Add Gaussian noise whose channels are correlated, with a per-sample ``C x C`` covariance.

    Each pixel's noise vector is ``A z`` with ``z ~ N(0, I)`` and ``A A^T = covariance``; ``A`` comes from a
    symmetric eigendecomposition with negative eigenvalues clipped to 0, so a slightly non-PSD matrix
    (BSRGAN takes an elementwise ``abs`` of its covariance, which can make it indefinite) is projected to
    the nearest PSD one instead of failing.

    Args:
        x: ``(B, C, H, W)`` float images in [0, 1].
        covariance: ``(B, C, C)`` symmetric covariances in [0, 1]^2 units (see
            :func:`random_channel_covariance` for BSRGAN's kind).
        generator: source of randomness.
        clip: clamp the result to [0, 1].
    Returns:
        ``(B, C, H, W)`` noisy images.
    """
    b, c, h, w = _check_image(x)
    if covariance.shape != (b, c, c):
        raise ValueError(f"covariance must have shape ({b}, {c}, {c}) for x of shape {tuple(x.shape)}, "
                         f"got shape {tuple(covariance.shape)}")
    cov = covariance.to(device=x.device, dtype=_draw_dtype(x.dtype))
    if not torch.isfinite(cov).all():
        raise ValueError("covariance must be finite")
    cov = 0.5 * (cov + cov.transpose(-1, -2))
    evals, evecs = torch.linalg.eigh(cov)
    mix = (evecs * evals.clamp_min(0.0).sqrt().unsqueeze(-2)).to(x.dtype)  # (B, C, C), mix @ mix^T = cov
    z = _randn((b, c, h * w), generator, x)
    noise = (mix @ z).view(b, c, h, w)
    return _finish(x + noise, clip)


def random_channel_covariance(
    sigma: torch.Tensor, *, generator: torch.Generator, channels: int = 3
) -> torch.Tensor:
    """Sample BSRGAN-style channel covariances ``sigma^2 U^T D U`` (a parameter sampler, not an op).

    ``U`` is a random orthogonal matrix (Q of the QR decomposition of a matrix of U[0, 1] entries; BSRGAN
    orthonormalises such a matrix with ``scipy.linalg.orth``) and ``D`` a diagonal of U[0, 1] values, so
    every channel's standard deviation is at most ``sigma``. Two deliberate differences from the BSRGAN
    code: the scale is the sample's own noise level (the code always uses the maximum, 25/255, on this
    branch) and no elementwise ``abs`` is taken, so the matrix is positive semi-definite by construction.

    Args:
        sigma: ``(B,)`` noise levels in [0, 1] units.
        generator: source of randomness (matrices are drawn in float64 on its device).
        channels: ``C``.
    Returns:
        ``(B, C, C)`` covariances on ``sigma``'s device, in its dtype (float64 if it is not floating).
    """
    if sigma.dim() != 1:
        raise ValueError(f"sigma must have shape (B,), got shape {tuple(sigma.shape)}")
    b = sigma.shape[0]
    dev = generator.device
    a = torch.rand((b, channels, channels), generator=generator, device=dev, dtype=torch.float64)
    d = torch.rand((b, channels), generator=generator, device=dev, dtype=torch.float64)
    u, _ = torch.linalg.qr(a)
    cov = u.transpose(-1, -2) @ torch.diag_embed(d) @ u
    cov = cov * sigma.to(device=dev, dtype=torch.float64).view(b, 1, 1) ** 2
    dtype = sigma.dtype if sigma.is_floating_point() else torch.float64
    return cov.to(device=sigma.device, dtype=dtype)


# ---------------------------------------------------------------------------------------------------------
# Poisson noise


def poisson_peak(x: torch.Tensor) -> torch.Tensor:
    """Real-ESRGAN's content-dependent photon count per unit intensity, per sample.

    ``2 ** ceil(log2(n))`` where ``n`` is the number of distinct 8-bit values (``round(255 x)``, over all
    channels) in the sample: 256 for almost any natural photo, less for flat or posterised ones (more
    noise). Because it depends on content, two crops of one image can get different values (DeeDSR#3);
    a pipeline that records this value as a parameter replays exactly.

    Args:
        x: ``(B, C, H, W)`` float images in [0, 1].
    Returns:
        ``(B,)`` peaks (powers of two in [1, 256]) in ``x``'s dtype.
    """
    b = _check_image(x)[0]
    levels = (x.detach().clamp(0.0, 1.0) * 255.0).round().long().reshape(b, -1)
    hist = torch.zeros((b, 256), device=x.device, dtype=torch.long)
    hist.scatter_add_(1, levels, torch.ones_like(levels))
    distinct = (hist > 0).sum(dim=1).to(torch.float64)
    return torch.exp2(torch.ceil(torch.log2(distinct))).to(x.dtype)


def poisson_noise(
    x: torch.Tensor,
    scale: torch.Tensor,
    *,
    generator: torch.Generator,
    gray: torch.Tensor | None = None,
    peak: torch.Tensor | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """Add Poisson (shot) noise with Real-ESRGAN's semantics: ``x + scale * (Poisson(v * peak) / peak - v)``.

    ``v`` is the image clamped to [0, 1] (colour: per channel) or its luma ``0.299 R + 0.587 G + 0.114 B``
    (gray: one field added to all channels). The noise variance is ``scale^2 * v / peak``: it grows
    linearly with intensity. Differences from the reference: the rate is the unrounded image (the
    reference rounds to 8 bits first; the difference is below one level), and ``peak`` may be given
    explicitly, so that the same parameters mean the same noise on any crop.

    Args:
        x: ``(B, C, H, W)`` float images in [0, 1] (``C = 3`` for gray noise to use luma; with ``C = 1`` gray
            and colour are the same).
        scale: ``(B,)`` noise scales >= 0 (Real-ESRGAN draws [0.05, 3]).
        generator: source of randomness.
        gray: optional ``(B,)`` bool, True where the sample gets gray noise.
        peak: optional ``(B,)`` counts per unit intensity (> 0); default :func:`poisson_peak` of ``x``.
        clip: clamp the result to [0, 1].
    Returns:
        ``(B, C, H, W)`` noisy images. The noise is not differentiable (gradients pass to ``x`` unchanged).
    """
    b, c, h, w = _check_image(x)
    scale = _per_sample("scale", scale, b, x)
    flags = _gray_flags(gray, b, x.device)
    if flags is not None and c not in (1, 3):
        raise ValueError(f"gray Poisson noise needs 1 or 3 channels, got shape {tuple(x.shape)}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    peak = poisson_peak(x) if peak is None else _per_sample("peak", peak, b, x)
    if (peak <= 0).any():
        raise ValueError(f"peak must be > 0, got {peak.tolist()}")
    with torch.no_grad():
        v = x.detach().clamp(0.0, 1.0)
        if flags is not None and c == 3:
            luma = (v * v.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
            v = torch.where(flags, luma.expand(b, c, h, w), v)
        if flags is not None and c == 3 and bool(flags.all()):
            v = v[:, :1]  # every sample is gray: one field each is all that is used (a third of the draws)
        rate = (v * peak.view(b, 1, 1, 1)).to(device=generator.device, dtype=_draw_dtype(x.dtype))
        counts = torch.poisson(rate, generator=generator).to(device=x.device, dtype=x.dtype)
        noise = counts / peak.view(b, 1, 1, 1) - v
        if noise.shape[1] != c:
            noise = noise.expand(b, c, h, w)
        elif flags is not None:
            noise = torch.where(flags, noise[:, :1].expand(b, c, h, w), noise)
    return _finish(x + scale.view(b, 1, 1, 1) * noise, clip)


# ---------------------------------------------------------------------------------------------------------
# Camera sensor noise through a simulated ISP


def _bayer_masks(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """RGGB sites as (1, 1, H, W) float masks: red, green-in-red-row, green-in-blue-row, blue."""
    rows = torch.arange(h, device=like.device).view(h, 1) % 2
    cols = torch.arange(w, device=like.device).view(1, w) % 2
    masks = [(rows == r) & (cols == q) for r, q in ((0, 0), (0, 1), (1, 0), (1, 1))]
    return tuple(m.to(like.dtype).view(1, 1, h, w) for m in masks)


def mosaic(rgb: torch.Tensor) -> torch.Tensor:
    """Sample ``(B, 3, H, W)`` RGB on an RGGB Bayer pattern (red at even row, even column): ``(B, 1, H, W)``."""
    _, _, h, w = _check_image(rgb, 3)
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
    b, c, h, w = _check_image(raw, 1)
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
    gains = [_per_sample(n, v, b, x) for n, v in (("red_gain", red_gain), ("blue_gain", blue_gain),
                                                  ("brightness", brightness))]
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
    _check_image(x, 3)
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
    _check_image(raw, 1)
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
    b, _, h, w = _check_image(x, 3)
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
    out = {"ccm": ccm, "red_gain": red_gain, "blue_gain": blue_gain, "brightness": brightness,
           "shot": log_shot.exp(), "read": log_read.exp()}
    target = dev if device is None else torch.device(device)
    return {k: v.to(device=target, dtype=dtype) for k, v in out.items()}
