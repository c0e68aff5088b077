"""Visual smoke test of the enhancement models on the 8 MIT-Adobe FiveK pairs (input, Expert C retouch).

Usage: ``python benchmarks/fivek_smoke.py [--models deeplpf-retouch,deeplpf-lowlight] [--data DIR] [--threads 2]
[--out benchmarks/results/fivek_smoke.png]``

Writes a contact sheet, one row per photo: the FiveK input, then each model's output, then Expert C's retouch
(tiles 192 px high, no text: the column order is in the JSON written beside the PNG). Prints the RGB PSNR of
the input and of each output against Expert C. These 8 photos are in DPE's *training* pool and our models
never saw FiveK (they were trained on synthetic damage), so the numbers are a smoke test: an output should
look like a photo, not like noise or a colour wash, and should not be far worse than its input. They are not
a FiveK benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from anyres.enhancement.api import enhance_rgb, load_enhancer
from anyres.io import list_images, read_image, write_bytes_atomic, write_image
from anyres.metrics import RGB_PROTOCOL, measure
from anyres.ops.color import quantize, to_rgb
from anyres.ops.resize import imresize

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "enhance" / "FiveK"
TILE_HEIGHT, PAD = 192, 4


def pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    """``(id, input, expert)`` for every id prefix (``a4514``...) present in both ``input/`` and ``expertC/``."""

    def by_id(sub: str) -> dict[str, Path]:
        return {p.name.split("-")[0]: p for p in list_images(folder / sub)}

    inputs, experts = by_id("input"), by_id("expertC")
    return [(key, inputs[key], experts[key]) for key in sorted(set(inputs) & set(experts))]


def sheet(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    """The tiles of every row, resized to one height, side by side on a white background."""
    tiles = [
        [imresize(t, size=(TILE_HEIGHT, round(t.shape[-1] * TILE_HEIGHT / t.shape[-2]))).clamp(0, 1) for t in row]
        for row in rows
    ]
    width = max(sum(t.shape[-1] + PAD for t in row) + PAD for row in tiles)
    canvas = torch.ones(1, 3, len(tiles) * (TILE_HEIGHT + PAD) + PAD, width)
    for r, row in enumerate(tiles):
        x, y = PAD, PAD + r * (TILE_HEIGHT + PAD)
        for t in row:
            canvas[..., y : y + TILE_HEIGHT, x : x + t.shape[-1]] = t
            x += t.shape[-1] + PAD
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models",
        default="deeplpf-retouch,deeplpf-lowlight",
        help="comma-separated enhancement model names or weights folders",
    )
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fivek_smoke.png"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    found = pairs(args.data)
    if not found:
        sys.exit(f"no input/expertC pairs under {args.data}")
    models = [m for m in args.models.split(",") if m]
    nets = {m: load_enhancer(m) for m in models}
    rows, records = [], []
    for key, inp, exp in found:
        x = to_rgb(read_image(inp)[0]).contiguous()  # an opaque alpha (4 of the 8 PNGs) is split off
        target = to_rgb(read_image(exp)[0]).contiguous()
        if x.shape != target.shape:
            sys.exit(f"{key}: input {tuple(x.shape[-2:])} and Expert C {tuple(target.shape[-2:])} differ in size")
        outs = {m: quantize(enhance_rgb(net, x)) for m, net in nets.items()}
        record = {
            "id": key,
            "input": inp.name,
            "expert": exp.name,
            "psnr": {"input": round(measure(x, target, 1, RGB_PROTOCOL).psnr, 2)}
            | {m: round(measure(o, target, 1, RGB_PROTOCOL).psnr, 2) for m, o in outs.items()},
        }
        records.append(record)
        rows.append([x, *outs.values(), target])
        print(f"{key}: PSNR vs Expert C " + ", ".join(f"{k} {v:.2f}" for k, v in record["psnr"].items()))
    means = {k: round(sum(r["psnr"][k] for r in records) / len(records), 2) for k in records[0]["psnr"]}
    print("mean: " + ", ".join(f"{k} {v:.2f} dB" for k, v in means.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_image(args.out, sheet(rows), overwrite=True)
    summary = {
        "columns": ["input", *models, "expertC"],
        "tile_height": TILE_HEIGHT,
        "photos": records,
        "mean_psnr": means,
    }
    write_bytes_atomic(args.out.with_suffix(".json"), (json.dumps(summary, indent=1) + "\n").encode())
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
