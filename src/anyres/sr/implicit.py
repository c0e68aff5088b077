"""What the encoder + implicit-decoder networks (LIIF, DIINN, LIIFusion) share: the encoder,
``encode`` and ``forward`` (= ``query(encode(...))``); subclasses provide ``query``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from anyres.checks import check_same_shape, check_shape
from anyres.nn.config import resolve_config
from anyres.nn.precision import bf16_fast, resolve_mode
from anyres.registry import NETWORKS

__all__ = ["ImplicitNetwork", "QUERY_MODES", "check_query"]

# fast: bf16 hidden layers where bf16 is native (anyres.nn.precision), else float32; exact: float32;
# reference: the paper's plain path (slow; never tiled).
QUERY_MODES = ("fast", "exact", "reference")


def check_query(coord: torch.Tensor, cell: torch.Tensor | None, *, cell_needed_for: str | None) -> None:
    """``coord`` is a float ``(B, Q, 2)`` tensor; when ``cell_needed_for`` says why the model needs the cell,
    ``cell`` must be given with ``coord``'s shape (otherwise it is not looked at)."""
    check_shape(coord, "coord", ("B", "Q", 2))
    if cell_needed_for is not None:
        if cell is None:
            raise ValueError(f"{cell_needed_for}: pass cell of shape (B, Q, 2)")
        check_same_shape(cell, "cell", coord, "coord")


class ImplicitNetwork(nn.Module):
    """Base of the arbitrary-scale networks: resolves the config, builds ``self.encoder`` from its
    ``{name, args}`` sub-spec and sets ``self.feat_dim`` (``9 C`` with 3x3 unfolding, else ``C``).

    Subclasses set ``config_class`` (a dataclass with ``from_dict``, ``encoder`` and ``feat_unfold``) and add
    their decoder after calling ``super().__init__`` (so the encoder's parameters come first).
    """

    config_class: ClassVar[type]

    def __init__(self, config: Any = None, **kwargs: Any):
        super().__init__()
        self.config = config = resolve_config(self.config_class, config, kwargs)
        self.encoder = NETWORKS.build(config.encoder["name"], **config.encoder.get("args", {}))
        c = self.encoder.out_dim
        self.feat_dim = c * 9 if config.feat_unfold else c

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` in [0, 1] -> latent grid ``(B, C, h, w)``."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"lr must be (B, 3, h, w), got {tuple(lr.shape)}")
        return self.encoder((lr - 0.5) / 0.5)

    def forward(
        self,
        lr: torch.Tensor,
        coord: torch.Tensor,
        cell: torch.Tensor | None = None,
        mode: str = "fast",
        encoder_bf16: bool = False,
        **encode_options: Any,
    ) -> torch.Tensor:
        """``query(encode(lr, **encode_options), coord, cell, mode)``; ``encoder_bf16`` runs ``encode`` under
        bfloat16 autocast (training speed). ``encode_options``: e.g. LIIFusion's ``prior``."""
        if encoder_bf16 and bf16_fast(lr.device):
            with torch.autocast(lr.device.type, dtype=torch.bfloat16):
                feat = self.encode(lr, **encode_options)
            feat = feat.float()
        else:
            feat = self.encode(lr, **encode_options)
        return self.query(feat, coord, cell, mode=mode)

    def query_grid(
        self,
        proj: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        cell: torch.Tensor | None = None,
        mode: str = "fast",
        grid: tuple[int, int, int, int] | None = None,
    ) -> torch.Tensor:
        """RGB ``(1, R * C, 3)`` on the grid ``rows (R,) x cols (C,)`` of coordinates, raster order.

        Same values as :meth:`query_projected` on the flattened grid, with the coordinate work done per
        axis (O(R + C) instead of O(R * C)). ``cell``: ``(2,)``, one cell for all queries.
        """
        b, block_h, block_w, _ = proj.shape
        if b != 1:
            raise ValueError(f"query_grid renders one image, got a batch of {b}")
        mode = resolve_mode(mode, proj.device)
        return self._query_grid(proj, rows, cols, cell, mode, grid or (block_h, block_w, 0, 0))

    def query(
        self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor | None = None, mode: str = "fast"
    ) -> torch.Tensor:
        """RGB at ``coord`` decoded from ``feat`` (see class doc for shapes); ``mode`` in :data:`QUERY_MODES`."""
        if mode == "reference":
            return self.query_reference(feat, coord, cell)
        if mode not in QUERY_MODES:
            raise ValueError(f"unknown query mode {mode!r}; expected one of {QUERY_MODES}")
        mode = resolve_mode(mode, feat.device)
        return self.query_projected(self.project_for(feat, mode), coord, cell, mode=mode)
