"""DeepLPF: deep local parametric filters for image enhancement (Moran et al., CVPR 2020, arXiv 2003.13985).

An RGB photo ``x`` ``(B, 3, H, W)`` in [0, 1] is enhanced in four steps (paper Fig. 2, Sec. 3):

1. **Backbone.** A U-Net maps ``x`` to ``C = features`` channels at full resolution; channels 0-2 are the
   backbone image ``Y1`` (unbounded), channels 3.. are features.
2. **Cubic filter** (Sec. 3.2.4). A head reads ``[features, Y1]`` and predicts 20 coefficients per channel;
   ``Y2 = cubic_filter(Y1, coeffs)`` (``clamp(Y1 + f, 0, 1)``).
3. **Graduated and elliptical filters** (Secs. 3.2.2, 3.2.3). Two heads read ``[features, Y2]`` and predict
   ``N`` filters each (3 by default); each filter type's instance maps are multiplied (Eq. 7) and the two
   types fused, ``S = fuse_scale_maps(s_g, s_e)``; ``Y3 = apply_scale_map(Y2, S)``.
4. **Long residual.** ``out = long_residual(Y3, Y1) = clamp(Y3 + Y1, 0, 1)``.

The filter maths is :mod:`anyres.enhancement.filters` (see its docstring for the coordinate convention and for
where it departs from the released code); this module holds the networks and the bounding of raw head
outputs into those functions' parameter ranges.

Backbone (digest Sec. 1.2, the released code's layer list with width ``w = width``, default 16)
    ``LocalNet(a, b)`` = twice [ReflectionPad(1), Conv3x3, LeakyReLU(0.01)] (``a -> b``, then ``b -> b``).
    Encoder ``LocalNet(3, w), (w, 2w), (2w, 4w), (4w, 8w), (8w, 8w)`` with MaxPool(2) between levels
    (bottleneck at 1/16). Decoder, four times: nearest x2 upsampling, 1x1 conv keeping the channels,
    concatenation with the skip, ``LocalNet(deep + skip, skip)``. Then ``LocalNet(w, 3)``, plus the input
    image (global residual), then ReflectionPad(1) + Conv3x3 ``3 -> C`` (no activation). The reference's
    unused layers (three 1x1 convs and a LocalNet) are not built.

    Any size: the image is padded at the bottom and right to a multiple of 16 and at least 32 pixels a side
    (so that the bottleneck keeps 2 pixels for ReflectionPad(1)), reflected when the padding is smaller than
    the image and replicated otherwise (reflection needs that); the backbone runs on the padded image and
    its output is cropped back to ``H x W`` before any filter is built. The reference instead pads a
    decoder level by one pixel when it is odd. Filters are built on the crop, so their normalised
    coordinates are those of the original image.

    Like the reference, the backbone runs at the full input resolution (the DPE protocol's images have a
    long edge of 512): memory grows linearly with ``H W`` (the full-resolution U-Net levels hold ``w`` to
    ``C`` channels and the filters build ``3 N`` per-pixel instance maps), so a caller enhancing
    multi-megapixel photos should tile or downscale; nothing here does. Only the heads work at a fixed size.

Parameter heads (digest Sec. 1.3; one per filter type, not shared)
    Input ``C`` channels, resized bilinearly (``align_corners=False``, no antialiasing, as the reference) to
    ``head_size x head_size`` (300; ``None`` keeps the input size), so the heads' cost does not depend on
    the image size. Four [Conv3x3 stride 2 pad 1 ``C -> C``, LeakyReLU] with MaxPool(2) after the first three,
    global average pool, Dropout(``head_dropout``), Linear ``C -> P``. The pools use ``ceil_mode=True``, which
    changes nothing at 300 (300 -> 150 -> 75 -> 38 -> 19 -> 10 -> 5 -> 3, the reference's trace: every pool
    sees an even size) and lets small ``head_size`` (or ``None`` on a small image) go down to 1 pixel.

Raw head outputs and their bounding (``tanh01(z) = (tanh z + 1) / 2``, in (0, 1); ``N`` instances)
    cubic, ``P = 60``: ``coeffs = raw.view(B, 3, 20)`` unbounded (as the reference), channel-major R, G, B,
    terms in :data:`~anyres.enhancement.filters.CUBIC_TERMS` order.

    graduated, ``P = 8 N``, parameter-major:
      ``[0:N]``   inversion logits -> ``straight_through_bit`` (0 or 1, straight-through gradient);
      ``[N:2N]``  slope ``m``, unbounded (as the reference);
      ``[2N:3N]`` intercept ``c = tanh01`` in (0, 1) (as the reference);
      ``[3N:4N]`` offset ``o1`` and ``[4N:5N]`` offset ``o2``: ``L + (1 - L) tanh01`` in [L, 1], ``L = 1e-3``;
      ``[5N:8N]`` per-channel scales ``2 tanh01`` in (0, 2), instance-major ``[inst0 R, G, B, inst1 R, ...]``.

    elliptical, ``P = 8 N``, parameter-major:
      ``[0:N]`` centre ``h`` and ``[N:2N]`` centre ``k``: ``tanh01`` in (0, 1) (as the reference);
      ``[2N:3N]`` semi-axis ``a`` and ``[3N:4N]`` semi-axis ``b``: ``L + (1 - L) tanh01`` in [L, 1];
      ``[4N:5N]`` angle ``theta = pi tanh01`` in (0, pi) (as the reference);
      ``[5N:8N]`` per-channel scales ``2 tanh01`` in (0, 2), instance-major.

Differences from the paper and the released code, and why
    - The filters are those of :mod:`anyres.enhancement.filters` (paper equations, trained inversion bit via
      a real straight-through estimator, textbook rotated ellipse, no ``b3``-for-``b2`` slip, x along the
      width); the reference's checkpoints therefore cannot be loaded as they are.
    - Graduated parameters: the reference ties the first offset to the intercept (``o1 = c``), bounds ``o2``
      by ``c`` and clamps ``c`` to a detached lower bound read from three extra outputs. Here ``c``, ``o1``,
      ``o2`` are independent, and the three outputs the reference spent on the bound give ``o1``; the
      output count stays 24 for 3 instances. The lengths (offsets, semi-axes) have a floor ``L = 1e-3``
      (the reference adds 1e-10) because the filters need them strictly positive and ``tanh01`` reaches 0
      in float32; at a 512-pixel side 1e-3 is half a pixel, a hard edge.
    - Any image size via pad-and-crop (above) and ``ceil_mode`` pools in the heads (identical at 300).
    - Batches of any size: nothing depends on batch 1 (the reference asserts it).
    - Fusion ``mode`` is a config field: ``"sum"`` (paper and code, the default, neutral at 2) or
      ``"deviation"`` (the official v2 fix, neutral at 1); the cubic filter's ``cubic_residual`` too.
    - Initialisation: by default the network starts as the identity (:meth:`DeepLPF.start_from_identity`);
      the reference uses PyTorch's defaults (``init="default"`` here). The architecture is unchanged.
    - The loss's MS-SSIM groups the scales as the standard definition (the official v2 ``msssim`` fix),
      not the v1 code, which raises the last scale's SSIM to every weight.

Also here: :func:`deeplpf_loss` (Sec. 3.4, Eq. 8) and the MS-SSIM it needs, :func:`ms_ssim`, a pure function
(it lives beside the loss because models may only import ``ops``, ``nn``, ``registry`` and ``errors``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from anyres.ops.color_lab import rgb_to_lab
from anyres.enhancement.filters import (
    CUBIC_TERMS,
    FUSION_MODES,
    apply_scale_map,
    combine_instances,
    cubic_filter,
    elliptical_map,
    fuse_scale_maps,
    graduated_map,
    long_residual,
    straight_through_bit,
)
from anyres.registry import NETWORKS

from anyres.nn.config import config_from_dict, resolve_config

__all__ = [
    "DeepLPF",
    "DeepLPFConfig",
    "UNetBackbone",
    "ParameterHead",
    "graduated_parameters",
    "elliptical_parameters",
    "cubic_coefficients",
    "MS_SSIM_WEIGHTS",
    "ssim_components",
    "ms_ssim",
    "deeplpf_loss",
]

_LEVELS = 5                      # U-Net levels; 4 poolings, bottleneck at 1/16
_MULTIPLE = 2 ** (_LEVELS - 1)   # the backbone's padded sides are multiples of this ...
_MIN_SIDE = 2 * _MULTIPLE        # ... and at least this, so the bottleneck keeps 2 pixels for ReflectionPad(1)
_MIN_LENGTH = 1e-3               # floor of the predicted offsets and semi-axes (image units)
_CUBIC_PER_CHANNEL = len(CUBIC_TERMS)
_PER_INSTANCE = 8                # graduated: bit, slope, c, o1, o2 + 3 scales; elliptical: h, k, a, b, theta + 3
_SCALES_FROM = 5                 # the 3 N scales are the raw outputs [5 N:8 N] of both local heads
_LEAK = 0.01
INITS = ("identity", "default")


def _is_int(v: Any, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


@dataclass
class DeepLPFConfig:
    """Everything needed to rebuild a DeepLPF network (saved as ``config.json`` beside the weights).

    ``width``: channels of the U-Net's first level (levels have ``w, 2w, 4w, 8w, 8w``; 16 as published).
    ``features``: backbone output channels ``C`` (3 image channels + ``C - 3`` features; 64 as published),
    also the heads' width. ``head_size``: side the heads resize their input to (300 as published; ``None``:
    no resize). ``head_dropout``: dropout before each head's linear layer (0.5). ``graduated``,
    ``elliptical``: instances per filter type (3 each). ``fusion``: ``"sum"`` (published) or ``"deviation"``.
    ``cubic_residual``: ``Y2 = Y1 + f`` (released code) or ``Y2 = f`` (one reading of Eq. 6).
    ``init``: ``"identity"`` (the default) starts training from ``out = x`` (see :meth:`DeepLPF.start_from_identity`);
    ``"default"``: PyTorch's default initialisation everywhere, as the reference. It only matters for a network
    that is about to be trained: loaded weights replace it.
    """

    width: int = 16
    features: int = 64
    head_size: int | None = 300
    head_dropout: float = 0.5
    graduated: int = 3
    elliptical: int = 3
    fusion: str = "sum"
    cubic_residual: bool = True
    init: str = "identity"

    def __post_init__(self) -> None:
        if not _is_int(self.width, 1):
            raise ValueError(f"DeepLPF width must be an int >= 1, got {self.width!r}")
        if not _is_int(self.features, 4):
            raise ValueError(f"DeepLPF features must be an int >= 4 (3 image channels + features), "
                             f"got {self.features!r}")
        if self.head_size is not None and not _is_int(self.head_size, 1):
            raise ValueError(f"DeepLPF head_size must be an int >= 1 or None, got {self.head_size!r}")
        if isinstance(self.head_dropout, bool) or not isinstance(self.head_dropout, (int, float)) \
                or not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"DeepLPF head_dropout must be a number in [0, 1), got {self.head_dropout!r}")
        for name in ("graduated", "elliptical"):
            if not _is_int(getattr(self, name), 1):
                raise ValueError(f"DeepLPF {name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.fusion not in FUSION_MODES:
            raise ValueError(f"DeepLPF fusion must be one of {FUSION_MODES}, got {self.fusion!r}")
        if not isinstance(self.cubic_residual, bool):
            raise ValueError(f"DeepLPF cubic_residual must be a bool, got {self.cubic_residual!r}")
        if self.init not in INITS:
            raise ValueError(f"DeepLPF init must be one of {INITS}, got {self.init!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeepLPFConfig":
        return config_from_dict(cls, d, "DeepLPF")


# ---------------------------------------------------------------------------------------------------------
# Bounding raw head outputs (pure functions)


def _tanh01(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.tanh(z) + 1.0)


def _length(z: torch.Tensor) -> torch.Tensor:
    return _MIN_LENGTH + (1.0 - _MIN_LENGTH) * _tanh01(z)


def _check_raw(name: str, raw: torch.Tensor, count: int, per_instance: int) -> int:
    if not isinstance(raw, torch.Tensor) or not raw.is_floating_point() or raw.dim() != 2 \
            or raw.shape[1] != per_instance * count:
        shape = tuple(raw.shape) if isinstance(raw, torch.Tensor) else type(raw).__name__
        raise ValueError(f"{name} head output must be a float (B, {per_instance * count}) tensor for {count} "
                         f"instances, got shape {shape}")
    return raw.shape[0]


def graduated_parameters(raw: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    """Bound a graduated head's ``(B, 8 N)`` raw output into :func:`~anyres.enhancement.filters.graduated_map`'s
    keyword arguments (layout and ranges in the module docstring): ``(B, N)`` tensors ``invert`` (0 or 1),
    ``slope``, ``intercept`` (0, 1), ``offset1``, ``offset2`` [1e-3, 1] and ``scale`` ``(B, N, 3)`` in (0, 2)."""
    b = _check_raw("graduated", raw, count, _PER_INSTANCE)
    n = count
    return {
        "invert": straight_through_bit(raw[:, 0:n]),
        "slope": raw[:, n:2 * n],
        "intercept": _tanh01(raw[:, 2 * n:3 * n]),
        "offset1": _length(raw[:, 3 * n:4 * n]),
        "offset2": _length(raw[:, 4 * n:5 * n]),
        "scale": 2.0 * _tanh01(raw[:, _SCALES_FROM * n:]).reshape(b, n, 3),
    }


def elliptical_parameters(raw: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    """Bound an elliptical head's ``(B, 8 N)`` raw output into :func:`~anyres.enhancement.filters.elliptical_map`'s
    keyword arguments: ``(B, N)`` tensors ``centre_x``, ``centre_y`` (0, 1), ``semi_a``, ``semi_b`` [1e-3, 1],
    ``angle`` (0, pi) radians and ``scale`` ``(B, N, 3)`` in (0, 2)."""
    b = _check_raw("elliptical", raw, count, _PER_INSTANCE)
    n = count
    return {
        "centre_x": _tanh01(raw[:, 0:n]),
        "centre_y": _tanh01(raw[:, n:2 * n]),
        "semi_a": _length(raw[:, 2 * n:3 * n]),
        "semi_b": _length(raw[:, 3 * n:4 * n]),
        "angle": math.pi * _tanh01(raw[:, 4 * n:5 * n]),
        "scale": 2.0 * _tanh01(raw[:, _SCALES_FROM * n:]).reshape(b, n, 3),
    }


def cubic_coefficients(raw: torch.Tensor) -> torch.Tensor:
    """A cubic head's ``(B, 60)`` raw output as ``(B, 3, 20)`` coefficients (unbounded; R 0-19, G 20-39, B 40-59)."""
    b = _check_raw("cubic", raw, 3, _CUBIC_PER_CHANNEL)
    return raw.reshape(b, 3, _CUBIC_PER_CHANNEL)


