"""Everything that draws: fonts and text layout, 8-bit tiles, kernel pictures and gain-map pictures.

Used by the compare sheets (:mod:`anyres.evaluation.compare`), the degradation gallery
(:mod:`anyres.degrade.gallery`), ``estimate-kernel --png`` and ``enhance --explain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from PIL import ImageDraw, ImageFont

__all__ = [
    "font",
    "line_height",
    "text_width",
    "words_width",
    "put_words",
    "fit_words",
    "wrap_words",
    "to_uint8",
    "kernel_picture",
    "gain_picture",
]


@lru_cache(maxsize=8)
def font(size: int) -> Any:
    """Pillow's built-in font at ``size`` pixels (FreeType), or its fixed bitmap font without FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def line_height(face: Any) -> int:
    """Ascent + descent of ``face``: the step from one text line to the next."""
    if hasattr(face, "getmetrics"):
        ascent, descent = face.getmetrics()
        return int(ascent + descent)
    return int(face.getbbox("Agjy|")[3]) + 1


def text_width(face: Any, text: str) -> int:
    """Width in pixels of ``text`` drawn in ``face`` (ink that starts left of the origin included)."""
    left, _top, right, _bottom = face.getbbox(text)
    return int(np.ceil(right - min(left, 0)))


def _space(face: Any) -> float:
    # The built-in font's own space is too narrow to separate the fields of a summary line clearly.
    size = getattr(face, "size", None)
    own = face.getlength(" ") if hasattr(face, "getlength") else 3.0
    return max(own, round(0.4 * size)) if size else own


def words_width(draw: ImageDraw.ImageDraw, text: str, face: Any) -> float:
    """Width of ``text`` as :func:`put_words` draws it (words separated by a widened space)."""
    words = text.split(" ")
    return sum(draw.textlength(w, font=face) for w in words) + _space(face) * (len(words) - 1)


def put_words(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, face: Any, fill: Any) -> None:
    """Draw ``text`` word by word from ``xy``, with a widened space between words."""
    x: float = xy[0]
    y = xy[1]
    for word in text.split(" "):
        if word:
            draw.text((round(x), y), word, fill=fill, font=face)
        x += draw.textlength(word, font=face) + _space(face)


def fit_words(draw: ImageDraw.ImageDraw, text: str, face: Any, width: int) -> str:
    """``text``, cut and ended with ".." if needed, so that it fits in ``width`` pixels."""
    if words_width(draw, text, face) <= width:
        return text
    while text and words_width(draw, text + "..", face) > width:
        text = text[:-1]
    return text + ".."


def wrap_words(draw: ImageDraw.ImageDraw, text: str, face: Any, width: int) -> list[str]:
    """``text`` broken into lines of at most ``width`` pixels (a single long word keeps its own line)."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and words_width(draw, candidate, face) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + ([line] if line else [])


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` in [0, 1], C = 1 or 3 -> ``(H, W, 3)`` uint8 as an 8-bit save rounds
    it (``round(255 * clamp(x))``); gray is repeated to RGB."""
    x = x.detach().to("cpu", torch.float32)
    if x.dim() == 4:
        x = x[0]
    a = x.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else np.ascontiguousarray(a)


def from_pil(image: Any) -> torch.Tensor:
    """A PIL RGB image -> ``(1, 3, H, W)`` float32 in [0, 1] (each 8-bit sample / 255), ready for ``write_image``."""
    a = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def kernel_picture(kernel: torch.Tensor, block: int = 16) -> torch.Tensor:
    """``(k, k)`` kernel -> ``(1, 1, k * block, k * block)`` gray image in [0, 1]: taps divided by the
    largest one (negative taps show as black), each tap a ``block`` x ``block`` square."""
    peak = kernel.max()
    img = (kernel / peak if peak > 0 else kernel).clamp(0.0, 1.0)
    return img.repeat_interleave(block, 0).repeat_interleave(block, 1)[None, None].float()


def gain_picture(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-channel gain maps ``(1, 3, H, W)`` in [0, 2] side by side -> ``(1, 3, H, n W)`` in [0, 1]: value
    ``gain / 2``, so black is gain 0, mid-grey gain 1 and white gain 2."""
    return (torch.cat(list(maps), dim=-1) / 2.0).clamp(0.0, 1.0)
