"""LIIF: local implicit image function (Chen, Liu & Wang, CVPR 2021).

``encode(lr) -> feat`` ``(B, C, h, w)``; ``query(feat, coord, cell) -> rgb`` for coordinates in [-1, 1]::

    I(x_q) = sum_t  S_t / S * f([z*_t, (x_q - v*_t) * (h, w), cell * (h, w)])

over the four latents ``t`` around ``x_q`` (local ensemble, 3x3 feature unfolding, cell decoding). Three
evaluations of the same function (``reference``, ``exact``, ``fast``) and the recipe: docs/methods/liif.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from anyres.nn.blocks import MLP
from anyres.nn.config import config_from_dict
from anyres.ops.coords import centres, coord_to_index, make_coord
from anyres.registry import NETWORKS
from anyres.sr.implicit import QUERY_MODES, ImplicitNetwork, check_query

__all__ = ["LIIF", "LIIFConfig", "QUERY_MODES"]

_SHIFTS = ((-1, -1), (-1, 1), (1, -1), (1, 1))
_EPS_SHIFT = 1e-6


@dataclass
class LIIFConfig:
    """Everything needed to rebuild a LIIF network (saved as ``config.json`` beside the weights)."""

    encoder: dict[str, Any] = field(default_factory=lambda: {"name": "edsr-baseline", "args": {}})
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256, 256])
    feat_unfold: bool = True
    local_ensemble: bool = True
    cell_decode: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LIIFConfig:
        return config_from_dict(cls, d, "LIIF")


class LIIF(ImplicitNetwork):
    """LIIF network. ``encode(lr) -> feat``, ``query(feat, coord, cell) -> rgb``; no state kept between calls.

    Shapes: ``lr`` ``(B, 3, h, w)`` in [0, 1]; ``coord`` ``(B, Q, 2)`` in [-1, 1] as (row, col);
    ``cell`` ``(B, Q, 2)`` query pixel size in the same units; result ``(B, Q, 3)`` in [0, 1] (not clamped).
    """

    config_class = LIIFConfig

    def __init__(self, config: LIIFConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        config = self.config
        in_dim = self.feat_dim + 2 + (2 if config.cell_decode else 0)
        if not config.hidden:
            raise ValueError("LIIF needs at least one hidden layer")
        self.imnet = MLP(in_dim, 3, config.hidden)

    # -- public API ----------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {"arch": "liif", **asdict(self.config)}

    @property
    def radius(self) -> int:
        """LR pixels of context one output pixel depends on (encoder field + unfold + ensemble)."""
        return self.encoder.radius + (1 if self.config.feat_unfold else 0) + 1

    def project(self, feat: torch.Tensor) -> torch.Tensor:
        """First MLP layer's feature part (plus its bias) at every latent: ``(B, C, h, w)`` -> ``(B, h, w, H1)``.

        Equivalent to applying the first Linear's feature columns to the (unfolded) latent code of every
        LR pixel; with unfolding this is a 3x3 convolution with zero padding. Channels-last output so
        that a row gather is contiguous.
        """
        first = self.imnet.hidden[0]
        w_feat = first.weight[:, : self.feat_dim]
        if self.config.feat_unfold:
            # unfold orders channels as c * 9 + (ky * 3 + kx): exactly a (H1, C, 3, 3) conv weight.
            kernel = w_feat.reshape(w_feat.shape[0], -1, 3, 3)
            proj = F.conv2d(feat, kernel, first.bias, padding=1)
        else:
            proj = F.conv2d(feat, w_feat[:, :, None, None], first.bias)
        return proj.permute(0, 2, 3, 1)

    def project_for(self, feat: torch.Tensor, mode: str) -> torch.Tensor:
        return self.project(feat)

    # -- fast path -----------------------------------------------------------------------------------
    def _axis(self, coord: torch.Tensor, n: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Ensemble members along one axis of ``n`` latents: indices (relative to ``offset``) and relative
        coordinates scaled by ``n``, each ``(S, *coord.shape)`` with S = 2 (local ensemble) or 1."""
        signs = (-1, 1) if self.config.local_ensemble else (0,)
        eps = _EPS_SHIFT if self.config.local_ensemble else 0.0
        centre = centres(n, coord.dtype, coord.device)
        idx, rel = [], []
        for v in signs:
            shifted = (coord + (v * (1.0 / n) + eps)).clamp(-1 + 1e-6, 1 - 1e-6)
            i = coord_to_index(shifted, n)
            idx.append(i - offset)
            rel.append((coord - centre[i]) * n)
        return torch.stack(idx), torch.stack(rel)

    def _members(self, grid: tuple[int, int, int, int], block_w: int, coord: torch.Tensor):
        """Latent indices ``(B, M, Q)`` and scaled relative coordinates ``(B, M, Q, 2)`` of the ensemble.

        ``grid = (h, w, row0, col0)``: the full latent grid's size and the offset of the projected block
        (a tile) inside it; indices are returned relative to the block. Members are ordered
        (-1, -1), (-1, +1), (+1, -1), (+1, +1) in (row, col) shifts.
        """
        h, w, row0, col0 = grid
        ri, rr = self._axis(coord[..., 0], h, row0)  # (S, B, Q)
        ci, cr = self._axis(coord[..., 1], w, col0)
        s = ri.shape[0]
        idx = (ri[:, None] * block_w + ci[None, :]).flatten(0, 1).transpose(0, 1)
        rel = torch.stack((rr[:, None].expand(s, s, *rr.shape[1:]), cr[None, :].expand(s, s, *cr.shape[1:])), -1)
        return idx, rel.flatten(0, 1).transpose(0, 1)

    def _grid_members(self, grid: tuple[int, int, int, int], block_w: int, rows: torch.Tensor, cols: torch.Tensor):
        """As :meth:`_members` for the ``R x C`` grid of queries ``rows x cols`` (raster order), computed
        per axis: ``(1, M, R * C)`` and ``(1, M, R * C, 2)``, identical to the general path's values."""
        h, w, row0, col0 = grid
        ri, rr = self._axis(rows, h, row0)  # (S, R)
        ci, cr = self._axis(cols, w, col0)  # (S, C)
        s, n_r, n_c = ri.shape[0], rows.shape[0], cols.shape[0]
        idx = ri[:, None, :, None] * block_w + ci[None, :, None, :]
        rel = torch.stack(
            (rr[:, None, :, None].expand(s, s, n_r, n_c), cr[None, :, None, :].expand(s, s, n_r, n_c)), -1
        )
        return idx.reshape(1, s * s, n_r * n_c), rel.reshape(1, s * s, n_r * n_c, 2)

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
        a full ``h x w`` latent grid (exact tiling): coordinates stay global, so a tile computes exactly
        what the whole image would. Every latent a query touches must lie inside the block.
        """
        check_query(coord, cell, cell_needed_for="this model decodes cells" if self.config.cell_decode else None)
        b, block_h, block_w, _ = proj.shape
        grid = grid or (block_h, block_w, 0, 0)
        idx, rel = self._members(grid, block_w, coord)
        rel_cell = None
        if self.config.cell_decode:
            rel_cell = (cell * torch.tensor(grid[:2], dtype=cell.dtype, device=cell.device))[:, None]
        return self._decode(proj, idx, rel, rel_cell, mode)

    def _query_grid(
        self,
        proj: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        cell: torch.Tensor | None,
        mode: str,
        grid: tuple[int, int, int, int],
    ) -> torch.Tensor:
        block_w = proj.shape[2]
        idx, rel = self._grid_members(grid, block_w, rows, cols)
        rel_cell = None
        if self.config.cell_decode:
            if cell is None or cell.shape != (2,):
                raise ValueError("this model decodes cells: pass cell of shape (2,)")
            # Per element, not via torch.tensor(grid): a traced export keeps the LR size as a graph value.
            rel_cell = torch.stack((cell[0] * grid[0], cell[1] * grid[1])).view(1, 1, 1, 2)
        return self._decode(proj, idx, rel, rel_cell, mode)

    def _decode(
        self, proj: torch.Tensor, idx: torch.Tensor, rel: torch.Tensor, rel_cell: torch.Tensor | None, mode: str
    ) -> torch.Tensor:
        """MLP on gathered first-layer rows; ``idx (B, M, Q)``, ``rel (B, M, Q, 2)``, ``rel_cell`` broadcastable
        to ``(B, M, Q, 2)``. Returns the ensemble-weighted RGB ``(B, Q, 3)`` in [0, 1] space."""
        if mode not in ("fast", "exact"):
            raise ValueError(f"fast-path query modes are 'fast' and 'exact', got {mode!r}")
        b, block_h, block_w, width = proj.shape
        _, n_members, q = idx.shape
        # bf16 end to end in fast mode: activations stay bf16 between layers (no large dtype copies) and
        # ReLUs run in place.
        compute = torch.bfloat16 if mode == "fast" else proj.dtype
        first = self.imnet.hidden[0]
        w_rest = first.weight[:, self.feat_dim :]
        extra = rel if rel_cell is None else torch.cat((rel, rel_cell.expand(b, n_members, q, 2).to(rel.dtype)), -1)
        # One row gather over the flattened batch: (B * M * Q, H1).
        offsets = (torch.arange(b, device=idx.device) * (block_h * block_w)).view(b, 1, 1)
        rows = proj.to(compute).reshape(b * block_h * block_w, width).index_select(0, (idx + offsets).reshape(-1))
        x = torch.addmm(rows, extra.reshape(-1, extra.shape[-1]).to(compute), w_rest.t().to(compute)).relu_()
        for layer in self.imnet.hidden[1:]:
            x = F.linear(x, layer.weight.to(compute), layer.bias.to(compute)).relu_()
        x = F.linear(x, self.imnet.out.weight.to(compute), self.imnet.out.bias.to(compute)).to(rel.dtype)
        pred = x.view(b, n_members, q, 3)
        if n_members == 1:
            return pred[:, 0] * 0.5 + 0.5
        return (pred * _ensemble_weights(rel)).sum(dim=1) * 0.5 + 0.5

    # -- reference path ------------------------------------------------------------------------------
    def query_reference(
        self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The paper's equations written out plainly; the oracle the fast path is tested against."""
        check_query(coord, cell, cell_needed_for="this model decodes cells" if self.config.cell_decode else None)
        b, c, h, w = feat.shape
        if self.config.feat_unfold:
            feat = F.unfold(feat, 3, padding=1).view(b, c * 9, h, w)
        shifts = _SHIFTS if self.config.local_ensemble else ((0, 0),)
        eps = _EPS_SHIFT if self.config.local_ensemble else 0.0
        rx, ry = 1.0 / h, 1.0 / w
        latent_centres = make_coord(h, w, flatten=False, dtype=feat.dtype, device=feat.device)
        latent_centres = latent_centres.permute(2, 0, 1).unsqueeze(0).expand(b, 2, h, w)
        preds, areas = [], []
        for vx, vy in shifts:
            shifted = coord.clone()
            shifted[..., 0] += vx * rx + eps
            shifted[..., 1] += vy * ry + eps
            shifted.clamp_(-1 + 1e-6, 1 - 1e-6)
            grid = shifted.flip(-1).unsqueeze(1)  # grid_sample wants (x = col, y = row)
            q_feat = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
            q_centre = F.grid_sample(latent_centres, grid, mode="nearest", align_corners=False)[:, :, 0].permute(
                0, 2, 1
            )
            rel = coord - q_centre
            rel[..., 0] *= h
            rel[..., 1] *= w
            inp = [q_feat, rel]
            if self.config.cell_decode:
                rel_cell = cell.clone()
                rel_cell[..., 0] *= h
                rel_cell[..., 1] *= w
                inp.append(rel_cell)
            x = torch.cat(inp, dim=-1)
            preds.append(self.imnet(x.view(b * coord.shape[1], -1)).view(b, coord.shape[1], -1))
            areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
        if len(preds) == 1:
            return preds[0] * 0.5 + 0.5
        total = sum(areas)
        areas = [areas[3], areas[2], areas[1], areas[0]]  # weight by the diagonally opposite rectangle
        out = sum(p * (a / total).unsqueeze(-1) for p, a in zip(preds, areas))
        return out * 0.5 + 0.5


def _ensemble_weights(rel: torch.Tensor) -> torch.Tensor:
    """``(B, 4, Q, 2)`` relative coords -> ``(B, 4, Q, 1)`` area weights, diagonally swapped, summing to 1."""
    area = (rel[..., 0] * rel[..., 1]).abs() + 1e-9
    return (area.flip(1) / area.sum(dim=1, keepdim=True)).unsqueeze(-1)


@NETWORKS.register(
    "liif",
    "LIIF implicit decoder over a configurable encoder (default EDSR-baseline)",
    role="upscaler",
    example={"encoder": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}}, "hidden": [16, 16]},
)
def build_liif(**kwargs: Any) -> LIIF:
    return LIIF(LIIFConfig.from_dict(kwargs))


build_liif.config_class = LIIFConfig  # lets hub.load_network pick the config keys out of config.json
