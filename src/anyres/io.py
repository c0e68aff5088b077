"""Reading and writing image files.

This is the only module that knows about uint8, HWC layout, alpha channels, palettes, EXIF orientation and
16-bit files. Everything else in anyres sees float32 tensors of shape (1, C, H, W) with values in [0, 1],
where C is 1 (grayscale) or 3 (RGB); alpha, ICC profile and bit depth travel alongside in :class:`ImageMeta`.

Decoders: Pillow for 8-bit images of any format it knows; pypng for 16-bit colour PNGs (Pillow silently
reduces them to 8 bit); tifffile for 16-bit and floating-point TIFFs (same reason).
"""

from __future__ import annotations

import io
import os
import secrets
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import png
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from anyres.ops.color import from_rgb_gray
from anyres.errors import ConfigError, ImageReadError, ImageWriteError

__all__ = [
    "as_batch",
    "IMAGE_EXTENSIONS", "DEFAULT_MAX_PIXELS", "ImageMeta", "read_image", "write_image",
    "check_not_input", "list_images", "write_bytes_atomic", "expand_inputs",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
DEFAULT_MAX_PIXELS = 178_956_970  # twice Pillow's DecompressionBombWarning threshold
MAX_PIXELS_ENV = "ANYRES_MAX_PIXELS"
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
            ".bmp": "BMP"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both byte orders


@dataclass
class ImageMeta:
    """What :func:`read_image` learnt about a file, so :func:`write_image` can write a faithful result.

    ``alpha`` is (1, 1, H, W) float32 in [0, 1] at the size of the source image (after EXIF rotation).
    ``mode`` is Pillow-like; 16-bit and float sources that Pillow cannot represent use "RGB;16", "LA;16",
    "RGB;F", etc. ``bit_depth`` is 8 or 16 (float TIFFs report 16: the best precision we can write back).
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
        raise _read_error(path, f"it has {width}x{height} = {_megapixels(width * height)}, above the limit of "
                                f"{_megapixels(limit)}; pass --max-pixels N or set {MAX_PIXELS_ENV}")


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
        2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1), 6: lambda x: np.rot90(x, -1),
        7: lambda x: x[::-1, ::-1].swapaxes(0, 1), 8: lambda x: np.rot90(x, 1),
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
        img, layout = img.convert("L"), "L"
    elif mode in ("LA", "La"):
        img, layout = img.convert("LA"), "LA"
    elif mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        img, layout = img.convert("RGBA"), "RGBA"
    elif mode in ("RGB", "RGBX", "P", "CMYK", "YCbCr", "HSV"):
        img, layout = img.convert("RGB"), "RGB"
    elif mode.startswith("I;16") or (mode == "I" and img.format == "PNG"):  # older Pillows say "I" for PNG
        return np.asarray(img).astype(np.uint16)[..., None], "L", 16
    else:
        kind = {"I": "32-bit integer", "F": "32-bit float"}.get(mode, "this")
        raise _Unsupported(f"unsupported pixel format: {kind} pixels (Pillow mode {mode!r}); "
                         f"convert it to 8- or 16-bit grayscale or RGB first")
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
            a = np.clip(a, 0.0, 1.0).astype(np.float32)  # float TIFFs are taken to be in [0, 1]
        suffix = ";16" if a.dtype == np.uint16 else ";F"
        mode = {"L;16": "I;16", "L;F": "F"}.get(layout + suffix, layout + suffix)
        icc = _tiff_tag(page, 34675)
        meta = ImageMeta(str(path), "TIFF", mode, 16, layout.startswith("L"),
                         icc_profile=bytes(icc) if icc is not None else None)
        return a, meta, int(_tiff_tag(page, 274) or 1)


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> tuple[torch.Tensor, ImageMeta]:
    """Read an image file as a float32 tensor (1, C, H, W) in [0, 1] plus its :class:`ImageMeta`.

    C is 1 for grayscale sources (L, 1, LA, I;16, gray TIFFs) and 3 otherwise; palettes and CMYK become RGB.
    Alpha is split off into ``meta.alpha``. EXIF orientation is applied (to the alpha too). 8-bit values are
    v / 255 and 16-bit values v / 65535, exactly.

    ``max_pixels`` bounds width * height, checked from the header before decoding; None uses the
    ``ANYRES_MAX_PIXELS`` environment variable or :data:`DEFAULT_MAX_PIXELS`, and a value <= 0 disables it.
    Every unreadable input raises :class:`ImageReadError` with a one-line message naming the file.
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
                if _is_png16_colour(head):
                    a, layout = _decode_png16(path)
                    bit_depth, mode = 16, layout + ";16"
                else:
                    img.load()  # force the full decode here so truncated files fail now, not later
                    a, layout, bit_depth = _decode_pil(img)
                    mode = "I;16" if img.mode == "I" else img.mode
                meta = ImageMeta(str(path), img.format, mode, bit_depth, layout.startswith("L"),
                                 icc_profile=img.info.get("icc_profile") or None, dpi=img.info.get("dpi"))
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
    scale = {1: 255.0, 2: 65535.0, 4: 1.0}[a.dtype.itemsize]
    x = torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32)).div_(scale)[None]  # astype copies
    if x.shape[1] in (2, 4):
        meta.alpha = x[:, -1:].clone()
        x = x[:, :-1].contiguous()
    return x, meta


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
    """Write (H, W, C) uint8/uint16 pixels, C in 1..4 (gray, gray+alpha, RGB, RGBA), in format ``fmt``."""
    height, width, channels = a.shape
    if fmt == "TIFF":
        extra: dict[str, Any] = {"resolution": tuple(dpi), "resolutionunit": "inch"} if dpi else {}
        buf = io.BytesIO()  # tifffile wants a named file or an in-memory buffer, not a bare descriptor
        tifffile.imwrite(buf, a[..., 0] if channels == 1 else a, photometric="minisblack" if channels <= 2 else "rgb",
                         extrasamples=["unassalpha"] if channels in (2, 4) else None, iccprofile=icc,
                         compression="zlib", **extra)
        fh.write(buf.getbuffer())
        return
    if fmt == "PNG" and a.dtype == np.uint16 and channels > 1:
        buf = io.BytesIO()
        writer = png.Writer(width, height, greyscale=channels <= 2, alpha=channels in (2, 4), bitdepth=16,
                            **({"x_pixels_per_unit": round(dpi[0] / 0.0254), "y_pixels_per_unit":
                                round(dpi[1] / 0.0254), "unit_is_meter": True} if dpi else {}))
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
    x = torch.as_tensor(x)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"{what} must be (1, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float32)
    if torch.isnan(x).any():
        raise ValueError(f"{what} contains NaN values")
    return x.clamp(0.0, 1.0)


