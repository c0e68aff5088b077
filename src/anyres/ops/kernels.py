"""Blur kernels for degradation models, built in batches with one set of parameters per sample.

Every builder returns ``(B, k, k)`` taps summing to 1, ``k`` odd, origin on the centre tap; parameters are
``(B,)`` tensors. Tap ``[b, i, j]`` is offset ``x = j - k // 2``, ``y = i - k // 2``; ``theta`` turns the
``sigma_x`` axis from +x towards +y. With ``q = u^2 / sigma_x^2 + v^2 / sigma_y^2`` (offset rotated by
``-theta``): Gaussian ``exp(-q / 2)``, generalized ``exp(-q^beta / 2)``, plateau ``1 / (1 + q^beta)``.
Conventions, zero sigmas and per-sample ``support``: docs/methods/classical.md, "Blur kernels".
"""

from __future__ import annotations

import math

import torch

from anyres.checks import check_int, check_positive

__all__ = [
    "gaussian_kernel",
    "gaussian_kernel_from_covariance",
    "bsrgan_anisotropic_kernel",
    "generalized_gaussian_kernel",
    "plateau_kernel",
    "sinc_kernel",
    "gaussian_covariance",
    "kernel_moments",
    "kernel_centroid",
    "pad_kernel",
]

# A standard deviation of exactly 0 would divide 0 by 0 at the centre tap; this floor keeps the centre at
# exp(0) = 1 and underflows every other tap to 0, i.e. a delta kernel, as sigma -> 0 does in the limit.
_MIN_SIGMA = 1e-6


# ---------------------------------------------------------------------------------------------------------
# Validation and shared helpers


def _batch_params(**params: torch.Tensor | None) -> tuple[int, torch.device, torch.dtype]:
    """Check that every given parameter is a (B,) tensor with one common B; return B, device, float dtype."""
    batch = None
    ref = None
    for name, value in params.items():
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a tensor of shape (B,), got {type(value).__name__}")
        if value.dim() != 1:
            raise ValueError(f"{name} must have shape (B,), got shape {tuple(value.shape)}")
        if batch is None:
            batch, ref = value.shape[0], value
        elif value.shape[0] != batch:
            raise ValueError(f"{name} has shape {tuple(value.shape)} but the batch size is {batch}")
    if ref is None or batch is None:
        raise ValueError("at least one (B,) parameter is required")
    dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
    return batch, ref.device, dtype


