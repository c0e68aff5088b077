"""Top-level conveniences of the public API: :func:`upscale` and output-size rules."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch

from anyres.errors import AnyresError

__all__ = ["upscale", "degrade_image", "target_size"]


def target_size(in_h: int, in_w: int, *, scale: float | Sequence[float] | None = None,
                size: Sequence[int] | None = None, width: int | None = None, height: int | None = None) -> tuple[int, int]:
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
        out = (int(height), max(1, round(in_w * height / in_h)))
    if out[0] < 1 or out[1] < 1:
        raise AnyresError(f"output size must be positive, got {out[1]}x{out[0]}")
    return out


def _as_batch(image: Any) -> torch.Tensor:
    """A path (read with :func:`anyres.io.read_image`) or a ``(C, H, W)`` / ``(B, C, H, W)`` tensor -> 4-D tensor."""
    from anyres.io import read_image

    if isinstance(image, (str, Path)):
        image, _ = read_image(image)
    if not torch.is_tensor(image):
        raise TypeError(f"image must be a path or a tensor, got {type(image).__name__}")
    return image[None] if image.dim() == 3 else image


def upscale(image: Any, scale: float | Sequence[float] | None = None, *, size: Sequence[int] | None = None,
            width: int | None = None, height: int | None = None, model: Any = "liif",
            device: str | None = None, **options: Any) -> torch.Tensor:
    """Upscale an image file path or a ``(1, C, h, w)`` / ``(C, h, w)`` tensor in [0, 1].

    Exactly one of ``scale``, ``size=(H, W)``, ``width``, ``height``. Returns ``(1, C, H, W)`` in [0, 1]
    (clamped). Alpha and file metadata are handled by the CLI; use :mod:`anyres.io` for files.
    """
    from anyres.hub import load_upscaler

    image = _as_batch(image)
    upscaler = load_upscaler(model, device=device, **options)
    out_size = target_size(image.shape[-2], image.shape[-1], scale=scale, size=size, width=width, height=height)
    with torch.inference_mode():
        return upscaler.upscale(image.float(), out_size).clamp(0.0, 1.0)


def degrade_image(image: Any, pipeline: str = "realesrgan", scale: float = 4.0, *, seed: int = 0,
                  **config: Any) -> tuple[torch.Tensor, dict]:
    """Make one synthetic LR image from an HR image path or ``(1, 3, H, W)`` / ``(3, H, W)`` tensor in [0, 1].

    ``pipeline`` is ``classical``, ``bsrgan`` or ``realesrgan``; ``config`` overrides its ranges (see
    :mod:`anyres.degrade`). Returns ``(lr, record)``: ``(1, 3, round(H / s), round(W / s))`` in [0, 1] and the
    JSON-serialisable parameter record, which ``get_pipeline(pipeline).apply(hr, [record])`` replays exactly.
    Grayscale input is repeated to RGB.
    """
    from anyres.degrade import get_pipeline
    from anyres.io import to_rgb

    image = _as_batch(image)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
        raise ValueError(f"image must be (1, 3, H, W) or (3, H, W), got shape {tuple(image.shape)}")
    hr = to_rgb(image.float()).contiguous()
    pipe = get_pipeline(pipeline, **config)
    lr, records = pipe(hr, torch.Generator().manual_seed(int(seed)), scale=scale)
    return lr, records[0]
