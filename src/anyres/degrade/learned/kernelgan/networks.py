"""KernelGAN's two networks: the deep linear generator ``G`` (and its composite kernel) and the patch
discriminator ``D``.

``G``: ``(B, C, H, W)`` -> ``(B, C, (H - 13) // 2 + 1, (W - 13) // 2 + 1)``, every channel correlated with one
13 x 13 kernel and sampled every 2nd pixel. ``D``: ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 1, H - 6, W - 6)``
per-patch probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["compose_kernel", "downscale_with_kernel", "KernelGenerator", "PatchDiscriminator"]


def compose_kernel(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The single correlation kernel equal to a chain of bias-free, unpadded convolutions.

    ``conv_n(...conv_1(x))`` equals ``conv(x, K)`` with ``K = W_1 * W_2 * ... * W_n`` (full 2-D
    convolutions, contracting the channels in between). It is computed from the *output* end, where only
    one channel remains: ~1 MMAC for KernelGAN's G, against ~30 MMAC for pushing a delta through from the
    input end (the reference's extraction, which gives the same kernel flipped). Strides are ignored (G
    strides only its last 1x1 layer, i.e. it samples the composite output).

    Args:
        weights: conv weights ``(out, in, kh, kw)`` in application order; the first takes 1 channel, the
            last gives 1, consecutive ones chain (``out`` of one = ``in`` of the next).
    Returns:
        ``(K, K)`` kernel with ``K = sum(kh) - (n - 1)`` (square kernels assumed for the size), on the
        weights' device and dtype; differentiable in every weight.
    """
    if not weights:
        raise ValueError("compose_kernel needs at least one weight")
    if weights[0].shape[1] != 1 or weights[-1].shape[0] != 1:
        raise ValueError(
            f"the chain must map 1 channel to 1 channel, got first {tuple(weights[0].shape)} and "
            f"last {tuple(weights[-1].shape)}"
        )
    acc = weights[-1]  # (1, m, a, a): the map from the outputs of the layer below to the final output
    for w in reversed(weights[:-1]):
        m, i, b = w.shape[0], w.shape[1], w.shape[-1]
        if m != acc.shape[1]:
            raise ValueError(f"weight {tuple(w.shape)} does not chain into {tuple(acc.shape)}")
        a = acc.shape[-1]
        # Full convolution of each (m -> i) filter with acc's m-th filter, summed over m: every product
        # acc[m, s] * w[m, i, p] belongs at output position s + p, and fold (col2im) adds up exactly that.
        # Two dense ops; faster than a conv2d with a 64-image batch and one output channel.
        products = torch.einsum("mip,ms->ips", w.reshape(m, i, b * b), acc.reshape(m, a * a))
        acc = F.fold(products.reshape(1, i * b * b, a * a), (a + b - 1, a + b - 1), kernel_size=b)
    return acc[0, 0]


