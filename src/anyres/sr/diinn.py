"""DIINN: dual interactive implicit neural network (Nguyen & Beksi, WACV 2023), final variant (f).

A query at ``x_q`` in [-1, 1] reads its nearest LR pixel's unfolded code ``z`` (``9 C``) and its position
``p = [(x_q - v_t) * (h, w), a]``; a ReLU modulation branch and a sine synthesis branch interact per layer::

    m_1 = relu(A_1 z + a_1)                    s_1 = m_1 * sin(B_1 p + b_1)
    m_i = relu(A_i [s_{i-1}; z] + a_i)         s_i = m_i * sin(B_i s_{i-1} + b_i)
    rgb = W_o s_L + b_o

Evaluation paths, the scale input and where the paper and the code differ: docs/methods/diinn.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from anyres.nn.config import config_from_dict
from anyres.ops.coords import centres
from anyres.registry import NETWORKS
from anyres.sr.implicit import QUERY_MODES, ImplicitNetwork, check_query

__all__ = ["DIINN", "DIINNConfig", "QUERY_MODES", "SCALE_INPUTS", "nearest_index", "synthesis_input"]

SCALE_INPUTS = ("inv_scale_sq", "inv_scale")
_TIE = 1e-4  # LR pixels: a query this close below a cell edge counts as on it (see nearest_index)


@dataclass
class DIINNConfig:
    """Everything needed to rebuild a DIINN network (saved as ``config.json`` beside the weights)."""

    encoder: dict[str, Any] = field(default_factory=lambda: {"name": "edsr-baseline", "args": {}})
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256, 256])
    feat_unfold: bool = True
    scale_input: str = "inv_scale_sq"

    def __post_init__(self) -> None:
        enc = self.encoder
        if (
            not isinstance(enc, dict)
            or not isinstance(enc.get("name"), str)
            or set(enc) - {"name", "args"}
            or not isinstance(enc.get("args", {}), dict)
        ):
            raise ValueError(f"DIINN encoder must be {{'name': str, 'args': dict}}, got {enc!r}")
        if (
            not isinstance(self.hidden, (list, tuple))
            or not self.hidden
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in self.hidden)
        ):
            raise ValueError(f"DIINN hidden must be a non-empty list of positive ints, got {self.hidden!r}")
        self.hidden = list(self.hidden)
        if not isinstance(self.feat_unfold, bool):
            raise ValueError(f"DIINN feat_unfold must be a bool, got {self.feat_unfold!r}")
        if self.scale_input not in SCALE_INPUTS:
            raise ValueError(f"DIINN scale_input must be one of {SCALE_INPUTS}, got {self.scale_input!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DIINNConfig:
        return config_from_dict(cls, d, "DIINN")


# -- coordinates ---------------------------------------------------------------------------------------
def nearest_index(coord: torch.Tensor, size: int) -> torch.Tensor:
    """Index of the pixel whose centre is nearest to ``coord`` on an axis of ``size`` pixels.

    That is the pixel whose cell ``[-1 + 2i/n, -1 + 2(i+1)/n)`` holds ``coord``: ``floor((coord + 1) n / 2)``,
    clamped to ``[0, size - 1]``. A coordinate on a cell edge goes to the higher index, the rule of
    ``F.interpolate(mode="nearest-exact")`` (unlike :func:`anyres.ops.coords.coord_to_index`, which follows
    ``grid_sample`` and rounds half to even). Such ties are common on dense grids at fractional scales
    (output 3 from input 2: the middle centre sits on an edge); a bias of :data:`_TIE` LR pixels makes
    them go up even when float rounding of the coordinate lands just below the edge, which happens for
    a few percent of ties (``F.interpolate`` itself sends some of them down). float32 coordinates carry
    up to about ``6e-8 * size`` pixels of error, so ties are decided exactly for sizes up to about 1,500
    pixels; beyond that a tie may go either way (both pixels are equally near).
    """
    return torch.floor((coord + 1.0) * (size / 2.0) + _TIE).long().clamp_(0, size - 1)


def _local(coord: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest pixel index and the offset from its centre times ``size`` (half-pixel units, in [-1, 1])."""
    idx = nearest_index(coord, size)
    return idx, (coord - centres(size, coord.dtype, coord.device)[idx]) * size


