"""Geometry of a downscale ``(H, W) -> (h, w)`` as LMAR sees it, plus banded resize products for row chunks.

Covering LR pixel of HR pixel ``i``: ``k(i) = ((2 i + 1) n) // (2 N)`` (exact integers; ties go right);
``rel(i) = ((2 i + 1) n - (2 k(i) + 1) N) / N`` in [-1, 1); ``cell = (2 h / H, 2 w / W)``; back-projection
residual ``hr - U(D(hr))``. Conventions and the tie rule against the reference: docs/methods/lmar.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from anyres.ops.resize import imresize

__all__ = [
    "covering_index",
    "axis_offsets",
    "relative_coords",
    "resample_cell",
    "back_projection_residual",
    "nonzero_span",
    "apply_axis_matrix",
]


def _check_axis(n_hr: int, n_lr: int) -> None:
    if not (isinstance(n_hr, int) and isinstance(n_lr, int)) or n_lr < 1 or n_hr < n_lr:
        raise ValueError(f"a downscale needs integer sizes with 1 <= lr <= hr, got hr={n_hr!r}, lr={n_lr!r}")


def _sizes(hr_size: Sequence[int], lr_size: Sequence[int]) -> tuple[int, int, int, int]:
    if len(hr_size) != 2 or len(lr_size) != 2:
        raise ValueError(f"sizes must be (height, width) pairs, got hr_size={hr_size!r}, lr_size={lr_size!r}")
    big_h, big_w = (int(v) for v in hr_size)
    h, w = (int(v) for v in lr_size)
    _check_axis(big_h, h)
    _check_axis(big_w, w)
    return big_h, big_w, h, w


def covering_index(n_hr: int, n_lr: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(n_hr,)`` long: index of the LR pixel covering each HR pixel centre, ``((2 i + 1) n_lr) // (2 n_hr)``.

    Non-decreasing, in ``[0, n_lr - 1]``; needs ``1 <= n_lr <= n_hr``.
    """
    _check_axis(n_hr, n_lr)
    i = torch.arange(n_hr, dtype=torch.int64, device=device)
    return ((2 * i + 1) * n_lr) // (2 * n_hr)


def axis_offsets(
    n_hr: int, n_lr: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One axis: ``(index, rel)``, both ``(n_hr,)``; ``index`` as :func:`covering_index`, ``rel`` in [-1, 1)
    half-LR-pixel units (docs/methods/lmar.md, "Geometry")."""
    index = covering_index(n_hr, n_lr, device)
    i = torch.arange(n_hr, dtype=torch.int64, device=device)
    numer = (2 * i + 1) * n_lr - (2 * index + 1) * n_hr  # exact integers
    return index, numer.to(torch.float64).div(n_hr).to(dtype)


def relative_coords(
    hr_size: Sequence[int],
    lr_size: Sequence[int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(2, H, W)`` relative offsets of every HR pixel: channel 0 the row offset (depends on the row only),
    channel 1 the column offset; values in [-1, 1) half-LR-pixel units."""
    big_h, big_w, h, w = _sizes(hr_size, lr_size)
    _, rel_row = axis_offsets(big_h, h, dtype, device)
    _, rel_col = axis_offsets(big_w, w, dtype, device)
    return torch.stack((rel_row[:, None].expand(big_h, big_w), rel_col[None, :].expand(big_h, big_w)))


def resample_cell(
    hr_size: Sequence[int],
    lr_size: Sequence[int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(2,)`` cell ``(2 h / H, 2 w / W)`` (``2 / scale`` per axis, in (0, 2])."""
    big_h, big_w, h, w = _sizes(hr_size, lr_size)
    return torch.tensor([2.0 * h / big_h, 2.0 * w / big_w], dtype=dtype, device=device)


def back_projection_residual(
    hr: torch.Tensor, size: Sequence[int], kernel: str = "lanczos3", antialias: bool = False
) -> torch.Tensor:
    """``hr - U(D(hr))``: the detail a resize round trip loses (LMAR's ``Delta_bp``).

    ``D = imresize(., size=size)`` and ``U = imresize(., size=(H, W))`` with the same ``kernel`` and
    ``antialias`` (``U`` upscales, so ``antialias`` only affects ``D``). ``hr``: ``(..., H, W)`` float, any
    range; ``size = (h, w)`` with ``h <= H``, ``w <= W``. Returns ``(..., H, W)``; zero for a constant image
    (resize weights sum to 1) and at scale 1. Differentiable.
    """
    if not torch.is_tensor(hr) or hr.dim() < 2 or not hr.is_floating_point():
        raise ValueError(f"hr must be a float (..., H, W) tensor, got {getattr(hr, 'shape', type(hr).__name__)}")
    big_h, big_w, h, w = _sizes(hr.shape[-2:], size)
    lr = imresize(hr, size=(h, w), kernel=kernel, antialias=antialias)
    return hr - imresize(lr, size=(big_h, big_w), kernel=kernel, antialias=antialias)


def nonzero_span(mat: torch.Tensor) -> tuple[int, int]:
    """Columns ``[a, b)`` outside which every entry of the 2-D ``mat`` is zero (``(0, 0)`` if all are)."""
    if mat.dim() != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(mat.shape)}")
    cols = torch.nonzero(mat.ne(0).any(dim=0)).flatten()
    if cols.numel() == 0:
        return 0, 0
    return int(cols[0]), int(cols[-1]) + 1


def apply_axis_matrix(x: torch.Tensor, mat: torch.Tensor, dim: int, block: int = 256) -> torch.Tensor:
    """Resize ``x`` along ``dim`` (-1 or -2) by ``mat`` ``(out, in)``: ``y = mat @ x`` along that axis.

    Resize matrices are banded (an output pixel reads a few neighbouring inputs), so each block of
    ``block`` outputs is computed from only the input span its rows touch (:func:`nonzero_span`). This
    costs ``O(out * (block / scale + support))`` per line instead of the dense ``O(out * in)``; the value
    equals the dense product up to float summation order. ``mat`` must have ``x``'s dtype and device.
    """
    if dim not in (-1, -2):
        raise ValueError(f"dim must be -1 or -2, got {dim}")
    if mat.dim() != 2 or mat.shape[1] != x.shape[dim]:
        raise ValueError(f"mat must be (out, {x.shape[dim]}) for x of shape {tuple(x.shape)}, got {tuple(mat.shape)}")
    pieces = []
    for o0 in range(0, mat.shape[0], block):
        rows = mat[o0 : o0 + block]
        a, b = nonzero_span(rows)
        if a == b:
            shape = list(x.shape)
            shape[dim] = rows.shape[0]
            pieces.append(x.new_zeros(shape))
        elif dim == -1:
            pieces.append(torch.matmul(x[..., a:b], rows[:, a:b].t()))
        else:
            pieces.append(torch.matmul(rows[:, a:b], x[..., a:b, :]))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=dim)
