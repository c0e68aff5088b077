"""LIIF at scales past its training range with the decoding cell clamped to the largest training scale's cell.

LIIF trains at x1-x4; at x6 or x8 the decoder sees a cell smaller than any it was trained on. This scores a
model on a folder (benchmark protocol, fast mode) with the cell of every scale above ``--train-max`` replaced
by that of ``--train-max`` (an inference-only change; the paper decodes with the true cell), next to the plain
evaluation when ``--train-max`` is very large.

Usage: ``python benchmarks/cell_clamp.py MODEL [--train-max 4] [--scales 6,8] [--data DIR] [--threads 1]``.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

import torch

import anyres.sr.render as render_module
from anyres.evaluation import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--train-max", type=float, default=4.0)
    ap.add_argument("--scales", default="6,8")
    ap.add_argument("--data", default="../shared/data/benchmark/Set14")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    state: dict[str, float] = {}
    plain_render = render_module.render

    def render(net, lr, size, *a, **k):  # the scale of this call, then the network's clamped cell
        state["scale"] = size[0] / lr.shape[-2]
        if not getattr(net, "_cell_clamped", False):
            query_grid = net.query_grid

            def clamped(proj, rows, cols, cell, mode="fast", grid=None):
                return query_grid(
                    proj, rows, cols, cell * max(state["scale"] / args.train_max, 1.0), mode=mode, grid=grid
                )

            net.query_grid, net._cell_clamped = clamped, True
        return plain_render(net, lr, size, *a, **k)

    render_module.render = render
    report = evaluate(args.model, args.data, args.scales, progress=False)
    psnr = {f"x{r['scale']:g}": round(r["psnr"], 3) for r in report["results"]}
    print(json.dumps({"model": args.model, "train_max": args.train_max, "psnr": psnr}))


if __name__ == "__main__":
    main()
