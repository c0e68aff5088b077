"""Per-image scores of blind models on one set and scale, side by side, from their recorded JSON files.

Usage:
  python benchmarks/blind_per_image.py [--scale 4] [--set Set14] [--degradation realesrgan]
      [--models realesrgan_x4plus,liif-real-gan,liif-real,bicubic]

Reads ``results/blind_<model>_<set>_<degradation>.json`` (``blind_quality.py``) or, for
``realesrgan_x4plus``, ``results/realesrgan_x4plus_<set>.json`` (``realesrgan_x4plus.py``): every file holds
the same LR draws, so the rows compare the models on the same input. Prints a Markdown table of PSNR / LPIPS
per image, sorted by the first model's LPIPS lead over the second, and the mean of each column.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def per_image(model: str, dataset: str, degradation: str, scale: float) -> dict[str, dict]:
    name = f"{model}_{dataset}.json" if model == "realesrgan_x4plus" else f"blind_{model}_{dataset}_{degradation}.json"
    path = HERE / "results" / name
    if not path.is_file():
        raise SystemExit(f"blind_per_image: no {path}; run the benchmark that writes it first")
    for row in json.loads(path.read_text())["results"]:
        if float(row["scale"]) == scale:
            return row["per_image"]
    raise SystemExit(f"blind_per_image: {path} has no scale {scale:g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--set", default="Set14")
    ap.add_argument("--degradation", default="realesrgan")
    ap.add_argument("--models", default="realesrgan_x4plus,liif-real-gan,liif-real,bicubic")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    if len(models) < 2:
        raise SystemExit("blind_per_image: give at least two models")
    scores = {m: per_image(m, args.set, args.degradation, args.scale) for m in models}
    images = sorted(scores[models[0]], key=lambda k: scores[models[0]][k]["lpips"] - scores[models[1]][k]["lpips"])
    print(f"{args.set} x{args.scale:g}, {args.degradation} LR: PSNR (dB) / LPIPS per image\n")
    print("| image | " + " | ".join(models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for name in images:
        cells = [f"{scores[m][name]['psnr']:.2f} / {scores[m][name]['lpips']:.3f}" for m in models]
        print(f"| {name} | " + " | ".join(cells) + " |")
    means = [
        f"{statistics.fmean(v['psnr'] for v in scores[m].values()):.2f} / "
        f"{statistics.fmean(v['lpips'] for v in scores[m].values()):.3f}"
        for m in models
    ]
    print("| mean | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
