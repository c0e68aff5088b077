"""Blind SR: the bicubic-trained default `liif` vs the blind `liif-real` on degraded and on bicubic LR.

Usage:
  python benchmarks/blind_quality.py [--models liif,liif-real,LABEL=runs/NAME/model] [--sets Set14] [--scales 2,4]
                                     [--degradations realesrgan,bsrgan] [--seed 0] [--card liif-real]

Each model is evaluated with ``anyres.evaluate`` (benchmark protocol: Y, shave ceil(s)) on plain bicubic LR
and on LR made by each degradation pipeline from ``--seed`` (the same LR for every model: parameters are
drawn per image and scale from the seed, see ``anyres.evaluate``). Bicubic upsampling of the degraded LR is
the floor. JSON reports go to benchmarks/results/blind_*.json; ``--card NAME`` writes the measured table
into that shipped model's card. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anyres.evaluation import evaluate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models",
        default="bicubic,liif,liif-real",
        help="names, or LABEL=FOLDER for a weights folder (a run's model/)",
    )
    ap.add_argument("--data", default="../shared/data/benchmark", type=Path)
    ap.add_argument("--sets", default="Set14")
    ap.add_argument("--scales", default="2,4")
    ap.add_argument("--degradations", default="realesrgan,bsrgan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metrics", default=None, help="e.g. psnr,ssim,lpips (when the evaluator supports it)")
    ap.add_argument("--card", default=None, help="shipped model whose card gets the table")
    args = ap.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    specs = dict(m.split("=", 1) if "=" in m else (m, m) for m in args.models.split(","))
    models = list(specs)
    lrs = [None] + [d for d in args.degradations.split(",") if d]
    extra = {"metrics": args.metrics.split(",")} if args.metrics else {}
    rows = []
    for name in args.sets.split(","):
        for lr_kind in lrs:
            for model in models:
                tag = f"blind_{model}_{name}_{lr_kind or 'bicubic'}"
                report = evaluate(
                    specs[model],
                    args.data / name,
                    scales,
                    degradation=lr_kind,
                    seed=args.seed,
                    json_path=RESULTS / f"{tag}.json",
                    progress=False,
                    overwrite=True,
                    **extra,
                )
                for r in report["results"]:
                    row = {
                        "set": name,
                        "lr": lr_kind or "bicubic",
                        "model": model,
                        "scale": r["scale"],
                        "psnr": round(r["psnr"], 3),
                        "ssim": round(r["ssim"], 4),
                    }
                    if "lpips" in r:
                        row["lpips"] = round(r["lpips"], 4)
                    rows.append(row)
    table = _table(rows, models, args.seed)
    print(table)
    if args.card:
        _write_card(args.card, table, args)
    print(json.dumps({"seed": args.seed, "rows": rows}))


def _table(rows: list[dict], models: list[str], seed: int) -> str:
    has_lpips = any("lpips" in r for r in rows)
    head = " | ".join(f"{m} PSNR / SSIM" + (" / LPIPS" if has_lpips else "") for m in models)
    lines = [f"| set | LR (seed {seed}) | scale | {head} |", "|---|---|---|" + "---|" * len(models)]
    keys = sorted({(r["set"], r["lr"], r["scale"]) for r in rows}, key=lambda k: (k[0], k[1] != "bicubic", k[1], k[2]))
    for key in keys:
        cells = []
        for m in models:
            r = next((r for r in rows if (r["set"], r["lr"], r["scale"]) == key and r["model"] == m), None)
            if r is None:
                cells.append("–")
                continue
            cell = f"{r['psnr']:.2f} / {r['ssim']:.4f}"
            if "lpips" in r:
                cell += f" / {r['lpips']:.4f}"
            cells.append(cell)
        lines.append(f"| {key[0]} | {key[1]} | x{key[2]:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _recipe(model: str) -> tuple[str, str, str, str]:
    """What the card says of a shipped blind model: where it started, its objective, its limits and the
    commands that made it."""
    command = f"`anyres train configs/{model}.yaml`, then `python scripts/ship_model.py runs/{model} {model}`"
    if model == "liif-real":
        return (
            "the first stage of `liif-real` (`configs/liif-real.yaml`: the shipped `liif` fine-tuned 3,000\n"
            "  iterations on Real-ESRGAN-degraded LR only)",
            "- 30 % of the samples keep the clean MATLAB-bicubic LR (`degradation.prob: 0.7`), so that one model\n"
            "  serves clean and degraded photos. L1 against the clean HR (no GAN, no perceptual loss: a\n"
            "  PSNR-oriented blind model),",
            "- On clean bicubic LR it is above bicubic upsampling but below `liif` (table): use `liif` for clean\n"
            "  images when the last dB matters.",
            "`anyres train configs/liif-real.yaml`, `anyres train configs/liif-real-mix.yaml`, then\n"
            "  `python scripts/ship_model.py runs/liif-real-mix liif-real`",
        )
    if model == "liif-real-gan":
        return (
            "the first stage of `liif-real` (`configs/liif-real.yaml`, before its clean-sample fine-tuning)",
            "- Objective (Real-ESRGAN's, on an implicit decoder): L1 + 1.0 x VGG16 perceptual L1 (conv1_2, conv2_2,\n"
            "  conv3_3, conv4_3, conv5_3 before ReLU, weighted 0.1, 0.1, 1, 1, 1) + 0.1 x relativistic GAN with a\n"
            "  U-Net spectral-norm discriminator, on 48x48 HR windows (docs/methods/liif-real-gan.md).",
            "- Sharper and more textured than `liif-real`, at a PSNR cost; it may invent plausible detail that\n"
            "  was not in the scene. Deterministic: the same input gives the same output (no sampling).\n"
            "- On clean bicubic LR it is far below `liif`: use `liif` for clean images.\n"
            "- Still young (a few CPU-hours of GAN training): softer than Real-ESRGAN x4plus; the comparison, the\n"
            '  target and pictures are in benchmarks/RESULTS.md, "A perceptual real-world model".',
            command,
        )
    return (
        "`liif`",
        "- L1 against the clean HR (no unsharp-masked GT, no GAN, no perceptual loss: a PSNR-oriented blind model),",
        "- On clean bicubic LR it is worse than `liif` (it has learnt to remove noise and ringing that is not\n"
        "  there, and sharpens less): use `liif` for clean images.",
        command,
    )


def _write_card(model: str, table: str, args: argparse.Namespace) -> None:
    folder = HERE.parent / "src" / "anyres" / "weights" / model
    config = json.loads((folder / "config.json").read_text())
    t = config.get("training", {})
    init, objective, limits, command = _recipe(model)
    card = f"""# Model card: `{model}`

