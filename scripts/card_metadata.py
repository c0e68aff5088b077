"""Write the Hugging Face-style metadata header (YAML front matter) of every shipped model card.

Usage: python scripts/card_metadata.py [--record benchmarks/results/fp16_weights.json] [--check]

The header (``anyres.hub.card_header``) holds the license, tags, training datasets and a ``model-index`` whose
metric values are the PSNRs measured on the shipped (float16) weights by ``python benchmarks/fp16_weights.py``
(its JSON record): per SR model Set5 and Set14 at x2 / x3 / x4 (benchmark protocol, Y channel), per enhancer
Set14 under its synthetic damage task. A model the record does not cover (a newer blind model) takes its
Set14 PSNR and LPIPS on Real-ESRGAN LR from ``benchmarks/blind_quality.py``'s JSON reports, also measured on
the shipped weights. The card text below the header is left as it is. ``--check`` writes
nothing and exits 1 when a card's header differs from what it would write.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anyres.hub import CARD, CONFIG, WEIGHTS_DIR, card_header, with_card_header

ROOT = Path(__file__).resolve().parents[1]


def metrics_for(name: str, record: dict) -> list[dict]:
    out = []
    for row in record.get("sr", []):
        if row["model"] == name:
            out.append(
                {
                    "dataset": row["set"],
                    "type": "psnr",
                    "value": row["psnr_fp16"],
                    "name": f"PSNR (Y) x{row['scale']:g}",
                }
            )
    for row in record.get("enhancement", []):
        if row["model"] == name:
            out.append(
                {
                    "dataset": f"{row['set']} ({row['task']} damage, seed 0)",
                    "type": "psnr",
                    "value": row["psnr_fp16"],
                    "name": "PSNR (RGB)",
                }
            )
    if not out:
        out = blind_metrics(name)
    return out


def blind_metrics(name: str) -> list[dict]:
    """Set14 PSNR / LPIPS of ``name`` on Real-ESRGAN LR (seed 0) from blind_quality.py's report, if any."""
    path = ROOT / "benchmarks" / "results" / f"blind_{name}_Set14_realesrgan.json"
    if not path.is_file():
        return []
    report = json.loads(path.read_text())
    dataset = f"Set14 (Real-ESRGAN LR, seed {report['degradation']['seed']})"
    out = []
    for r in report["results"]:
        out.append(
            {"dataset": dataset, "type": "psnr", "value": round(r["psnr"], 4), "name": f"PSNR (Y) x{r['scale']:g}"}
        )
        if "lpips" in r:
            out.append(
                {
                    "dataset": dataset,
                    "type": "lpips",
                    "value": round(r["lpips"], 4),
                    "name": f"LPIPS (alex) x{r['scale']:g}",
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", type=Path, default=ROOT / "benchmarks" / "results" / "fp16_weights.json")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    record = json.loads(args.record.read_text())
    stale = []
    for folder in sorted(p.parent for p in WEIGHTS_DIR.glob(f"*/{CONFIG}")):
        config = json.loads((folder / CONFIG).read_text())
        card = (folder / CARD).read_text()
        new = with_card_header(card, card_header(config, metrics_for(folder.name, record)))
        if new != card:
            stale.append(folder.name)
            if not args.check:
                (folder / CARD).write_text(new)
        print(f"{folder.name}: {len(metrics_for(folder.name, record))} metric values", file=sys.stderr)
    if args.check and stale:
        sys.exit(f"stale card headers: {', '.join(stale)} (run python scripts/card_metadata.py)")


if __name__ == "__main__":
    main()