# ---------------------------------------------------------------------------------------------------------
# Modules


class _LocalNet(nn.Sequential):
    """Twice [ReflectionPad(1), Conv3x3, LeakyReLU(0.01)]: ``cin -> cout -> cout`` at the same resolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.LeakyReLU(_LEAK),
            nn.ReflectionPad2d(1), nn.Conv2d(cout, cout, 3), nn.LeakyReLU(_LEAK),
        )


def _pad_for_backbone(x: torch.Tensor) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` at the bottom and right to sides that are multiples of 16 and at least 32."""
    h, w = x.shape[-2:]
    ph = max(-(-h // _MULTIPLE) * _MULTIPLE, _MIN_SIDE) - h
    pw = max(-(-w // _MULTIPLE) * _MULTIPLE, _MIN_SIDE) - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class UNetBackbone(nn.Module):
    """DeepLPF's U-Net: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, features, H, W)`` (channels 0-2 are ``Y1``).

    Any ``H, W >= 1`` (pad, run, crop; see the module docstring). Output unbounded.
    """

    def __init__(self, width: int = 16, features: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.down = nn.ModuleList(_LocalNet(cin, cout) for cin, cout in zip([3, *widths[:-1]], widths))
        self.up_convs = nn.ModuleList()
        self.up = nn.ModuleList()
        deep = widths[-1]
        for skip in reversed(widths[:-1]):
            self.up_convs.append(nn.Conv2d(deep, deep, 1))
            self.up.append(_LocalNet(deep + skip, skip))
            deep = skip
        self.to_rgb = _LocalNet(width, 3)
        self.to_features = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, features, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = _pad_for_backbone(x)
        skips = []
        feat = padded
        for level, block in enumerate(self.down):
            if level:
                feat = F.max_pool2d(feat, 2)
            feat = block(feat)
            skips.append(feat)
        feat = skips.pop()
        for up_conv, block in zip(self.up_convs, self.up):
            feat = up_conv(F.interpolate(feat, scale_factor=2.0, mode="nearest"))
            feat = block(torch.cat([feat, skips.pop()], dim=1))
        rgb = self.to_rgb(feat) + padded  # the global residual
        return self.to_features(rgb)[..., :h, :w]


class ParameterHead(nn.Module):
    """A filter-parameter block: ``(B, channels, H, W)`` -> raw ``(B, outputs)`` (bounded by the caller).

    Resizes to ``size x size`` first (bilinear; ``None``: no resize), then four stride-2 convs with max
    pools between them, global average pooling, dropout and a linear layer (module docstring).
    """

    def __init__(self, channels: int, outputs: int, size: int | None = 300, dropout: float = 0.5):
        super().__init__()
        self.size = size
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.LeakyReLU(_LEAK)]
            if i < 3:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        self.convs = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, outputs)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        if self.size is not None and tuple(feat.shape[-2:]) != (self.size, self.size):
            feat = F.interpolate(feat, size=(self.size, self.size), mode="bilinear", align_corners=False)
        pooled = self.convs(feat).mean(dim=(-2, -1))
        return self.fc(self.dropout(pooled))


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4 or x.shape[1] != 3 \
            or x.numel() == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"DeepLPF input must be a non-empty float (B, 3, H, W) RGB tensor in [0, 1], got shape {shape}")


class DeepLPF(nn.Module):
    """DeepLPF network. ``forward(x) -> out`` and ``explain(x) -> dict``; no state kept between calls.

    ``x``: ``(B, 3, H, W)`` float RGB in [0, 1], any ``B, H, W >= 1``; ``out``: same shape, in [0, 1]. Device
    and dtype follow the module's parameters (``x`` must match them, as for any ``nn.Module``).
    """

    config_class = DeepLPFConfig

    def __init__(self, config: DeepLPFConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__()
        self.config = config = resolve_config(DeepLPFConfig, config, kwargs)
        c = config.features
        self.backbone = UNetBackbone(config.width, c)
        head = {"size": config.head_size, "dropout": config.head_dropout}
        self.cubic_head = ParameterHead(c, 3 * _CUBIC_PER_CHANNEL, **head)
        self.graduated_head = ParameterHead(c, _PER_INSTANCE * config.graduated, **head)
        self.elliptical_head = ParameterHead(c, _PER_INSTANCE * config.elliptical, **head)
        if config.init == "identity":
            self.start_from_identity()

    @torch.no_grad()
    def start_from_identity(self) -> None:
        """Re-initialise the layers that decide the output so that ``forward(x) == x`` (up to rounding).

        The backbone's last convolution is zeroed (its image is then the input), the first three outputs of
        its ``3 -> C`` convolution become ``Y1 = x / (1 + S0)``, where ``S0`` is the fusion's neutral value (2
        for ``"sum"``, 1 for ``"deviation"``), the cubic head's linear layer and the scale rows of the two
        local heads are zeroed (``f = 0``, every filter scale 1, so ``S = S0``). Then ``Y3 = S0 x / (1 + S0)``
        and ``out = Y3 + Y1 = x``. Everything else keeps PyTorch's initialisation, so after the first step the
        gradients reach every layer. With ``"sum"`` fusion ``S`` starts at its upper clamp (2), so the local
        filters can only darken until ``Y1`` and the cubic filter take over brightening: that is the published
        fusion's neutral point, not the initialisation's (any ``S`` that does not depend on the filters'
        geometry needs every scale at 1).

        Why: with the long residual, an unchanged photo needs ``Y1 = x / (1 + S0)``. From PyTorch's
        initialisation the backbone must learn to rebuild the image at a third of its contrast, and in a CPU
        budget (1,500 iterations) it learnt a blurred one: the retouch model trained that way lowered the
        damaged inputs' SSIM on Set14 from 0.90 to 0.62 (benchmarks/RESULTS.md, "Enhancement").
        """
        last = self.backbone.to_rgb[-2]
        last.weight.zero_()
        last.bias.zero_()
        first = self.backbone.to_features[-1]
        neutral = torch.ones(1, 3, 1, 1)
        s0 = float(fuse_scale_maps(neutral, neutral, mode=self.config.fusion)[0, 0, 0, 0])
        first.weight[:3].zero_()
        first.bias[:3].zero_()
        for ch in range(3):
            first.weight[ch, ch, 1, 1] = 1.0 / (1.0 + s0)
        self.cubic_head.fc.weight.zero_()
        self.cubic_head.fc.bias.zero_()
        for head, count in ((self.graduated_head, self.config.graduated), (self.elliptical_head, self.config.elliptical)):
            head.fc.weight[_SCALES_FROM * count:].zero_()
            head.fc.bias[_SCALES_FROM * count:].zero_()

    def config_dict(self) -> dict[str, Any]:
        return {"arch": "deeplpf", **asdict(self.config)}

    def _run(self, x: torch.Tensor) -> dict[str, Any]:
        """Every intermediate of the forward pass (tensors and bounded parameters)."""
        _check_input(x)
        h, w = x.shape[-2:]
        feat = self.backbone(x)                                   # (B, C, H, W): [Y1, features]
        y1 = feat[:, :3]
        coeffs = cubic_coefficients(self.cubic_head(feat))        # heads see [features, image] = C channels
        y2 = cubic_filter(y1, coeffs, residual=self.config.cubic_residual)
        context = torch.cat([feat[:, 3:], y2], dim=1)
        grad = graduated_parameters(self.graduated_head(context), self.config.graduated)
        ell = elliptical_parameters(self.elliptical_head(context), self.config.elliptical)
        s_g = combine_instances(graduated_map(h, w, **grad))
        s_e = combine_instances(elliptical_map(h, w, **ell))
        scale = fuse_scale_maps(s_g, s_e, mode=self.config.fusion)
        y3 = apply_scale_map(y2, scale)
        out = long_residual(y3, y1)
        return {"cubic": coeffs, "graduated": grad, "elliptical": ell, "s_g": s_g, "s_e": s_e, "scale": scale,
                "y1": y1, "y2": y2, "y3": y3, "out": out}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> enhanced ``(B, 3, H, W)`` in [0, 1]."""
        return self._run(x)["out"]

    @torch.no_grad()
    def explain(self, x: torch.Tensor) -> dict[str, Any]:
        """The forward pass with its filters exposed (no gradients; use eval mode for deterministic heads).

        Returns a dict:

        ``"parameters"``: a list of ``B`` JSON-serialisable dicts (plain floats), one per image::

            {"graduated": [{"invert": 0.0 | 1.0, "slope", "intercept", "offset1", "offset2",
                            "scale": [r, g, b]}, ...N],
             "elliptical": [{"centre_x", "centre_y", "semi_a", "semi_b", "angle", "scale": [r, g, b]}, ...N],
             "cubic": [[20 floats] for R, G, B]}   (terms in CUBIC_TERMS order)

          in the units of :mod:`anyres.enhancement.filters` (normalised coordinates, x along the width, angles
          in radians); feeding them back to its functions rebuilds the maps below.
        ``"fusion"``: the fusion mode; ``"cubic_terms"``: the monomials as ``[p, q, r]`` exponents of x, y, i.
        ``"maps"``: ``(B, 3, H, W)`` tensors ``"graduated"`` (``s_g``, instances multiplied), ``"elliptical"``
        (``s_e``) and ``"fused"`` (``S``), each in [0, 2].
        ``"images"``: ``(B, 3, H, W)`` tensors ``"backbone"`` (``Y1``, unbounded), ``"cubic"`` (``Y2``),
        ``"scaled"`` (``Y3``) and ``"output"``, the last three in [0, 1].
        """
        run = self._run(x)
        grad = {k: v.detach().to("cpu", torch.float64) for k, v in run["graduated"].items()}
        ell = {k: v.detach().to("cpu", torch.float64) for k, v in run["elliptical"].items()}
        cubic = run["cubic"].detach().to("cpu", torch.float64)
        scalar_g = [k for k in grad if k != "scale"]
        scalar_e = [k for k in ell if k != "scale"]
        parameters = []
        for b in range(x.shape[0]):
            parameters.append({
                "graduated": [{**{k: float(grad[k][b, i]) for k in scalar_g}, "scale": grad["scale"][b, i].tolist()}
                              for i in range(self.config.graduated)],
                "elliptical": [{**{k: float(ell[k][b, i]) for k in scalar_e}, "scale": ell["scale"][b, i].tolist()}
                               for i in range(self.config.elliptical)],
                "cubic": cubic[b].tolist(),
            })
        return {
            "parameters": parameters,
            "fusion": self.config.fusion,
            "cubic_terms": [list(t) for t in CUBIC_TERMS],
            "maps": {"graduated": run["s_g"], "elliptical": run["s_e"], "fused": run["scale"]},
            "images": {"backbone": run["y1"], "cubic": run["y2"], "scaled": run["y3"], "output": run["out"]},
        }


@NETWORKS.register("deeplpf", "DeepLPF enhancement network: U-Net backbone + graduated, elliptical and cubic filters")
def build_deeplpf(**kwargs: Any) -> DeepLPF:
    return DeepLPF(DeepLPFConfig.from_dict(kwargs))


build_deeplpf.config_class = DeepLPFConfig  # lets hub.load_network pick the config keys out of config.json


# ---------------------------------------------------------------------------------------------------------
# MS-SSIM and the DeepLPF loss (pure functions)

# Wang, Simoncelli & Bovik (2003): exponents of the five scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_POSITIVE = 1e-12  # floor before the fractional powers when not shifting (0 ** w has an infinite slope)


def _gaussian_taps(window: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    r = torch.arange(window, dtype=torch.float64) - (window - 1) / 2.0
    g = torch.exp(-(r ** 2) / (2.0 * sigma ** 2))
    return (g / g.sum()).to(device=like.device, dtype=like.dtype)


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    for name, v in (("a", a), ("b", b)):
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.dim() != 4:
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"{name} must be a float (B, C, H, W) tensor, got shape {shape}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def ssim_components(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, window: int = 11,
                    sigma: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image, ``((B,), (B,))``, at one scale.

    ``a``, ``b``: ``(B, C, H, W)`` float in [0, data_range] with ``H, W >= window``. Gaussian window of side
    ``window`` and standard deviation ``sigma`` (separable), 'valid' filtering (no padding), ``C1 = (0.01
    data_range)^2``, ``C2 = (0.03 data_range)^2``; maps averaged over channels and positions. With
    ``cs = (2 cov + C2) / (var_a + var_b + C2)`` and ``l = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)``,
    SSIM is the mean of ``l cs``. Equals :func:`anyres.metrics.ssim` (MATLAB's ``ssim``) for window 11.
    """
    _check_pair(a, b)
    if a.shape[-2] < window or a.shape[-1] < window:
        raise ValueError(f"SSIM with a {window}x{window} window needs images at least that large, "
                         f"got shape {tuple(a.shape)}")
    c = a.shape[1]
    g = _gaussian_taps(window, sigma, a)
    rows = g.view(1, 1, window, 1).expand(c, 1, window, 1)
    cols = g.view(1, 1, 1, window).expand(c, 1, 1, window)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, rows, groups=c), cols, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a ** 2
    var_b = filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    cs = (2.0 * cov + c2) / (var_a + var_b + c2)
    luminance = (2.0 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    return (luminance * cs).flatten(1).mean(dim=1), cs.flatten(1).mean(dim=1)


def ms_ssim(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
            weights: Sequence[float] = MS_SSIM_WEIGHTS, shift: bool = False) -> torch.Tensor:
    """Multi-scale SSIM per image (Wang et al. 2003), ``(B,)``; 1 for identical images. Differentiable.

    ``a``, ``b``: ``(B, C, H, W)`` float in [0, data_range]. Scale ``j`` (``j = 1..M``) sees the images average-
    pooled ``j - 1`` times by 2 (an odd last row or column is dropped); with :func:`ssim_components` at each::

        MS-SSIM = prod_{j < M} cs_j ** w_j  *  ssim_M ** w_M

    (the standard grouping; the v1 DeepLPF code instead raised ``ssim_M`` to every weight).

    Small images: ``M`` is the largest number of scales, up to ``len(weights)``, whose coarsest image still
    holds one window (``min(H, W) // 2^(M-1) >= window``); when that is fewer than ``len(weights)``, the first
    ``M`` weights are renormalised to sum to 1 so the result stays a weighted geometric mean (all five standard
    weights are used as published, summing to 1.0001). An image smaller than one window is an error.

    ``shift``: map each ``cs`` and ``ssim`` value ``v`` (in [-1, 1]) to ``(v + 1) / 2`` before the powers, as the
    DeepLPF code does; otherwise values are floored at 1e-12 (a negative base has no real fractional power).
    """
    _check_pair(a, b)
    if not weights or any(w < 0 for w in weights):
        raise ValueError(f"weights must be a non-empty list of numbers >= 0, got {list(weights)!r}")
    side = min(a.shape[-2:])
    if side < window:
        raise ValueError(f"MS-SSIM with a {window}x{window} window needs images at least that large, "
                         f"got shape {tuple(a.shape)}")
    scales = 1
    while scales < len(weights) and side // 2 ** scales >= window:
        scales += 1
    used = [float(w) for w in weights[:scales]]
    if scales < len(weights):
        if sum(used) <= 0:
            raise ValueError(f"the first {scales} MS-SSIM weights (all that fit a {tuple(a.shape[-2:])} image) "
                             f"sum to 0: {used}")
        used = [w / sum(used) for w in used]
    result = None
    for j, w in enumerate(used):
        if j:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        full, cs = ssim_components(a, b, data_range=data_range, window=window, sigma=sigma)
        value = full if j == scales - 1 else cs
        value = (value + 1.0) / 2.0 if shift else value.clamp_min(_POSITIVE)
        term = value ** w
        result = term if result is None else result * term
    return result


def deeplpf_loss(pred: torch.Tensor, target: torch.Tensor, *, lab_weight: float = 1.0,
                 ms_ssim_weight: float = 1e-3) -> torch.Tensor:
    """DeepLPF's training loss (Sec. 3.4, Eq. 8; digest Sec. 1.7), a scalar, 0 for ``pred == target``.

    ``pred``, ``target``: ``(B, 3, H, W)`` sRGB in [0, 1], ``H, W >= 5``. Both go to CIELab (:func:`rgb_to_lab`,
    D65) rescaled to [0, 1] as the reference does: ``L / 100``, ``a / 220 + 1/2``, ``b / 220 + 1/2``. Then::

        loss = lab_weight * mean |Lab(pred) - Lab(target)|                      (all three channels)
             + ms_ssim_weight * mean_b (1 - MS-SSIM(L(pred), L(target)))       (L channel only)

    with the reference's MS-SSIM settings: window 5, sigma 1.5, data range 1, the five standard weights and
    the ``(v + 1) / 2`` shift (fewer scales on images under 80 pixels a side, see :func:`ms_ssim`). The
    weights default to the digest's MIT-Adobe-5K-DPE values ``1`` and ``1e-3``.
    """
    _check_pair(pred, target)
    if pred.shape[1] != 3:
        raise ValueError(f"pred and target must be (B, 3, H, W) RGB, got shape {tuple(pred.shape)}")
    offset = pred.new_tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)
    span = pred.new_tensor([100.0, 220.0, 220.0]).view(1, 3, 1, 1)
    lab_pred = rgb_to_lab(pred) / span + offset
    lab_target = rgb_to_lab(target) / span + offset
    l1 = (lab_pred - lab_target).abs().mean()
    structure = ms_ssim(lab_pred[:, :1], lab_target[:, :1], data_range=1.0, window=5, sigma=1.5, shift=True)
    return lab_weight * l1 + ms_ssim_weight * (1.0 - structure).mean()
