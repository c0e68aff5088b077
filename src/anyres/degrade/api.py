"""One synthetic LR image and its parameter record from one HR image: :func:`degrade_image`."""

from __future__ import annotations

from typing import Any

import torch

from anyres.io import as_batch

__all__ = ["degrade_image"]


def degrade_image(
    image: Any, pipeline: str = "realesrgan", scale: float = 4.0, *, seed: int = 0, **config: Any
) -> tuple[torch.Tensor, dict]:
    """Make one synthetic LR image from an HR image path or ``(1, 3, H, W)`` / ``(3, H, W)`` tensor in [0, 1].

    ``pipeline`` is ``classical``, ``bsrgan`` or ``realesrgan``; ``config`` overrides its ranges (see
    :mod:`anyres.degrade`). Returns ``(lr, record)``: ``(1, 3, round(H / s), round(W / s))`` in [0, 1] and the
    JSON-serialisable parameter record, which ``get_pipeline(pipeline).apply(hr, [record])`` replays exactly.
    Grayscale input is repeated to RGB.
    """
    from anyres.degrade import get_pipeline
    from anyres.ops.color import to_rgb

    image = as_batch(image)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
        raise ValueError(f"image must be (1, 3, H, W) or (3, H, W), got shape {tuple(image.shape)}")
    hr = to_rgb(image.float()).contiguous()
    pipe = get_pipeline(pipeline, **config)
    lr, records = pipe(hr, torch.Generator().manual_seed(int(seed)), scale=scale)
    return lr, records[0]
