"""Float tensors -> image files, atomically (temp file, fsync, rename): the format follows the extension, and
bit depth, alpha, grayscale, ICC profile and resolution follow the :class:`ImageMeta` of the input."""

from __future__ import annotations

import io
import os
import secrets
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import png
import tifffile
import torch
from PIL import Image

from anyres.errors import ImageWriteError
from anyres.io.reading import _FORMATS, IMAGE_EXTENSIONS, ImageMeta, _one_line
from anyres.ops.color import from_rgb_gray

__all__ = ["write_image", "write_bytes_atomic", "Canvas"]

# ----------------------------------------------------------------------------------------------- writing


def _atomic_write(target: Path, encode: Callable[[io.BufferedWriter], None], overwrite: bool) -> None:
    """Encode into a hidden temp file next to ``target``, fsync it, then move it into place in one step.

    On any failure the temp file is deleted, so a crash never leaves a half-written image under the real name.
    """
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:  # 0o666 rather than mkstemp's 0o600, so the result gets the usual umask-based permissions
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            encode(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:  # link() refuses to clobber a file that appeared since the early check
                os.link(tmp, target)
            except FileExistsError:
                raise ImageWriteError(f"{target} exists; pass --overwrite to replace it") from None
            except OSError:  # file system without hard links
                os.replace(tmp, target)
            tmp.unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename); creates the parent folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(fh: Any) -> None:
        fh.write(data)

    _atomic_write(target, write, overwrite)
    return target


