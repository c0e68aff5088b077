"""Enhancement of large images in bounded memory, a block at a time, with the one-pass result (to float rounding).

Three exact decompositions:

* **Tiles of a U-Net** (the U-Net enhancer, DeepLPF's backbone): each tile is the core it outputs plus a margin
  of the network's reach (:func:`unet_reach`), aligned to its pooling grid, and cut from the image padded as
  the network pads it; the margin's outputs are dropped. Every core pixel then sees exactly the inputs it
  sees in one pass.
* **DeepLPF's filters**: its heads see the backbone's features resized to ``head_size`` (bilinear), which
  reads at most two rows and two columns per output sample. A first pass over the tiles keeps only the
  features at those rows and columns; the heads run on them; a second pass recomputes each tile's backbone
  image ``Y1`` and applies the cubic, graduated and elliptical filters to that tile (they are per pixel, given
  the pixel's coordinates). Two backbone passes, and memory of one tile, not of the image.
* **Resizing in row bands** (the working-size path): MATLAB's ``imresize`` is one matrix per axis, and each
  output row reads a few input rows, so the downsampled image is made a band of the source at a time and
  the upsampled result a band at a time.

A *source* is ``source(top, bottom, left, right) -> (1, 3, h, w)`` float32 RGB in [0, 1]: a window of the
image, read on demand (:func:`tensor_source` for a tensor; ``anyres enhance`` converts windows of the file's
8-bit samples). The generators yield ``(top, left, block)``: blocks that tile the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from anyres.ops.resize import resize_matrix

__all__ = [
    "Blocking",
    "Source",
    "tensor_source",
    "unet_reach",
    "tile_plan",
    "enhance_blocks",
    "enhance_image",
    "enhance_tensor",
    "downsample_bands",
    "upsample_bands",
    "downsample_source",
    "upsample_blocks",
    "full_size_blocks",
    "bilinear_taps",
]

Source = Callable[[int, int, int, int], torch.Tensor]
Blocks = Iterator[tuple[int, int, torch.Tensor]]


@dataclass(frozen=True)
class Blocking:
    """How a large image is cut.

    ``one_pass_pixels``: images of at most this many pixels run in one pass, as always (a 1 MP DeepLPF pass
    peaks near 1 GB); larger ones in tiles or bands. ``tile``: side of a tile's input, margins included (the
    core is the largest multiple of the network's pooling grid that leaves room for both margins, at least
    one grid step). ``band``: rows per band when resizing.
    """

    one_pass_pixels: int = 1 << 20
    tile: int = 768
    band: int = 256

    def splits(self, height: int, width: int) -> bool:
        return height * width > self.one_pass_pixels


def tensor_source(x: torch.Tensor) -> Source:
    """The source of a ``(1, 3, H, W)`` tensor: windows are views of it."""
    return lambda top, bottom, left, right: x[..., top:bottom, left:right]


# ---------------------------------------------------------------------------------------------------------
# The reach of a U-Net, and tiles


def unet_reach(levels: int, tail_convs: int = 0, convs: int = 2) -> int:
    """How far (in input pixels) the output of a U-Net can depend on its input, over every pooling phase.

    The U-Net: ``levels`` levels (``levels - 1`` 2x2 max pools), ``convs`` 3x3 convolutions per block on the way
    down and up, 2x upsampling (nearest or a 2x2 stride-2 transposed convolution: each output pixel reads one
    coarse pixel), 1x1 convolutions anywhere, and ``tail_convs`` 3x3 convolutions after the last block. Exact:
    the dependency interval is followed back through every layer.
    """

    def conv(iv: tuple[int, int], n: int) -> tuple[int, int]:
        return iv[0] - n, iv[1] + n

    def down_input(iv: tuple[int, int], level: int) -> tuple[int, int]:  # block `level`'s output -> input
        for lv in range(level, -1, -1):
            iv = conv(iv, convs)
            if lv:
                iv = (2 * iv[0], 2 * iv[1] + 1)  # a 2x2 max pool reads both pixels
        return iv

    def up_input(iv: tuple[int, int], level: int) -> tuple[int, int]:  # up block `level`'s output -> input
        if level == levels - 1:
            return down_input(iv, level)
        iv = conv(iv, convs)
        skip = down_input(iv, level)
        deeper = up_input((iv[0] // 2, iv[1] // 2), level + 1)
        return min(skip[0], deeper[0]), max(skip[1], deeper[1])

    reach = 0
    for phase in range(2 ** (levels - 1)):
        lo, hi = up_input(conv((phase, phase), tail_convs), 0)
        reach = max(reach, phase - lo, hi - phase)
    return reach


@dataclass(frozen=True)
class TilePlan:
    """Tiles of an ``(H, W)`` image for a U-Net that pads it at the bottom and right to ``(Hp, Wp)`` (by
    reflection) and pools on a grid of ``multiple`` pixels; ``margin``: a multiple of it, at least the reach."""

    height: int
    width: int
    padded: tuple[int, int]
    multiple: int
    margin: int
    core: int

    def tiles(self) -> Iterator[tuple[int, int, int, int, int, int, int, int]]:
        """``(top, bottom, left, right)`` of each core (they tile the image) and of its input window."""
        hp, wp = self.padded
        for top in range(0, self.height, self.core):
            bottom = min(top + self.core, self.height)
            r0, r1 = max(0, top - self.margin), min(hp, top + self.core + self.margin)
            for left in range(0, self.width, self.core):
                right = min(left + self.core, self.width)
                c0, c1 = max(0, left - self.margin), min(wp, left + self.core + self.margin)
                yield top, bottom, left, right, r0, r1, c0, c1


def tile_plan(net: torch.nn.Module, height: int, width: int, tile: int) -> TilePlan | None:
    """The tiles for a DeepLPF or U-Net enhancer on an ``height x width`` image; None if it cannot be tiled
    exactly (another network, DeepLPF heads without a resize, an image too small for its padding)."""
    from anyres.enhancement.deeplpf import DeepLPF
    from anyres.enhancement.deeplpf_backbone import _LEVELS, _MIN_SIDE, _MULTIPLE
    from anyres.enhancement.unet import UNetEnhancer

    if isinstance(net, DeepLPF):
        if net.config.head_size is None or min(height, width) < _MIN_SIDE:
            return None
        multiple, reach, min_side = _MULTIPLE, unet_reach(_LEVELS, tail_convs=3), _MIN_SIDE
    elif isinstance(net, UNetEnhancer):
        multiple = 2 ** (net.config.levels - 1)
        reach, min_side = unet_reach(net.config.levels), 1
        if min(height, width) < 2 * multiple:
            return None
    else:
        return None
    margin = -(-reach // multiple) * multiple
    core = max(multiple, (tile - 2 * margin) // multiple * multiple)
    padded = tuple(max(-(-n // multiple) * multiple, min_side) for n in (height, width))
    return TilePlan(height, width, (padded[0], padded[1]), multiple, margin, core)


def _window(source: Source, plan: TilePlan, r0: int, r1: int, c0: int, c1: int, device: Any) -> torch.Tensor:
    """Rows ``r0:r1``, columns ``c0:c1`` of the padded image: the source's pixels, reflected past its bottom and
    right edges exactly as padding the whole image would (the window holds more rows than the padding)."""
    rows, cols = min(r1, plan.height), min(c1, plan.width)
    x = source(r0, rows, c0, cols).to(device=device, dtype=torch.float32)
    if r1 > rows or c1 > cols:
        x = F.pad(x, (0, c1 - cols, 0, r1 - rows), mode="reflect")
    return x


# ---------------------------------------------------------------------------------------------------------
# DeepLPF's heads from samples: torch's bilinear resize (align_corners=False, no antialiasing) reads 2 x 2 pixels


def bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``i0, i1`` and weights ``w0, w1`` (float32) of ``F.interpolate(mode="bilinear",
    align_corners=False)`` along one axis, ``n_in -> n_out`` pixels. As torch computes them: ratio ``n_in / n_out``
    and source coordinate ``ratio (d + 1/2) - 1/2`` (rounded once, as its fused multiply-add does), clamped at 0.
    """
    ratio = np.float32(n_in) / np.float32(n_out)
    centres = np.arange(n_out, dtype=np.float32) + np.float32(0.5)
    src = (np.float64(ratio) * centres.astype(np.float64) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    w1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0)).astype(np.float32)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, (np.float32(1.0) - w1).astype(np.float32), w1


