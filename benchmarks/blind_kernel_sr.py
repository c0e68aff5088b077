"""SR on the kernel benchmark: (a) the default model assuming bicubic, (b) the blind path with the KernelGAN
kernel, (c) the blind path with the true kernel (upper bound of the kernel estimate).

Run ``python benchmarks/kernel_benchmark.py`` first: it writes the LR images, the true kernels and the
estimates into ``benchmarks/results/kernelgan_x2_set/``. This script reads them and the HR images, upscales
each LR x2 three ways and measures PSNR/SSIM with the benchmark protocol (Y channel, shave = 2).

Usage: ``python benchmarks/blind_kernel_sr.py [--data ../shared/data/benchmark/Set14] [--limit 3]
[--iters 100] [--model liif]``. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from anyres.io import list_images, read_image
from anyres.metrics import measure
from anyres.ops.color import to_rgb
from anyres.sr.blind import DEFAULT_ITERS, blind_upscale
from anyres.sr.pretrained import load_upscaler

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/benchmark/Set14"))
    ap.add_argument("--set-dir", type=Path, default=HERE / "results" / "kernelgan_x2_set")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--iters", type=int, default=DEFAULT_ITERS)
    ap.add_argument("--model", default="liif")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "blind_kernel_sr_x2.json")
    args = ap.parse_args()
    upscaler = load_upscaler(args.model, mode="fast")
    rows = []
    for path in list_images(args.data)[: args.limit]:
        name = path.stem
        lr_path = args.set_dir / f"{name}_lr_x2.png"
        if not lr_path.exists():
            raise SystemExit(f"{lr_path} missing: run benchmarks/kernel_benchmark.py first")
        hr = to_rgb(read_image(path)[0])
        lr = read_image(lr_path)[0]
        hr = hr[..., : 2 * lr.shape[-2], : 2 * lr.shape[-1]]
        size = tuple(hr.shape[-2:])
        row = {"name": path.name}
        with torch.inference_mode():
            sr = upscaler.upscale(lr, size).clamp(0, 1)
        score = measure(sr, hr, 2, "benchmark")
        row["a_bicubic_assumed"] = {"psnr": score.psnr, "ssim": score.ssim}
        for key, file in (
            ("b_estimated_kernel", f"{name}_estimate_x2.npy"),
            ("c_true_kernel", f"{name}_kernel_x2.npy"),
        ):
            kernel = torch.from_numpy(np.load(args.set_dir / file)).float()
            t0 = time.perf_counter()
            sr, info = blind_upscale(upscaler, lr, size, kernel=kernel, iters=args.iters, seed=0)
            score = measure(sr.clamp(0, 1), hr, 2, "benchmark")
            row[key] = {"psnr": score.psnr, "ssim": score.ssim, "adapt_seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ("a_bicubic_assumed", "b_estimated_kernel", "c_true_kernel")
    mean = {k: {m: sum(r[k][m] for r in rows) / len(rows) for m in ("psnr", "ssim")} for k in keys}
    report = {"model": args.model, "iters": args.iters, "images": rows, "mean": mean}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for k in keys:
        print(f"{k:>20}: PSNR {mean[k]['psnr']:.2f} dB  SSIM {mean[k]['ssim']:.4f}")
    print(json.dumps({"model": args.model, "iters": args.iters, "mean": mean}))


if __name__ == "__main__":
    main()
