"""Image files -> float tensors: 8-bit images through Pillow, 16-bit colour PNGs through pypng, 16-bit and
float TIFFs through tifffile (Pillow reduces both to 8 bit); EXIF orientation, alpha, ICC and bit depth kept
in :class:`ImageMeta`; a pixel limit guards against decompression bombs."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import png
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from anyres.errors import ConfigError, ImageReadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "INPUT_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "ImageMeta",
    "Pixels",
    "read_image",
    "read_pixels",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")  # read and written
# Read too (single-frame images), but written as PNG unless the user picks another --ext.
READ_ONLY_EXTENSIONS: tuple[str, ...] = (".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".tga")
INPUT_EXTENSIONS: tuple[str, ...] = IMAGE_EXTENSIONS + READ_ONLY_EXTENSIONS
_FLOAT_SLACK = 1e-3  # float samples this far outside [0, 1] are rounding, and clipped; farther ones are refused
DEFAULT_MAX_PIXELS = 178_956_970  # twice Pillow's DecompressionBombWarning threshold
MAX_PIXELS_ENV = "ANYRES_MAX_PIXELS"
_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both byte orders


@dataclass
class ImageMeta:
    """What :func:`read_image` learnt about a file, so :func:`write_image` can write a faithful result.

    ``alpha`` is (1, 1, H, W) float32 in [0, 1] at the size of the source image (after EXIF rotation).
    ``mode`` is Pillow-like; 16-bit and float sources that Pillow cannot represent use "RGB;16", "LA;16",
    "RGB;F", etc. ``bit_depth`` is 8, 16, or 32 for float TIFFs (written back as float TIFFs, 16-bit PNGs).
    """

    path: str | None = None
    format: str | None = None
    mode: str = "RGB"
    bit_depth: int = 8
    gray: bool = False
    alpha: torch.Tensor | None = None
    icc_profile: bytes | None = None
    dpi: tuple | None = None


# ----------------------------------------------------------------------------------------------- reading


class _Unsupported(Exception):
    """A well-formed file that anyres deliberately does not handle; the message is the reason shown."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _read_error(path: object, reason: object) -> ImageReadError:
    return ImageReadError(_one_line(f"cannot read image {path}: {reason}"))


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP" if n >= 100_000 else f"{n} pixels"


def _resolve_max_pixels(max_pixels: int | None) -> int | None:
    """The pixel limit to enforce; None means unlimited (max_pixels <= 0 or the env var set to 0)."""
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw)
        except ValueError:
            raise ConfigError(f"{MAX_PIXELS_ENV}={raw!r} is not an integer number of pixels") from None
    return max_pixels if max_pixels > 0 else None


def _check_size(path: object, width: int, height: int, limit: int | None) -> None:
    if width <= 0 or height <= 0:
        raise _read_error(path, f"the image has zero size ({width}x{height})")
    if limit is not None and width * height > limit:
        raise _read_error(
            path,
            f"it has {width}x{height} = {_megapixels(width * height)}, above the limit of "
            f"{_megapixels(limit)}; pass --max-pixels N or set {MAX_PIXELS_ENV}",
        )


_pil_lock = threading.Lock()
_pil_users = 0
_pil_saved_limit: int | None = None