def _scale_channel(cell: torch.Tensor, size: tuple[int, int], kind: str) -> torch.Tensor:
    """``cell (..., 2)`` -> ``(...,)``: ``1/(s_h s_w)`` (``inv_scale_sq``) or its square root (``inv_scale``).

    ``cell * n / 2 = n / N`` is the reciprocal scale along each axis.
    """
    ratio = (cell[..., 0] * (size[0] / 2.0)) * (cell[..., 1] * (size[1] / 2.0))
    if kind == "inv_scale_sq":
        return ratio
    if kind == "inv_scale":
        return ratio.sqrt()
    raise ValueError(f"unknown scale_input {kind!r}; expected one of {SCALE_INPUTS}")


def synthesis_input(
    coord: torch.Tensor, cell: torch.Tensor, size: tuple[int, int], scale_input: str = "inv_scale_sq"
) -> torch.Tensor:
    """The synthesis branch's input ``p`` ``(..., 3)`` for queries ``coord`` on an ``h x w`` latent grid.

    ``coord``, ``cell``: ``(..., 2)`` in [-1, 1] units, (row, col). Returns
    ``[(row - v_row) * h, (col - v_col) * w, a]`` where ``v`` is the nearest latent centre
    (:func:`nearest_index`) and ``a`` the scale channel (see the module doc).
    """
    if coord.shape[-1] != 2 or cell.shape[-1] != 2:
        raise ValueError(f"coord and cell must end in 2, got {tuple(coord.shape)} and {tuple(cell.shape)}")
    _, rel_r = _local(coord[..., 0], size[0])
    _, rel_c = _local(coord[..., 1], size[1])
    scale = _scale_channel(cell, size, scale_input).to(coord.dtype)
    return torch.stack(torch.broadcast_tensors(rel_r, rel_c, scale), dim=-1)