class _Samples:
    """The rows and columns of an ``(H, W)`` image that a bilinear resize to ``(size, size)`` reads, and the
    resize itself computed from a ``(B, C, rows, cols)`` tensor of those pixels only."""

    def __init__(self, height: int, width: int, size: int, device: Any):
        th, tw = bilinear_taps(height, size), bilinear_taps(width, size)
        self.rows = np.unique(np.concatenate(th[:2]))
        self.cols = np.unique(np.concatenate(tw[:2]))
        as_t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        self.a0, self.a1 = as_t(np.searchsorted(self.rows, th[0])), as_t(np.searchsorted(self.rows, th[1]))
        self.b0, self.b1 = as_t(np.searchsorted(self.cols, tw[0])), as_t(np.searchsorted(self.cols, tw[1]))
        self.h0, self.h1 = as_t(th[2])[:, None], as_t(th[3])[:, None]
        self.w0, self.w1 = as_t(tw[2]), as_t(tw[3])

    def resize(self, g: torch.Tensor) -> torch.Tensor:
        top, bottom = g[..., self.a0, :], g[..., self.a1, :]
        upper = self.w0 * top[..., self.b0] + self.w1 * top[..., self.b1]
        lower = self.w0 * bottom[..., self.b0] + self.w1 * bottom[..., self.b1]
        return self.h0 * upper + self.h1 * lower

    def within(self, index: np.ndarray, start: int, stop: int) -> tuple[int, int]:
        """The positions ``[i, j)`` in ``index`` (rows or cols) of the pixels in ``[start, stop)``."""
        return int(np.searchsorted(index, start)), int(np.searchsorted(index, stop))


