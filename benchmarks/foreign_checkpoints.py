"""How closely anyres reproduces the original projects' outputs from their own checkpoints, per family.

Usage:
  python benchmarks/foreign_checkpoints.py [--fixtures ../shared/fixtures/official] [--threads 2]
      [--json benchmarks/results/foreign_checkpoints.json]

For each checkpoint in the fixtures folder (made by the original projects' own code; see its SOURCES.md),
load it the way ``--model FILE`` does (``anyres.load``: detect the layout, convert, build the upscaler with
``--mode exact``, default tiling), upscale ``input_24x30.png`` to every size the fixture stores, and record
the largest absolute difference to the original's float32 output: over every pixel, and (LIIF at x3 only)
over every pixel outside the ensemble-tie row and column that docs/foreign-checkpoints.md explains.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from anyres import load
from anyres.io import read_image, write_bytes_atomic

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent.parent / "shared" / "fixtures" / "official"
FILES = {  # file -> family as RESULTS names it
    "liif-edsr-baseline.pth": "yinboc/liif .pth, EDSR-baseline (16 x 64), MLP 4 x 256",
    "liif-rdn-tiny.pth": "yinboc/liif .pth, RDN (G0 32, 2 x 3, G 16), MLP 4 x 256",
    "diinn-rdn-tiny.ckpt": "DIINN Lightning .ckpt, mode 3, RDN (G0 32, 2 x 3, G 16)",
    "rrdbnet-x4-tiny.pth": "Real-ESRGAN / BasicSR RRDBNet x4 .pth (16 features, 2 blocks)",
    "rrdbnet-x2-tiny.pth": "Real-ESRGAN / BasicSR RRDBNet x2 .pth (pixel-unshuffled input)",
}


def _tie_mask(err: np.ndarray, lr_hw: tuple[int, int]) -> np.ndarray:
    """Pixels outside the centre row/column of the last latent at odd integer scales (the 0/0 ensemble tie)."""
    h, w = err.shape
    keep = np.ones_like(err, dtype=bool)
    for axis, (n_out, n_in) in enumerate(((h, lr_hw[0]), (w, lr_hw[1]))):
        s = n_out / n_in
        if s == int(s) and int(s) % 2 == 1:
            centre = n_out - 1 - int(s) // 2
            if axis == 0:
                keep[centre, :] = False
            else:
                keep[:, centre] = False
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "foreign_checkpoints.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lr = read_image(args.fixtures / "input_24x30.png")[0]
    rows = []
    for file, family in FILES.items():
        path = args.fixtures / file
        outputs = np.load(path.with_name(path.stem + "_outputs.npz"))
        t0 = time.perf_counter()
        up = load(path, options={"mode": "exact"})
        load_s = time.perf_counter() - t0
        for key in outputs.files:
            expected = outputs[key]
            size = expected.shape[-2:]
            with torch.no_grad():
                out = up.upscale(lr, size)[0].numpy()
            err = np.abs(out - expected).max(0)
            keep = _tie_mask(err, tuple(lr.shape[-2:])) if file.startswith("liif") else np.ones_like(err, bool)
            rows.append(
                {
                    "file": file,
                    "family": family,
                    "output": f"{size[0]}x{size[1]}",
                    "max_abs_error": float(err.max()),
                    "max_abs_error_outside_tie": float(err[keep].max()),
                    "load_seconds": round(load_s, 3),
                }
            )
            print(f"{file} {key}: max |anyres - original| = {err.max():.2e} ({err[keep].max():.2e} outside the tie)")
    print("\n| family | file | output | max abs error | outside the x3 ensemble tie |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['family']} | `{r['file']}` | {r['output']} | {r['max_abs_error']:.1e} | "
            f"{r['max_abs_error_outside_tie']:.1e} |"
        )
    record = {"command": "python benchmarks/foreign_checkpoints.py", "torch": torch.__version__, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.json, (json.dumps(record, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
