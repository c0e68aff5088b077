"""Side-by-side visual comparison of upscalers on one crop of the output.

:func:`make_comparison` upscales one image (the LR, or with ``as_hr=True`` the ground truth, degraded by the
benchmark protocol) with the nearest and bicubic baselines and the given models, and composes the same
output-pixel crop of each into one labelled RGB sheet. Layout and the two modes: docs/evaluation.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from anyres import pictures
from anyres.errors import AnyresError

__all__ = ["make_comparison", "parse_crop", "check_scale", "GAP", "BACKGROUND", "MAX_DEFAULT_CROP"]

GAP = 4  # pixels between panels, horizontally and vertically (no outer margin)
PAD = 3  # padding around the text inside a label strip
FONT_SIZE = 12
MAX_DEFAULT_CROP = 256  # the default crop is centred and at most this many output pixels per side
MAX_PER_ROW = 4  # more panels than this wrap onto two rows
BACKGROUND = (24, 24, 24)  # gaps and label strips
TEXT = (255, 255, 255)
BASELINES = ("nearest", "bicubic")


def _as_image(image: Any) -> torch.Tensor:
    """A path or a tensor -> float32 ``(1, C, H, W)`` in [0, 1] with C in {1, 3} (alpha dropped)."""
    if isinstance(image, (str, os.PathLike)):
        from anyres.io import read_image

        x, _meta = read_image(image)
        return x
    if not torch.is_tensor(image):
        raise TypeError(f"image must be a path or a tensor, got {type(image).__name__}")
    x = image.detach()
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(f"image tensor must be (1, C, H, W) or (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    return x.float().clamp(0.0, 1.0).cpu()


def _check_crop(crop: Sequence[int] | None, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """Validate ``(x, y, w, h)`` against the output size, or return the default centred crop."""
    if crop is None:
        w, h = min(MAX_DEFAULT_CROP, out_w), min(MAX_DEFAULT_CROP, out_h)
        return (out_w - w) // 2, (out_h - h) // 2, w, h
    try:
        x, y, w, h = (int(v) for v in crop)
        if any(int(v) != v for v in crop):
            raise ValueError
    except (TypeError, ValueError):
        raise AnyresError(f"invalid crop {crop!r}: expected four integers x, y, w, h") from None
    if w < 1 or h < 1:
        raise AnyresError(f"invalid crop {x},{y},{w},{h}: width and height must be at least 1")
    if x < 0 or y < 0 or x + w > out_w or y + h > out_h:
        raise AnyresError(f"crop {x},{y},{w},{h} (x,y,w,h) lies outside the {out_w}x{out_h} output image")
    return x, y, w, h


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """``"X,Y,W,H"`` (output pixels) -> ``(x, y, w, h)``; AnyresError if malformed."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise AnyresError(f"invalid --crop {text!r}: expected X,Y,W,H in output pixels, e.g. 100,50,128,128") from None


def check_scale(scale: Any) -> float:
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise AnyresError(f"invalid scale {scale!r}: expected a positive number") from None
    if not (math.isfinite(s) and s > 0):
        raise AnyresError(f"invalid scale {scale!r}: expected a positive number")
    return s


def _benchmark_psnr(sr: torch.Tensor, hr: torch.Tensor, scale: float) -> float:
    """Benchmark-protocol PSNR (dB) of the whole image: what ``measure(sr, hr, scale).psnr`` returns."""
    from anyres.metrics import prepare, psnr

    return float(psnr(prepare(sr, scale, "benchmark"), prepare(hr, scale, "benchmark"))[0])