@torch.inference_mode()
def _deeplpf_samples(net: Any, source: Source, plan: TilePlan, samples: _Samples, device: Any) -> torch.Tensor:
    """Pass 1: the backbone's features at the sampled rows and columns, ``(1, C, rows, cols)``."""
    g = torch.zeros(1, net.config.features, len(samples.rows), len(samples.cols), device=device)
    for top, bottom, left, right, r0, r1, c0, c1 in plan.tiles():
        i, j = samples.within(samples.rows, top, bottom)
        k, m = samples.within(samples.cols, left, right)
        if i == j or k == m:
            continue
        feat = net.backbone(_window(source, plan, r0, r1, c0, c1, device))
        rows = torch.from_numpy(samples.rows[i:j] - r0).to(device)
        cols = torch.from_numpy(samples.cols[k:m] - c0).to(device)
        g[..., i:j, k:m] = feat.index_select(2, rows).index_select(3, cols)
        del feat
        _release()
    return g


@torch.inference_mode()
def _deeplpf_filters(net: Any, g: torch.Tensor, samples: _Samples, height: int, width: int) -> dict[str, Any]:
    """The heads on the resized features, as :meth:`DeepLPF._run` computes them: cubic coefficients and the
    bounded graduated and elliptical parameters."""
    from anyres.enhancement.deeplpf import cubic_coefficients, elliptical_parameters, graduated_parameters
    from anyres.enhancement.filters import cubic_filter, unit_grid

    cfg = net.config
    feat = samples.resize(g)
    coeffs = cubic_coefficients(net.cubic_head(feat))
    rows = torch.from_numpy(samples.rows).to(g.device)
    cols = torch.from_numpy(samples.cols).to(g.device)
    grid = unit_grid(height, width, dtype=g.dtype, device=g.device, rows=rows, cols=cols)
    y2 = cubic_filter(g[:, :3], coeffs, residual=cfg.cubic_residual, grid=grid)
    context = torch.cat([feat[:, 3:], samples.resize(y2)], dim=1)  # resizing is per channel
    return {
        "cubic": coeffs,
        "graduated": graduated_parameters(net.graduated_head(context), cfg.graduated),
        "elliptical": elliptical_parameters(net.elliptical_head(context), cfg.elliptical),
    }


