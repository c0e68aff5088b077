"""KernelGAN's objective: the L1 adversarial loss, the kernel regularisers and the bicubic prior (paper Eq. 4,
``R = a L_sum2one + b L_boundaries + c L_sparse + d L_center``), and the schedule of their weights.

Kernels are ``(k, k)`` correlation kernels (13 x 13 for the default ``G``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from anyres.checks import check_shape
from anyres.degrade.learned.kernelgan.config import KernelGANConfig
from anyres.degrade.learned.kernelgan.networks import downscale_with_kernel
from anyres.ops.kernels import gaussian_kernel
from anyres.ops.resize import resize_matrix

__all__ = [
    "adversarial_loss",
    "sum_to_one_loss",
    "boundary_mask",
    "boundary_loss",
    "sparsity_loss",
    "centre_target",
    "centre_loss",
    "bicubic_x2_kernel",
    "bicubic_target",
    "bicubic_loss",
    "KernelGANSchedule",
]


def adversarial_loss(prediction: torch.Tensor, real: bool) -> torch.Tensor:
    """L1 distance of D's probability map to an all-ones (``real``) or all-zeros map: ``mean |p - label|``."""
    return (prediction - 1.0).abs().mean() if real else prediction.abs().mean()


def sum_to_one_loss(kernel: torch.Tensor) -> torch.Tensor:
    """``|1 - sum(k)|`` for a ``(k, k)`` kernel (paper: L_sum2one)."""
    check_shape(kernel, "kernel", ("k", "k"))
    return (1.0 - kernel.sum()).abs()