@contextmanager
def _pillow_bomb_check_disabled():
    """Turn off Pillow's own decompression-bomb check while we decode: ours runs first and is configurable.

    Pillow's limit is a module global, so concurrent readers share one reference-counted override and the
    original value comes back when the last one leaves.
    """
    global _pil_users, _pil_saved_limit
    with _pil_lock:
        if _pil_users == 0:
            _pil_saved_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        _pil_users += 1
    try:
        yield
    finally:
        with _pil_lock:
            _pil_users -= 1
            if _pil_users == 0:
                Image.MAX_IMAGE_PIXELS = _pil_saved_limit


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, C) array, exactly as ``PIL.ImageOps.exif_transpose``."""
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: x[::-1, ::-1].swapaxes(0, 1),
        8: lambda x: np.rot90(x, 1),
    }
    return ops[orientation](a) if orientation in ops else a


def _pil_orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        return 1


def _is_png16_colour(head: bytes) -> bool:
    """True for a 16-bit PNG with colour or alpha (IHDR bit depth 16, colour type 2, 4 or 6)."""
    return len(head) >= 26 and head.startswith(_PNG_SIGNATURE) and head[24] == 16 and head[25] in (2, 4, 6)


def _decode_pil(img: Image.Image) -> tuple[np.ndarray, str, int]:
    """Pixels of an opened Pillow image as (H, W, C) uint8/uint16, with the channel layout and bit depth."""
    mode = img.mode
    if mode in ("1", "L"):
        layout = "L"
    elif mode in ("LA", "La"):
        layout = "LA"
    elif mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        layout = "RGBA"
    elif mode in ("RGB", "RGBX", "P", "CMYK", "YCbCr", "HSV"):
        layout = "RGB"
    elif mode.startswith("I;16") or (mode == "I" and img.format == "PNG"):  # older Pillows say "I" for PNG
        return np.asarray(img).astype(np.uint16)[..., None], "L", 16
    else:
        kind = {"I": "32-bit integer", "F": "32-bit float"}.get(mode, "this")
        raise _Unsupported(
            f"unsupported pixel format: {kind} pixels (Pillow mode {mode!r}); "
            f"convert it to 8- or 16-bit grayscale or RGB first"
        )
    if mode != layout:  # convert() to the mode an image already has only copies it
        img = img.convert(layout)
    a = np.asarray(img)
    return (a[..., None] if a.ndim == 2 else a), layout, 8


def _decode_png16(path: Path) -> tuple[np.ndarray, str]:
    """A 16-bit PNG decoded exactly with pypng, as (H, W, C) uint16."""
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    a = np.stack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, info["planes"])
    layout = ("L" if info["greyscale"] else "RGB") + ("A" if info["alpha"] else "")
    return a, layout


def _tiff_tag(page, code: int):
    tag = page.tags.get(code)
    return None if tag is None else tag.value


def _read_tiff_hi(path: Path, limit: int | None) -> tuple[np.ndarray, ImageMeta, int] | None:
    """16-bit or float TIFFs through tifffile; None for anything Pillow should decode (8-bit, 1-bit, ...)."""
    try:
        tif = tifffile.TiffFile(path)
    except Exception:
        return None  # not a TIFF tifffile understands: let Pillow identify it and report errors
    with tif:
        page = tif.pages.first
        if len(tif.pages) > 1:
            raise _Unsupported(f"it has {len(tif.pages)} pages; anyres reads single images: split the pages first")
        if page.dtype is None or page.dtype.kind not in "uf" or page.dtype == np.uint8:
            return None
        if page.dtype.kind == "u" and page.dtype != np.uint16:
            raise _Unsupported(f"unsupported pixel format: {page.dtype.itemsize * 8}-bit integer TIFF samples")
        _check_size(path, int(page.imagewidth), int(page.imagelength), limit)
        samples, photometric = int(page.samplesperpixel), int(page.photometric)
        if (samples, photometric) not in ((1, 1), (2, 1), (3, 2), (4, 2)):
            raise _Unsupported(f"unsupported TIFF layout: {samples} samples with photometric {photometric}")
        a = page.asarray()
        if a.ndim == 2:
            a = a[..., None]
        elif page.axes.startswith("S"):  # planar configuration: samples first
            a = np.moveaxis(a, 0, -1)
        layout = ("L", "LA", "RGB", "RGBA")[samples - 1]
        if a.dtype.kind == "f":
            if not np.isfinite(a).all():
                raise _Unsupported("the float TIFF contains NaN or infinite values")
            lo, hi = float(a.min()), float(a.max())
            if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
                raise _Unsupported(
                    f"its float samples span [{lo:.4g}, {hi:.4g}]; anyres reads float images as values in [0, 1]: "
                    "rescale it (e.g. divide 0-255 data by 255) first"
                )
            a = np.clip(a, 0.0, 1.0).astype(np.float32)
        suffix = ";16" if a.dtype == np.uint16 else ";F"
        mode = {"L;16": "I;16", "L;F": "F"}.get(layout + suffix, layout + suffix)
        icc = _tiff_tag(page, 34675)
        depth = 16 if a.dtype == np.uint16 else 32
        meta = ImageMeta(
            str(path), "TIFF", mode, depth, layout.startswith("L"), icc_profile=bytes(icc) if icc is not None else None
        )
        return a, meta, int(_tiff_tag(page, 274) or 1)


@dataclass
class Pixels:
    """An image file's samples as decoded, before any float conversion: what :func:`read_pixels` returns.

    ``array``: ``(H, W, C)`` uint8, uint16 or float32 (float TIFFs, already in [0, 1]), C in 1..4 with the alpha
    channel last (gray, gray + alpha, RGB, RGBA); EXIF orientation applied (possibly a strided view). ``meta``:
    as from :func:`read_image`, except that ``meta.alpha`` is None (the alpha stays in ``array``). An 8-bit RGB
    image costs 3 bytes a pixel here against 12 as float32, so large photos can be converted a window at a
    time: :meth:`window` gives exactly the values :func:`read_image` would.
    """

    array: np.ndarray
    meta: ImageMeta

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.array.shape[0]), int(self.array.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels: 1 (gray) or 3 (RGB); the alpha is not counted."""
        return 1 if self.array.shape[2] <= 2 else 3

    @property
    def has_alpha(self) -> bool:
        return self.array.shape[2] in (2, 4)

    def _float(self, a: np.ndarray) -> torch.Tensor:
        scale = {1: 255.0, 2: 65535.0, 4: 1.0}[a.dtype.itemsize]
        return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32)).div_(scale)[None]  # astype copies

    def window(self, top: int = 0, bottom: int | None = None, left: int = 0, right: int | None = None) -> torch.Tensor:
        """Rows ``top:bottom`` and columns ``left:right`` of the colour channels as ``(1, C, h, w)`` float32 in
        [0, 1], equal to the same window of :func:`read_image`'s tensor."""
        return self._float(self.array[top:bottom, left:right, : self.channels])

    def alpha(self, top: int = 0, bottom: int | None = None, left: int = 0, right: int | None = None) -> torch.Tensor:
        """The same window of the alpha channel, ``(1, 1, h, w)`` float32 (what ``meta.alpha`` would hold)."""
        if not self.has_alpha:
            raise ValueError("the image has no alpha channel")
        return self._float(self.array[top:bottom, left:right, -1:])

    def to_tensor(self) -> tuple[torch.Tensor, ImageMeta]:
        """What :func:`read_image` returns: ``(1, C, H, W)`` float32 and the meta with its alpha tensor."""
        x = self._float(self.array)
        meta = replace(self.meta)
        if x.shape[1] in (2, 4):
            meta.alpha = x[:, -1:].clone()
            x = x[:, :-1].contiguous()
        return x, meta


