"""Training-step time of the enhancement networks, channels-last vs the default layout, side by side.

One step = forward, the DeepLPF loss and backward on a batch of 4 random 256-px crops (the recipe of
configs/deeplpf-lowlight.yaml), for DeepLPF and the U-Net baseline. The layouts alternate within each repeat
and the minimum over repeats is kept, so both see the same machine load.

Usage: ``python benchmarks/enhance_train_speed.py [--repeats 3] [--threads 1]``. Prints a Markdown table and
one JSON line (also written to ``benchmarks/results/enhance_train_speed.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from anyres.registry import NETWORKS
from anyres.train.recipes.enhance import _LOSS_FUNCTIONS

HERE = Path(__file__).resolve().parent
MODELS = {"deeplpf": {}, "unet-enhancer": {"width": 30, "levels": 4}}


def step_seconds(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, channels_last: bool) -> float:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=layout)
    x = x.contiguous(memory_format=layout)
    net.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    _LOSS_FUNCTIONS["deeplpf"](net(x), target).backward()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "enhance_train_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, target = torch.rand(4, 3, 256, 256), torch.rand(4, 3, 256, 256)
    rows = []
    for name, kwargs in MODELS.items():
        net = NETWORKS.build(name, **kwargs)
        for layout in (False, True):  # warm-up
            step_seconds(net, x, target, layout)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for layout in (False, True):
                times[layout].append(step_seconds(net, x, target, layout))
        default, cl = min(times[False]), min(times[True])
        rows.append(
            {
                "network": name,
                "default_s": round(default, 3),
                "channels_last_s": round(cl, 3),
                "speedup": round(default / cl, 2),
            }
        )
    print("| network | default layout s/step | channels-last s/step | speed-up |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['default_s']} | {r['channels_last_s']} | {r['speedup']}x |")
    report = {
        "command": "python benchmarks/enhance_train_speed.py",
        "threads": args.threads,
        "repeats": args.repeats,
        "rows": rows,
    }
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
