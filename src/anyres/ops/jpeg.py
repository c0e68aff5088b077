"""JPEG compression artefacts, one quality per sample: Pillow's real codec, or a differentiable model of it.

:func:`jpeg` rounds each sample of ``(B, C, H, W)`` in [0, 1] to 8 bits and round-trips it through Pillow's
encoder; :func:`jpeg_differentiable` models the same baseline codec in batched torch (YCbCr, 4:2:0, 8x8 DCT,
Annex K tables, straight-through rounding), close to Pillow but not bit-exact. Why Pillow, and what the
model leaves out: docs/methods/classical.md, "JPEG".
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["jpeg", "jpeg_differentiable", "quantization_tables", "SUBSAMPLING"]

# Chroma subsampling names Pillow understands; 4:2:0 is the libjpeg (and OpenCV) default.
SUBSAMPLING = ("4:4:4", "4:2:2", "4:2:0")


def _encode_decode(plane: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    mode = "L" if plane.ndim == 2 else "RGB"
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": quality}
    if mode == "RGB":
        options["subsampling"] = subsampling
    Image.fromarray(plane).save(buffer, format="JPEG", **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert(mode))


def jpeg(
    x: torch.Tensor, quality: torch.Tensor, *, subsampling: str = "4:2:0", straight_through: bool = False
) -> torch.Tensor:
    """Compress and decompress each sample with its own JPEG quality.

    Args:
        x: ``(B, 3, H, W)`` RGB (or ``(B, 1, H, W)`` gray) float in [0, 1]; values outside are clamped
            first (Real-ESRGAN clamps before its JPEG too), then rounded to 8 bits.
        quality: ``(B,)`` whole numbers in [1, 100] (libjpeg's scale; both references draw 30..95). An
            integer tensor, or a float tensor holding whole numbers: a continuous draw such as
            Real-ESRGAN's must be rounded by the caller, since a real codec only has integer qualities.
        subsampling: chroma subsampling for RGB, one of ``SUBSAMPLING`` (default 4:2:0).
        straight_through: if True, the result carries the identity gradient to ``x``
            (``x + (jpeg(x) - x).detach()``); otherwise it is detached from the graph.
    Returns:
        ``(B, C, H, W)`` decoded images in [0, 1] on ``x``'s device and in its dtype (multiples of 1/255).
    """
    if x.dim() != 4 or x.shape[1] not in (1, 3) or not x.is_floating_point():
        raise ValueError(
            f"x must be a float (B, 3, H, W) or (B, 1, H, W) tensor, got shape {tuple(x.shape)} and dtype {x.dtype}"
        )
    b = x.shape[0]
    if not isinstance(quality, torch.Tensor) or quality.shape != (b,):
        shape = tuple(quality.shape) if isinstance(quality, torch.Tensor) else type(quality).__name__
        raise ValueError(f"quality must have shape ({b},) for x of shape {tuple(x.shape)}, got {shape}")
    q = quality.detach().cpu()
    if q.is_floating_point() and not torch.equal(q, q.round()):
        raise ValueError(f"quality must hold whole numbers (round a continuous draw first), got {q.tolist()}")
    q = q.round().long()
    if ((q < 1) | (q > 100)).any():
        raise ValueError(f"quality must be in [1, 100], got {q.tolist()}")
    if subsampling not in SUBSAMPLING:
        raise ValueError(f"subsampling must be one of {SUBSAMPLING}, got {subsampling!r}")

    pixels = (
        (x.detach().clamp(0.0, 1.0) * 255.0).round().to(device="cpu", dtype=torch.uint8).permute(0, 2, 3, 1).numpy()
    )  # (B, H, W, C)
    if x.shape[1] == 1:
        pixels = pixels[..., 0]
    decoded = np.stack([_encode_decode(np.ascontiguousarray(pixels[i]), int(q[i]), subsampling) for i in range(b)])
    out = torch.from_numpy(decoded)
    out = out.unsqueeze(1) if x.shape[1] == 1 else out.permute(0, 3, 1, 2)
    out = out.to(device=x.device, dtype=x.dtype) / 255.0
    if straight_through:
        return x + (out - x).detach()
    return out


# ---------------------------------------------------------------------------------------------------------
# Differentiable model of the codec

# Example quantisation tables of the JPEG specification (ITU-T T.81, Annex K.1), row-major, at quality 50.
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
)

# JFIF (full-range BT.601) colour transform; chroma is offset by 128 on the 8-bit scale.
_RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
_YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def quantization_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """libjpeg's quality scaling of the Annex K tables: ``(B,)`` qualities in [1, 100] -> two ``(B, 8, 8)``.

    Scale ``floor(5000 / q)`` below 50 (libjpeg divides integers), ``200 - 2 q`` from 50; entry
    ``floor((base * scale + 50) / 100)`` clamped to [1, 255] (baseline). For whole qualities these are
    exactly the tables Pillow writes. Returns (luma, chroma) in ``quality``'s float dtype (float32 for
    integers).
    """
    q = quality if quality.is_floating_point() else quality.to(torch.float32)
    scale = torch.where(q < 50, torch.floor(5000.0 / q), 200.0 - 2.0 * q).view(-1, 1, 1)
    out = []
    for base in (_LUMA_TABLE, _CHROMA_TABLE):
        table = q.new_tensor(base)
        out.append(torch.floor((table * scale + 50.0) / 100.0).clamp(1.0, 255.0))
    return out[0], out[1]


def _round_st(v: torch.Tensor) -> torch.Tensor:
    # Rounding with the identity gradient (straight-through estimator).
    return v + (torch.round(v) - v).detach()


def _dct_matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 2-D 8x8 DCT as one (64, 64) matrix acting on row-major blocks (one GEMM instead of many 8x8)."""
    # Orthonormal 8-point DCT-II is exactly the JPEG FDCT (T.81 A.3.3); kron(D, D) maps vec(X) to vec(D X D^T).
    n = torch.arange(8, dtype=torch.float64)
    basis = torch.cos((2 * n.view(1, 8) + 1) * n.view(8, 1) * math.pi / 16) * 0.5
    basis[0] *= math.sqrt(0.5)
    return torch.kron(basis, basis).to(device=device, dtype=dtype)


