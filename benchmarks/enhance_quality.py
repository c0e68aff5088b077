"""DeepLPF against its plain U-Net baseline on the synthetic enhancement evaluation sets: PSNR/SSIM of input and output.

Usage:
  python benchmarks/enhance_quality.py --task lowlight
      --models deeplpf=src/anyres/weights/deeplpf-lowlight,unet=checkpoints/unet-lowlight
      [--sets ../shared/data/benchmark/Set5,../shared/data/benchmark/Set14] [--seed 0]
      [--json benchmarks/results/enhance_lowlight.json] [--threads N]

Each set is scored by ``anyres.evaluation.evaluate(model, set, task=TASK, seed=SEED)``, the function behind
``anyres evaluate --task``: every HR photo is damaged with the task's record drawn from the seed and the photo's
name, enhanced at full resolution, and measured against the original (RGB, 8-bit, no shave). The damaged
input's own PSNR/SSIM is the first row. For ``lowlight`` a second reference row inverts each photo's own record
(exposure and gamma known, noise left in: ``(y / 2**exposure) ** (1 / gamma)``), an oracle no model has, which
separates what the noise costs from what guessing the exposure costs. Prints a Markdown table; writes the JSON
report (per-image figures included); the last line printed is one JSON object with the means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anyres.enhancement.tasks import get_task
from anyres.evaluation import evaluate, make_damaged
from anyres.hub import load_network
from anyres.io import list_images, read_image, write_bytes_atomic
from anyres.metrics import RGB_PROTOCOL, measure
from anyres.ops.color import quantize, to_rgb

HERE = Path(__file__).resolve().parent


def _parameters(folder: str) -> int:
    net, _ = load_network(folder)
    return sum(p.numel() for p in net.parameters())


def _means(result: dict) -> dict:
    """The rounded means of one evaluation result, and its seconds per image."""
    means = {k: round(result[k], 4) for k in ("psnr", "ssim", "input_psnr", "input_ssim")}
    return means | {"seconds_per_image": round(result["seconds"] / result["n"], 3)}


def lowlight_oracle(folder: Path, seed: int) -> dict:
    """Mean PSNR/SSIM of undoing each photo's own lowlight record except its noise (see the module doc)."""
    task = get_task("lowlight")
    scores = []
    for path in list_images(folder):
        clean = to_rgb(read_image(path)[0]).contiguous()
        damaged, record = make_damaged(clean, task, seed, path.name)
        undone = (damaged / 2.0 ** record["exposure"]).clamp(0.0, 1.0) ** (1.0 / record["gamma"])
        scores.append(measure(quantize(undone), clean, 1, RGB_PROTOCOL))
    return {
        "psnr": round(sum(s.psnr for s in scores) / len(scores), 4),
        "ssim": round(sum(s.ssim for s in scores) / len(scores), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True, choices=["retouch", "lowlight"])
    ap.add_argument("--models", required=True, help="comma-separated label=weights-folder pairs")
    ap.add_argument("--sets", default="../shared/data/benchmark/Set5,../shared/data/benchmark/Set14")
    ap.add_argument("--seed", type=int, default=0, help="run seed of the per-image damage records")
    ap.add_argument("--json", type=Path, default=None, help="default: benchmarks/results/enhance_TASK.json")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    models = dict(item.split("=", 1) for item in args.models.split(",") if item)
    sets = [Path(s) for s in args.sets.split(",") if s]
    reports = {
        label: {s.name: evaluate(folder, s, task=args.task, seed=args.seed, progress=False) for s in sets}
        for label, folder in models.items()
    }
    means = {label: {name: _means(r["results"][0]) for name, r in by_set.items()} for label, by_set in reports.items()}
    first = next(iter(means.values()))
    lines = [
        f"`{args.task}` damage, seed {args.seed}; PSNR (dB) / SSIM on RGB, no shave, full resolution.",
        "",
        "| | parameters | " + " | ".join(s.name for s in sets) + " |",
        "|---|---:|" + "---|" * len(sets),
        "| damaged input | – | "
        + " | ".join(f"{first[s.name]['input_psnr']:.2f} / {first[s.name]['input_ssim']:.4f}" for s in sets)
        + " |",
    ]
    oracle = {s.name: lowlight_oracle(s, args.seed) for s in sets} if args.task == "lowlight" else None
    if oracle:
        lines.append(
            "| oracle: own exposure and gamma undone, noise kept | – | "
            + " | ".join(f"{oracle[s.name]['psnr']:.2f} / {oracle[s.name]['ssim']:.4f}" for s in sets)
            + " |"
        )
    params = {label: _parameters(folder) for label, folder in models.items()}
    for label in models:
        lines.append(
            f"| {label} (`{models[label]}`) | {params[label]:,} | "
            + " | ".join(f"{means[label][s.name]['psnr']:.2f} / {means[label][s.name]['ssim']:.4f}" for s in sets)
            + " |"
        )
    print("\n".join(lines))
    result = {
        "task": args.task,
        "seed": args.seed,
        "models": models,
        "parameters": params,
        "means": means,
        "oracle": oracle,
        "command": "python benchmarks/enhance_quality.py " + " ".join(sys.argv[1:]),
        "reports": {label: {name: r["results"][0] for name, r in by_set.items()} for label, by_set in reports.items()},
    }
    out = args.json or HERE / "results" / f"enhance_{args.task}.json"
    write_bytes_atomic(out, (json.dumps(result, indent=2) + "\n").encode())
    print(json.dumps({k: result[k] for k in ("task", "seed", "models", "parameters", "means", "oracle")}))


if __name__ == "__main__":
    main()
