"""Shifted-window attention pieces (Swin / SwinIR conventions) and a prior-conditioned cross-attention layer.

Maps are channels-last ``(B, H, W, C)`` with ``H, W`` multiples of the window ``ws``; :func:`window_partition`
gives ``(B * nW, ws * ws, C)`` and :func:`window_reverse` inverts it. :func:`shift_mask` adds ``-100`` across
rolled-together regions. :class:`PriorWindowLayer` modulates with the prior: ``inject="queries"`` (the
LIIFusion code's) forms ``P = z_a * LN(F) + z_b`` and takes queries from ``P``, keys/values from ``LN(F)``;
``inject="features"`` (DiffIR's) feeds ``(1 + z_a) * LN(F) + z_b`` to queries, keys and values and
``(1 + z_c) * LN(F) + z_d`` to the feed-forward block. The prior is one vector per map or one per window.
Window order, mask, bias table and layer layout: docs/methods/liifusion.md, "Window attention".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "window_partition",
    "window_reverse",
    "shift_mask",
    "relative_position_index",
    "WindowCrossAttention",
    "PriorWindowLayer",
    "pad_to_multiple",
]

MASK_VALUE = -100.0


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * (H / ws) * (W / ws), ws * ws, C)``."""
    b, h, w, c = x.shape
    if h % ws or w % ws:
        raise ValueError(f"map {h}x{w} is not a multiple of the window {ws}")
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, ws * ws, C)`` -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // ws) * (w // ws))
    x = windows.reshape(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shift_mask(h: int, w: int, ws: int, shift: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Additive attention mask ``(nW, ws^2, ws^2)`` of a map rolled by ``-shift``: 0 within a region, -100 across."""
    labels = torch.zeros(h, w, device=device)
    region = 0
    for rows in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for cols in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            labels[rows, cols] = region
            region += 1
    win = window_partition(labels[None, :, :, None], ws).squeeze(-1)  # (nW, ws^2)
    same = win[:, :, None] == win[:, None, :]
    return torch.where(same, 0.0, MASK_VALUE)


def relative_position_index(ws: int) -> torch.Tensor:
    """``(ws^2, ws^2)`` index into the ``(2 ws - 1)^2`` relative-position table."""
    hh, ww = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    hh, ww = hh.flatten(), ww.flatten()
    dh = hh[:, None] - hh[None, :] + ws - 1
    dw = ww[:, None] - ww[None, :] + ws - 1
    return dh * (2 * ws - 1) + dw


class WindowCrossAttention(nn.Module):
    """Multi-head attention inside windows: queries from one token set, keys/values from an aligned one.

    ``q = Linear(dim, dim)`` on the query source, ``k, v = Linear(dim, 2 dim)`` on the key/value source (both
    bias-free), scaled dot product with ``head_dim ** -0.5``, plus the relative position bias (and a mask),
    softmax, then ``Linear(dim, dim)`` (with bias).
    """

    def __init__(self, dim: int, ws: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.dim, self.ws, self.heads = dim, ws, heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(ws), persistent=False)

    def position_bias(self) -> torch.Tensor:
        """``(heads, ws^2, ws^2)``."""
        n = self.ws * self.ws
        index: torch.Tensor = self.bias_index  # type: ignore[assignment]
        return self.bias_table[index.reshape(-1)].reshape(n, n, self.heads).permute(2, 0, 1)

    def forward(self, q_src: torch.Tensor, kv_src: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``q_src``, ``kv_src``: ``(B * nW, N, dim)``; ``mask``: ``(nW, N, N)`` or None. Returns ``(B * nW, N, dim)``."""
        bw, n, c = q_src.shape
        hd = c // self.heads
        q = self.q(q_src).reshape(bw, n, self.heads, hd).transpose(1, 2)
        k, v = self.kv(kv_src).reshape(bw, n, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        logits = (q * self.scale) @ k.transpose(-2, -1) + self.position_bias().to(q.dtype)
        if mask is not None:
            nw = mask.shape[0]
            logits = logits.reshape(bw // nw, nw, self.heads, n, n) + mask[None, :, None].to(q.dtype)
            logits = logits.reshape(bw, self.heads, n, n)
        out = logits.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class PriorWindowLayer(nn.Module):
    """One prior-injection layer on a ``(B, H, W, C)`` map with a ``(B, P)`` prior (see module doc)."""

    def __init__(
        self,
        dim: int,
        prior_dim: int,
        ws: int = 8,
        shift: int = 0,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        inject: str = "queries",
    ):
        super().__init__()
        if not 0 <= shift < ws:
            raise ValueError(f"shift must be in [0, {ws}), got {shift}")
        if inject not in ("queries", "features"):
            raise ValueError(f"inject must be 'queries' or 'features', got {inject!r}")
        self.ws, self.shift, self.inject = ws, shift, inject
        self.modulation = nn.Linear(prior_dim, (2 if inject == "queries" else 4) * dim, bias=False)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowCrossAttention(dim, ws, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """``prior``: ``(B, P)`` for the whole map, or ``(B, H / ws, W / ws, P)``, one per (unshifted) window."""
        b, h, w, c = x.shape
        ws = self.ws
        # Like SwinIR, no shift when the map is a single window.
        shift = self.shift if min(h, w) > ws else 0
        mod = self.modulation(prior).to(x.dtype)
        # Broadcast over the tokens its prior covers, without materialising a per-token copy.
        grid: tuple[int, ...]
        if prior.dim() == 2:
            mod = mod[:, None, None, :]
            grid = (b, h, w, c)
        else:
            mod = mod[:, :, None, :, None, :]
            grid = (b, h // ws, ws, w // ws, ws, c)
        if self.inject == "queries":
            kv = self.norm1(x)
            scale, offset = mod.chunk(2, dim=-1)
            q = (kv.reshape(grid) * scale + offset).reshape(b, h, w, c)
        else:
            scale, offset, ffn_scale, ffn_offset = mod.chunk(4, dim=-1)
            q = kv = (self.norm1(x).reshape(grid) * (1 + scale) + offset).reshape(b, h, w, c)
        mask = None
        if shift:
            q = torch.roll(q, (-shift, -shift), dims=(1, 2))
            kv = torch.roll(kv, (-shift, -shift), dims=(1, 2))
            mask = shift_mask(h, w, ws, shift, x.device)
        out = self.attn(window_partition(q, ws), window_partition(kv, ws), mask)
        out = window_reverse(out, ws, h, w)
        if shift:
            out = torch.roll(out, (shift, shift), dims=(1, 2))
        x = x + out
        if self.inject == "queries":
            return x + self.mlp(self.norm2(x))
        return x + self.mlp((self.norm2(x).reshape(grid) * (1 + ffn_scale) + ffn_offset).reshape(b, h, w, c))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a ``(B, C, H, W)`` map at the bottom/right to multiples of ``multiple`` (reflect where the map is
    large enough, else replicate); only when needed. Returns the map and the original ``(H, W)``."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    return x, (h, w)
