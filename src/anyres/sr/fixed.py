"""A fixed-scale network (RRDBNet) as an any-size :class:`~anyres.sr.upscaler.Upscaler`, tiled exactly.

The network runs once at its native scale, then MATLAB bicubic takes the result to the requested size (what
the Real-ESRGAN and ESRGAN tools do for other scales). Tiling is exact in two stages: the trunk, which
holds almost all of the receptive field, runs on cores with a margin of its whole radius; the upsampling
tail runs on sub-cores of ``tile`` LR pixels with a margin of two cells. See docs/foreign-checkpoints.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from anyres.ops.resize import resize
from anyres.progress import Progress
from anyres.sr.render import RenderOptions
from anyres.sr.rrdbnet import TAIL_RADIUS
from anyres.sr.upscaler import Upscaler

__all__ = ["FixedScaleUpscaler", "native"]


def _spans(lo: int, hi: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, hi)) for a in range(lo, hi, step)]


@torch.no_grad()
def native(net: Any, lr: torch.Tensor, tile: int | None = None, progress: Any = None) -> torch.Tensor:
    """``(1, 3, h, w)`` -> ``(1, 3, h * s, w * s)`` at the network's scale ``s``, equal for every ``tile``.

    Sides that are not multiples of the network's unshuffle factor are reflect-padded, and the padding is
    cropped from the output (Real-ESRGAN's rule). ``tile``: LR pixels per tail sub-core, or None for one pass.
    """
    u, s = net.config.unshuffle, net.scale
    h, w = lr.shape[-2:]
    pad_h, pad_w = -h % u, -w % u
    if pad_h or pad_w:
        lr = F.pad(lr, (0, pad_w, 0, pad_h), mode="reflect" if h > pad_h and w > pad_w else "replicate")
    hc, wc = lr.shape[-2] // u, lr.shape[-1] // u  # trunk cells
    margin = net.trunk_radius + TAIL_RADIUS
    if tile is None:
        tail_core = trunk_core = max(hc, wc)
    else:
        tail_core = max(1, math.ceil(tile / u))
        # Cores of at least the margin keep the recomputed context under 9x; an image that fits in one
        # core-plus-margins region runs in one pass.
        trunk_core = max(tail_core, margin)
        if hc <= trunk_core + 2 * margin and wc <= trunk_core + 2 * margin:
            trunk_core = max(hc, wc)
    out = torch.empty(1, 3, 4 * hc, 4 * wc, dtype=torch.float32, device=lr.device)
    for r0, r1 in _spans(0, hc, trunk_core):
        for c0, c1 in _spans(0, wc, trunk_core):
            er0, er1, ec0, ec1 = max(r0 - margin, 0), min(r1 + margin, hc), max(c0 - margin, 0), min(c1 + margin, wc)
            feat = net.trunk(lr[..., u * er0 : u * er1, u * ec0 : u * ec1].contiguous())
            for a0, a1 in _spans(r0, r1, tail_core):
                for b0, b1 in _spans(c0, c1, tail_core):
                    f0, f1 = max(a0 - TAIL_RADIUS, 0), min(a1 + TAIL_RADIUS, hc)
                    g0, g1 = max(b0 - TAIL_RADIUS, 0), min(b1 + TAIL_RADIUS, wc)
                    img = net.tail(feat[..., f0 - er0 : f1 - er0, g0 - ec0 : g1 - ec0])
                    out[..., 4 * a0 : 4 * a1, 4 * b0 : 4 * b1] = img[
                        ..., 4 * (a0 - f0) : 4 * (a1 - f0), 4 * (b0 - g0) : 4 * (b1 - g0)
                    ]
                    if progress is not None:
                        progress.update(16 * (a1 - a0) * (b1 - b0))
            del feat
    return out[..., : h * s, : w * s]


class FixedScaleUpscaler(Upscaler):
    """A fixed-scale network at any output size: its native scale, then bicubic (MATLAB ``imresize``).

    ``options``: a :class:`~anyres.sr.render.RenderOptions`; ``tile`` and ``progress`` apply, ``mode``,
    ``chunk`` and ``seed`` do not (the network has no query decoder and no prior).
    """

    def __init__(
        self,
        net: Any,
        *,
        name: str = "rrdbnet",
        description: str = "",
        device: str | torch.device | None = None,
        options: RenderOptions | None = None,
    ):
        self.net = net.eval()
        self.name = name
        self.description = description
        self.options = options or RenderOptions()
        if device is not None:
            self.to(device)

    @property
    def scale(self) -> int:
        return int(self.net.scale)

    def to(self, device: str | torch.device) -> FixedScaleUpscaler:
        self.net.to(device)
        return self

    def upscale_rgb(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        device = next(self.net.parameters()).device
        outs = []
        for x in lr:
            h, w = x.shape[-2:]
            total = 16 * math.ceil(h / self.net.config.unshuffle) * math.ceil(w / self.net.config.unshuffle)
            bar = Progress(total, label="rendering", unit="px", unit_scale=True) if self.options.progress else None
            y = native(self.net, x[None].to(device), self.options.tile, bar)
            if bar is not None:
                bar.close()
            outs.append(y if tuple(y.shape[-2:]) == tuple(size) else resize(y, size=size, mode="bicubic"))
        return torch.cat(outs, dim=0)
