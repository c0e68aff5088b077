"""Reproduce the published bicubic baseline (benchmark protocol) on Set5 and Set14.

Usage: python benchmarks/bicubic_baseline.py [--data ../shared/data/benchmark]
Prints a markdown table of ours vs published (PSNR within 0.03 dB and SSIM within 0.001 required) and,
as its last line, a JSON object with every figure and an overall "pass".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anyres.evaluation import evaluate

# Published bicubic numbers of the SR literature (Y channel, shave = scale), as quoted in the issue.
PUBLISHED = {
    "Set5": {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)},
    "Set14": {2: (30.24, 0.8688), 3: (27.55, 0.7742), 4: (26.00, 0.7027)},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/benchmark")
    args = ap.parse_args()
    rows, ok = [], True
    print("| set | scale | PSNR ours | PSNR published | diff | SSIM ours | SSIM published | diff |")
    print("|---|---|---|---|---|---|---|---|")
    for name, table in PUBLISHED.items():
        report = evaluate("bicubic", Path(args.data) / name, sorted(table), progress=False)
        for r in report["results"]:
            p, s = table[int(r["scale"])]
            dp, ds = r["psnr"] - p, r["ssim"] - s
            ok &= abs(dp) <= 0.03 and abs(ds) <= 0.001
            rows.append(
                {
                    "set": name,
                    "scale": r["scale"],
                    "psnr": round(r["psnr"], 3),
                    "ssim": round(r["ssim"], 4),
                    "published_psnr": p,
                    "published_ssim": s,
                }
            )
            print(
                f"| {name} | x{int(r['scale'])} | {r['psnr']:.3f} | {p:.2f} | {dp:+.3f} | {r['ssim']:.4f} | {s:.4f} | {ds:+.4f} |"
            )
    print(json.dumps({"rows": rows, "pass": bool(ok)}))


if __name__ == "__main__":
    main()
