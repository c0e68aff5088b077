"""Render any output size from an arbitrary-scale model in bounded memory.

:func:`render` evaluates ``encode -> project -> query`` of a LIIF-style network over the output grid in
chunks of rows, writing into one preallocated output. With ``tile`` set, the LR image is split into
``tile x tile`` cores, each encoded with a margin of ``net.radius`` LR pixels (the encoder's receptive
field plus the unfold and ensemble neighbourhood); every output pixel is rendered from the tile whose
core holds its position, with *global* coordinates, so the tiled result equals the untiled one up to
float rounding. Memory is then bounded by the tile and chunk sizes, not by the image.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from anyres.checks import check_image
from anyres.errors import ConfigError
from anyres.nn.precision import resolve_mode
from anyres.ops.coords import centres
from anyres.progress import Progress
from anyres.registry import options_from
from anyres.sr.implicit import QUERY_MODES
from anyres.sr.upscaler import Upscaler

__all__ = ["render", "LIIFUpscaler", "RenderOptions", "RENDER_MODES", "DEFAULT_TILE", "DEFAULT_CHUNK"]

DEFAULT_TILE = 192  # LR pixels per tile side when tiling is on
DEFAULT_CHUNK = 4096  # queries per MLP call: per-chunk temporaries of ~8 MB stay in reused heap memory
RENDER_MODES = QUERY_MODES


@dataclass(frozen=True)
class RenderOptions:
    """How a LIIF-style upscaler renders: ``mode`` (:data:`RENDER_MODES`), ``tile`` (LR tile side in pixels,
    or None for one pass), ``chunk`` (queries per MLP call), ``seed`` (of a sampled prior, LIIFusion stage 2)
    and ``progress`` (a pixel progress bar per image, on a terminal). The tiled result equals the untiled one."""

    mode: str = "fast"
    tile: int | None = DEFAULT_TILE
    chunk: int = DEFAULT_CHUNK
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.mode not in RENDER_MODES:
            raise ConfigError(f"unknown render mode {self.mode!r}; expected one of {', '.join(RENDER_MODES)}")
        if self.tile is not None and (isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < 1):
            raise ConfigError(f"tile must be a positive number of LR pixels or None, got {self.tile!r}")
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1:
            raise ConfigError(f"chunk must be a positive number of queries, got {self.chunk!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_kwargs(cls, base: RenderOptions | None = None, **fields: Any) -> RenderOptions:
        """``base`` (or the defaults) with ``fields`` replaced; an unknown field raises ConfigError."""
        values = dataclasses.asdict(base) if base is not None else {}
        return options_from(cls, {**values, **fields}, what="upscaler option")


def _row_ranges(n_out: int, n_in: int, a: int, b: int) -> tuple[int, int]:
    """Output indices whose centre maps into LR cells ``[a, b)`` (a partition over consecutive cores)."""
    # Output i lies at LR position (i + 0.5) * n_in / n_out; it belongs to the core holding that position.
    lo = math.ceil(a * n_out / n_in - 0.5) if a > 0 else 0
    hi = math.ceil(b * n_out / n_in - 0.5) if b < n_in else n_out
    return max(lo, 0), min(hi, n_out)


@torch.no_grad()
def render(
    net: Any,
    lr: torch.Tensor,
    size: Sequence[int],
    *,
    mode: str = "fast",
    tile: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress: Any = None,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """Upscale ``lr`` ``(1, 3, h, w)`` in [0, 1] to ``size = (H, W)`` with a LIIF-style network.

    ``mode``: ``fast`` (bf16 hidden layers where bf16 is native, else float32), ``exact`` (float32) or
    ``reference`` (the paper's plain path, slow; never tiled). ``tile``: LR tile side, or None for one pass. ``prior``: a ``(1, P)`` prior for
    networks that take one (LIIFusion; e.g. the HR prior of a stage-1 model in an oracle evaluation).
    Returns ``(1, 3, H, W)`` float32, not clamped.
    """
    check_image(lr, "lr", channels=(1, 3))
    if lr.shape[0] != 1 or lr.shape[1] != 3:
        raise ValueError(f"render expects one RGB image (1, 3, h, w), got {tuple(lr.shape)}")
    out_h, out_w = int(size[0]), int(size[1])
    h, w = lr.shape[-2:]
    mode = resolve_mode(mode, lr.device)
    out = torch.empty(1, 3, out_h, out_w, dtype=torch.float32, device=lr.device)
    if (
        tile is None
        or (tile >= h and tile >= w)
        or mode == "reference"
        or prior is not None
        or not getattr(net, "tile_invariant", True)
    ):
        tiles = [(0, h, 0, w)]
    else:
        tiles = [(r, min(r + tile, h), c, min(c + tile, w)) for r in range(0, h, tile) for c in range(0, w, tile)]
    margin = net.radius + 1
    row_c = centres(out_h, torch.float32, lr.device)
    col_c = centres(out_w, torch.float32, lr.device)
    cell = torch.tensor([2.0 / out_h, 2.0 / out_w], device=lr.device)
    for r0, r1, c0, c1 in tiles:
        i0, i1 = _row_ranges(out_h, h, r0, r1)
        j0, j1 = _row_ranges(out_w, w, c0, c1)
        if i0 >= i1 or j0 >= j1:
            continue
        er0, er1 = max(r0 - margin, 0), min(r1 + margin, h)
        ec0, ec1 = max(c0 - margin, 0), min(c1 + margin, w)
        region = lr[..., er0:er1, ec0:ec1].contiguous(memory_format=torch.channels_last)
        feat = net.encode(region) if prior is None else net.encode(region, prior)
        if mode == "reference":
            proj = None
        else:
            proj = net.project(feat).contiguous()
            if mode == "fast":
                proj = proj.to(torch.bfloat16)  # once per tile, not once per chunk
            del feat
        cols = col_c[j0:j1]
        rows_per_chunk = max(1, chunk // (j1 - j0))
        for a in range(i0, i1, rows_per_chunk):
            b = min(a + rows_per_chunk, i1)
            if proj is None:
                coord = torch.stack(torch.meshgrid(row_c[a:b], cols, indexing="ij"), dim=-1).reshape(1, -1, 2)
                pred = net.query_reference(feat, coord, cell.expand(1, coord.shape[1], 2))
            else:
                pred = net.query_grid(proj, row_c[a:b], cols, cell, mode=mode, grid=(h, w, er0, ec0))
            out[0, :, a:b, j0:j1] = pred[0].t().reshape(3, b - a, j1 - j0)
            if progress is not None:
                progress.update((b - a) * (j1 - j0))
    return out


class LIIFUpscaler(Upscaler):
    """A LIIF-style network as an :class:`Upscaler`: exact any-size rendering with optional tiling.

    ``options``: a :class:`RenderOptions`, or its fields as keywords (``mode="exact", tile=None``).
    """

    def __init__(
        self,
        net: Any,
        *,
        name: str = "liif",
        description: str = "",
        device: str | torch.device | None = None,
        options: RenderOptions | None = None,
        **fields: Any,
    ):
        # Channels-last weights and inputs: mkldnn convolutions then run without layout conversions.
        self.net = net.eval().to(memory_format=torch.channels_last)
        self.name = name
        self.description = description
        self.options = RenderOptions.from_kwargs(options, **fields) if fields else (options or RenderOptions())
        if device is not None:
            self.to(device)

    def to(self, device: str | torch.device) -> LIIFUpscaler:
        self.net.to(device)
        return self

    def upscale_rgb(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        device = next(self.net.parameters()).device
        opts = self.options
        outs = []
        for x in lr:
            bar = Progress(size[0] * size[1], label="rendering", unit="px", unit_scale=True) if opts.progress else None
            x = x[None].to(device)
            # A sampled prior is drawn once from the whole LR image, so the seed alone fixes the result.
            prior = self.net.lr_prior(x, opts.seed) if hasattr(self.net, "lr_prior") else None
            outs.append(
                render(self.net, x, size, mode=opts.mode, tile=opts.tile, chunk=opts.chunk, progress=bar, prior=prior)
            )
            if bar is not None:
                bar.close()
        return torch.cat(outs, dim=0)