{config.get("description", "")}

## Architecture
The same network as the default `liif`: LIIF (Chen, Liu, Wang — CVPR 2021) with the EDSR-baseline encoder
(16 blocks, 64 channels) and a two-hidden-layer (256, 256) implicit decoder, local ensemble and cell decoding:
any scale, exact tiling.

## Training
- Initialised from {init}, then fine-tuned on {", ".join(t.get("data", []))} with LR patches
  made on the fly by anyres' Real-ESRGAN second-order degradation (`anyres.degrade.realesrgan`, the
  reference's default ranges; every choice drawn per sample) at the sample's own scale U({t.get("scale_range", ["?", "?"])[0]}, {t.get("scale_range", ["?", "?"])[1]}).
{objective}
  Adam {json.dumps(t.get("optimizer", {}))}, batch {t.get("batch_size")}, {t.get("patch")}x{t.get("patch")} LR patches,
  {t.get("queries_per_patch")} queries per patch, {t.get("precision")}.
- Iterations of this fine-tuning: {t.get("iterations")} ({t.get("wall_time_hours")} h of steps on a 2-core CPU).
- Commands: {command}.

## Measured (benchmark protocol: Y channel, shave = ceil(scale); the same LR for every model)
Command: `python benchmarks/blind_quality.py --models {args.models} --sets {args.sets} --scales {args.scales} --degradations {args.degradations} --seed {args.seed}{" --metrics " + args.metrics if args.metrics else ""} --card {model}`

{table}

"bicubic" LR is the standard benchmark LR (MATLAB bicubic); the other rows make each LR with that pipeline
(parameters per image and scale from the seed: `anyres evaluate --degradation NAME --seed N`).

## Use and limits
- For real photos (noise, blur, JPEG, unknown resampling): `anyres upscale photo.jpg --scale 4 --model {model}`.
{limits}
- Trained for x1-x4; larger factors extrapolate.
- Weights: `model.safetensors` (safetensors, no pickle), float16 but the decoder (float32), upcast on load (PSNR:
  benchmarks/RESULTS.md, "Float16 weights"); `config.json` rebuilds the network.
"""
    (folder / "README.md").write_text(card)


if __name__ == "__main__":
    main()