# -- network -------------------------------------------------------------------------------------------
class DIINN(ImplicitNetwork):
    """DIINN network. ``encode(lr) -> feat``, ``query(feat, coord, cell) -> rgb``; no state kept between calls.

    Shapes: ``lr`` ``(B, 3, h, w)`` in [0, 1]; ``coord`` ``(B, Q, 2)`` in [-1, 1] as (row, col);
    ``cell`` ``(B, Q, 2)`` query pixel size in the same units (required: it sets the scale channel);
    result ``(B, Q, 3)`` in [0, 1] (not clamped).
    """

    config_class = DIINNConfig

    def __init__(self, config: DIINNConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        config = self.config
        widths = config.hidden
        self.modulation = nn.ModuleList(
            [nn.Linear(self.feat_dim, widths[0])]
            + [nn.Linear(a + self.feat_dim, b) for a, b in zip(widths[:-1], widths[1:])]
        )
        self.synthesis = nn.ModuleList(
            [nn.Linear(3, widths[0])] + [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
        )
        self.out = nn.Linear(widths[-1], 3)

    # -- public API ----------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {"arch": "diinn", **asdict(self.config)}

    @property
    def radius(self) -> int:
        """LR pixels of context one output pixel depends on: the encoder's field plus the 3x3 unfold.

        The query reads only the LR pixel whose cell holds it (no ensemble), and a tile renders only the
        outputs whose position lies in its core, so this is the margin exact tiling needs.
        """
        return self.encoder.radius + (1 if self.config.feat_unfold else 0)

    def project(self, feat: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The content-only part of every modulation layer: ``(B, C, h, w)`` -> ``(B, h, w, n_1 + .. + n_L)``.

        Channels ``[0, n_1)`` hold ``A_1 z + a_1`` (before the ReLU), the following ``n_i`` hold the ``z``
        columns of ``A_i`` applied to ``z`` plus ``a_i``. With unfolding this is one 3x3 convolution with
        zero padding. Channels-last output so that a row gather is contiguous. ``dtype``: compute (and
        return) in this dtype instead of ``feat``'s (the fast training path uses bfloat16).
        """
        self._check_feat(feat)
        widths = self.config.hidden
        parts = [self.modulation[0].weight] + [
            layer.weight[:, prev:] for layer, prev in zip(self.modulation[1:], widths)
        ]
        dtype = dtype or feat.dtype
        feat = feat.to(dtype)
        weight = torch.cat(parts, dim=0).to(dtype)
        bias = torch.cat([layer.bias for layer in self.modulation]).to(dtype)
        if self.config.feat_unfold:
            # unfold orders channels as c * 9 + (ky * 3 + kx): exactly a (N, C, 3, 3) conv weight.
            proj = F.conv2d(feat, weight.reshape(weight.shape[0], -1, 3, 3), bias, padding=1)
        else:
            proj = F.conv2d(feat, weight[:, :, None, None], bias)
        return proj.permute(0, 2, 3, 1)

    def project_for(self, feat: torch.Tensor, mode: str) -> torch.Tensor:
        # The projection convolution is the decoder's largest single cost in training: bfloat16 too in fast mode.
        return self.project(feat, torch.bfloat16 if mode == "fast" else None)

    # -- fast path -----------------------------------------------------------------------------------
    def query_projected(
        self,
        proj: torch.Tensor,
        coord: torch.Tensor,
        cell: torch.Tensor | None = None,
        mode: str = "fast",
        grid: tuple[int, int, int, int] | None = None,
    ) -> torch.Tensor:
        """Like :meth:`query` but from ``proj = project(feat)``, so chunked queries share one projection.

        ``grid = (h, w, row0, col0)`` says that ``proj`` is the block starting at latent ``(row0, col0)`` of
        a full ``h x w`` latent grid (exact tiling): coordinates and the scale channel stay global, so a
        tile computes exactly what the whole image would. Every nearest latent must lie inside the block.
        """
        check_query(coord, cell, cell_needed_for="DIINN needs the cell for its scale channel")
        b, block_h, block_w, _ = proj.shape
        h, w, row0, col0 = grid or (block_h, block_w, 0, 0)
        ri, rr = _local(coord[..., 0], h)
        ci, cr = _local(coord[..., 1], w)
        _check_block(ri - row0, block_h, ci - col0, block_w)
        idx = (ri - row0) * block_w + (ci - col0)
        pos = torch.stack((rr, cr, _scale_channel(cell, (h, w), self.config.scale_input).to(rr.dtype)), dim=-1)
        return self._decode(proj, idx, pos, mode)

    def _query_grid(
        self,
        proj: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        cell: torch.Tensor | None,
        mode: str,
        grid: tuple[int, int, int, int],
    ) -> torch.Tensor:
        block_h, block_w = proj.shape[1:3]
        if cell is None or cell.shape != (2,):
            raise ValueError("DIINN needs the cell for its scale channel: pass cell of shape (2,)")
        h, w, row0, col0 = grid
        ri, rr = _local(rows, h)
        ci, cr = _local(cols, w)
        if not torch.compiler.is_compiling():  # a data-dependent check an exported graph cannot hold
            _check_block(ri - row0, block_h, ci - col0, block_w)
        n_r, n_c = rows.shape[0], cols.shape[0]
        idx = ((ri - row0)[:, None] * block_w + (ci - col0)[None, :]).reshape(1, n_r * n_c)
        scale = _scale_channel(cell, (h, w), self.config.scale_input).to(rr.dtype)
        pos = torch.stack((rr[:, None].expand(n_r, n_c), cr[None, :].expand(n_r, n_c), scale.expand(n_r, n_c)), -1)
        return self._decode(proj, idx, pos.reshape(1, n_r * n_c, 3), mode)

    def _decode(self, proj: torch.Tensor, idx: torch.Tensor, pos: torch.Tensor, mode: str) -> torch.Tensor:
        """Both branches per query from gathered projection rows; ``idx (B, Q)`` into the block,
        ``pos (B, Q, 3)`` synthesis input. Returns RGB ``(B, Q, 3)`` in [0, 1] space."""
        if mode not in ("fast", "exact"):
            raise ValueError(f"fast-path query modes are 'fast' and 'exact', got {mode!r}")
        b, block_h, block_w, width = proj.shape
        q = idx.shape[1]
        compute = torch.bfloat16 if mode == "fast" else proj.dtype
        widths = self.config.hidden
        offsets = (torch.arange(b, device=idx.device) * (block_h * block_w)).view(b, 1)
        rows = proj.to(compute).reshape(b * block_h * block_w, width).index_select(0, (idx + offsets).reshape(-1))
        # split, not slicing: the backward of one split is one concatenation, while every slice's backward
        # would fill a zero tensor of the full width.
        content = rows.split(widths, dim=1)
        first = self.synthesis[0]
        m = content[0].relu()
        s = m * torch.sin(F.linear(pos.reshape(-1, 3).to(compute), first.weight.to(compute), first.bias.to(compute)))
        for i in range(1, len(widths)):
            mod, syn = self.modulation[i], self.synthesis[i]
            # Two matmuls rather than one on stacked weights: splitting the product would cost a copy in
            # the backward pass, and addmm adds the gathered content term for free.
            m = torch.addmm(content[i], s, mod.weight[:, : widths[i - 1]].t().to(compute)).relu_()
            s = m * torch.sin(F.linear(s, syn.weight.to(compute), syn.bias.to(compute)))
        rgb = F.linear(s, self.out.weight.to(compute), self.out.bias.to(compute)).to(pos.dtype)
        return rgb.view(b, q, 3) * 0.5 + 0.5

    # -- reference path ------------------------------------------------------------------------------
    def query_reference(
        self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The equations written out plainly; the oracle the fast path is tested against."""
        self._check_feat(feat)
        check_query(coord, cell, cell_needed_for="DIINN needs the cell for its scale channel")
        b, c, h, w = feat.shape
        if self.config.feat_unfold:
            feat = F.unfold(feat, 3, padding=1).view(b, c * 9, h, w)
        # Nearest centre by distance to every centre, measured from the query moved up by the tie bias
        # (so that an edge goes to the higher pixel, as in nearest_index).
        rel, index = [], []
        for axis, n in ((0, h), (1, w)):
            cen = centres(n, coord.dtype, coord.device)
            i = (coord[..., axis, None] + 2.0 * _TIE / n - cen).abs().argmin(-1)
            index.append(i)
            rel.append((coord[..., axis] - cen[i]) * n)
        flat = feat.flatten(2).transpose(1, 2)  # (B, h * w, C')
        z = torch.gather(flat, 1, (index[0] * w + index[1])[..., None].expand(-1, -1, flat.shape[-1]))
        p = torch.stack((rel[0], rel[1], _scale_channel(cell, (h, w), self.config.scale_input).to(coord.dtype)), -1)
        m = torch.relu(self.modulation[0](z))
        s = m * torch.sin(self.synthesis[0](p))
        for mod, syn in zip(self.modulation[1:], self.synthesis[1:]):
            m = torch.relu(mod(torch.cat((s, z), dim=-1)))
            s = m * torch.sin(syn(s))
        return self.out(s) * 0.5 + 0.5

    def _check_feat(self, feat: torch.Tensor) -> None:
        if feat.dim() != 4 or feat.shape[1] != self.encoder.out_dim:
            raise ValueError(f"feat must be (B, {self.encoder.out_dim}, h, w), got {tuple(feat.shape)}")


def _check_block(rows: torch.Tensor, block_h: int, cols: torch.Tensor, block_w: int) -> None:
    # A gather outside the block would silently read a neighbouring row of the flattened block.
    for idx, n in ((rows, block_h), (cols, block_w)):
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise ValueError("a query's nearest latent lies outside the projected block (tile margin too small?)")


@NETWORKS.register(
    "diinn",
    "DIINN dual-branch (ReLU modulation x sine synthesis) decoder over a configurable encoder",
    role="upscaler",
    example={"encoder": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}}, "hidden": [16, 16, 16]},
)
def build_diinn(**kwargs: Any) -> DIINN:
    return DIINN(DIINNConfig.from_dict(kwargs))


build_diinn.config_class = DIINNConfig  # lets hub.load_network pick the config keys out of config.json
