"""Adversarial and perceptual training pieces for perceptual-quality SR (LIIFusion stage 2).

:class:`UNetDiscriminator` maps ``(B, 3, H, W)`` in [0, 1] to per-pixel logits ``(B, 1, H, W)``;
:func:`ragan_g_loss` / :func:`ragan_d_loss` are relativistic average GAN losses on them (means over batch
and pixels); :class:`PerceptualLoss` is an MSE or L1 between VGG16 (not VGG19) features, or LPIPS-VGG16.
Layers, the RaGAN form and why VGG16: docs/methods/liifusion.md, "Stage-2 losses"; the LPIPS form:
docs/methods/liif-real-gan.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["UNetDiscriminator", "ragan_d_loss", "ragan_g_loss", "PerceptualLoss", "perceptual_layers"]


class UNetDiscriminator(nn.Module):
    """``(B, 3, H, W)`` in [0, 1] -> per-pixel logits ``(B, 1, H, W)``; ``H, W`` multiples of 8.
    Layers: docs/methods/liifusion.md."""

    def __init__(self, channels: int = 64, skip: bool = True):
        super().__init__()
        c = channels
        self.skip = skip
        self.conv0 = nn.Conv2d(3, c, 3, padding=1)
        self.down = nn.ModuleList(
            spectral_norm(nn.Conv2d(a, b, 4, 2, 1, bias=False)) for a, b in ((c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c))
        )
        self.up = nn.ModuleList(
            spectral_norm(nn.Conv2d(a, b, 3, 1, 1, bias=False)) for a, b in ((8 * c, 4 * c), (4 * c, 2 * c), (2 * c, c))
        )
        self.extra = nn.ModuleList(spectral_norm(nn.Conv2d(c, c, 3, 1, 1, bias=False)) for _ in range(2))
        self.out = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"discriminator input sides must be multiples of 8, got {tuple(x.shape[-2:])}")
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        h = act(self.conv0((x - 0.5) / 0.5))
        skips = [h]
        for conv in self.down:
            h = act(conv(h))
            skips.append(h)
        skips.pop()  # the bottom level is h itself
        for conv in self.up:
            h = act(conv(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)))
            skip = skips.pop()
            if self.skip:
                h = h + skip
        for conv in self.extra:
            h = act(conv(h))
        return self.out(h)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def ragan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator: real should look more real than the average fake, and fake less than the average real.

    Gradients flow through both logits (the caller detaches the fake *images* from the generator). Only the
    differences matter, so a loss that saw only one side would let both logits drift without bound."""
    return 0.5 * (_bce(real_logits - fake_logits.mean(), 1.0) + _bce(fake_logits - real_logits.mean(), 0.0))


def ragan_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator: the mirror image of :func:`ragan_d_loss` (gradients flow through both terms' fakes)."""
    real_logits = real_logits.detach()
    return 0.5 * (_bce(fake_logits - real_logits.mean(), 1.0) + _bce(real_logits - fake_logits.mean(), 0.0))


def perceptual_layers(
    layers: Sequence[str] | None, weights: Sequence[float] | None, criterion: str
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The VGG16 layers and weights a perceptual loss compares: ``layers`` (``None``: ``relu5_3``) with
    ``weights`` (``None``: 1 each), or LPIPS's own taps for ``criterion="lpips"``, which takes neither.
    Raises ValueError (one line) on an unknown criterion or a bad combination."""
    from anyres.metrics.lpips import LPIPS_VGG16_LAYERS

    if criterion not in ("mse", "l1", "lpips"):
        raise ValueError(f"perceptual criterion must be 'mse', 'l1' or 'lpips', got {criterion!r}")
    if criterion == "lpips":
        if (layers is not None and tuple(layers) != LPIPS_VGG16_LAYERS) or weights is not None:
            raise ValueError("the lpips criterion uses LPIPS's own VGG16 layers and weights; leave them unset")
        layers = LPIPS_VGG16_LAYERS
    layers = tuple(layers) if layers is not None else ("relu5_3",)
    weights = tuple(weights) if weights is not None else (1.0,) * len(layers)
    if len(weights) != len(layers):
        raise ValueError("perceptual loss needs one weight per layer")
    return layers, weights


class PerceptualLoss(nn.Module):
    """``sum_l w_l * D(phi_l(pred), phi_l(gt))`` over VGG16 layers, ``D`` the mean squared (``mse``) or absolute
    (``l1``) difference (docs/methods/liifusion.md); images in [0, 1]. ``criterion="lpips"`` is the batch mean
    of LPIPS-VGG16 instead (its five ReLU taps, unit-normalised, weighted by its linear layers; ``layers``
    and ``weights`` must be left unset). Defaults and checks: :func:`perceptual_layers`."""

    def __init__(
        self, layers: Sequence[str] | None = None, weights: Sequence[float] | None = None, criterion: str = "mse"
    ):
        super().__init__()
        self.layers, self.weights = perceptual_layers(layers, weights, criterion)
        self.criterion_name = criterion
        self.criterion = F.mse_loss if criterion == "mse" else F.l1_loss

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        from anyres.metrics.lpips import lpips_from_features, lpips_linear_weights, vgg16_features

        with torch.no_grad():
            target = vgg16_features(gt, self.layers)
        feats = vgg16_features(pred, self.layers)
        if self.criterion_name == "lpips":
            return lpips_from_features(feats, target, lpips_linear_weights("vgg", pred.device, pred.dtype)).mean()
        return sum(w * self.criterion(f, t) for w, f, t in zip(self.weights, feats, target))
