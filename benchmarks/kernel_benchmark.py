"""How well KernelGAN recovers known kernels: a DIV2KRK-like set made from any HR folder, then the error.

The set (``../shared/reference/blind_sr.md`` Sec. 5, the DIV2KRK recipe), one random kernel per image,
drawn from ``torch.Generator(derive_seed(seed, file name))`` so each image's kernel depends only on the
seed and its name:

* an 11 x 11 anisotropic Gaussian ``exp(-(x - mu)^T Sigma^-1 (x - mu) / 2)``, ``Sigma = R(theta)
  diag(l1, l2) R(theta)^T``. The eigenvalues ``l1, l2`` are *variances*, drawn from U(0.175 s2, 2.5 s2)
  with s2 = 2, i.e. U(0.35, 5) px^2 as in the generator notebook (BlindSR_dataset_generator); that is
  standard deviations from 0.59 to 2.24 px, whose lower end matches the paper's "0.6" (the paper's
  "lambda ~ U(0.6, 5)", recalled from memory in the digest, mixes the two); ``theta ~ U[0, pi)``;
* the mean is pre-offset by ``0.5 (s2 - 11 % 2) = 0.5`` px along both axes (the x2 alignment);
* every tap is multiplied by ``1 + U(-0.25, 0.25)`` (multiplicative noise up to 25 % per tap), the kernel
  is renormalised and re-centred with :func:`anyres.degrade.learned.kernelgan.shift_kernel` (centre of mass at
  +0.5 px, zero-padded to 15 x 15): the true x2 kernel;
* the true x4 kernel is the analytic x4 of the true x2 kernel (KernelGAN#52: DIV2KRK's x4 kernels were
  built the same way), 29 x 29, centre of mass at +1.5 px;
* LR = the HR image (cropped to a multiple of the scale) correlated with the scale's kernel (reflect-101
  borders; the notebook's scipy default reflects half-sample, which only touches the outermost pixels),
  sampled at rows and columns ``0, s, 2s, ...`` (the notebook's ``round(linspace(0, H - s, H / s))``),
  clipped to [0, 1] and stored as 8-bit PNG. KernelGAN then runs on the PNG as read back.

The kernel error. Both kernels follow one convention (odd side, sum 1, centre of mass ``(s - 1) / 2`` px
from the centre tap), so they are compared tap by tap after zero-padding the smaller one to the larger
one's side about its centre tap (``pad_kernel``):

    ``ssd = sum_ij (k_est[i, j] - k_true[i, j])^2``        (lower is better, 0 = exact)

This is the squared L2 distance in kernel space, the quantity behind kernel-PSNR style scores, without a
peak value to choose. Aligning by centre of mass is the right alignment because KernelGAN cannot see a
translation of the kernel (it moves the whole LR image), so the translation is fixed by convention on both
sides. For scale: ``ssd_bicubic`` is the same distance for MATLAB's bicubic kernel (what a non-blind
method assumes), and ``relative`` is ``ssd / sum(k_true^2)`` (1 is the distance of an all-zero kernel).

Usage::

    python benchmarks/kernel_benchmark.py --data ../shared/data/benchmark/Set14 --limit 3 \\
        [--scale 2] [--iters 3000] [--seed 0] [--out benchmarks/results/kernelgan_x2.json] [--set-dir DIR]

The set is written to ``--set-dir`` (default: the ``--out`` path without ``.json`` plus ``_set``):
``NAME_lr_xS.png``, ``NAME_kernel_x2.npy``, ``NAME_kernel_x4.npy`` (true kernels) and
``NAME_estimate_xS.npy``. The report goes to ``--out``; the last line printed is the same JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from anyres.degrade.base import derive_seed
from anyres.degrade.learned.kernelgan import DEFAULT_ITERS, analytic_x4_kernel, estimate_kernel, shift_kernel
from anyres.io import list_images, read_image, write_bytes_atomic, write_image
from anyres.ops.color import to_rgb
from anyres.ops.filtering import filter2d
from anyres.ops.kernels import pad_kernel
from anyres.ops.resize import resize_matrix

KERNEL_SIZE = 11
NOISE = 0.25
VAR_RANGE = (0.175 * 2, 2.5 * 2)  # px^2, eigenvalues of the covariance of the x2 kernel

ERROR_DEFINITION = (
    "ssd = sum of squared tap differences between the estimated and the true kernel, both "
    "with centre of mass (s-1)/2 px from the centre tap, zero-padded to a common odd side about "
    "their centre taps; relative = ssd / sum(k_true^2); ssd_bicubic = the same for MATLAB's "
    "bicubic kernel"
)


def true_x2_kernel(generator: torch.Generator) -> torch.Tensor:
    """One DIV2KRK-style x2 kernel (module docstring), ``(15, 15)`` float64, sum 1, centre of mass +0.5 px."""
    lo, hi = VAR_RANGE
    lam = lo + (hi - lo) * torch.rand(2, generator=generator, dtype=torch.float64)
    theta = math.pi * float(torch.rand((), generator=generator, dtype=torch.float64))
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    inv = rot @ torch.diag(1.0 / lam) @ rot.t()  # inverse covariance, (x, y) = (column, row) order
    r = KERNEL_SIZE // 2
    ax = torch.arange(-r, r + 1, dtype=torch.float64) - 0.5 * (2 - KERNEL_SIZE % 2)
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    q = inv[0, 0] * x * x + 2.0 * inv[0, 1] * x * y + inv[1, 1] * y * y
    kernel = torch.exp(-0.5 * q)
    noise = 1.0 + NOISE * (2.0 * torch.rand(kernel.shape, generator=generator, dtype=torch.float64) - 1.0)
    kernel = kernel * noise
    return shift_kernel(kernel / kernel.sum(), 2)


def bicubic_kernel(scale: int, size: int) -> torch.Tensor:
    """MATLAB's antialiased bicubic x1/scale filter in a ``size`` frame, centre of mass ``(scale - 1) / 2`` px
    from the centre tap (the taps of an interior row of ``imresize``'s matrix)."""
    n = 16 * scale
    m = n // (2 * scale)  # an interior LR pixel; it averages HR pixels around m * scale + (scale - 1) / 2
    row = resize_matrix(n, n // scale, 1.0 / scale)[m]
    first = int(torch.nonzero(row)[0])
    taps = row[first : first + 4 * scale]
    # LR pixel m = sum_u k[u] hr[m * scale + u - size // 2], so HR column j sits at tap u = j - m s + size // 2.
    start = size // 2 + first - m * scale
    k1 = torch.zeros(size, dtype=torch.float64)
    k1[start : start + taps.numel()] = taps
    return torch.outer(k1, k1)


def kernel_errors(estimate: torch.Tensor, true: torch.Tensor, scale: int) -> dict:
    side = max(estimate.shape[-1], true.shape[-1])
    est = pad_kernel(estimate.double()[None], side)[0]
    ref = pad_kernel(true.double()[None], side)[0]
    bic = bicubic_kernel(scale, side)
    ssd = float(((est - ref) ** 2).sum())
    return {"ssd": ssd, "ssd_bicubic": float(((bic - ref) ** 2).sum()), "relative": ssd / float((ref**2).sum())}


def degrade(hr: torch.Tensor, kernel: torch.Tensor, scale: int) -> torch.Tensor:
    h, w = hr.shape[-2:]
    hr = hr[..., : h - h % scale, : w - w % scale]
    return filter2d(hr.double(), kernel[None]).clamp(0, 1)[..., ::scale, ::scale].float()


def save_npy(path: Path, array: torch.Tensor) -> None:
    buf = io.BytesIO()
    np.save(buf, array.detach().cpu().numpy())
    write_bytes_atomic(path, buf.getvalue())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/benchmark/Set14"))
    parser.add_argument("--limit", type=int, default=None, help="use the first N images (sorted by name)")
    parser.add_argument("--scale", type=int, choices=(2, 4), default=2)
    parser.add_argument("--iters", type=int, default=DEFAULT_ITERS)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kernels and KernelGAN")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/kernelgan_xS.json")
    parser.add_argument("--set-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(f"benchmarks/results/kernelgan_x{args.scale}.json")
    set_dir = args.set_dir or out.with_name(out.stem + "_set")
    files = list_images(args.data)[: args.limit]
    if not files:
        raise SystemExit(f"no images in {args.data}")

    rows = []
    for path in files:
        name = path.stem
        generator = torch.Generator().manual_seed(derive_seed(args.seed, path.name))
        k2 = true_x2_kernel(generator)
        k4 = analytic_x4_kernel(k2)
        true = k2 if args.scale == 2 else k4
        hr = to_rgb(read_image(path)[0])
        lr_path = set_dir / f"{name}_lr_x{args.scale}.png"
        write_image(lr_path, degrade(hr, true, args.scale), overwrite=True)
        save_npy(set_dir / f"{name}_kernel_x2.npy", k2)
        save_npy(set_dir / f"{name}_kernel_x4.npy", k4)
        lr = read_image(lr_path)[0]
        start = time.perf_counter()
        estimate = estimate_kernel(lr, scale=args.scale, iters=args.iters, seed=args.seed)
        seconds = time.perf_counter() - start
        save_npy(set_dir / f"{name}_estimate_x{args.scale}.npy", estimate)
        row = {
            "name": path.name,
            "hr_size": list(hr.shape[-2:]),
            "lr_size": list(lr.shape[-2:]),
            "kernel_size": [true.shape[-1], estimate.shape[-1]],
            **kernel_errors(estimate, true, args.scale),
            "seconds": round(seconds, 2),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    def mean(key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    report = {
        "benchmark": "kernelgan",
        "scale": args.scale,
        "iters": args.iters,
        "seed": args.seed,
        "data": str(args.data),
        "images": rows,
        "mean_ssd": mean("ssd"),
        "mean_ssd_bicubic": mean("ssd_bicubic"),
        "mean_relative": mean("relative"),
        "seconds_per_image": round(mean("seconds"), 2),
        "threads": 1,
        "error": ERROR_DEFINITION,
        "command": " ".join(["python", *sys.argv]),
    }
    write_bytes_atomic(out, (json.dumps(report, indent=1) + "\n").encode("utf-8"))
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