@torch.inference_mode()
def _deeplpf_tile(
    net: Any, source: Source, plan: TilePlan, tile: tuple[int, ...], filters: dict[str, Any], device: Any
):
    """Pass 2 on one tile: ``Y1`` from the backbone, then the filters at the core's pixels."""
    from anyres.enhancement.filters import (
        apply_scale_map,
        combine_instances,
        cubic_filter,
        elliptical_map,
        fuse_scale_maps,
        graduated_map,
        long_residual,
        unit_grid,
    )

    top, bottom, left, right, r0, r1, c0, c1 = tile
    cfg, h, w = net.config, plan.height, plan.width
    feat = net.backbone(_window(source, plan, r0, r1, c0, c1, device))
    y1 = feat[:, :3, top - r0 : bottom - r0, left - c0 : right - c0]
    del feat
    rows = torch.arange(top, bottom, device=device)
    cols = torch.arange(left, right, device=device)
    grid = unit_grid(h, w, dtype=y1.dtype, device=device, rows=rows, cols=cols)
    y2 = cubic_filter(y1, filters["cubic"], residual=cfg.cubic_residual, grid=grid)
    s_g = combine_instances(graduated_map(h, w, **filters["graduated"], rows=rows, cols=cols))
    s_e = combine_instances(elliptical_map(h, w, **filters["elliptical"], rows=rows, cols=cols))
    out = long_residual(apply_scale_map(y2, fuse_scale_maps(s_g, s_e, mode=cfg.fusion)), y1)
    return out.clamp(0.0, 1.0)


def _deeplpf_blocks(net: Any, source: Source, plan: TilePlan, device: Any) -> Blocks:
    samples = _Samples(plan.height, plan.width, net.config.head_size, device)
    g = _deeplpf_samples(net, source, plan, samples, device)
    filters = _deeplpf_filters(net, g, samples, plan.height, plan.width)
    del g
    for tile in plan.tiles():
        block = _deeplpf_tile(net, source, plan, tile, filters, device)
        _release()
        yield tile[0], tile[2], block


@torch.inference_mode()
def _unet_tile(net: Any, source: Source, plan: TilePlan, tile: tuple[int, ...], device: Any) -> torch.Tensor:
    top, bottom, left, right, r0, r1, c0, c1 = tile
    out = net(_window(source, plan, r0, r1, c0, c1, device))
    return out[..., top - r0 : bottom - r0, left - c0 : right - c0].clamp(0.0, 1.0)


@torch.inference_mode()
def _one_pass(net: Any, source: Source, size: tuple[int, int], device: Any) -> torch.Tensor:
    x = source(0, size[0], 0, size[1]).to(device=device, dtype=torch.float32)
    return net(x).clamp(0.0, 1.0)


