"""DeepLPF: deep local parametric filters for photo enhancement (Moran et al., CVPR 2020, arXiv 2003.13985).

``(B, 3, H, W)`` RGB in [0, 1] -> same shape in [0, 1]. A U-Net gives the image ``Y1`` and features; a cubic
filter gives ``Y2 = clamp(Y1 + f(x, y, Y1), 0, 1)``; graduated and elliptical filters give a gain map
``S = fuse(prod s_g, prod s_e)`` and ``Y3 = clamp(Y2 S, 0, 1)``; the output is ``clamp(Y3 + Y1, 0, 1)``.
This module holds the network and the bounding of raw head outputs into the filters' parameter ranges
(the filter maths: :mod:`anyres.enhancement.filters`; the loss: :mod:`anyres.enhancement.deeplpf_loss`).
Layer lists, parameter layouts and where anyres differs from the paper and the released code:
docs/methods/deeplpf.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from anyres.checks import check_image, check_shape
from anyres.enhancement.deeplpf_backbone import ParameterHead, UNetBackbone
from anyres.enhancement.deeplpf_loss import MS_SSIM_WEIGHTS, deeplpf_loss, ms_ssim, ssim_components
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
from anyres.nn.config import config_from_dict, resolve_config
from anyres.registry import NETWORKS

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

_MIN_LENGTH = 1e-3  # floor of the predicted offsets and semi-axes (image units)
_CUBIC_PER_CHANNEL = len(CUBIC_TERMS)
_PER_INSTANCE = 8  # graduated: bit, slope, c, o1, o2 + 3 scales; elliptical: h, k, a, b, theta + 3
_SCALES_FROM = 5  # the 3 N scales are the raw outputs [5 N:8 N] of both local heads
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
            raise ValueError(
                f"DeepLPF features must be an int >= 4 (3 image channels + features), got {self.features!r}"
            )
        if self.head_size is not None and not _is_int(self.head_size, 1):
            raise ValueError(f"DeepLPF head_size must be an int >= 1 or None, got {self.head_size!r}")
        if (
            isinstance(self.head_dropout, bool)
            or not isinstance(self.head_dropout, (int, float))
            or not 0.0 <= self.head_dropout < 1.0
        ):
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
    def from_dict(cls, d: dict[str, Any]) -> DeepLPFConfig:
        return config_from_dict(cls, d, "DeepLPF")


# ---------------------------------------------------------------------------------------------------------
# Bounding raw head outputs (pure functions)


def _tanh01(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.tanh(z) + 1.0)


def _length(z: torch.Tensor) -> torch.Tensor:
    return _MIN_LENGTH + (1.0 - _MIN_LENGTH) * _tanh01(z)


def graduated_parameters(raw: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    """Bound a graduated head's ``(B, 8 N)`` raw output into :func:`~anyres.enhancement.filters.graduated_map`'s
    keyword arguments (layout and ranges: docs/methods/deeplpf.md): ``(B, N)`` tensors ``invert`` (0 or 1),
    ``slope``, ``intercept`` (0, 1), ``offset1``, ``offset2`` [1e-3, 1] and ``scale`` ``(B, N, 3)`` in (0, 2)."""
    b = check_shape(raw, f"graduated head output for {count} instances", ("B", _PER_INSTANCE * count))[0]
    n = count
    return {
        "invert": straight_through_bit(raw[:, 0:n]),
        "slope": raw[:, n : 2 * n],
        "intercept": _tanh01(raw[:, 2 * n : 3 * n]),
        "offset1": _length(raw[:, 3 * n : 4 * n]),
        "offset2": _length(raw[:, 4 * n : 5 * n]),
        "scale": 2.0 * _tanh01(raw[:, _SCALES_FROM * n :]).reshape(b, n, 3),
    }


def elliptical_parameters(raw: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    """Bound an elliptical head's ``(B, 8 N)`` raw output into :func:`~anyres.enhancement.filters.elliptical_map`'s
    keyword arguments: ``(B, N)`` tensors ``centre_x``, ``centre_y`` (0, 1), ``semi_a``, ``semi_b`` [1e-3, 1],
    ``angle`` (0, pi) radians and ``scale`` ``(B, N, 3)`` in (0, 2)."""
    b = check_shape(raw, f"elliptical head output for {count} instances", ("B", _PER_INSTANCE * count))[0]
    n = count
    return {
        "centre_x": _tanh01(raw[:, 0:n]),
        "centre_y": _tanh01(raw[:, n : 2 * n]),
        "semi_a": _length(raw[:, 2 * n : 3 * n]),
        "semi_b": _length(raw[:, 3 * n : 4 * n]),
        "angle": math.pi * _tanh01(raw[:, 4 * n : 5 * n]),
        "scale": 2.0 * _tanh01(raw[:, _SCALES_FROM * n :]).reshape(b, n, 3),
    }


def cubic_coefficients(raw: torch.Tensor) -> torch.Tensor:
    """A cubic head's ``(B, 60)`` raw output as ``(B, 3, 20)`` coefficients (unbounded; R 0-19, G 20-39, B 40-59)."""
    b = check_shape(raw, "cubic head output", ("B", _CUBIC_PER_CHANNEL * 3))[0]
    return raw.reshape(b, 3, _CUBIC_PER_CHANNEL)


