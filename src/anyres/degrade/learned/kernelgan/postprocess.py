"""From ``G``'s raw composite kernel to the returned kernels: soft thresholding, sub-pixel centring, and the
x4 kernel derived from the x2 one.

A final x``s`` kernel has an odd side and its centre of mass ``(s - 1) / 2`` pixels right of and below the
centre tap, so ``filter2d(hr, k)[..., ::s, ::s]`` lines up with bicubic interpolation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from anyres.checks import check_shape
from anyres.ops.kernels import kernel_centroid

__all__ = ["zero_small_taps", "shift_kernel", "postprocess_kernel", "analytic_x4_kernel"]


def zero_small_taps(kernel: torch.Tensor, keep: int = 40) -> torch.Tensor:
    """Soft threshold: subtract ``t = 0.75 *`` the ``(keep + 1)``-th largest tap, clip at 0, renormalise.

    Every tap at or below ``t`` becomes 0 and the others shrink by ``t``, which removes the faint floor of
    small taps G leaves around the kernel (the reference's ``n = 40``). ``(k, k)`` in, ``(k, k)`` summing
    to 1 out.
    """
    check_shape(kernel, "kernel", ("k", "k"))
    flat = kernel.flatten()
    if keep >= flat.numel():
        t = torch.zeros((), dtype=kernel.dtype, device=kernel.device)
    else:
        t = 0.75 * torch.topk(flat, keep + 1).values[-1]
    out = (kernel - t).clamp_min(0.0)
    total = out.sum()
    if not total > 0:
        raise ValueError("the kernel has no positive taps; KernelGAN did not converge")
    return out / total


def _keys(x: torch.Tensor) -> torch.Tensor:
    # Keys' cubic convolution weight, a = -0.5: interpolates, and reproduces polynomials up to degree 2.
    ax = x.abs()
    near = (1.5 * ax - 2.5) * ax * ax + 1.0
    far = ((-0.5 * ax + 2.5) * ax - 4.0) * ax + 2.0
    return torch.where(ax <= 1, near, torch.where(ax < 2, far, torch.zeros_like(x)))


def _shift_matrix(n: int, shift: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` matrix ``S`` with ``(S v)[i] = v(i - shift)``, ``v`` Keys-interpolated between taps."""
    i = torch.arange(n, dtype=shift.dtype, device=shift.device)
    return _keys(i[:, None] - shift - i[None, :])


def shift_kernel(kernel: torch.Tensor, scale: int = 2, min_pad: int = 2) -> torch.Tensor:
    """Zero-pad and sub-pixel shift a kernel so its centre of mass sits at ``size // 2 + (scale - 1) / 2``.

    KernelGAN cannot tell a kernel from a shifted copy (a shift moves the whole LR image, which D cannot
    see), so the position is fixed by convention: this one aligns ``filter2d(hr, k)[::s, ::s]`` with
    bicubic interpolation (this module's docstring). The pad is ``max(min_pad, ceil(max |shift|) + 1)`` zeros per
    side, so no mass leaves the frame; the shift is separable Keys-cubic interpolation (exact for the
    centre of mass and the sum), then negative lobes are clipped and the taps renormalised.

    Args:
        kernel: ``(k, k)`` non-negative taps with a positive sum, ``k`` odd.
    Returns:
        ``(k + 2 p, k + 2 p)`` kernel summing to 1.
    """
    check_shape(kernel, "kernel", ("k", "k"))
    k = kernel.shape[0]
    if kernel.shape[1] != k or k % 2 == 0:
        raise ValueError(f"kernel must be square with an odd side, got shape {tuple(kernel.shape)}")
    work = kernel.to(torch.float64)
    offset = kernel_centroid(work[None])[0]  # (x, y) = (column, row) offsets from the centre tap
    wanted = 0.5 * (scale - 1)
    shift_c, shift_r = wanted - offset[0], wanted - offset[1]
    pad = max(min_pad, math.ceil(max(abs(float(shift_c)), abs(float(shift_r)))) + 1)
    work = F.pad(work, (pad, pad, pad, pad))
    n = work.shape[0]
    out = _shift_matrix(n, shift_r) @ work @ _shift_matrix(n, shift_c).t()
    out = out.clamp_min(0.0)
    return (out / out.sum()).to(kernel.dtype)


def postprocess_kernel(kernel: torch.Tensor, keep: int = 40) -> torch.Tensor:
    """The final x2 kernel from G's raw composite kernel: :func:`zero_small_taps` then :func:`shift_kernel`."""
    return shift_kernel(zero_small_taps(kernel, keep), 2)


def analytic_x4_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """The x4 kernel of downscaling twice by 2 with ``kernel`` (paper appendix).

    ``K4[w] = sum_{2v + u = w} k[v] k[u]``: ``k`` convolved with its 2x-dilated copy (a copy of ``k`` scaled
    by ``k[r, c]`` added at offset ``(2r, 2c)``), ``(3k - 2)`` taps per side; ``k // 2`` taps are cropped from
    every border and the result renormalised. A x2 kernel aligned as in this module (centre of mass at
    +0.5) gives a x4 kernel with its centre of mass at +1.5, the x4 alignment.

    Args:
        kernel: ``(k, k)`` or ``(B, k, k)`` x2 kernels, ``k`` odd.
    Returns:
        ``(2k - 1, 2k - 1)`` (or batched) kernels summing to 1.
    """
    squeeze = kernel.dim() == 2
    k = kernel[None] if squeeze else kernel
    if k.dim() != 3 or k.shape[-1] != k.shape[-2] or k.shape[-1] % 2 == 0:
        raise ValueError(f"kernel must be (k, k) or (B, k, k) with odd square k, got shape {tuple(kernel.shape)}")
    b, size = k.shape[0], k.shape[-1]
    # conv_transpose2d with stride 2 adds weight * input[r, c] at offset (2r, 2c): exactly the sum above.
    big = F.conv_transpose2d(k[None], k[:, None], stride=2, groups=b)[0]
    crop = size // 2
    big = big[:, crop : big.shape[-2] - crop, crop : big.shape[-1] - crop]
    big = big / big.sum(dim=(-2, -1), keepdim=True)
    return big[0] if squeeze else big
