"""Apply blur kernels to image batches, one kernel per sample (the kernels are built in ``kernels.py``).

``filter2d`` correlates, like ``conv2d``: ``out[i, j] = sum_{u, v} kernel[u, v] x[i + u - kh // 2, j + v - kw // 2]``
for ``(B, C, H, W)`` images and ``(B or 1, kh, kw)`` kernels with odd sides (same-size output, no shift);
the default ``border='reflect'`` does not repeat the edge pixel and also works for kernels larger than the
image. How this lines up with BSRGAN and BasicSR: docs/methods/classical.md, "Applying kernels".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from anyres.ops.kernels import gaussian_kernel

__all__ = ["filter2d", "pad2d", "unsharp_mask", "BORDERS", "FFT_MIN_TAPS", "FFT_MIN_PIXELS"]

BORDERS = ("reflect", "replicate", "circular", "constant")

# Above these sizes filter2d multiplies spectra instead of running a direct convolution: torch's CPU
# depthwise convolution costs ~k^2 per pixel, the FFT ~log(size), and measured side by side the FFT won
# for 13..21-tap kernels on 128..384 px images. The two paths agree to ~1e-6 (float32).
FFT_MIN_TAPS = 81
FFT_MIN_PIXELS = 64 * 64


def _fft_size(n: int) -> int:
    """The smallest m >= n whose only prime factors are 2, 3 and 5 (fast for pocketfft)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _border_index(n: int, before: int, after: int, border: str, device: torch.device) -> torch.Tensor:
    """Source index for each padded position along one axis of length ``n``."""
    i = torch.arange(-before, n + after, device=device)
    if border == "replicate":
        return i.clamp(0, n - 1)
    if border == "circular":
        return i.remainder(n)
    # reflect (101): a zig-zag with period 2 (n - 1); a single pixel reflects onto itself.
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def pad2d(x: torch.Tensor, pad: tuple[int, int, int, int], border: str = "reflect") -> torch.Tensor:
    """Pad the last two dims of ``(..., H, W)`` by ``(left, right, top, bottom)`` pixels with ``border``.

    Any pad width is allowed, also wider than the image; ``constant`` pads zeros.
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    left, right, top, bottom = pad
    if min(pad) < 0:
        raise ValueError(f"pad widths must be >= 0, got {pad}")
    if border == "constant":
        return F.pad(x, (left, right, top, bottom))
    h, w = x.shape[-2:]
    rows = _border_index(h, top, bottom, border, x.device)
    cols = _border_index(w, left, right, border, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def filter2d(x: torch.Tensor, kernel: torch.Tensor, border: str = "reflect") -> torch.Tensor:
    """Filter each sample of a batch with its own 2-D kernel (correlation, same-size output).

    Args:
        x: ``(B, C, H, W)`` float images (any range; filtering is linear). Every channel of sample ``b``
            is filtered with ``kernel[b]``.
        kernel: ``(B, kh, kw)`` or ``(1, kh, kw)`` (shared) kernels with odd ``kh`` and ``kw``; usually
            summing to 1. Cast to ``x``'s device and dtype.
        border: ``reflect`` (default, reflect-101), ``replicate``, ``circular`` or ``constant`` (zeros).
    Returns:
        ``(B, C, H, W)`` filtered images, same dtype and device as ``x``; differentiable in ``x`` and
        ``kernel``.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float (B, C, H, W) tensor, got shape {tuple(x.shape)} and dtype {x.dtype}")
    if kernel.dim() != 3 or kernel.shape[-1] % 2 == 0 or kernel.shape[-2] % 2 == 0:
        raise ValueError(f"kernel must have shape (B, kh, kw) with odd kh and kw, got shape {tuple(kernel.shape)}")
    b, c, h, w = x.shape
    if kernel.shape[0] not in (1, b):
        raise ValueError(
            f"kernel batch must be 1 or {b} (x has shape {tuple(x.shape)}), got shape {tuple(kernel.shape)}"
        )
    kh, kw = kernel.shape[-2:]
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    xp = pad2d(x, (kw // 2, kw // 2, kh // 2, kh // 2), border)
    if kh * kw >= FFT_MIN_TAPS and h * w >= FFT_MIN_PIXELS:
        return _filter2d_fft(xp, kernel, h, w)
    if kernel.shape[0] == 1:
        # One shared kernel: a plain single-channel convolution over all B * C planes.
        out = F.conv2d(xp.reshape(b * c, 1, h + kh - 1, w + kw - 1), kernel.unsqueeze(1))
    else:
        # One kernel per sample: a grouped convolution with one group per (sample, channel) plane.
        weight = kernel.unsqueeze(1).repeat_interleave(c, dim=0)  # (B * C, 1, kh, kw)
        out = F.conv2d(xp.reshape(1, b * c, h + kh - 1, w + kw - 1), weight, groups=b * c)
    return out.reshape(b, c, h, w)


def _filter2d_fft(xp: torch.Tensor, kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Correlation of padded ``(B, C, h + kh - 1, w + kw - 1)`` planes with ``(B or 1, kh, kw)`` kernels.

    A circular convolution with the flipped kernel, read at offsets ``kh - 1, kw - 1``: those outputs only
    touch samples inside the padded plane, so the circular wrap (and the zeros added to reach a fast FFT
    size) never reaches them.
    """
    kh, kw = kernel.shape[-2:]
    size = (_fft_size(xp.shape[-2]), _fft_size(xp.shape[-1]))
    spectrum = torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(kernel.flip(-1, -2), s=size).unsqueeze(1)
    out = torch.fft.irfft2(spectrum, s=size)
    return out[..., kh - 1 : kh - 1 + h, kw - 1 : kw - 1 + w].contiguous()


def unsharp_mask(x: torch.Tensor, weight: float = 0.5, size: int = 51, threshold: float = 10 / 255) -> torch.Tensor:
    """Sharpen ``(B, C, H, W)`` images in [0, 1] where they have detail, as Real-ESRGAN sharpens its targets.

    ``blur`` is a ``size``-tap Gaussian (sigma from the side as OpenCV picks it for sigma 0:
    ``0.3 ((size - 1) / 2 - 1) + 0.8``, 8.0 for 51 taps; reflect-101 borders) and ``r = x - blur``. The
    sharpened ``clamp(x + weight r, 0, 1)`` is blended in by ``m``, the same blur of the mask
    ``|r| > threshold``: ``m sharp + (1 - m) x``. Flat regions, where the mask is empty, stay as they were.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 3, got {size}")
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    kernel = gaussian_kernel(size, torch.tensor([sigma], dtype=torch.float64))
    residual = x - filter2d(x, kernel)
    mask = filter2d((residual.abs() > threshold).to(x.dtype), kernel)
    sharp = (x + weight * residual).clamp(0.0, 1.0)
    # A blend of two images in [0, 1] is in [0, 1]; the clamp only removes float rounding (-7e-16 was seen,
    # which the degradation pipelines reject).
    return (mask * sharp + (1 - mask) * x).clamp(0.0, 1.0)
