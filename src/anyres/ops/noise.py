"""Noise models for degradation pipelines: Gaussian (white or channel-correlated) and Poisson noise.

Every function takes a batch ``x`` of shape ``(B, C, H, W)`` (float, nominally in [0, 1]), per-sample
parameters as ``(B,)`` (or ``(B, ...)``) tensors, and an explicit ``torch.Generator``; the same generator
state and inputs give bit-identical output. The noise is drawn on the generator's device (so a CPU
generator also serves a GPU batch, reproducibly) and moved to ``x``'s device; the result has ``x``'s dtype.
``clip=True`` (the default, as in both reference pipelines) clamps the result to [0, 1].

Units: noise levels are in the image's [0, 1] units, so BSRGAN's level ``L`` in 0..255 is ``L / 255``
and Real-ESRGAN's ``sigma`` in [1, 30] is ``sigma / 255``. Camera-sensor noise through a simulated ISP:
:mod:`anyres.ops.camera`.
"""

from __future__ import annotations

import torch

from anyres.checks import check_image
from anyres.ops.color import LUMA

__all__ = ["gaussian_noise", "correlated_gaussian_noise", "random_channel_covariance", "poisson_noise", "poisson_peak"]

# Luma weights of Real-ESRGAN's gray Poisson noise (ITU-R BT.601, as torchvision's rgb_to_grayscale).


# ---------------------------------------------------------------------------------------------------------
# Validation and drawing


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
    b, c, h, w = check_image(x, "x")
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
    b, c, h, w = check_image(x, "x")
    if covariance.shape != (b, c, c):
        raise ValueError(
            f"covariance must have shape ({b}, {c}, {c}) for x of shape {tuple(x.shape)}, "
            f"got shape {tuple(covariance.shape)}"
        )
    cov = covariance.to(device=x.device, dtype=_draw_dtype(x.dtype))
    if not torch.isfinite(cov).all():
        raise ValueError("covariance must be finite")
    cov = 0.5 * (cov + cov.transpose(-1, -2))
    evals, evecs = torch.linalg.eigh(cov)
    mix = (evecs * evals.clamp_min(0.0).sqrt().unsqueeze(-2)).to(x.dtype)  # (B, C, C), mix @ mix^T = cov
    z = _randn((b, c, h * w), generator, x)
    noise = (mix @ z).view(b, c, h, w)
    return _finish(x + noise, clip)


def random_channel_covariance(sigma: torch.Tensor, *, generator: torch.Generator, channels: int = 3) -> torch.Tensor:
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
    b = check_image(x, "x")[0]
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
    b, c, h, w = check_image(x, "x")
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
            luma = (v * v.new_tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
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