# ---------------------------------------------------------------------------------------------------------
# Modules


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
        geometry needs every scale at 1). Why this start: docs/methods/deeplpf.md.
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
        for head, count in (
            (self.graduated_head, self.config.graduated),
            (self.elliptical_head, self.config.elliptical),
        ):
            head.fc.weight[_SCALES_FROM * count :].zero_()
            head.fc.bias[_SCALES_FROM * count :].zero_()

    def config_dict(self) -> dict[str, Any]:
        return {"arch": "deeplpf", **asdict(self.config)}

    def _run(self, x: torch.Tensor) -> dict[str, Any]:
        """Every intermediate of the forward pass (tensors and bounded parameters)."""
        check_image(x, "x", channels=3, nonempty=True)
        h, w = x.shape[-2:]
        feat = self.backbone(x)  # (B, C, H, W): [Y1, features]
        y1 = feat[:, :3]
        coeffs = cubic_coefficients(self.cubic_head(feat))  # heads see [features, image] = C channels
        y2 = cubic_filter(y1, coeffs, residual=self.config.cubic_residual)
        context = torch.cat([feat[:, 3:], y2], dim=1)
        grad = graduated_parameters(self.graduated_head(context), self.config.graduated)
        ell = elliptical_parameters(self.elliptical_head(context), self.config.elliptical)
        s_g = combine_instances(graduated_map(h, w, **grad))
        s_e = combine_instances(elliptical_map(h, w, **ell))
        scale = fuse_scale_maps(s_g, s_e, mode=self.config.fusion)
        y3 = apply_scale_map(y2, scale)
        out = long_residual(y3, y1)
        return {
            "cubic": coeffs,
            "graduated": grad,
            "elliptical": ell,
            "s_g": s_g,
            "s_e": s_e,
            "scale": scale,
            "y1": y1,
            "y2": y2,
            "y3": y3,
            "out": out,
        }

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
            parameters.append(
                {
                    "graduated": [
                        {**{k: float(grad[k][b, i]) for k in scalar_g}, "scale": grad["scale"][b, i].tolist()}
                        for i in range(self.config.graduated)
                    ],
                    "elliptical": [
                        {**{k: float(ell[k][b, i]) for k in scalar_e}, "scale": ell["scale"][b, i].tolist()}
                        for i in range(self.config.elliptical)
                    ],
                    "cubic": cubic[b].tolist(),
                }
            )
        return {
            "parameters": parameters,
            "fusion": self.config.fusion,
            "cubic_terms": [list(t) for t in CUBIC_TERMS],
            "maps": {"graduated": run["s_g"], "elliptical": run["s_e"], "fused": run["scale"]},
            "images": {"backbone": run["y1"], "cubic": run["y2"], "scaled": run["y3"], "output": run["out"]},
        }


@NETWORKS.register(
    "deeplpf",
    "DeepLPF enhancement network: U-Net backbone + graduated, elliptical and cubic filters",
    role="enhancer",
    example={"width": 4, "features": 8, "head_size": 16},
)
def build_deeplpf(**kwargs: Any) -> DeepLPF:
    return DeepLPF(DeepLPFConfig.from_dict(kwargs))


build_deeplpf.config_class = DeepLPFConfig  # lets hub.load_network pick the config keys out of config.json