def read_pixels(path: str | os.PathLike, *, max_pixels: int | None = None) -> Pixels:
    """Read an image file's samples without converting them to float: see :class:`Pixels`.

    Checks, orientation, errors and ``max_pixels`` as :func:`read_image` (which is this plus the conversion).
    """
    path = Path(path)
    if not path.exists():
        raise _read_error(path, "no such file")
    if path.is_dir():
        raise _read_error(path, "it is a directory, not a file")
    limit = _resolve_max_pixels(max_pixels)
    try:
        if path.stat().st_size == 0:
            raise _read_error(path, "the file is empty (0 bytes)")
        with open(path, "rb") as f:
            head = f.read(26)
        tiff = _read_tiff_hi(path, limit) if head[:4] in _TIFF_SIGNATURES else None
        if tiff is not None:
            a, meta, orientation = tiff
        else:
            with _pillow_bomb_check_disabled(), Image.open(path) as img:
                _check_size(path, img.width, img.height, limit)
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    raise _Unsupported(
                        f"it has {frames} frames (an animation or a multi-page file); anyres reads single images: "
                        "extract the frames first"
                    )
                if _is_png16_colour(head):
                    a, layout = _decode_png16(path)
                    bit_depth, mode = 16, layout + ";16"
                else:
                    img.load()  # force the full decode here so truncated files fail now, not later
                    a, layout, bit_depth = _decode_pil(img)
                    mode = "I;16" if img.mode == "I" else img.mode
                meta = ImageMeta(
                    str(path),
                    img.format,
                    mode,
                    bit_depth,
                    layout.startswith("L"),
                    icc_profile=img.info.get("icc_profile") or None,
                    dpi=img.info.get("dpi"),
                )
                orientation = _pil_orientation(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise _read_error(path, "not an image file, or a format that is not supported") from None
    except _Unsupported as e:
        raise _read_error(path, e) from None
    except Exception as e:  # decoders raise anything (OSError, SyntaxError, zlib.error, png.FormatError...)
        raise _read_error(path, f"corrupt or truncated file ({type(e).__name__}: {e})") from None

    a = _orient(a, orientation)
    if orientation in (5, 6, 7, 8) and meta.dpi:
        meta.dpi = tuple(reversed(meta.dpi))
    return Pixels(a, meta)


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> tuple[torch.Tensor, ImageMeta]:
    """Read an image file as a float32 tensor (1, C, H, W) in [0, 1] plus its :class:`ImageMeta`.

    C is 1 for grayscale sources (L, 1, LA, I;16, gray TIFFs) and 3 otherwise; palettes and CMYK become RGB.
    Alpha is split off into ``meta.alpha``. EXIF orientation is applied (to the alpha too). 8-bit values are
    v / 255 and 16-bit values v / 65535, exactly.

    ``max_pixels`` bounds width * height, checked from the header before decoding; None uses the
    ``ANYRES_MAX_PIXELS`` environment variable or :data:`DEFAULT_MAX_PIXELS`, and a value <= 0 disables it.
    Every unreadable input raises :class:`ImageReadError` with a one-line message naming the file.
    For large photos, :func:`read_pixels` keeps the decoded samples and converts windows of them.
    """
    pixels = read_pixels(path, max_pixels=max_pixels)
    x, meta = pixels.to_tensor()
    del pixels
    return x, meta