def _png_with_chunks(fh, data: bytes, icc: bytes | None) -> None:
    """Copy a PNG, adding an iCCP chunk after IHDR (pypng cannot write ICC profiles itself)."""
    chunks = list(png.Reader(bytes=data).chunks())
    if icc:
        chunks.insert(1, (b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    png.write_chunks(fh, chunks)


def _encode(fh, fmt: str, a: np.ndarray, icc: bytes | None, dpi: tuple | None, quality: int) -> None:
    """Write (H, W, C) uint8/uint16 (float32: TIFF) pixels, C in 1..4 (gray, gray+alpha, RGB, RGBA), in format ``fmt``."""
    height, width, channels = a.shape
    if fmt == "TIFF":
        extra: dict[str, Any] = {"resolution": tuple(dpi), "resolutionunit": "inch"} if dpi else {}
        buf = io.BytesIO()  # tifffile wants a named file or an in-memory buffer, not a bare descriptor
        tifffile.imwrite(
            buf,
            a[..., 0] if channels == 1 else a,
            photometric="minisblack" if channels <= 2 else "rgb",
            extrasamples=["unassalpha"] if channels in (2, 4) else None,
            iccprofile=icc,
            compression="zlib",
            **extra,
        )
        fh.write(buf.getbuffer())
        return
    if fmt == "PNG" and a.dtype == np.uint16 and channels > 1:
        buf = io.BytesIO()
        writer = png.Writer(
            width,
            height,
            greyscale=channels <= 2,
            alpha=channels in (2, 4),
            bitdepth=16,
            **(
                {
                    "x_pixels_per_unit": round(dpi[0] / 0.0254),
                    "y_pixels_per_unit": round(dpi[1] / 0.0254),
                    "unit_is_meter": True,
                }
                if dpi
                else {}
            ),
        )
        writer.write_packed(buf, (row.astype(">u2").tobytes() for row in a.reshape(height, -1)))
        _png_with_chunks(fh, buf.getvalue(), icc)
        return
    img = Image.fromarray(a[..., 0] if channels == 1 else a)  # L, I;16, LA, RGB or RGBA
    params: dict = {"icc_profile": icc} if icc and fmt != "BMP" else {}
    if dpi:
        params["dpi"] = tuple(dpi)
    if fmt == "JPEG":
        params.update(quality=quality)
    elif fmt == "WEBP":  # quality 100 means lossless; exact keeps the colour of fully transparent pixels
        params.update(quality=quality, lossless=quality >= 100, exact=True)
    img.save(fh, format=fmt, **params)


def _as_bchw(x: torch.Tensor, what: str) -> torch.Tensor:
    """``(1, C, H, W)`` float32 on the CPU (not yet clamped; :class:`Canvas` checks and clamps it by rows)."""
    x = torch.as_tensor(x)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"{what} must be (1, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    return x.detach().to("cpu", torch.float32)


def _format_of(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(
            f"cannot write {path}: unknown image extension {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    return fmt


def _check_target(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise ImageWriteError(f"cannot write {path}: it is a directory")
    if path.exists() and not overwrite:
        raise ImageWriteError(f"{path} exists; pass --overwrite to replace it")


# Rows quantised at a time, so that the float temporaries of a large image stay a few MB.
_QUANTIZE_PIXELS = 1 << 20


class Canvas:
    """An output image file filled a block at a time, then written atomically: :func:`write_image` for results
    that are computed in tiles or row bands and are too large to hold as float32.

    ``Canvas(path, (H, W), meta, channels=C)`` checks the path as :func:`write_image` does and allocates the
    quantised samples only (1 byte per sample for 8-bit outputs, 2 for 16-bit, 4 for float TIFFs);
    :meth:`put` clamps, converts (gray, alpha) and quantises a ``(1, C, h, w)`` float block exactly as
    :func:`write_image` would the whole image; :meth:`write` encodes the file. ``alpha``: whether the image
    has an alpha channel (given to :meth:`put` with each block, or taken from ``meta.alpha``); None means
    ``meta.alpha is not None``. Alpha, gray conversion, bit depth, ICC profile and dpi follow
    :func:`write_image`'s rules.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        size: tuple[int, int],
        meta: ImageMeta | None = None,
        *,
        channels: int = 3,
        alpha: bool | None = None,
        bit_depth: int | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        self.fmt = _format_of(self.path)
        _check_target(self.path, overwrite)
        if channels not in (1, 3):
            raise ValueError(f"image must have 1 or 3 channels, got {channels}")
        self.meta, self.overwrite = meta, overwrite
        self.channels = channels
        self.gray = channels == 3 and meta is not None and meta.gray
        if alpha is None:
            alpha = meta is not None and meta.alpha is not None
        self.alpha = bool(alpha) and self.fmt in ("PNG", "WEBP", "TIFF")  # JPEG and BMP drop it
        depth = bit_depth if bit_depth is not None else (meta.bit_depth if meta is not None else 8)
        if depth not in (8, 16, 32):
            raise ValueError(f"bit_depth must be 8, 16 or 32 (float), got {depth}")
        if self.fmt not in ("PNG", "TIFF"):
            depth = 8
        elif depth == 32 and self.fmt == "PNG":
            depth = 16
        self.depth = depth
        dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[depth]
        height, width = int(size[0]), int(size[1])
        out_channels = (1 if self.gray or channels == 1 else 3) + int(self.alpha)
        self.pixels = np.empty((height, width, out_channels), dtype=dtype)

    def put(self, top: int, left: int, image: torch.Tensor, alpha: torch.Tensor | None = None) -> None:
        """Write a ``(1, C, h, w)`` (or ``(C, h, w)``) float block at ``(top, left)``; values are clamped to
        [0, 1]. ``alpha``: the block's ``(1, 1, h, w)`` alpha (default: that window of ``meta.alpha``)."""
        x = _as_bchw(image, "image")
        if x.shape[1] != self.channels:
            raise ValueError(f"image must have {self.channels} channels, got {x.shape[1]}")
        h, w = x.shape[-2:]
        if top < 0 or left < 0 or top + h > self.pixels.shape[0] or left + w > self.pixels.shape[1]:
            raise ValueError(
                f"a {h}x{w} block at ({top}, {left}) does not fit a {self.pixels.shape[0]}x{self.pixels.shape[1]} image"
            )
        source = "alpha"
        if self.alpha and alpha is None:
            if self.meta is None or self.meta.alpha is None:
                raise ValueError("this image keeps an alpha channel: pass each block's alpha")
            alpha, source = self.meta.alpha, "meta.alpha"
            if tuple(alpha.shape[-2:]) != self.pixels.shape[:2]:
                raise ValueError(
                    f"meta.alpha is {tuple(alpha.shape[-2:])} but the image is {self.pixels.shape[:2]}; "
                    f"resize the alpha and pass it as alpha="
                )
            alpha = alpha[..., top : top + h, left : left + w]
        a = None
        if self.alpha and alpha is not None:
            a = _as_bchw(torch.as_tensor(alpha).reshape(1, 1, *alpha.shape[-2:]), source)
            if a.shape[-2:] != x.shape[-2:]:
                raise ValueError(
                    f"{source} is {tuple(a.shape[-2:])} but the image is {tuple(x.shape[-2:])}; "
                    f"resize the alpha and pass it as alpha="
                )
        step = max(1, _QUANTIZE_PIXELS // max(1, w))
        for r in range(0, h, step):
            rows = x[..., r : r + step, :]
            if torch.isnan(rows).any():
                raise ValueError("image contains NaN values")
            rows = rows.clamp(0.0, 1.0)
            if self.gray:
                rows = from_rgb_gray(rows)
            if a is not None:
                arows = a[..., r : r + step, :]
                if torch.isnan(arows).any():
                    raise ValueError(f"{source} contains NaN values")
                rows = torch.cat([rows, arows.clamp(0.0, 1.0)], dim=1)
            target = self.pixels[top + r : top + r + rows.shape[-2], left : left + w]
            if self.depth == 32:
                target[...] = rows[0].permute(1, 2, 0).numpy()  # float32 in [0, 1]
            else:
                top_value = 255 if self.depth == 8 else 65535
                target[...] = rows[0].mul(top_value).round_().to(torch.int32).permute(1, 2, 0).numpy()

    def write(self, *, quality: int = 95) -> Path:
        """Encode the samples into the file (atomically) and return its path. Every block must have been put."""
        path, meta, channels = self.path, self.meta, self.pixels.shape[2]
        _check_target(path, self.overwrite)
        icc = meta.icc_profile if meta is not None else None
        if icc and icc[16:20] != (b"GRAY" if channels <= 2 else b"RGB "):
            icc = None  # a profile for the other colour space (header bytes 16-20) would be invalid here
        dpi = meta.dpi if meta is not None and meta.dpi else None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, lambda fh: _encode(fh, self.fmt, self.pixels, icc, dpi, quality), self.overwrite)
        except ImageWriteError:
            raise
        except (OSError, ValueError, png.Error) as e:  # disk full, permissions, encoder limits...
            raise ImageWriteError(_one_line(f"cannot write {path}: {e}")) from e
        return path


def write_image(
    path: str | os.PathLike,
    image: torch.Tensor,
    meta: ImageMeta | None = None,
    *,
    alpha: torch.Tensor | None = None,
    quality: int = 95,
    bit_depth: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``image`` ((1, C, H, W) or (C, H, W), C in {1, 3}, float in [0, 1], clamped) atomically to ``path``.

    The format follows the extension (see :data:`IMAGE_EXTENSIONS`). ``meta`` (from :func:`read_image`) supplies
    bit depth, alpha, ICC profile, dpi and grayness: a gray source written with C=3 is converted back to gray
    (BT.601 luma). ``alpha`` ((1, 1, H, W) in [0, 1]) overrides ``meta.alpha``; alpha is kept in PNG, WebP and
    TIFF and dropped in JPEG and BMP. 16-bit output exists for PNG and TIFF only, float32 (``bit_depth=32``, a float
    TIFF source) for TIFF only (PNG gets 16 bit); other formats get 8 bit.
    ``quality`` is the JPEG/WebP quality; for WebP, 100 means lossless. Returns the written path.
    Results made a block at a time: :class:`Canvas`.
    """
    path = Path(path)
    _format_of(path)
    _check_target(path, overwrite)
    x = _as_bchw(image, "image")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels, got {x.shape[1]}")
    has_alpha = alpha is not None or (meta is not None and meta.alpha is not None)
    canvas = Canvas(
        path,
        (x.shape[-2], x.shape[-1]),
        meta,
        channels=x.shape[1],
        alpha=has_alpha,
        bit_depth=bit_depth,
        overwrite=overwrite,
    )
    canvas.put(0, 0, x, alpha=alpha)  # None: meta.alpha
    return canvas.write(quality=quality)