def _compose(panels: list[tuple[np.ndarray, list[str]]]) -> Image.Image:
    """Lay out equally sized ``(h, w, 3)`` crops with label lines under each, in one or two rows."""
    font = pictures.font(FONT_SIZE)
    crop_h, crop_w = panels[0][0].shape[:2]
    n_lines = max(len(lines) for _, lines in panels)
    line_h = pictures.line_height(font)
    label_h = n_lines * line_h + 2 * PAD
    text_w = max(pictures.text_width(font, line) for _, lines in panels for line in lines)
    col_w = max(crop_w, text_w + 2 * PAD)  # tiny crops get wider columns so the labels stay readable
    cell_h = crop_h + label_h
    n = len(panels)
    rows = 1 if n <= MAX_PER_ROW else 2
    cols = math.ceil(n / rows)
    canvas = Image.new("RGB", (cols * col_w + (cols - 1) * GAP, rows * cell_h + (rows - 1) * GAP), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, (pixels, lines) in enumerate(panels):
        left = (i % cols) * (col_w + GAP)
        top = (i // cols) * (cell_h + GAP)
        canvas.paste(Image.fromarray(pixels, "RGB"), (left + (col_w - crop_w) // 2, top))
        for k, line in enumerate(lines):
            draw.text((left + PAD, top + crop_h + PAD + k * line_h), line, fill=TEXT, font=font)
    return canvas


def make_comparison(
    image: str | os.PathLike | torch.Tensor,
    scale: float,
    models: Sequence[Any] = ("liif",),
    *,
    as_hr: bool = False,
    crop: Sequence[int] | None = None,
    device: str | torch.device | None = None,
    degradation: str | None = None,
    seed: int = 0,
) -> tuple[Image.Image, list[dict[str, Any]]]:
    """Compose the same output crop of several upscalers side by side.

    Args:
        image: an image path, or a float tensor ``(1, C, H, W)`` / ``(C, H, W)`` in [0, 1], C = 1 or 3.
            Without ``as_hr`` it is the LR input; with ``as_hr`` it is the ground truth.
        scale: upscaling factor > 0 (>= 1 with ``as_hr``).
        models: registered names (``anyres models``), model folders or Upscaler instances; shown after the
            "nearest" and "bicubic" panels (a name repeating an earlier panel is shown once).
        as_hr: treat ``image`` as HR: LR = ``make_lr(image, scale)``, PSNR in every label, an "HR" panel last.
        crop: ``(x, y, w, h)`` in output pixels; default: centred, at most 256 x 256. A crop that does not lie
            inside the output raises :class:`AnyresError`.
        device: where models run (default cpu).
        degradation: with ``as_hr``, make the LR with this pipeline (``realesrgan``, ``bsrgan``, ``classical``)
            instead of bicubic: the LR ``anyres evaluate --degradation NAME --seed SEED`` gives this image at
            this scale (keyed by the file name; a tensor is keyed ``image``).

    Returns:
        ``(PIL RGB image, records)``; one record ``{"label": str, "psnr": float | None}`` per panel, in panel
        order (``psnr`` is the benchmark PSNR in dB of the whole image, None without ``as_hr`` and for "HR").
        Each panel is the crop at 1:1 above a label strip; columns are ``max(w, label width)`` wide and
        separated by :data:`GAP` pixels; more than four panels wrap onto two rows.
    """
    from anyres.evaluation import make_lr
    from anyres.ops.color import quantize
    from anyres.registry import UPSCALERS
    from anyres.sr.pretrained import load_upscaler

    s = check_scale(scale)
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    x = _as_image(image)
    dev = torch.device(device) if device is not None else torch.device("cpu")

    if degradation is not None and not as_hr:
        raise AnyresError("--degradation degrades a ground truth: give --as-hr too")
    if as_hr:
        if s < 1:
            raise AnyresError(f"--as-hr needs a scale >= 1 (the LR is made by downscaling), got {s:g}")
        try:
            if degradation is None:
                hr, lr = make_lr(x, s)
            else:
                from anyres.degrade import get_pipeline
                from anyres.evaluation.benchmark import check_seed, make_degraded_lr, scale_label

                check_seed(seed)
                name = os.path.basename(image) if isinstance(image, (str, os.PathLike)) else "image"
                hr, lr, _record = make_degraded_lr(x, s, get_pipeline(degradation), seed, f"{name}@x{scale_label(s)}")
        except ValueError as err:
            raise AnyresError(str(err)) from None
        out_size = (int(hr.shape[-2]), int(hr.shape[-1]))
        shave = math.ceil(s - 1e-9)
        if min(out_size) <= 2 * shave:
            raise AnyresError(
                f"image of size {out_size[1]}x{out_size[0]} is too small to measure PSNR at scale "
                f"{s:g} (the border of {shave} pixels is shaved)"
            )
    else:
        hr, lr = None, x
        out_size = (max(1, round(x.shape[-2] * s)), max(1, round(x.shape[-1] * s)))
    cx, cy, cw, ch = _check_crop(crop, *out_size)

    entries: list[Any] = list(BASELINES)
    for m in models:
        if isinstance(m, (str, os.PathLike)) and str(m) in {str(e) for e in entries if isinstance(e, str)}:
            continue
        entries.append(str(m) if isinstance(m, os.PathLike) else m)

    known = set(UPSCALERS)
    panels: list[tuple[np.ndarray, list[str]]] = []
    records: list[dict[str, Any]] = []
    lr_dev = lr.to(dev)
    for entry in entries:
        upscaler = load_upscaler(entry, device=str(dev) if device is not None else None)
        if isinstance(entry, str) and entry in known:
            label = entry
        else:
            label = str(getattr(upscaler, "name", None) or entry)
        with torch.inference_mode():
            sr = upscaler.upscale(lr_dev, out_size).float().cpu()
        sr = quantize(sr)  # what a saved result holds; PSNR quantizes the same way
        value = _benchmark_psnr(sr, hr, s) if hr is not None else None
        lines = [label] + ([f"{value:.2f} dB"] if value is not None else [])
        panels.append((pictures.to_uint8(sr[..., cy : cy + ch, cx : cx + cw]), lines))
        records.append({"label": label, "psnr": value})
    if hr is not None:
        panels.append((pictures.to_uint8(hr[..., cy : cy + ch, cx : cx + cw]), ["HR"]))
        records.append({"label": "HR", "psnr": None})
    return _compose(panels), records
