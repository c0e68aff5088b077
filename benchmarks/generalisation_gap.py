"""Is a run limited by its data? PSNR on photos it trained on against Set14, for models along one run.

Usage:
  python benchmarks/generalisation_gap.py --models LABEL=FOLDER ... [--train ../shared/data/train]
      [--every 28] [--scales 2,4] [--threads 1] [--json benchmarks/results/generalisation_gap.json]

The training photos are every ``--every``-th of the sorted images under ``--train`` (all its subfolders), scored
under the same benchmark protocol as Set14 (bicubic LR, Y channel, shave). If later models gain much more on
the photos they trained on than on Set14, the run is learning those photos rather than the task: more steps
buy little, more data would. If both rise together, the run is limited by its steps, not by its data. The
``LABEL`` is the iteration count, so the table is in training order.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from statistics import mean

import torch

from anyres.evaluation import evaluate, parse_scales
from anyres.evaluation.benchmark import scale_label
from anyres.io import list_images

HERE = Path(__file__).resolve().parent


def training_sample(root: Path, every: int) -> list[Path]:
    """Every ``every``-th image of ``root``'s subfolders, in sorted path order."""
    files = sorted(f for d in sorted(p for p in root.iterdir() if p.is_dir()) for f in list_images(d))
    return files[::every]


def psnr_by_scale(model: str, data: Path, scales: list[float]) -> tuple[dict[str, float], dict[str, dict]]:
    """Mean PSNR per scale, and each image's PSNR per scale."""
    report = evaluate(model, data, scales, progress=False, metrics=("psnr",))
    means, images = {}, {}
    for r in report["results"]:
        key = "x" + scale_label(r["scale"])
        means[key], images[key] = r["psnr"], {k: v["psnr"] for k, v in r["per_image"].items()}
    return means, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True, help="LABEL=FOLDER, LABEL being the iteration count")
    ap.add_argument("--train", default="../shared/data/train", type=Path)
    ap.add_argument("--test", default="../shared/data/benchmark/Set14", type=Path)
    ap.add_argument("--every", default=28, type=int)
    ap.add_argument("--scales", default="2,4")
    ap.add_argument("--threads", default=1, type=int)
    ap.add_argument("--json", default=HERE / "results" / "generalisation_gap.json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scales = parse_scales(args.scales)
    sample = training_sample(args.train, args.every)
    sets = sorted({f.parent.name for f in sample})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        seen = Path(tmp)
        for f in sample:  # one flat folder; names are unique across the three sets
            (seen / f"{f.parent.name}_{f.name}").symlink_to(f.resolve())
        for item in args.models:
            label, folder = item.split("=", 1)
            train, train_images = psnr_by_scale(folder, seen, scales)
            test, _ = psnr_by_scale(folder, args.test, scales)
            by_set = {  # the sample's mean per training set (BSD200, General100, T91)
                k: {d: mean([v for n, v in images.items() if n.startswith(d + "_")]) for d in sets}
                for k, images in train_images.items()
            }
            rows.append(
                {"iterations": int(label), "model": folder, "train": train, "test": test, "train_by_set": by_set}
            )
            print(label, json.dumps({"train": train, "test": test}), flush=True)
    keys = ["x" + scale_label(s) for s in scales]
    first = rows[0]
    print(f"\ntraining sample: {len(sample)} images (every {args.every}th of {args.train})")
    name = args.test.name
    head = " | ".join(f"{k} seen | {k} {name} | {k} gap" for k in keys)
    print(f"| iterations | {head} |\n|---|" + "---|" * (3 * len(keys)))
    for r in rows:
        cells = []
        for k in keys:
            cells += [f"{r['train'][k]:.3f}", f"{r['test'][k]:.3f}", f"{r['train'][k] - r['test'][k]:+.3f}"]
        print(f"| {r['iterations']:,} | " + " | ".join(cells) + " |")
    print(f"\ngain from {first['iterations']:,} (seen / {name}; seen by training set: " + ", ".join(sets) + "):")
    for r in rows[1:]:
        gains = []
        for k in keys:
            per_set = ", ".join(f"{r['train_by_set'][k][d] - first['train_by_set'][k][d]:+.3f}" for d in sets)
            gains.append(
                f"{k} {r['train'][k] - first['train'][k]:+.3f} / {r['test'][k] - first['test'][k]:+.3f} ({per_set})"
            )
        print(f"  {r['iterations']:,}: " + ", ".join(gains))
    record = {"training_sample": [str(f) for f in sample], "test_data": str(args.test), "scales": keys, "rows": rows}
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({"json": str(args.json), "n_seen": len(sample)}))


if __name__ == "__main__":
    main()
