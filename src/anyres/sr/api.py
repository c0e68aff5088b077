"""Upscale an image path or tensor to any size: :func:`upscale` and the output-size rule :func:`target_size`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from anyres.errors import AnyresError
from anyres.io import as_batch

__all__ = ["upscale", "target_size"]


def target_size(
    in_h: int,
    in_w: int,
    *,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[int, int]:
    """Output ``(H, W)`` from exactly one of: a scale (one or ``(sh, sw)``), ``size=(H, W)``, a width or a height.

    A scale gives ``round(in * scale)``; a lone width or height keeps the aspect ratio.
    """
    given = [v is not None for v in (scale, size, width, height)]
    if sum(given) != 1:
        raise AnyresError("give exactly one of scale, size (WxH), width or height")
    if scale is not None:
        sh, sw = (scale, scale) if isinstance(scale, (int, float)) else tuple(scale)
        if not (sh > 0 and sw > 0) or not (math.isfinite(sh) and math.isfinite(sw)):
            raise AnyresError(f"scale must be a positive number, got {scale}")
        out = (max(1, round(in_h * sh)), max(1, round(in_w * sw)))
    elif size is not None:
        out = (int(size[0]), int(size[1]))
    elif width is not None:
        out = (max(1, round(in_h * width / in_w)), int(width))
    else:
        assert height is not None  # exactly one of the four was given
        out = (int(height), max(1, round(in_w * height / in_h)))
    if out[0] < 1 or out[1] < 1:
        raise AnyresError(f"output size must be positive, got {out[1]}x{out[0]}")
    return out


def upscale(
    image: Any,
    scale: float | Sequence[float] | None = None,
    *,
    size: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
    model: Any = "liif",
    device: str | None = None,
    **options: Any,
) -> torch.Tensor:
    """Upscale an image file path or a ``(1, C, h, w)`` / ``(C, h, w)`` tensor in [0, 1].

    Exactly one of ``scale``, ``size=(H, W)``, ``width``, ``height``. Returns ``(1, C, H, W)`` in [0, 1]
    (clamped). Alpha and file metadata are handled by the CLI; use :mod:`anyres.io` for files.
    """
    from anyres.sr.pretrained import load_upscaler

    image = as_batch(image)
    upscaler = load_upscaler(model, device=device, **options)
    out_size = target_size(image.shape[-2], image.shape[-1], scale=scale, size=size, width=width, height=height)
    with torch.inference_mode():
        return upscaler.upscale(image.float(), out_size).clamp(0.0, 1.0)
