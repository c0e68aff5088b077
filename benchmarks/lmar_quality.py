"""LMAR vs bicubic on the large-image enhancement path: PSNR of the full-resolution output, same frozen enhancer.

Usage:
  python benchmarks/lmar_quality.py [--enhancer checkpoints/unet-lowlight] [--lmar checkpoints/lmar-lowlight]
                                    [--task lowlight] [--scales 2,3,4] [--sets ../shared/data/benchmark/Set14]
                                    [--holdout 4] [--holdout-dir ../shared/data/train/General100] [--seed 0]
                                    [--no-full] [--json benchmarks/results/lmar_quality.json] [--threads N]

Every photo is used at its native resolution. It is damaged by ``--task`` with the per-image record that
``anyres evaluate --task`` draws (``derive_seed(seed, file name)``). Then, for each working scale ``s``: downsampled
by ``s`` (MATLAB bicubic, or the LMAR network), enhanced by the frozen enhancer, upsampled back (bicubic, or
Lanczos-3 after LMAR, as ``anyres.enhancement.api.enhance_rgb``), and measured against the undamaged photo (RGB, 8-bit,
no shave). All of it is ``anyres.evaluation.evaluate(..., task=, working_scale=, resampler=, resampler_model=)``;
this script only loops over sets, scales and the two resamplers. Unless ``--no-full``, the enhancer at full
resolution (no resampling) is measured too: the level the large-image path approaches.

Photo sets: the folders of ``--sets`` plus the ``--holdout`` largest photos (by area, ties by name) of
``--holdout-dir``, which must be the photos ``data.exclude`` of the LMAR config keeps out of its training; the
script checks the LMAR weights folder's recorded recipe and says so when a set overlaps the LMAR's (or the
enhancer's) training data. Prints a Markdown table (mean PSNR per set and scale, seconds per image of each path,
the parameters LMAR adds; both paths are run once on a small image first, so that
one-time costs stay out of the timings) and writes the JSON report; the last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

from anyres.evaluation import evaluate
from anyres.hub import load_network
from anyres.io import list_images, write_bytes_atomic

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def largest_photos(folder: Path, count: int) -> list[Path]:
    """The ``count`` largest images of ``folder`` by pixel count (ties broken by file name)."""

    def area(path: Path) -> int:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]

    return sorted(list_images(folder), key=lambda p: (-area(p), p.name))[:count]


def _training_record(folder: Path) -> dict:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    training = config.get("training") if isinstance(config, dict) else None
    return training if isinstance(training, dict) else {}


def _same_folder(a: str, b: Path) -> bool:
    try:
        return Path(a).resolve() == b.resolve()
    except OSError:
        return False


def overlap_warnings(sets: dict[str, list[Path]], enhancer: Path, lmar: Path) -> list[str]:
    """Plain-language notes on photos of the benchmark sets that a network was trained on."""
    notes = []
    lmar_rec, enh_rec = _training_record(lmar), _training_record(enhancer)
    excluded = set(lmar_rec.get("exclude", []))
    for name, files in sets.items():
        for who, rec, skip in (
            ("LMAR", lmar_rec, excluded),
            ("the enhancer", enh_rec, set(enh_rec.get("exclude", []))),
        ):
            folders = rec.get("data", [])
            seen = [
                p.name
                for p in files
                if any(_same_folder(f, p.resolve().parent) for f in folders) and p.name not in skip
            ]
            if seen:
                notes.append(
                    f"{name}: {len(seen)} of {len(files)} photos are in {who}'s training data "
                    f"({', '.join(seen[:5])}{', ...' if len(seen) > 5 else ''})"
                )
    if (
        lmar_rec
        and lmar_rec.get("enhancer", {}).get("folder")
        and not _same_folder(lmar_rec["enhancer"]["folder"], enhancer)
    ):
        notes.append(f"the LMAR was trained for the enhancer {lmar_rec['enhancer']['folder']}, not {enhancer}")
    return notes


def _warm_up(enhancer: Path, lmar_net) -> None:
    """Run both paths once on a small image, so that one-time costs do not land in the first timing."""
    import torch

    from anyres.enhancement.api import enhance_rgb, load_enhancer

    net = load_enhancer(str(enhancer))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for resampler in (None, lmar_net.eval()):
        enhance_rgb(net, x, working=(32, 32), resampler=resampler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enhancer", default="checkpoints/unet-lowlight", type=Path, help="frozen enhancer weights folder")
    ap.add_argument("--lmar", default="checkpoints/lmar-lowlight", type=Path, help="LMAR weights folder for it")
    ap.add_argument("--task", default="lowlight", choices=["lowlight", "retouch"])
    ap.add_argument("--scales", default="2,3,4", help="working scales (downsampling factors)")
    ap.add_argument("--sets", default="../shared/data/benchmark/Set14", help="comma-separated photo folders")
    ap.add_argument("--holdout", type=int, default=4, help="also the N largest photos of --holdout-dir (0: none)")
    ap.add_argument("--holdout-dir", default="../shared/data/train/General100", type=Path)
    ap.add_argument("--seed", type=int, default=0, help="run seed of the per-image damage records")
    ap.add_argument("--no-full", action="store_true", help="skip the full-resolution reference")
    ap.add_argument("--json", default=RESULTS / "lmar_quality.json", type=Path, help="where the report goes")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scales = [float(s) for s in args.scales.split(",")]

    lmar_net, _ = load_network(args.lmar)
    lmar_parameters = sum(p.numel() for p in lmar_net.parameters())
    _warm_up(args.enhancer, lmar_net)
    with tempfile.TemporaryDirectory() as tmp:
        sets: dict[str, Path] = {Path(s).name: Path(s) for s in args.sets.split(",") if s}
        members = {name: list_images(folder) for name, folder in sets.items()}
        if args.holdout > 0:
            picked = largest_photos(args.holdout_dir, args.holdout)
            name = f"{args.holdout_dir.name}-largest{args.holdout}"
            folder = Path(tmp) / name
            folder.mkdir()
            for p in picked:  # same file names, so the damage records are those of the original folder
                os.symlink(p.resolve(), folder / p.name)
            sets[name] = folder
            members[name] = picked
        warnings = overlap_warnings(members, args.enhancer, args.lmar)
        for note in warnings:
            print(f"note: {note}", file=sys.stderr)

        rows = []
        common = {"task": args.task, "seed": args.seed, "progress": False}
        for name, folder in sets.items():
            full = None
            if not args.no_full:
                full = evaluate(str(args.enhancer), folder, **common)["results"][0]
            for s in scales:
                paths = {}
                for resampler, model in (("bicubic", None), ("lmar", str(args.lmar))):
                    report = evaluate(
                        str(args.enhancer),
                        folder,
                        working_scale=s,
                        resampler=resampler,
                        resampler_model=model,
                        **common,
                    )
                    paths[resampler] = report["results"][0]
                b, m = paths["bicubic"], paths["lmar"]
                rows.append(
                    {
                        "set": name,
                        "scale": s,
                        "n": b["n"],
                        "input_psnr": round(b["input_psnr"], 3),
                        "full_psnr": round(full["psnr"], 3) if full else None,
                        "bicubic_psnr": round(b["psnr"], 3),
                        "lmar_psnr": round(m["psnr"], 3),
                        "delta_db": round(m["psnr"] - b["psnr"], 3),
                        "bicubic_seconds_per_image": round(b["seconds"] / b["n"], 4),
                        "lmar_seconds_per_image": round(m["seconds"] / m["n"], 4),
                        "per_image": {
                            k: {
                                "bicubic": round(b["per_image"][k]["psnr"], 3),
                                "lmar": round(m["per_image"][k]["psnr"], 3),
                            }
                            for k in b["per_image"]
                        },
                    }
                )
    result = {
        "enhancer": str(args.enhancer),
        "lmar": str(args.lmar),
        "task": args.task,
        "seed": args.seed,
        "scales": scales,
        "sets": {k: [p.name for p in v] for k, v in members.items()},
        "lmar_parameters": lmar_parameters,
        "notes": warnings,
        "rows": rows,
        "command": "python benchmarks/lmar_quality.py " + " ".join(sys.argv[1:]),
    }
    print(_table(rows, lmar_parameters, args))
    write_bytes_atomic(args.json, (json.dumps(result, indent=2) + "\n").encode())
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "rows"}
            | {"rows": [{k: v for k, v in r.items() if k != "per_image"} for r in rows]}
        )
    )


def _table(rows: list[dict], parameters: int, args: argparse.Namespace) -> str:
    lines = [
        f"Enhancer `{args.enhancer}` on `{args.task}` damage (seed {args.seed}), PSNR (dB, RGB) of the "
        f"full-resolution output; LMAR `{args.lmar}` adds {parameters:,} parameters.",
        "",
        "| set | images | working scale | damaged input | full-res enhancer | bicubic path | LMAR path | "
        "LMAR - bicubic | s/img bicubic | s/img LMAR |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        full = f"{r['full_psnr']:.2f}" if r["full_psnr"] is not None else "–"
        lines.append(
            f"| {r['set']} | {r['n']} | x{r['scale']:g} | {r['input_psnr']:.2f} | {full} | "
            f"{r['bicubic_psnr']:.2f} | {r['lmar_psnr']:.2f} | {r['delta_db']:+.2f} | "
            f"{r['bicubic_seconds_per_image']:.3f} | {r['lmar_seconds_per_image']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