def downscale_with_kernel(x: torch.Tensor, kernel: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """``G``'s operation: valid correlation of every channel with one kernel, keeping every ``stride``-th sample.

    Args:
        x: ``(B, C, H, W)`` float images (any range; the map is linear).
        kernel: ``(k, k)`` correlation kernel.
    Returns:
        ``(B, C, (H - k) // stride + 1, (W - k) // stride + 1)``; output ``(i, j)`` is
        ``sum_{u, v} kernel[u, v] x[stride i + u, stride j + v]``.
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got shape {tuple(x.shape)}")
    if kernel.dim() != 2 or kernel.shape[0] > x.shape[-2] or kernel.shape[1] > x.shape[-1]:
        raise ValueError(f"kernel must be (k, k) and fit x {tuple(x.shape)}, got shape {tuple(kernel.shape)}")
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(b * c, 1, h, w), kernel[None, None].to(x.dtype), stride=stride)
    return out.reshape(b, c, *out.shape[-2:])


class KernelGenerator(nn.Module):
    """KernelGAN's deep linear generator (no bias, no padding, no nonlinearity; the last layer strides 2).

    ``forward(x)``: ``(B, C, H, W)`` -> ``(B, C, (H - K) // 2 + 1, (W - K) // 2 + 1)`` with ``K`` the composite
    size (13), every channel downscaled by the same kernel. Linear, so any input range works.
    """

    def __init__(
        self,
        kernels: Sequence[int] = (7, 5, 3, 1, 1, 1),
        channels: int = 64,
        *,
        gain: float = 0.1,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if len(kernels) < 2:
            raise ValueError(f"the generator needs at least two layers, got kernels {tuple(kernels)}")
        widths = [1] + [channels] * (len(kernels) - 1) + [1]
        self.weights = nn.ParameterList()
        for cin, cout, k in zip(widths[:-1], widths[1:], kernels):
            w = torch.empty(cout, cin, k, k)
            nn.init.xavier_normal_(w, gain=gain, generator=generator)
            self.weights.append(nn.Parameter(w))
        self.kernel_size = sum(kernels) - len(kernels) + 1
        self.stride = 2

    def kernel(self) -> torch.Tensor:
        """The ``(K, K)`` correlation kernel ``G`` applies (differentiable; the paper's extracted kernel)."""
        return compose_kernel(list(self.weights))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downscale_with_kernel(x, self.kernel(), self.stride)

    def forward_layers(self, x: torch.Tensor) -> torch.Tensor:
        """The same map, layer by layer as the reference runs it (slow; for tests and checks)."""
        b, c, h, w = x.shape
        y = x.reshape(b * c, 1, h, w)
        last = len(self.weights) - 1
        for i, weight in enumerate(self.weights):
            y = F.conv2d(y, weight, stride=self.stride if i == last else 1)
        return y.reshape(b, c, *y.shape[-2:])


def _xavier(shape: Sequence[int], gain: float, generator: torch.Generator | None) -> nn.Parameter:
    w = torch.empty(*shape)
    nn.init.xavier_normal_(w, gain=gain, generator=generator)
    return nn.Parameter(w)


class _SpectralWeight(nn.Module):
    """A conv weight divided by its largest singular value, ``W / sigma(W)`` (Miyato et al. 2018).

    ``W`` is viewed as ``(out, in * kh * kw)`` and ``sigma = u^T W v`` with ``u, v`` from power iteration;
    ``sigma`` is differentiated through ``W`` only. :meth:`power_iteration` refines ``u, v`` (no gradient).
    """

    def __init__(self, cin: int, cout: int, k: int, gain: float, generator: torch.Generator | None):
        super().__init__()
        self.weight = _xavier((cout, cin, k, k), gain, generator)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("u", F.normalize(torch.randn(cout, generator=generator), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(cin * k * k, generator=generator), dim=0))
        self.power_iteration(15)  # start from a good estimate, as torch's spectral_norm does

    @torch.no_grad()
    def power_iteration(self, steps: int = 1) -> None:
        mat = self.weight.reshape(self.weight.shape[0], -1)
        u, v = self.u, self.v
        for _ in range(steps):
            v = F.normalize(mat.t() @ u, dim=0, eps=1e-12)
            u = F.normalize(mat @ v, dim=0, eps=1e-12)
        # New tensors, not in-place updates: a pending backward pass may still need the old ones.
        self.u, self.v = u, v

    def matrix(self) -> torch.Tensor:
        """``(out, in * kh * kw)`` normalised weight."""
        mat = self.weight.reshape(self.weight.shape[0], -1)
        return mat / torch.dot(self.u, mat @ self.v)


class PatchDiscriminator(nn.Module):
    """KernelGAN's fully convolutional patch discriminator (7 x 7 receptive field).

    ``forward(x)``: ``(B, 3, H, W)`` images in [-1, 1] -> ``(B, 1, H - 6, W - 6)`` probabilities in (0, 1)
    that each 7 x 7 patch comes from the input image. Every sample of the batch is normalised with its own
    BatchNorm statistics, so a batch of B crops gives exactly B separate batch-of-one passes (the reference
    runs D once per crop); no running statistics are kept, D is only ever used in training mode.

    Spectral norm: call :meth:`power_iteration` once per training iteration (``torch.nn.utils``' version
    does one step per forward pass, i.e. two or three per KernelGAN iteration; the weights only change at
    the optimiser step, so the extra steps refine an estimate that is already converged).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 64,
        kernel: int = 7,
        blocks: int = 5,
        *,
        gain: float = 0.1,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.first = _SpectralWeight(in_channels, channels, kernel, gain, generator)
        self.blocks = nn.ModuleList(_SpectralWeight(channels, channels, 1, gain, generator) for _ in range(blocks))
        self.bn_weight = nn.ParameterList(
            nn.Parameter(1.0 + 0.02 * torch.randn(channels, generator=generator)) for _ in range(blocks)
        )
        self.bn_bias = nn.ParameterList(nn.Parameter(torch.zeros(channels)) for _ in range(blocks))
        self.last = _SpectralWeight(channels, 1, 1, gain, generator)
        self.shave = kernel - 1

    def power_iteration(self, steps: int = 1) -> None:
        for layer in (self.first, *self.blocks, self.last):
            layer.power_iteration(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"x must have shape (B, 3, H, W), got shape {tuple(x.shape)}")
        y = F.conv2d(x, self.first.matrix().view_as(self.first.weight), self.first.bias)
        b, c, h, w = y.shape
        # The 1x1 layers as matrix products on (B, C, H*W); BatchNorm per sample via a (1, B*C, H*W) view.
        y = y.reshape(b, c, h * w)
        for layer, weight, bias in zip(self.blocks, self.bn_weight, self.bn_bias):
            y = torch.baddbmm(layer.bias[None, :, None], layer.matrix().expand(b, -1, -1), y)
            y = F.batch_norm(y.reshape(1, b * c, h * w), None, None, weight.repeat(b), bias.repeat(b), training=True)
            y = F.relu(y).reshape(b, c, h * w)
        out = torch.baddbmm(self.last.bias[None, :, None], self.last.matrix().expand(b, -1, -1), y)
        return torch.sigmoid(out).reshape(b, 1, h, w)
