"""LMAR's training losses (Yu et al., CVPR 2024): a frozen enhancer's encoder ``E`` supervises the resampler.

No ground truth: with ``x`` the HR crop ``(B, 3, H, W)`` in [0, 1] and ``x_c = LMAR(x, size)``, each feature
term compares ``E(x_c)`` (Lanczos-3 resized to the size of ``E(x)``, maps ``(B, C, h, w)``) with ``E(x)``.
Generator total (:class:`LMARLossWeights`): ``1 L_adv + 1 L_rc + 5000 L_fa + 1 L_edge``; ``L_adv`` is a
least-squares GAN whose real examples are plain resizes ``D(x)``. The terms, the encoder adapters
(:func:`encoder_features`) and the unverified details: docs/methods/lmar.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from anyres.enhancement.deeplpf import DeepLPF
from anyres.enhancement.unet import UNetEnhancer
from anyres.ops.filtering import filter2d
from anyres.ops.resize import imresize

__all__ = [
    "EncoderFn",
    "encoder_features",
    "unet_enhancer_features",
    "deeplpf_features",
    "truncated_outputs",
    "freeze",
    "resampling_consistency_loss",
    "attention_map",
    "feature_attention_loss",
    "edge_weight",
    "edge_loss",
    "PatchDiscriminator",
    "lsgan_g_loss",
    "lsgan_d_loss",
    "LMARLossWeights",
    "lmar_generator_loss",
    "lmar_discriminator_loss",
]

EncoderFn = Callable[[torch.Tensor], list]
_FEATURE_LEVEL = 2  # 1/4 resolution, the reference's tap
_SCHARR = ((-3.0, 0.0, 3.0), (-10.0, 0.0, 10.0), (-3.0, 0.0, 3.0))


# ---------------------------------------------------------------------------------------------------------
# The frozen enhancer's encoder


class _Captured(Exception):
    """Raised by a forward hook once every requested output exists, to skip the rest of the network."""


def truncated_outputs(net: nn.Module, taps: Sequence[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of the submodules ``taps`` during ``net(x)``, in ``taps`` order; the forward pass stops as soon
    as the last of them has run (the decoder and heads are never evaluated). Gradients flow as usual."""
    captured: dict[int, torch.Tensor] = {}

    def hook(module: nn.Module, inputs, output) -> None:
        captured[id(module)] = output
        if len(captured) == len(taps):
            raise _Captured

    handles = [m.register_forward_hook(hook) for m in taps]
    try:
        net(x)
    except _Captured:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if len(captured) != len(taps):
        raise RuntimeError(f"{type(net).__name__}: only {len(captured)} of {len(taps)} tapped modules ran")
    return [captured[id(m)] for m in taps]