def _float(value: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return value.to(device=device, dtype=dtype)


def _grid(size: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, k) column offsets x and row offsets y, both from -k//2 to k//2."""
    r = size // 2
    ax = torch.arange(-r, r + 1, device=device, dtype=dtype)
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    return x, y


def _support_mask(size: int, support: torch.Tensor | None, batch: int, device, dtype) -> torch.Tensor | None:
    if support is None:
        return None
    if support.dim() != 1 or support.shape[0] != batch:
        raise ValueError(f"support must have shape ({batch},), got shape {tuple(support.shape)}")
    s = support.to(device=device)
    if s.is_floating_point() and not torch.equal(s, s.round()):
        raise ValueError(f"support must hold whole numbers, got {support.tolist()}")
    s = s.round().long()
    if ((s < 1) | (s > size) | (s % 2 == 0)).any():
        raise ValueError(f"support must hold odd sizes in [1, {size}], got {support.tolist()}")
    x, y = _grid(size, device, dtype)
    half = (s // 2).to(dtype).view(-1, 1, 1)
    return ((x.abs() <= half) & (y.abs() <= half)).to(dtype)


def _normalise(kernel: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        kernel = kernel * mask
    return kernel / kernel.sum(dim=(-2, -1), keepdim=True)


def _rotated_quadratic_form(
    size: int, sigma_x: torch.Tensor, sigma_y: torch.Tensor, theta: torch.Tensor
) -> torch.Tensor:
    """``q = x^T Sigma^-1 x`` on the (k, k) grid for Sigma = R diag(sx^2, sy^2) R^T; returns (B, k, k)."""
    x, y = _grid(size, sigma_x.device, sigma_x.dtype)
    c = torch.cos(theta).view(-1, 1, 1)
    s = torch.sin(theta).view(-1, 1, 1)
    # Coordinates along the kernel's own axes: the offset rotated by -theta.
    u = c * x + s * y
    v = -s * x + c * y
    sx = sigma_x.clamp_min(_MIN_SIGMA).view(-1, 1, 1)
    sy = sigma_y.clamp_min(_MIN_SIGMA).view(-1, 1, 1)
    return (u / sx) ** 2 + (v / sy) ** 2


def _safe_pow(q: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    # q ** beta with finite gradients at the centre tap, where q = 0 (d/dbeta would be 0 * log 0 there).
    return q.clamp_min(torch.finfo(q.dtype).tiny).pow(beta.view(-1, 1, 1))


def _shape_params(sigma_x, sigma_y, theta, **extra):
    batch, device, dtype = _batch_params(sigma_x=sigma_x, sigma_y=sigma_y, theta=theta, **extra)
    sigma_x = _float(sigma_x, device, dtype)
    sigma_y = sigma_x if sigma_y is None else _float(sigma_y, device, dtype)
    theta = torch.zeros_like(sigma_x) if theta is None else _float(theta, device, dtype)
    check_positive(sigma_x, "sigma_x", strict=False)
    check_positive(sigma_y, "sigma_y", strict=False)
    if not torch.isfinite(theta).all():
        raise ValueError(f"theta must be finite, got {theta.tolist()}")
    return batch, device, dtype, sigma_x, sigma_y, theta


# ---------------------------------------------------------------------------------------------------------
# Builders


def gaussian_covariance(sigma_x: torch.Tensor, sigma_y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Covariance ``R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T`` of a rotated Gaussian.

    Args: three ``(B,)`` tensors; sigmas are standard deviations in pixels, ``theta`` in radians.
    Returns: ``(B, 2, 2)`` covariance in ``(x, y)`` = (column, row) order, the same order as
    :func:`kernel_moments`.
    """
    _batch_params(sigma_x=sigma_x, sigma_y=sigma_y, theta=theta)
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    diag = torch.diag_embed(torch.stack([sigma_x**2, sigma_y**2], -1))
    return rot @ diag @ rot.transpose(-1, -2)


def gaussian_kernel(
    size: int,
    sigma_x: torch.Tensor,
    sigma_y: torch.Tensor | None = None,
    theta: torch.Tensor | None = None,
    *,
    support: torch.Tensor | None = None,
) -> torch.Tensor:
    """Isotropic or anisotropic Gaussian blur kernels, ``exp(-q / 2)`` normalised to sum 1.

    Args:
        size: odd kernel side ``k``.
        sigma_x: ``(B,)`` standard deviation (pixels, >= 0) along the kernel's first axis.
        sigma_y: ``(B,)`` standard deviation along the second axis; ``None`` means ``sigma_x`` (isotropic).
        theta: ``(B,)`` angle of the first axis in radians (from +x towards +y); ``None`` means 0.
        support: optional ``(B,)`` odd per-sample sizes ``<= size`` (docs/methods/classical.md).
    Returns:
        ``(B, k, k)`` kernels, each summing to 1. Differentiable in the sigmas and the angle.
    """
    size = check_int(size, "kernel size", minimum=1, odd=True)
    batch, device, dtype, sx, sy, th = _shape_params(sigma_x, sigma_y, theta, support=support)
    q = _rotated_quadratic_form(size, sx, sy, th)
    return _normalise(torch.exp(-0.5 * q), _support_mask(size, support, batch, device, dtype))


def gaussian_kernel_from_covariance(
    size: int, covariance: torch.Tensor, *, support: torch.Tensor | None = None
) -> torch.Tensor:
    """Gaussian kernels with a given covariance, ``exp(-x^T C^-1 x / 2)`` normalised to sum 1.

    Args:
        size: odd kernel side ``k``.
        covariance: ``(B, 2, 2)`` symmetric positive-definite covariance (pixels^2) in (x, y) order.
        support: optional ``(B,)`` odd per-sample sizes ``<= size``.
    Returns:
        ``(B, k, k)`` kernels summing to 1.
    """
    size = check_int(size, "kernel size", minimum=1, odd=True)
    if covariance.dim() != 3 or covariance.shape[1:] != (2, 2):
        raise ValueError(f"covariance must have shape (B, 2, 2), got shape {tuple(covariance.shape)}")
    dtype = covariance.dtype if covariance.is_floating_point() else torch.get_default_dtype()
    cov = covariance.to(dtype)
    a, b, c = cov[:, 0, 0], 0.5 * (cov[:, 0, 1] + cov[:, 1, 0]), cov[:, 1, 1]
    det = a * c - b * b
    if not torch.isfinite(cov).all() or (a <= 0).any() or (det <= 0).any():
        raise ValueError(f"covariance must be positive definite, got {cov.tolist()}")
    x, y = _grid(size, cov.device, dtype)
    a, b, c, det = (t.view(-1, 1, 1) for t in (a, b, c, det))
    q = (c * x * x - 2.0 * b * x * y + a * y * y) / det
    mask = _support_mask(size, support, cov.shape[0], cov.device, dtype)
    return _normalise(torch.exp(-0.5 * q), mask)


def bsrgan_anisotropic_kernel(
    size: int, var_1: torch.Tensor, var_2: torch.Tensor, theta: torch.Tensor, *, support: torch.Tensor | None = None
) -> torch.Tensor:
    """BSRGAN's anisotropic Gaussian, parameterised by covariance eigenvalues (variances) and an angle.

    BSRGAN (``add_blur``) draws the two eigenvalues ``var_1, var_2 ~ U[0, 4 + s]`` as *variances* and
    builds ``Sigma = V diag(var_1, var_2) V^-1`` with ``V`` the reflection whose first column is
    ``(cos theta, sin theta)``. A reflection and a rotation with the same first column give the same
    ``Sigma``, so this is :func:`gaussian_kernel` with ``sigma = sqrt(var)``; it is computed here from the
    covariance (an independent path, which the tests compare). The reference samples the pdf at the
    same integer offsets around the centre tap, so for odd sizes the taps agree.

    Args:
        size: odd kernel side ``k`` (BSRGAN: ``2 * randint(2, 11) + 3``, i.e. 7..25).
        var_1, var_2: ``(B,)`` eigenvalues of the covariance, pixels^2, > 0.
        theta: ``(B,)`` direction of the ``var_1`` eigenvector, radians (BSRGAN: ``U[0, pi)``).
        support: optional ``(B,)`` odd per-sample sizes ``<= size``.
    Returns:
        ``(B, k, k)`` kernels summing to 1.
    """
    size = check_int(size, "kernel size", minimum=1, odd=True)
    _, device, dtype = _batch_params(var_1=var_1, var_2=var_2, theta=theta, support=support)
    var_1, var_2, theta = (_float(t, device, dtype) for t in (var_1, var_2, theta))
    check_positive(var_1, "var_1")
    check_positive(var_2, "var_2")
    c, s = torch.cos(theta), torch.sin(theta)
    reflection = torch.stack([torch.stack([c, s], -1), torch.stack([s, -c], -1)], -2)  # its own inverse
    cov = reflection @ torch.diag_embed(torch.stack([var_1, var_2], -1)) @ reflection
    return gaussian_kernel_from_covariance(size, cov, support=support)


def generalized_gaussian_kernel(
    size: int,
    sigma_x: torch.Tensor,
    sigma_y: torch.Tensor | None,
    theta: torch.Tensor | None,
    beta: torch.Tensor,
    *,
    support: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generalized Gaussian kernels, ``exp(-(q ** beta) / 2)`` normalised to sum 1 (Real-ESRGAN Eq. 3).

    ``q`` is the squared Mahalanobis distance of a Gaussian with the given sigmas and angle, so
    ``beta = 1`` gives exactly :func:`gaussian_kernel`. (Real-ESRGAN writes the exponent as
    ``beta`` applied to ``q``, with the factor 1/2 outside; ``beta`` here means the same.)

    Args:
        size: odd kernel side ``k``.
        sigma_x, sigma_y, theta: as in :func:`gaussian_kernel` (``None`` for isotropic / unrotated).
        beta: ``(B,)`` shape, > 0 (Real-ESRGAN draws it from [0.5, 4]); < 1 heavier tails, > 1 flatter top.
        support: optional ``(B,)`` odd per-sample sizes ``<= size``.
    Returns:
        ``(B, k, k)`` kernels summing to 1.
    """
    return _beta_kernel(size, sigma_x, sigma_y, theta, beta, support, lambda qb: torch.exp(-0.5 * qb))


def plateau_kernel(
    size: int,
    sigma_x: torch.Tensor,
    sigma_y: torch.Tensor | None,
    theta: torch.Tensor | None,
    beta: torch.Tensor,
    *,
    support: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plateau-shaped kernels, ``1 / (1 + q ** beta)`` normalised to sum 1 (Real-ESRGAN Eq. 4).

    Args:
        size: odd kernel side ``k``.
        sigma_x, sigma_y, theta: as in :func:`gaussian_kernel`; ``q`` is the same squared distance.
        beta: ``(B,)`` shape, > 0 (Real-ESRGAN draws it from [1, 2]); larger means a flatter top and a
            sharper shoulder.
        support: optional ``(B,)`` odd per-sample sizes ``<= size``.
    Returns:
        ``(B, k, k)`` kernels summing to 1.
    """
    return _beta_kernel(size, sigma_x, sigma_y, theta, beta, support, lambda qb: 1.0 / (1.0 + qb))


def _beta_kernel(size, sigma_x, sigma_y, theta, beta, support, profile) -> torch.Tensor:
    """Shared body of the beta-shaped families: ``profile(q ** beta)`` normalised over the support."""
    size = check_int(size, "kernel size", minimum=1, odd=True)
    batch, device, dtype, sx, sy, th = _shape_params(sigma_x, sigma_y, theta, beta=beta, support=support)
    beta = _float(beta, device, dtype)
    check_positive(beta, "beta")
    q = _rotated_quadratic_form(size, sx, sy, th)
    return _normalise(profile(_safe_pow(q, beta)), _support_mask(size, support, batch, device, dtype))


def sinc_kernel(size: int, cutoff: torch.Tensor, *, support: torch.Tensor | None = None) -> torch.Tensor:
    """Circular low-pass ("2-D sinc", i.e. jinc) kernels with cutoff ``omega`` in radians per pixel.

    Tap at distance ``r`` from the centre: ``omega * J1(omega * r) / (2 pi r)``, and ``omega^2 / (4 pi)``
    at ``r = 0`` (the limit); this is the inverse Fourier transform of the indicator of the disc
    ``|w| <= omega``. The truncated kernel is normalised to sum 1, so its DC gain is exactly 1; its
    spectrum is ~1 inside the disc and small outside, with ringing set by the truncation.

    Zero-padding to a larger size: build with ``size`` = the padded size and ``support`` = the real
    per-sample sizes (equal to Real-ESRGAN's "build at k, pad to 21"), or use :func:`pad_kernel`.

    Args:
        size: odd kernel side ``k``.
        cutoff: ``(B,)`` cutoff ``omega`` in (0, pi] (pi is Nyquist; Real-ESRGAN draws [pi/5, pi] or
            [pi/3, pi] depending on the size).
        support: optional ``(B,)`` odd per-sample sizes ``<= size``.
    Returns:
        ``(B, k, k)`` kernels summing to 1 (not differentiable in ``cutoff``: torch has no Bessel gradient).
    """
    size = check_int(size, "kernel size", minimum=1, odd=True)
    batch, device, dtype = _batch_params(cutoff=cutoff, support=support)
    omega = _float(cutoff, device, dtype)
    if not torch.isfinite(omega).all() or (omega <= 0).any() or (omega > math.pi + 1e-6).any():
        raise ValueError(f"cutoff must be in (0, pi], got {cutoff.tolist()}")
    x, y = _grid(size, device, dtype)
    r = torch.sqrt(x * x + y * y)
    w = omega.view(-1, 1, 1)
    r_safe = torch.where(r == 0, torch.ones_like(r), r)
    taps = w * torch.special.bessel_j1(w * r_safe) / (2.0 * math.pi * r_safe)
    taps = torch.where(r == 0, w * w / (4.0 * math.pi), taps)
    return _normalise(taps, _support_mask(size, support, batch, device, dtype))


# ---------------------------------------------------------------------------------------------------------
# Inspection and padding


def _check_kernel(kernel: torch.Tensor) -> None:
    if kernel.dim() != 3 or kernel.shape[-1] % 2 == 0 or kernel.shape[-2] % 2 == 0:
        raise ValueError(f"kernel must have shape (B, kh, kw) with odd kh and kw, got shape {tuple(kernel.shape)}")


def kernel_centroid(kernel: torch.Tensor) -> torch.Tensor:
    """Centre of mass of ``(B, kh, kw)`` kernels (taps summing to a non-zero total), as ``(B, 2)`` offsets
    ``(x, y)`` in pixels from the centre tap (0 for any point-symmetric kernel)."""
    _check_kernel(kernel)
    kernel = kernel if kernel.is_floating_point() else kernel.to(torch.get_default_dtype())
    kh, kw = kernel.shape[-2:]
    y = torch.arange(kh, device=kernel.device, dtype=kernel.dtype) - kh // 2
    x = torch.arange(kw, device=kernel.device, dtype=kernel.dtype) - kw // 2
    total = kernel.sum(dim=(-2, -1))
    mx = (kernel.sum(dim=-2) * x).sum(-1) / total
    my = (kernel.sum(dim=-1) * y).sum(-1) / total
    return torch.stack([mx, my], dim=-1)


def kernel_moments(kernel: torch.Tensor) -> torch.Tensor:
    """Second central moments of ``(B, kh, kw)`` kernels, as ``(B, 2, 2)`` covariance matrices.

    Treats the normalised taps as a probability mass on the integer grid; entries are in pixels^2 in
    ``(x, y)`` = (column, row) order, so ``kernel_moments(gaussian_kernel(k, sx, sy, t))`` approaches
    :func:`gaussian_covariance` ``(sx, sy, t)`` when ``k`` is large relative to the sigmas (truncation makes
    the moments smaller; the discrete grid adds nothing for sigma >~ 1).
    """
    _check_kernel(kernel)
    kernel = kernel if kernel.is_floating_point() else kernel.to(torch.get_default_dtype())
    kh, kw = kernel.shape[-2:]
    yy = (torch.arange(kh, device=kernel.device, dtype=kernel.dtype) - kh // 2).view(kh, 1)
    xx = (torch.arange(kw, device=kernel.device, dtype=kernel.dtype) - kw // 2).view(1, kw)
    p = kernel / kernel.sum(dim=(-2, -1), keepdim=True)
    mean = kernel_centroid(p)
    dx = xx - mean[:, 0].view(-1, 1, 1)
    dy = yy - mean[:, 1].view(-1, 1, 1)
    cxx = (p * dx * dx).sum(dim=(-2, -1))
    cxy = (p * dx * dy).sum(dim=(-2, -1))
    cyy = (p * dy * dy).sum(dim=(-2, -1))
    return torch.stack([torch.stack([cxx, cxy], -1), torch.stack([cxy, cyy], -1)], -2)


def pad_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad ``(B, k, k)`` kernels (odd ``k``) symmetrically to ``(B, size, size)``, ``size >= k`` odd.

    The centre tap stays the centre, so filtering with the padded kernel gives the same result.
    """
    _check_kernel(kernel)
    size = check_int(size, "kernel size", minimum=1, odd=True)
    kh, kw = kernel.shape[-2:]
    if kh > size or kw > size:
        raise ValueError(f"cannot pad kernel of shape {tuple(kernel.shape)} to size {size}")
    ph, pw = (size - kh) // 2, (size - kw) // 2
    return torch.nn.functional.pad(kernel, (pw, pw, ph, ph))