def boundary_mask(
    size: int, weight: float = 30.0, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Penalty map of the boundary regulariser: ``weight * (1 - G / max G)`` on an outer ring, 0 inside.

    ``G`` is a wide isotropic Gaussian (sigma = ``size`` pixels) centred on the centre tap, so the penalty
    grows towards the corners. The ring is ``(size - ceil(size / 2)) // 2 - 1`` taps wide (2 for the 13 x 13
    kernel: the central 9 x 9 taps are free); sizes below 9 have no ring and get an all-zero mask.

    Returns:
        ``(size, size)`` tensor, >= 0.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 1, got {size!r}")
    sigma = torch.tensor([float(size)], dtype=torch.float64)
    g = gaussian_kernel(size, sigma)[0]
    mask = weight * (1.0 - g / g.max())
    ring = (size - (size + 1) // 2) // 2 - 1
    if ring <= 0:
        mask.zero_()
    else:
        mask[ring : size - ring, ring : size - ring] = 0.0
    return mask.to(dtype=dtype, device=device)


def boundary_loss(kernel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean |k * M|`` over all taps (paper: L_boundaries), with ``M`` from :func:`boundary_mask`."""
    check_shape(kernel, "kernel", ("k", "k"))
    return (kernel * mask).abs().mean()


def sparsity_loss(kernel: torch.Tensor, power: float = 0.2) -> torch.Tensor:
    """``mean |k|^power`` over all taps (paper: L_sparse, power 0.2).

    Exact zeros contribute 0 with a zero gradient (``|k|^0.2`` has an infinite slope at 0).
    """
    check_shape(kernel, "kernel", ("k", "k"))
    mag = kernel.abs()
    zero = mag == 0
    safe = torch.where(zero, torch.ones_like(mag), mag)
    return torch.where(zero, torch.zeros_like(mag), safe.pow(power)).mean()


def centre_target(size: int, scale: int = 2) -> float:
    """Where a ``size`` x ``size`` x``scale`` kernel's centre of mass should sit, as a 0-based tap index:
    ``size // 2 + 0.5 (scale - size % 2)`` (6.5 for 13 x 13 at x2)."""
    return size // 2 + 0.5 * (scale - size % 2)


def centre_loss(kernel: torch.Tensor, target: float) -> torch.Tensor:
    """Mean over the two axes of ``(centre of mass - target)^2``, centre of mass in 0-based tap indices
    (paper: L_center). The kernel's taps must have a non-zero sum."""
    check_shape(kernel, "kernel", ("k", "k"))
    total = kernel.sum()
    idx_r = torch.arange(kernel.shape[0], dtype=kernel.dtype, device=kernel.device)
    idx_c = torch.arange(kernel.shape[1], dtype=kernel.dtype, device=kernel.device)
    com_r = (kernel.sum(dim=1) * idx_r).sum() / total
    com_c = (kernel.sum(dim=0) * idx_c).sum() / total
    return 0.5 * ((com_r - target) ** 2 + (com_c - target) ** 2)


def bicubic_x2_kernel(
    size: int = 13, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """MATLAB's antialiased bicubic x1/2 filter (8 x 8, separable) placed in a ``size`` x ``size`` frame.

    The 8 taps per axis are ``0.5 * cubic(0.5 d)`` at ``d = +-0.5, +-1.5, +-2.5, +-3.5`` (Keys, a = -0.5):
    ``[-0.01172, -0.03516, 0.11328, 0.43359, 0.43359, 0.11328, -0.03516, -0.01172]``. In the frame they sit
    at indices ``size // 2 - 3 .. size // 2 + 4``, so the centre of mass is at ``size // 2 + 0.5``: the x2
    alignment of this module, and exactly the bicubic downscale that ``imresize(x, 0.5)`` computes.
    """
    if size < 9 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 9, got {size!r}")
    row = resize_matrix(32, 16, 0.5)[8]  # an interior output pixel: 8 non-zero taps, at columns 13..20
    taps = row[13:21]
    k1 = torch.zeros(size, dtype=torch.float64)
    c = size // 2
    k1[c - 3 : c + 5] = taps
    return torch.outer(k1, k1).to(dtype=dtype, device=device)


def bicubic_target(x: torch.Tensor, bicubic: torch.Tensor) -> torch.Tensor:
    """``x`` downscaled per channel by the framed bicubic kernel on ``G``'s own sample grid.

    Equal to the reference's padded 8 x 8 stride-2 convolution shaved to ``G``'s output size (minus its
    channel-summing bug, docs/methods/kernelgan.md), and to ``imresize(x, 0.5)`` cropped by 3 LR pixels per
    side for the 13 x 13 frame. ``(B, C, H, W)`` -> ``(B, C, (H - k) // 2 + 1, (W - k) // 2 + 1)``.
    """
    return downscale_with_kernel(x, bicubic, 2)


def bicubic_loss(x: torch.Tensor, g_out: torch.Tensor, bicubic: torch.Tensor) -> torch.Tensor:
    """``MSE(G(x), bicubic_x2(x))``, the early prior that keeps ``G`` close to an ideal downscaler."""
    return F.mse_loss(g_out, bicubic_target(x, bicubic))


class KernelGANSchedule:
    """Regulariser weights and learning-rate factor over the iterations (the reference's learner).

    Call :meth:`update` after each iteration ``i`` (0-based) with that iteration's relative bicubic error
    ``MSE(G(x), target) / mean(target^2)`` (docs/methods/kernelgan.md, difference 2). Read ``lambda_*`` and ``lr_scale``
    (multiply the base learning rate by it) before the next iteration.
    """

    def __init__(self, config: KernelGANConfig):
        self.cfg = config
        self.lambda_sum2one = config.lambda_sum2one
        self.lambda_boundaries = config.lambda_boundaries
        self.lambda_bicubic = config.lambda_bicubic
        self.lambda_sparse = 0.0
        self.lambda_center = 0.0
        self.lr_scale = 1.0
        self.similar_to_bicubic = False
        self.constraints_on = False
        self._below = 0

    def update(self, iteration: int, bicubic_error: float) -> None:
        cfg = self.cfg
        if iteration == 0:
            return
        if iteration % cfg.lr_every == 0:
            self.lr_scale /= cfg.lr_factor
        if not self.similar_to_bicubic:
            self._below = self._below + 1 if bicubic_error < cfg.bicubic_threshold else 0
            self.similar_to_bicubic = self._below >= cfg.bicubic_patience
        elif iteration % cfg.lambda_every == 0 and self.lambda_bicubic > cfg.bicubic_min:
            self.lambda_bicubic = max(self.lambda_bicubic / cfg.bicubic_decay, cfg.bicubic_min)
            if not self.constraints_on and self.lambda_bicubic < cfg.constraints_below:
                self.lambda_sparse = cfg.lambda_sparse_end
                self.lambda_center = cfg.lambda_center_end
                self.constraints_on = True
