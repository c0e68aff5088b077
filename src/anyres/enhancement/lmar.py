"""LMAR: learning model-aware resampling (Yu et al., CVPR 2024).

A learned downscaler ``(B, 3, H, W) -> (B, 3, h, w)`` for a frozen enhancer: per-HR-pixel kernels predicted by
an MLP from ``[rel, cell, d_bp]`` compensate the plain resize, ``x_c = Conv1x1([D(x) ; D(K^T unfold_k(x))])``,
computed in HR row chunks in bounded memory. The equations, the memory bound and the differences from the
released code: docs/methods/lmar.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from anyres.enhancement.lmar_coords import (
    apply_axis_matrix,
    axis_offsets,
    back_projection_residual,
    nonzero_span,
    relative_coords,
    resample_cell,
)
from anyres.nn.config import config_from_dict, resolve_config
from anyres.ops.resize import MODES, imresize, resize_matrix
from anyres.registry import NETWORKS

__all__ = ["LMAR", "LMARConfig", "KERNEL_NORMS", "MLP_INPUTS", "DEFAULT_CHUNK_PIXELS"]

KERNEL_NORMS = ("none", "softmax")
MLP_INPUTS = 7  # rel (2) + cell (2) + back-projection residual (3)
# Small enough that a chunk's temporaries (81 kernel weights per pixel) stay below glibc's mmap threshold
# and are reused from the heap: with 2^17 pixels every chunk re-faulted fresh pages (markedly slower on CPU).
DEFAULT_CHUNK_PIXELS = 1 << 13
_LEAK = 0.01
_LAST_LAYER_GAIN = 0.1
_RESIZE_KERNELS = tuple(sorted(set(MODES.values())))


def _is_int(v: Any, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


@dataclass
class LMARConfig:
    """Everything needed to rebuild an LMAR resampler (saved as ``config.json`` beside the weights).

    ``hidden``: widths of the kernel MLP's hidden layers (5 x 128 as the reference). ``kernel_size``: odd
    ``k`` of the per-pixel ``k x k`` kernels (3). ``resize_kernel``: the ``D`` / ``U`` kernel, an
    :func:`~anyres.ops.resize.imresize` kernel name (``lanczos3``). ``antialias``: widen ``D``'s kernel when
    downscaling (``False``, as the reference). ``kernel_norm``: ``"none"`` (reference) or ``"softmax"``.
    """

    hidden: list[int] = field(default_factory=lambda: [128] * 5)
    kernel_size: int = 3
    resize_kernel: str = "lanczos3"
    antialias: bool = False
    kernel_norm: str = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.hidden, (list, tuple)) or not self.hidden or not all(_is_int(v, 1) for v in self.hidden):
            raise ValueError(f"lmar hidden must be a non-empty list of ints >= 1, got {self.hidden!r}")
        self.hidden = list(self.hidden)
        if not _is_int(self.kernel_size, 1) or self.kernel_size % 2 == 0:
            raise ValueError(f"lmar kernel_size must be an odd int >= 1, got {self.kernel_size!r}")
        if self.resize_kernel not in _RESIZE_KERNELS:
            raise ValueError(f"lmar resize_kernel must be one of {_RESIZE_KERNELS}, got {self.resize_kernel!r}")
        if not isinstance(self.antialias, bool):
            raise ValueError(f"lmar antialias must be a bool, got {self.antialias!r}")
        if self.kernel_norm not in KERNEL_NORMS:
            raise ValueError(f"lmar kernel_norm must be one of {KERNEL_NORMS}, got {self.kernel_norm!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LMARConfig:
        return config_from_dict(cls, d, "lmar")


def _check_call(hr: Any, size: Any) -> tuple[int, int]:
    if (
        not isinstance(hr, torch.Tensor)
        or not hr.is_floating_point()
        or hr.dim() != 4
        or hr.shape[1] != 3
        or hr.numel() == 0
    ):
        shape = tuple(hr.shape) if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise ValueError(f"lmar input must be a non-empty float (B, 3, H, W) RGB tensor in [0, 1], got shape {shape}")
    if not isinstance(size, Sequence) or len(size) != 2 or not all(_is_int(v, 1) for v in size):
        raise ValueError(f"size must be an (h, w) pair of positive ints, got {size!r}")
    h, w = int(size[0]), int(size[1])
    big_h, big_w = hr.shape[-2:]
    if h > big_h or w > big_w:
        raise ValueError(f"lmar downscales (scale >= 1 per axis): size {(h, w)} exceeds the input's {(big_h, big_w)}")
    return h, w


class LMAR(nn.Module):
    """The LMAR resampler: ``forward(hr, size) -> lr``.

    ``hr``: ``(B, 3, H, W)`` float RGB in [0, 1]; ``size = (h, w)`` with ``1 <= h <= H``, ``1 <= w <= W`` (any
    scale >= 1, non-integer and per-axis); result ``(B, 3, h, w)``, not clamped (Lanczos and the learned
    compensation may overshoot [0, 1], and the frozen enhancer is trained on what it gets). Device and dtype
    follow ``hr`` (the parameters must match it, as for any ``nn.Module``). No state is kept between calls.
    """

    config_class = LMARConfig

    def __init__(self, config: LMARConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__()
        self.config = config = resolve_config(LMARConfig, config, kwargs)
        taps = 3 * config.kernel_size**2
        dims = [MLP_INPUTS, *config.hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(_LEAK)]
        last = nn.Linear(dims[-1], taps * 3)
        with torch.no_grad():
            last.weight.mul_(_LAST_LAYER_GAIN)
            last.bias.mul_(_LAST_LAYER_GAIN)
        self.kernel_mlp = nn.Sequential(*layers, last)
        self.modulation = nn.Conv2d(6, 3, 1)
        with torch.no_grad():
            eye = torch.eye(3)
            self.modulation.weight.copy_(torch.cat([eye, eye], dim=1)[:, :, None, None])
            self.modulation.bias.zero_()

    def config_dict(self) -> dict[str, Any]:
        return {"arch": "lmar", **asdict(self.config)}

    # -- building blocks -----------------------------------------------------------------------------
    def kernels(self, feats: torch.Tensor) -> torch.Tensor:
        """Per-pixel kernels from MLP inputs, channels first: ``(B, 7, N)`` ``[rel, cell, d_bp]`` ->
        ``(B, 3 k^2, 3, N)`` (dim 1: input channel and tap, channel-major as ``unfold``; dim 2: output channel).

        The ``Linear`` layers are applied as ``weight @ x + bias`` on the channel dim, so that the pixels stay
        the contiguous last dim from the features through to the kernel application.
        """
        if feats.dim() != 3 or feats.shape[1] != MLP_INPUTS:
            raise ValueError(f"kernel MLP inputs must be (B, {MLP_INPUTS}, N), got {tuple(feats.shape)}")
        outs = []
        for x in feats.unbind(0):  # one (C, N) matrix per sample: a plain addmm, no batched copies
            for module in self.kernel_mlp:
                if isinstance(module, nn.Linear):
                    x = torch.addmm(module.bias[:, None], module.weight, x)
                else:
                    x = module(x)
            outs.append(x)
        kern = (outs[0].unsqueeze(0) if len(outs) == 1 else torch.stack(outs)).unflatten(
            1, (3 * self.config.kernel_size**2, 3)
        )
        return kern.softmax(dim=1) if self.config.kernel_norm == "softmax" else kern

    def _matrices(self, hr: torch.Tensor, size: tuple[int, int]):
        """``D`` and ``U`` per axis as ``(out, in)`` matrices, ``None`` where the axis keeps its size."""
        big_h, big_w = hr.shape[-2:]
        h, w = size
        opts = {
            "kernel": self.config.resize_kernel,
            "antialias": self.config.antialias,
            "dtype": hr.dtype,
            "device": hr.device,
        }
        down_h = resize_matrix(big_h, h, **opts) if h != big_h else None
        down_w = resize_matrix(big_w, w, **opts) if w != big_w else None
        up_h = resize_matrix(h, big_h, **opts) if h != big_h else None
        up_w = resize_matrix(w, big_w, **opts) if w != big_w else None
        return down_h, down_w, up_h, up_w

    def _compensation_rows(
        self,
        hr: torch.Tensor,
        up_rows: torch.Tensor,
        rel_row: torch.Tensor,
        rel_col: torch.Tensor,
        cell: torch.Tensor,
        r0: int,
    ) -> torch.Tensor:
        """``dx`` on HR rows ``[r0, r0 + R)``: ``(B, 3, R, W)``, given those rows of ``U(x_d)`` and of ``rel_row``."""
        b, _, big_h, big_w = hr.shape
        rows = up_rows.shape[-2]
        r1 = r0 + rows
        p = self.config.kernel_size // 2
        top, bottom = max(r0 - p, 0), min(r1 + p, big_h)
        # The zero padding of unfold(x, k, padding=p) on the whole image, restricted to these rows.
        window = F.pad(hr[..., top:bottom, :], (p, p, p - (r0 - top), p - (bottom - r1)))
        patches = F.unfold(window, self.config.kernel_size)  # (B, 3 k^2, R * W)
        residual = hr[..., r0:r1, :] - up_rows  # (B, 3, R, W)
        geometry = torch.cat(
            [
                rel_row.view(1, 1, rows, 1).expand(b, 1, rows, big_w),
                rel_col.view(1, 1, 1, big_w).expand(b, 1, rows, big_w),
                cell.view(1, 2, 1, 1).expand(b, 2, rows, big_w),
            ],
            dim=1,
        )
        feats = torch.cat([geometry, residual], dim=1).flatten(2)  # (B, 7, R * W)
        kern = self.kernels(feats)  # (B, 3 k^2, 3, R * W)
        dx = (patches.unsqueeze(2) * kern).sum(dim=1)  # (B, 3, R * W)
        return dx.view(b, 3, rows, big_w)

    # -- forward ---------------------------------------------------------------------------------------
    def forward(
        self,
        hr: torch.Tensor,
        size: Sequence[int],
        *,
        chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
        checkpoint: bool = False,
    ) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, h, w)``, in HR row chunks of about ``chunk_pixels`` pixels (module doc).

        ``checkpoint``: under autograd, recompute each chunk in the backward pass instead of keeping its
        activations (training on large crops). The result does not depend on ``chunk_pixels`` beyond float
        rounding.
        """
        h, w = _check_call(hr, size)
        if not _is_int(chunk_pixels, 1):
            raise ValueError(f"chunk_pixels must be a positive int, got {chunk_pixels!r}")
        b, _, big_h, big_w = hr.shape
        down_h, down_w, up_h, up_w = self._matrices(hr, (h, w))

        def along(x: torch.Tensor, mat: torch.Tensor | None, dim: int) -> torch.Tensor:
            return x if mat is None else apply_axis_matrix(x, mat, dim)

        x_d = along(along(hr, down_h, -2), down_w, -1)
        x_d_wide = along(x_d, up_w, -1)  # (B, 3, h, W): U's width pass, done once
        _, rel_row = axis_offsets(big_h, h, hr.dtype, hr.device)
        _, rel_col = axis_offsets(big_w, w, hr.dtype, hr.device)
        cell = resample_cell((big_h, big_w), (h, w), hr.dtype, hr.device)
        rows_per_chunk = max(1, chunk_pixels // big_w)
        # D's height pass of dx, accumulated chunk by chunk; its width pass follows the loop.
        dx_tall = hr.new_zeros(b, 3, h, big_w)
        for r0 in range(0, big_h, rows_per_chunk):
            r1 = min(r0 + rows_per_chunk, big_h)
            up_rows = x_d_wide[..., r0:r1, :] if up_h is None else apply_axis_matrix(x_d_wide, up_h[r0:r1], -2)
            args = (hr, up_rows, rel_row[r0:r1], rel_col, cell, r0)
            if checkpoint and torch.is_grad_enabled():
                dx = _checkpoint(self._compensation_rows, *args, use_reentrant=False)
            else:
                dx = self._compensation_rows(*args)
            if down_h is None:
                dx_tall[..., r0:r1, :] += dx
            else:
                cols = down_h[:, r0:r1]
                a, z = nonzero_span(cols.t())
                if a < z:
                    dx_tall[..., a:z, :] += torch.matmul(cols[a:z], dx)
        d_dx = along(dx_tall, down_w, -1)
        return self.modulation(torch.cat([x_d, d_dx], dim=1))

    def forward_reference(self, hr: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """The equations of docs/methods/lmar.md on whole tensors (memory ``O(H W k^2)``): the test oracle."""
        h, w = _check_call(hr, size)
        b, _, big_h, big_w = hr.shape
        k = self.config.kernel_size
        opts = {"kernel": self.config.resize_kernel, "antialias": self.config.antialias}
        x_d = imresize(hr, size=(h, w), **opts)
        residual = back_projection_residual(hr, (h, w), **opts)
        rel = relative_coords((big_h, big_w), (h, w), hr.dtype, hr.device)
        cell = resample_cell((big_h, big_w), (h, w), hr.dtype, hr.device)
        feats = torch.cat(
            [rel.expand(b, 2, big_h, big_w), cell.view(1, 2, 1, 1).expand(b, 2, big_h, big_w), residual], dim=1
        )
        kern = self.kernels(feats.flatten(2))  # (B, 3 k^2, 3, H W)
        patches = F.unfold(hr, k, padding=k // 2)  # (B, 3 k^2, H W)
        dx = torch.einsum("btn,bton->bon", patches, kern).view(b, 3, big_h, big_w)
        return self.modulation(torch.cat([x_d, imresize(dx, size=(h, w), **opts)], dim=1))


@NETWORKS.register(
    "lmar",
    "LMAR learned model-aware downscaler (compensatory kernels + steganographic mix)",
    role="resampler",
    example={"hidden": [8, 8]},
)
def build_lmar(**kwargs: Any) -> LMAR:
    return LMAR(LMARConfig.from_dict(kwargs))


build_lmar.config_class = LMARConfig  # lets hub.load_network pick the config keys out of config.json
