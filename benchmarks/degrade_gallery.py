"""Render a degradation gallery: one HR crop degraded n times by each pipeline, to check the ranges by eye.

Usage: python benchmarks/degrade_gallery.py [--image PATH_OR_DIR] [--crop 128] [--n 12] [--scale 4] [--seed 0]
                                            [--out benchmarks/results/degrade_gallery.png]
Writes the PNG and, beside it, a JSON file with the same stem holding the source, the crop box and every
record (replayable with ``get_pipeline(name).apply(hr, records)``) plus a few statistics per LR tile. Prints
one line per pipeline and a line for each tile that looks suspicious (flat, shifted in brightness, very far
from a clean bicubic downscale).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from anyres.degrade import get_pipeline
from anyres.degrade.gallery import make_gallery
from anyres.io import list_images, read_image, write_image
from anyres.ops.color import to_rgb
from anyres.ops.resize import imresize
from anyres.pictures import from_pil

PREFERRED = ("baboon", "comic")


def pick_image(path: Path) -> Path:
    """``path`` itself, or from a folder the first image whose name contains a preferred word, else the first."""
    if not path.is_dir():
        return path
    images = sorted(list_images(path))
    if not images:
        raise SystemExit(f"no images in {path}")
    for word in PREFERRED:
        for p in images:
            if word in p.name.lower():
                return p
    return images[0]


def centre_crop(x: torch.Tensor, size: int) -> tuple[torch.Tensor, list[int]]:
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw].contiguous(), [top, left, ch, cw]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def tile_stats(hr: torch.Tensor, records: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Per LR tile: mean, std, the fraction of clipped pixels and the PSNR against a clean bicubic LR."""
    out = {}
    for name, recs in records.items():
        pipe = get_pipeline(recs[0]["pipeline"])
        clean = imresize(hr, size=recs[0]["lr_size"], kernel="cubic", antialias=True).clamp(0, 1)
        rows = []
        for rec in recs:
            lr = pipe.apply(hr, [rec])
            clipped = ((lr <= 0.0) | (lr >= 1.0)).float().mean().item()
            rows.append(
                {
                    "mean": round(lr.mean().item(), 4),
                    "clean_mean": round(clean.mean().item(), 4),
                    "std": round(lr.std().item(), 4),
                    "clipped": round(clipped, 4),
                    "psnr_vs_clean": round(psnr(lr, clean), 2),
                }
            )
        out[name] = rows
    return out


def warnings_for(stats: dict[str, list[dict]], hr_std: float) -> list[str]:
    notes = []
    for name, rows in stats.items():
        for i, s in enumerate(rows):
            why = []
            if s["std"] < 0.25 * hr_std:
                why.append(f"nearly flat (std {s['std']:.3f} vs HR {hr_std:.3f})")
            if abs(s["mean"] - s["clean_mean"]) > 0.08:
                why.append(f"brightness shift {s['mean'] - s['clean_mean']:+.3f}")
            if s["clipped"] > 0.2:
                why.append(f"{100 * s['clipped']:.0f}% clipped")
            if s["psnr_vs_clean"] < 15:
                why.append(f"PSNR vs clean LR {s['psnr_vs_clean']:.1f} dB")
            if s["psnr_vs_clean"] > 45:
                why.append(f"almost unchanged (PSNR vs clean LR {s['psnr_vs_clean']:.1f} dB)")
            if why:
                notes.append(f"{name} sample {i + 1}: " + "; ".join(why))
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--image",
        default="../shared/data/benchmark/Set14/",
        help="an image, or a folder (a 'baboon' or 'comic' image if present, else the first)",
    )
    ap.add_argument("--crop", type=int, default=128, help="side of the centre crop (HR tile size)")
    ap.add_argument("--n", type=int, default=12, help="samples per pipeline")
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/degrade_gallery.png")
    args = ap.parse_args()
    torch.set_num_threads(1)

    path = pick_image(Path(args.image))
    img, _ = read_image(path)
    hr, box = centre_crop(to_rgb(img), args.crop)
    image, records = make_gallery(hr, n=args.n, scale=args.scale, seed=args.seed, return_records=True)

    out = Path(args.out)
    write_image(out, from_pil(image), overwrite=True)
    stats = tile_stats(hr, records)
    payload = {
        "image": str(path),
        "crop": {"top": box[0], "left": box[1], "height": box[2], "width": box[3]},
        "scale": args.scale,
        "seed": args.seed,
        "n": args.n,
        "records": records,
        "tile_stats": stats,
    }
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(payload, indent=1) + "\n")

    print(f"{path.name}: crop {box[2]}x{box[3]} at ({box[0]}, {box[1]}), x{args.scale:g}, seed {args.seed}")
    for name, rows in stats.items():
        ps = [r["psnr_vs_clean"] for r in rows]
        print(
            f"  {name:<11} PSNR vs clean bicubic LR: min {min(ps):.1f} median {sorted(ps)[len(ps) // 2]:.1f} "
            f"max {max(ps):.1f} dB; mean shift {max(abs(r['mean'] - r['clean_mean']) for r in rows):.3f} max"
        )
    for note in warnings_for(stats, hr.std().item()):
        print("  check:", note)
    print(f"wrote {out} ({image.width}x{image.height}) and {json_path}")


if __name__ == "__main__":
    main()