def write_image(path: str | os.PathLike, image: torch.Tensor, meta: ImageMeta | None = None, *,
                alpha: torch.Tensor | None = None, quality: int = 95, bit_depth: int | None = None,
                overwrite: bool = False) -> Path:
    """Write ``image`` ((1, C, H, W) or (C, H, W), C in {1, 3}, float in [0, 1], clamped) atomically to ``path``.

    The format follows the extension (see :data:`IMAGE_EXTENSIONS`). ``meta`` (from :func:`read_image`) supplies
    bit depth, alpha, ICC profile, dpi and grayness: a gray source written with C=3 is converted back to gray
    (BT.601 luma). ``alpha`` ((1, 1, H, W) in [0, 1]) overrides ``meta.alpha``; alpha is kept in PNG, WebP and
    TIFF and dropped in JPEG and BMP. 16-bit output exists for PNG and TIFF only; other formats get 8 bit.
    ``quality`` is the JPEG/WebP quality; for WebP, 100 means lossless. Returns the written path.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(f"cannot write {path}: unknown image extension {path.suffix or '(none)'!r}; "
                              f"use one of {', '.join(IMAGE_EXTENSIONS)}")
    if path.is_dir():
        raise ImageWriteError(f"cannot write {path}: it is a directory")
    if path.exists() and not overwrite:
        raise ImageWriteError(f"{path} exists; pass --overwrite to replace it")

    x = _as_bchw(image, "image")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels, got {x.shape[1]}")
    if x.shape[1] == 3 and meta is not None and meta.gray:
        x = from_rgb_gray(x)
    source = "alpha"
    if alpha is None and meta is not None and meta.alpha is not None:
        alpha, source = meta.alpha, "meta.alpha"
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):  # JPEG and BMP drop it, whatever its size
        alpha = _as_bchw(torch.as_tensor(alpha).reshape(1, 1, *alpha.shape[-2:]), source)
        if alpha.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"{source} is {tuple(alpha.shape[-2:])} but the image is {tuple(x.shape[-2:])}; "
                             f"resize the alpha and pass it as alpha=")
        x = torch.cat([x, alpha], dim=1)

    depth = bit_depth if bit_depth is not None else (meta.bit_depth if meta is not None else 8)
    if depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {depth}")
    if fmt not in ("PNG", "TIFF"):
        depth = 8
    top = 255 if depth == 8 else 65535
    pixels = x[0].mul(top).round_().to(torch.int32).permute(1, 2, 0).numpy()
    pixels = pixels.astype(np.uint8 if depth == 8 else np.uint16)
    icc = meta.icc_profile if meta is not None else None
    if icc and icc[16:20] != (b"GRAY" if x.shape[1] <= 2 else b"RGB "):
        icc = None  # a profile for the other colour space (header bytes 16-20) would be invalid here
    dpi = meta.dpi if meta is not None and meta.dpi else None

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda fh: _encode(fh, fmt, pixels, icc, dpi, quality), overwrite)
    except ImageWriteError:
        raise
    except (OSError, ValueError, png.Error) as e:  # disk full, permissions, encoder limits...
        raise ImageWriteError(_one_line(f"cannot write {path}: {e}")) from e
    return path


# ----------------------------------------------------------------------------------------------- paths

def check_not_input(out_path: str | os.PathLike, input_paths: str | os.PathLike | Iterable) -> None:
    """Raise :class:`ImageWriteError` if ``out_path`` is one of ``input_paths``: an input is never overwritten.

    Paths are compared after resolving symlinks and ``..``, and with ``os.path.samefile`` (hard links,
    case-insensitive file systems) when both exist.
    """
    if isinstance(input_paths, (str, os.PathLike)):
        input_paths = [input_paths]
    out = Path(out_path)
    for inp in input_paths:
        same = out.resolve() == Path(inp).resolve()
        if not same and out.exists() and Path(inp).exists():
            same = os.path.samefile(out, inp)
        if same:
            raise ImageWriteError(f"refusing to write {out}: it is the input {inp}, and an input is never overwritten")


def list_images(path_or_dir: str | os.PathLike) -> list[Path]:
    """A file gives [file]; a directory gives its image files (by extension, any case, not recursive), sorted.

    Hidden files are skipped: they are editor/OS clutter (e.g. macOS "._x.png") or our own temp files.
    """
    p = Path(path_or_dir)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise ImageReadError(f"cannot read images from {p}: no such file or directory")
    return sorted(q for q in p.iterdir()
                  if q.suffix.lower() in IMAGE_EXTENSIONS and not q.name.startswith(".") and q.is_file())


# ----------------------------------------------------------------------------------------------- channels

def expand_inputs(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Command-line inputs to image files: files stay (a missing one fails when read), folders become
    their images. Returns ``(files, error lines)``; an empty folder is an error line, not an exception."""
    files: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                errors.append(f"{path}: no images in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files, errors


def as_batch(image: Any) -> torch.Tensor:
    """A path (read with :func:`anyres.io.read_image`) or a ``(C, H, W)`` / ``(B, C, H, W)`` tensor -> 4-D tensor."""
    if isinstance(image, (str, Path)):
        image, _ = read_image(image)
    if not torch.is_tensor(image):
        raise TypeError(f"image must be a path or a tensor, got {type(image).__name__}")
    return image[None] if image.dim() == 3 else image