def _release() -> None:
    """Hand the heap's free pages back to the system between tiles (glibc only; a no-op elsewhere): tiles at
    the image's edges have other sizes, and the freed activations of one otherwise stay resident beside the next."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _device(net: torch.nn.Module) -> torch.device:
    param = next(iter(net.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def full_size_blocks(net: torch.nn.Module, source: Source, size: tuple[int, int], blocking: Blocking) -> Blocks:
    """The network on the whole ``(H, W)`` image: one pass up to ``blocking.one_pass_pixels``, exact tiles above
    (DeepLPF and the U-Net enhancer; other networks always run in one pass)."""
    from anyres.enhancement.deeplpf import DeepLPF

    device = _device(net)
    plan = tile_plan(net, size[0], size[1], blocking.tile) if blocking.splits(*size) else None
    if plan is None:
        yield 0, 0, _one_pass(net, source, size, device)
    elif isinstance(net, DeepLPF):
        yield from _deeplpf_blocks(net, source, plan, device)
    else:
        for tile in plan.tiles():
            block = _unet_tile(net, source, plan, tile, device)
            _release()
            yield tile[0], tile[2], block


def enhance_tensor(net: torch.nn.Module, x: torch.Tensor, blocking: Blocking | None = None) -> torch.Tensor:
    """``net`` on a ``(1, 3, H, W)`` image, clamped to [0, 1]: one pass or exact tiles, assembled."""
    blocking = blocking or Blocking()
    size = (x.shape[-2], x.shape[-1])
    out: torch.Tensor | None = None
    for top, left, block in full_size_blocks(net, tensor_source(x), size, blocking):
        if block.shape[-2:] == size:
            return block
        if out is None:
            out = torch.empty(1, 3, *size, dtype=block.dtype, device=block.device)
        out[..., top : top + block.shape[-2], left : left + block.shape[-1]] = block
    assert out is not None
    return out


# ---------------------------------------------------------------------------------------------------------
# Resizing in bands: imresize's matrices, each output row or column reading only its nonzero inputs


def _spans(mat: torch.Tensor, chunk: int) -> list[tuple[int, int, int, int]]:
    """``(o0, o1, i0, i1)``: output chunks of ``mat`` (``(out, in)``) and the input range their weights cover."""
    spans = []
    nonzero = mat != 0
    for o0 in range(0, mat.shape[0], chunk):
        o1 = min(o0 + chunk, mat.shape[0])
        used = torch.nonzero(nonzero[o0:o1].any(dim=0)).flatten()
        i0, i1 = (int(used[0]), int(used[-1]) + 1) if used.numel() else (0, 1)
        spans.append((o0, o1, i0, i1))
    return spans


def _resize_columns(x: torch.Tensor, mat: torch.Tensor | None, chunk: int = 256) -> torch.Tensor:
    """``x @ mat.T`` along the last axis (``imresize``'s width pass), by chunks of output columns."""
    if mat is None:
        return x
    return torch.cat([x[..., i0:i1] @ mat[o0:o1, i0:i1].t() for o0, o1, i0, i1 in _spans(mat, chunk)], dim=-1)


def _matrix(n_in: int, n_out: int, kernel: str, device: Any) -> torch.Tensor | None:
    """imresize's matrix for one axis (float32), or None where imresize leaves the axis alone."""
    if n_in == n_out:
        return None
    return resize_matrix(n_in, n_out, n_out / n_in, kernel, True, dtype=torch.float32, device=device)


@torch.inference_mode()
def downsample_bands(
    source: Source, size: tuple[int, int], working: tuple[int, int], band: int = 256, device: Any = "cpu"
) -> torch.Tensor:
    """``imresize(x, size=working).clamp(0, 1)`` (MATLAB bicubic, antialiased) of the source's ``(H, W)`` image,
    reading it ``band`` input rows at a time: ``(1, 3, h, w)`` float32."""
    (height, width), (h, w) = size, working
    mh, mw = _matrix(height, h, "cubic", device), _matrix(width, w, "cubic", device)
    out = torch.empty(1, 3, h, w, device=device)
    if mh is None:
        for top in range(0, height, band):
            bottom = min(top + band, height)
            out[..., top:bottom, :] = _resize_columns(source(top, bottom, 0, width).to(device), mw)
    else:
        for o0, o1, i0, i1 in _spans(mh, max(1, band * h // height)):
            rows = mh[o0:o1, i0:i1] @ source(i0, i1, 0, width).to(device)
            out[..., o0:o1, :] = _resize_columns(rows, mw)
    return out.clamp_(0.0, 1.0)


@torch.inference_mode()
def _upsample_band(y: torch.Tensor, mh: torch.Tensor | None, mw: torch.Tensor | None, span: tuple[int, ...]):
    o0, o1, i0, i1 = span
    rows = y[..., o0:o1, :] if mh is None else mh[o0:o1, i0:i1] @ y[..., i0:i1, :]
    return _resize_columns(rows, mw).clamp_(0.0, 1.0)


def upsample_bands(y: torch.Tensor, size: tuple[int, int], kernel: str = "cubic", band: int = 256) -> Blocks:
    """``imresize(y, size=size, kernel=kernel).clamp(0, 1)`` of a ``(1, 3, h, w)`` tensor, ``band`` output rows at
    a time: yields ``(top, 0, (1, 3, rows, W))``."""
    (height, width), (h, w) = size, (y.shape[-2], y.shape[-1])
    mh, mw = _matrix(h, height, kernel, y.device), _matrix(w, width, kernel, y.device)
    spans = (
        _spans(mh, band) if mh is not None else [(t, min(t + band, h), t, min(t + band, h)) for t in range(0, h, band)]
    )
    for span in spans:
        yield span[0], 0, _upsample_band(y, mh, mw, span)


# ---------------------------------------------------------------------------------------------------------
# Everything together


def downsample_source(
    source: Source, size: tuple[int, int], working: tuple[int, int], resampler: Any, blocking: Blocking, device: Any
) -> torch.Tensor:
    """:func:`~anyres.enhancement.api.downsample_for` of the source's image: whole up to
    ``blocking.one_pass_pixels``, in bands above (bicubic; an LMAR ``resampler`` always reads the whole image)."""
    from anyres.enhancement.api import downsample_for

    if resampler is None and blocking.splits(*size):
        return downsample_bands(source, size, working, blocking.band, device=device)
    return downsample_for(source(0, size[0], 0, size[1]).to(device=device, dtype=torch.float32), working, resampler)


def upsample_blocks(y: torch.Tensor, size: tuple[int, int], resampler: Any, blocking: Blocking) -> Blocks:
    """:func:`~anyres.enhancement.api.upsample_from` of the working-size result: whole up to
    ``blocking.one_pass_pixels``, in bands above."""
    from anyres.enhancement.api import upsample_from

    if not blocking.splits(*size):
        yield 0, 0, upsample_from(y, size, resampler)
    else:
        yield from upsample_bands(y, size, "cubic" if resampler is None else "lanczos3", blocking.band)


def enhance_blocks(
    net: torch.nn.Module,
    source: Source,
    size: tuple[int, int],
    *,
    working: tuple[int, int] | None = None,
    resampler: Any = None,
    blocking: Blocking | None = None,
) -> Blocks:
    """:func:`anyres.enhancement.api.enhance_rgb` of the source's ``(H, W)`` image, a block at a time.

    Full size (``working`` None or ``(H, W)``): :func:`full_size_blocks`. Working size: the image brought down
    to ``working`` (in bands on the plain path; an LMAR ``resampler`` reads the whole image), enhanced there
    (one pass or tiles), and brought back in bands of ``blocking.band`` rows (bicubic; Lanczos-3 after LMAR).
    Images of at most ``blocking.one_pass_pixels`` give one block, computed as always. Memory: the source, one
    tile or band, the working-size image and the network at that size.
    """
    blocking = blocking or Blocking()
    size = (int(size[0]), int(size[1]))
    if working is None or tuple(working) == size:
        yield from full_size_blocks(net, source, size, blocking)
        return
    device = _device(net)
    small = downsample_source(source, size, (int(working[0]), int(working[1])), resampler, blocking, device)
    out = enhance_tensor(net, small, blocking)
    del small
    yield from upsample_blocks(out, size, resampler, blocking)


def enhance_image(
    net: torch.nn.Module,
    rgb: torch.Tensor,
    *,
    working: tuple[int, int] | None = None,
    resampler: Any = None,
    blocking: Blocking | None = None,
) -> torch.Tensor:
    """:func:`anyres.enhancement.api.enhance_rgb` of a ``(1, 3, H, W)`` tensor, computed by
    :func:`enhance_blocks` and assembled: the input, the output and one tile in memory."""
    if rgb.dim() != 4 or rgb.shape[:2] != (1, 3):
        raise ValueError(f"expected a (1, 3, H, W) RGB tensor, got shape {tuple(rgb.shape)}")
    size = (rgb.shape[-2], rgb.shape[-1])
    out = torch.empty(1, 3, *size, device=rgb.device)
    for top, left, block in enhance_blocks(
        net, tensor_source(rgb.float()), size, working=working, resampler=resampler, blocking=blocking
    ):
        out[..., top : top + block.shape[-2], left : left + block.shape[-1]] = block.to(out.device)
    return out


def one_pass_bytes(net: torch.nn.Module, pixels: int) -> int:
    """Rough peak memory (bytes) of DeepLPF run in one pass on ``pixels`` pixels, e.g. for ``--explain``: about
    1.2 KB a pixel for the shipped width (measured on CPU, float32), scaled with the network's width."""
    config = getattr(net, "config", None)
    features, width = getattr(config, "features", 64), getattr(config, "width", 16)
    return int(math.ceil(pixels * 1200 * (features + 4 * width) / 128))