def _quantize_plane(plane: torch.Tensor, table: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """(B, H, W) plane on the 0..255 scale, H and W multiples of 8, tables (B, 8, 8) -> decoded plane."""
    b, h, w = plane.shape
    blocks = (plane - 128.0).reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4).reshape(b, -1, 64)
    table = table.reshape(b, 1, 64)
    coef = _round_st((blocks @ dct.T) / table) * table
    blocks = (coef @ dct).reshape(b, h // 8, w // 8, 8, 8)
    return blocks.permute(0, 1, 3, 2, 4).reshape(b, h, w) + 128.0


def jpeg_differentiable(x: torch.Tensor, quality: torch.Tensor, *, subsampling: str = "4:2:0") -> torch.Tensor:
    """Differentiable JPEG compression of ``(B, 3, H, W)`` RGB in [0, 1] with per-sample quality.

    Steps: clamp and round to 8 bits; JFIF RGB -> YCbCr; pad to whole MCUs by repeating the last
    row/column (as libjpeg does); chroma 2x2 average (4:2:0); 8x8 DCT; divide by the quality-scaled
    tables (:func:`quantization_tables`), round, multiply back; inverse DCT; round and clamp the planes;
    chroma triangle upsampling (libjpeg's default "fancy" upsampling, i.e. bilinear with half-pixel centres);
    YCbCr -> RGB; round and clamp. Every rounding passes the gradient straight through; the clamps pass
    none outside [0, 1].

    Args:
        x: ``(B, 3, H, W)`` float RGB in [0, 1].
        quality: ``(B,)`` qualities in [1, 100]; need not be whole (the table scaling takes any value).
        subsampling: ``"4:2:0"`` (default) or ``"4:4:4"``.
    Returns:
        ``(B, 3, H, W)`` in [0, 1], ``x``'s dtype and device. Close to :func:`jpeg` (the same tables;
        about 40-50 dB PSNR between the two), not bit-exact. On a CPU the real codec is faster; this one
        is for gradients and GPUs.
    """
    if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"x must be a float (B, 3, H, W) tensor, got shape {tuple(x.shape)} and dtype {x.dtype}")
    b, _, h, w = x.shape
    if not isinstance(quality, torch.Tensor) or quality.shape != (b,):
        shape = tuple(quality.shape) if isinstance(quality, torch.Tensor) else type(quality).__name__
        raise ValueError(f"quality must have shape ({b},) for x of shape {tuple(x.shape)}, got {shape}")
    if subsampling not in ("4:2:0", "4:4:4"):
        raise ValueError(f"subsampling must be '4:2:0' or '4:4:4' here, got {subsampling!r}")
    q = quality.detach().to(device=x.device, dtype=x.dtype if x.dtype == torch.float64 else torch.float32)
    if not torch.isfinite(q).all() or ((q < 1) | (q > 100)).any():
        raise ValueError(f"quality must be in [1, 100], got {quality.tolist()}")
    luma_table, chroma_table = (t.to(x.dtype) for t in quantization_tables(q))
    dct = _dct_matrix(x.dtype, x.device)

    pixels = _round_st(x.clamp(0.0, 1.0) * 255.0)
    ycc = torch.einsum("ij,bjhw->bihw", x.new_tensor(_RGB_TO_YCBCR), pixels)
    ycc = ycc + x.new_tensor([0.0, 128.0, 128.0]).view(1, 3, 1, 1)
    mcu = 16 if subsampling == "4:2:0" else 8
    hp, wp = -(-h // mcu) * mcu, -(-w // mcu) * mcu
    ycc = F.pad(ycc, (0, wp - w, 0, hp - h), mode="replicate") if (hp, wp) != (h, w) else ycc

    luma = _quantize_plane(ycc[:, 0], luma_table, dct)
    chroma = ycc[:, 1:]
    if subsampling == "4:2:0":
        chroma = F.avg_pool2d(chroma, 2)
    chroma = _quantize_plane(chroma.reshape(2 * b, *chroma.shape[-2:]), chroma_table.repeat_interleave(2, 0), dct)
    chroma = _round_st(chroma.clamp(0.0, 255.0)).view(b, 2, *chroma.shape[-2:])
    if subsampling == "4:2:0":
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    luma = _round_st(luma.clamp(0.0, 255.0)).unsqueeze(1)

    ycc = torch.cat([luma, chroma - 128.0], dim=1)[..., :h, :w]
    rgb = torch.einsum("ij,bjhw->bihw", x.new_tensor(_YCBCR_TO_RGB), ycc)
    return _round_st(rgb.clamp(0.0, 255.0)) / 255.0
