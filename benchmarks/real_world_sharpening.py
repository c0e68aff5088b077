"""Is a perceptual model's LPIPS held back by softness? Sharpen its output after the fact and score again.

Usage:
  python benchmarks/real_world_sharpening.py [--model liif-real-gan] [--weights 0,0.5,1] [--scale 4]
      [--set Set14] [--degradation realesrgan] [--seed 0] [--threads 1] [--json PATH]

Each LR is made by ``--degradation`` from ``--seed`` (``anyres evaluate``'s protocol), the model upscales it,
and its clamped output is sharpened by :func:`anyres.ops.filtering.unsharp_mask` with the given weight
(threshold 0: everywhere). If LPIPS falls as the weight grows, the model is too soft and sharper targets
should help; if it rises, what LPIPS misses is texture, not edge contrast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from anyres.evaluation import evaluate
from anyres.ops.filtering import unsharp_mask
from anyres.sr.pretrained import load_upscaler
from anyres.sr.upscaler import Upscaler

HERE = Path(__file__).resolve().parent


class Sharpened(Upscaler):
    """An upscaler whose clamped output is unsharp-masked by ``weight``."""

    def __init__(self, base: Upscaler, weight: float):
        self.base, self.weight = base, weight
        self.name = f"{base.name}+usm{weight:g}"

    def upscale_rgb(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out = self.base.upscale_rgb(lr, size).clamp(0, 1)
        if self.weight == 0:
            return out
        return unsharp_mask(out.double(), weight=self.weight, threshold=0.0).to(out.dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="liif-real-gan")
    ap.add_argument("--weights", default="0,0.5,1")
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/benchmark"))
    ap.add_argument("--set", default="Set14")
    ap.add_argument("--degradation", default="realesrgan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "real_world_sharpening.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = load_upscaler(args.model)
    rows = []
    print(f"| {args.model} + unsharp mask weight | PSNR (dB) | SSIM | LPIPS |\n|---|---|---|---|")
    for w in (float(x) for x in args.weights.split(",")):
        r = evaluate(
            Sharpened(base, w),
            args.data / args.set,
            [args.scale],
            degradation=args.degradation,
            seed=args.seed,
            metrics=["psnr", "ssim", "lpips"],
            progress=False,
        )["results"][0]
        rows.append(
            {"weight": w, "psnr": round(r["psnr"], 3), "ssim": round(r["ssim"], 4), "lpips": round(r["lpips"], 4)}
        )
        print(f"| {w:g} | {rows[-1]['psnr']:.2f} | {rows[-1]['ssim']:.4f} | {rows[-1]['lpips']:.4f} |", flush=True)
    command = "python benchmarks/real_world_sharpening.py " + " ".join(
        f"--{k} {v}" for k, v in (("model", args.model), ("weights", args.weights), ("scale", f"{args.scale:g}"))
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"command": command, "set": args.set, "degradation": args.degradation, "seed": args.seed, "rows": rows},
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
