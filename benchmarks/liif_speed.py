"""LIIF inference and training speed: the fast (default) and exact paths against the reference path.

Upscales a 256x256 image x4 (to 1024x1024) with the shipped ``liif`` model through three paths, interleaved
so that the machine's drifting speed affects all alike, and reports the median of several runs:

* reference: the paper's equations (unfold + grid_sample + concatenation per ensemble member), queries in
  chunks of 30,000 as in the LIIF demo;
* exact: the fast formulation in float32 (first layer projected once per LR pixel and gathered);
* fast (default): as exact with bfloat16 MLP layers.

Also: wall time and peak RAM (max RSS of a child process) of a tiled 1024x1024 -> x4 upscale, and training
iterations/s at the recipe's batch (16 patches of 48x48, 2304 queries each) of the fast formulation
(bf16) against the reference formulation (fp32 reference query).

Usage: python benchmarks/liif_speed.py [--runs 5] [--model liif] [--skip-memory] [--skip-train]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from anyres.sr.pretrained import load_upscaler
from anyres.sr.render import DEFAULT_CHUNK, render


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def inference(model: str, runs: int) -> dict:
    net = load_upscaler(model).net
    g = torch.Generator().manual_seed(0)
    # A smooth-ish test image: upsampled noise, so the network sees image-like statistics.
    lr = torch.nn.functional.interpolate(
        torch.rand(1, 3, 64, 64, generator=g), size=(256, 256), mode="bicubic", align_corners=False
    ).clamp(0, 1)
    size = (1024, 1024)
    outs = {}
    times = {"reference": [], "exact": [], "fast": []}
    for _ in range(runs):
        for mode in times:
            chunk = 30000 if mode == "reference" else DEFAULT_CHUNK
            holder = {}
            times[mode].append(_time(lambda: holder.setdefault("o", render(net, lr, size, mode=mode, chunk=chunk))))
            outs[mode] = holder["o"]
        print({k: round(v[-1], 2) for k, v in times.items()}, file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "reference_s": round(med["reference"], 3),
        "fast_s": round(med["fast"], 3),
        "ratio": round(med["reference"] / med["fast"], 2),
        "max_abs_diff": float((outs["fast"] - outs["reference"]).abs().max()),
        "exact_s": round(med["exact"], 3),
        "exact_ratio": round(med["reference"] / med["exact"], 2),
        "exact_max_abs_diff": float((outs["exact"] - outs["reference"]).abs().max()),
        "runs": runs,
    }


_CHILD = """
import resource, time, torch, sys
from anyres.sr.pretrained import load_upscaler
from anyres.sr.render import DEFAULT_CHUNK, render
net = load_upscaler(sys.argv[1]).net
lr = torch.rand(1, 3, 1024, 1024)
t = time.perf_counter()
out = render(net, lr, (4096, 4096), mode="fast", tile=int(sys.argv[2]))
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, tuple(out.shape))
"""


def memory(model: str, tile: int) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, model, str(tile)], capture_output=True, text=True, check=True)
    seconds, peak_mb, *_ = res.stdout.split()
    return {"large_1024_x4_s": round(float(seconds), 1), "large_1024_x4_peak_mb": round(float(peak_mb)), "tile": tile}


def training(model: str, runs: int) -> dict:
    from anyres.sr.liif import LIIF

    net0 = load_upscaler(model).net
    config = {k: v for k, v in net0.config_dict().items() if k != "arch"}
    rates = {}
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(16, 3, 48, 48, generator=g).contiguous(memory_format=torch.channels_last)
    coord = torch.rand(16, 2304, 2, generator=g) * 2 - 1
    cell = torch.full((16, 2304, 2), 2 / 96)
    gt = torch.rand(16, 2304, 3, generator=g)
    for name, mode, bf16 in (("train_fast", "fast", True), ("train_reference", "reference", False)):
        net = LIIF(config).to(memory_format=torch.channels_last).train()
        opt = torch.optim.Adam(net.parameters(), 1e-4)

        def step():
            loss = (net(lr, coord, cell, mode=mode, encoder_bf16=bf16) - gt).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        rates[name] = statistics.median([_time(step) for _ in range(runs)])
    return {
        "train_fast_it_s": round(1 / rates["train_fast"], 3),
        "train_reference_it_s": round(1 / rates["train_reference"], 3),
        "train_ratio": round(rates["train_reference"] / rates["train_fast"], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", default="liif")
    ap.add_argument("--tile", type=int, default=192)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    result = {"model": args.model, "threads": torch.get_num_threads(), **inference(args.model, args.runs)}
    if not args.skip_train:
        result.update(training(args.model, max(3, args.runs // 2)))
    if not args.skip_memory:
        result.update(memory(args.model, args.tile))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