def _crop(feat: torch.Tensor, x: torch.Tensor, level: int) -> torch.Tensor:
    rows = -(-x.shape[-2] // 2**level)
    cols = -(-x.shape[-1] // 2**level)
    return feat[..., :rows, :cols]


def unet_enhancer_features(net: nn.Module, x: torch.Tensor, level: int = _FEATURE_LEVEL) -> list[torch.Tensor]:
    """``unet-enhancer``: ``[feat]``, the output of encoder level ``min(level, levels - 1)``,
    ``(B, w 2^l, ceil(H / 2^l), ceil(W / 2^l))``; ``x`` ``(B, 3, H, W)`` in [0, 1]."""
    level = min(level, len(net.down) - 1)
    return [_crop(truncated_outputs(net, [net.down[level]], x)[0], x, level)]


def deeplpf_features(net: nn.Module, x: torch.Tensor, level: int = _FEATURE_LEVEL) -> list[torch.Tensor]:
    """``deeplpf``: ``[feat]``, the output of backbone encoder level ``level`` (0-4),
    ``(B, C_l, ceil(H / 2^l), ceil(W / 2^l))`` with ``C_l = w, 2w, 4w, 8w, 8w``."""
    down = net.backbone.down
    if not 0 <= level < len(down):
        raise ValueError(f"deeplpf encoder level must be in [0, {len(down) - 1}], got {level}")
    return [_crop(truncated_outputs(net, [down[level]], x)[0], x, level)]


def encoder_features(enhancer: nn.Module) -> EncoderFn:
    """The callable ``encoder(x) -> list of feature maps`` of an enhancer (docs/methods/lmar.md)."""
    own = getattr(enhancer, "encoder_features", None)
    if callable(own):
        return own
    if isinstance(enhancer, UNetEnhancer):
        return lambda x: unet_enhancer_features(enhancer, x)
    if isinstance(enhancer, DeepLPF):
        return lambda x: deeplpf_features(enhancer, x)
    raise TypeError(
        f"no encoder adapter for {type(enhancer).__name__}: give it an encoder_features(x) method "
        f"returning a list of (B, C, h, w) feature maps"
    )


def freeze(enhancer: nn.Module) -> nn.Module:
    """Make ``enhancer`` a fixed function: no parameter requires a gradient, eval mode. Returns it."""
    enhancer.requires_grad_(False)
    return enhancer.eval()


# ---------------------------------------------------------------------------------------------------------
# Feature terms


def _check_lists(feats_c: Sequence[torch.Tensor], feats_x: Sequence[torch.Tensor]) -> None:
    if len(feats_c) != len(feats_x) or not feats_c:
        raise ValueError(
            f"need two equally long, non-empty lists of feature maps, got {len(feats_c)} and {len(feats_x)}"
        )
    for fc, fx in zip(feats_c, feats_x):
        if fc.dim() != 4 or fx.dim() != 4 or fc.shape[:2] != fx.shape[:2]:
            raise ValueError(
                f"feature maps must be (B, C, h, w) with matching B and C, got {tuple(fc.shape)} and {tuple(fx.shape)}"
            )


def _match(feat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``feat`` resized (Lanczos-3, no antialiasing) to ``like``'s spatial size."""
    if feat.shape[-2:] == like.shape[-2:]:
        return feat
    return imresize(feat, size=tuple(like.shape[-2:]), kernel="lanczos3", antialias=False)


def resampling_consistency_loss(feats_c: Sequence[torch.Tensor], feats_x: Sequence[torch.Tensor]) -> torch.Tensor:
    """``L_rc``: mean over maps of ``SmoothL1(resize(f_c), f_x)`` (beta 1, mean); ``f_c`` from ``x_c``."""
    _check_lists(feats_c, feats_x)
    return sum(F.smooth_l1_loss(_match(fc, fx), fx) for fc, fx in zip(feats_c, feats_x)) / len(feats_c)


def attention_map(feat: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, h w)``: the channel mean of ``feat^2``, L2-normalised per sample."""
    if feat.dim() != 4:
        raise ValueError(f"feat must be (B, C, h, w), got {tuple(feat.shape)}")
    return F.normalize(feat.pow(2).mean(dim=1).flatten(1), dim=1)


def feature_attention_loss(feats_c: Sequence[torch.Tensor], feats_x: Sequence[torch.Tensor]) -> torch.Tensor:
    """``L_fa``: mean over maps of ``mean((at(resize(f_c)) - at(f_x))^2)``."""
    _check_lists(feats_c, feats_x)
    return sum(
        (attention_map(_match(fc, fx)) - attention_map(fx)).pow(2).mean() for fc, fx in zip(feats_c, feats_x)
    ) / len(feats_c)


@torch.no_grad()
def edge_weight(hr: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``M``: ``(B, 1, h, w)``, the Scharr gradient magnitude ``sqrt(g_x^2 + g_y^2)`` of the channel mean of
    ``hr`` ``(B, 3, H, W)`` (replicated borders), MATLAB-bicubic resized to ``size``; no gradient."""
    if hr.dim() != 4:
        raise ValueError(f"hr must be (B, 3, H, W), got {tuple(hr.shape)}")
    gray = hr.mean(dim=1, keepdim=True)
    kx = torch.tensor(_SCHARR, dtype=hr.dtype, device=hr.device)
    gx = filter2d(gray, kx[None], border="replicate")
    gy = filter2d(gray, kx.t().contiguous()[None], border="replicate")
    mag = torch.sqrt(gx * gx + gy * gy)
    if tuple(mag.shape[-2:]) == tuple(size):
        return mag
    return imresize(mag, size=tuple(size), kernel="cubic")


def edge_loss(feats_c: Sequence[torch.Tensor], feats_x: Sequence[torch.Tensor], hr: torch.Tensor) -> torch.Tensor:
    """``L_edge``: mean over maps of ``mean(|resize(f_c) - f_x| * M)``, ``M = edge_weight(hr, f_x's size)``."""
    _check_lists(feats_c, feats_x)
    total = 0.0
    for fc, fx in zip(feats_c, feats_x):
        total = total + ((_match(fc, fx) - fx).abs() * edge_weight(hr, fx.shape[-2:])).mean()
    return total / len(feats_c)


# ---------------------------------------------------------------------------------------------------------
# Adversarial term


class PatchDiscriminator(nn.Module):
    """The digest's PatchGAN: four [Conv4x4 stride 2 pad 1, LeakyReLU(0.2)] (``3 -> c -> c -> c -> c``),
    ZeroPad(left 1, top 1), Conv4x4 pad 1 ``c -> 1`` without bias.

    ``(B, 3, h, w)`` (sides >= 16) -> logits ``(B, 1, floor(h / 16), floor(w / 16))``.
    ``channels = 4`` as the reference (1,040 parameters): deliberately weak, a constraint rather than a critic.
    """

    def __init__(self, channels: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        for cin in (3, channels, channels, channels):
            layers += [nn.Conv2d(cin, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(channels, 1, 4, padding=1, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < 16:
            raise ValueError(f"discriminator input must be (B, 3, h, w) with sides >= 16, got {tuple(x.shape)}")
        return self.net(x)


def lsgan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator: ``MSE(fake_logits, 1)``."""
    return F.mse_loss(fake_logits, torch.ones_like(fake_logits))


def lsgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator: ``0.5 [MSE(real, 1) + MSE(fake, 0)]`` (``fake_logits`` from a detached ``x_c``)."""
    return 0.5 * (
        F.mse_loss(real_logits, torch.ones_like(real_logits)) + F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
    )


# ---------------------------------------------------------------------------------------------------------
# Totals


@dataclass
class LMARLossWeights:
    """Weights of the generator terms (the reference's defaults); a weight of 0 skips its term."""

    adversarial: float = 1.0
    consistency: float = 1.0
    attention: float = 5000.0
    edge: float = 1.0
    # Not in the reference: the L1 between each image's mean colour in x_c and in the HR crop. 0 (the
    # reference's objective) skips it; docs/methods/lmar.md says when it is needed.
    colour: float = 0.0

    def __post_init__(self) -> None:
        for name in ("adversarial", "consistency", "attention", "edge", "colour"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"LMAR loss weight {name} must be a finite number >= 0, got {value!r}")


def mean_colour_loss(x_c: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean over images and channels of ``|mean(x_c) - mean(hr)|``, each mean over one image's pixels: a
    resize keeps an image's mean colour, so this penalises only a colour cast, not the detail LMAR shapes."""
    return (x_c.mean(dim=(2, 3)) - hr.mean(dim=(2, 3))).abs().mean()


def lmar_generator_loss(
    x_c: torch.Tensor,
    hr: torch.Tensor,
    encoder: EncoderFn,
    discriminator: nn.Module | None = None,
    weights: LMARLossWeights | None = None,
    feature_norm: str = "none",
) -> dict[str, torch.Tensor]:
    """The resampler's loss. ``x_c`` ``(B, 3, h, w)`` from the resampler, ``hr`` ``(B, 3, H, W)`` in [0, 1];
    ``encoder`` as :func:`encoder_features` returns (of a frozen enhancer). ``E(hr)`` is computed without
    gradient. Returns ``{"total", "consistency", "attention", "edge"[, "colour"][, "adversarial"]}`` (unweighted terms
    plus the weighted ``total``); the adversarial term needs ``discriminator``. ``feature_norm="rms"`` divides
    both maps, channel by channel, by the RMS of that channel of ``E(hr)`` over the batch, so the feature terms
    do not depend on the scale of the enhancer's features (``"none"``: the reference's raw features)."""
    weights = weights or LMARLossWeights()
    if feature_norm not in ("none", "rms"):
        raise ValueError(f"feature_norm must be 'none' or 'rms', got {feature_norm!r}")
    with torch.no_grad():
        feats_x = [f.detach() for f in encoder(hr)]
    feats_c = encoder(x_c)
    if feature_norm == "rms":
        scales = [f.pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt().clamp_min(1e-12) for f in feats_x]
        feats_x = [f / s for f, s in zip(feats_x, scales)]
        feats_c = [f / s for f, s in zip(feats_c, scales)]
    terms = {
        "consistency": resampling_consistency_loss(feats_c, feats_x),
        "attention": feature_attention_loss(feats_c, feats_x),
        "edge": edge_loss(feats_c, feats_x, hr),
    }
    if weights.colour:
        terms["colour"] = mean_colour_loss(x_c, hr)
    if discriminator is not None:
        terms["adversarial"] = lsgan_g_loss(discriminator(x_c))
    elif weights.adversarial:
        raise ValueError("the adversarial weight is non-zero: pass a discriminator (or set the weight to 0)")
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return {"total": total, **terms}


def lmar_discriminator_loss(discriminator: nn.Module, x_c: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
    """``lsgan_d_loss(Disc(x_d), Disc(x_c.detach()))``: ``x_d`` the plain resize of the same HR crop."""
    return lsgan_d_loss(discriminator(x_d), discriminator(x_c.detach()))
