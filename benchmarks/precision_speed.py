"""bfloat16 vs float32 on this CPU: a matmul and the shipped ``liif``'s upscale, side by side.

Where the CPU has no bf16 instructions (``anyres.nn.precision``), PyTorch's bf16 kernels fall back to a slow
path, and ``fast`` mode computes in float32 instead. This measures what that choice is worth here: a 1024x1024
matmul in each dtype, ``anyres``'s ``liif`` upscaling a 64x64 image x4 in ``fast`` mode, and one training
step of the ``liif`` architecture (the recipe's 48x48 patches and 2,304 queries, batch 4, Adam), each with bf16
forced (``ANYRES_BF16=1``) and with it off (``=0``, float32). The two alternate ``--reps`` times; medians and their
ratio are reported.

Usage: ``python benchmarks/precision_speed.py [--reps 3] [--threads 1]``. Prints a Markdown table and one JSON
line (also written to ``benchmarks/results/precision_speed.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from anyres.io import write_bytes_atomic
from anyres.nn.precision import ENV, cpu_has_bf16
from anyres.sr.pretrained import load_upscaler

HERE = Path(__file__).resolve().parent


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
    up = load_upscaler("liif")
    lr = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    net = up.net
    optim = torch.optim.Adam(net.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(1)
    patches = torch.rand(4, 3, 48, 48, generator=g).contiguous(memory_format=torch.channels_last)
    coord, gt = torch.rand(4, 2304, 2, generator=g) * 2 - 1, torch.rand(4, 2304, 3, generator=g)
    cell = torch.full((4, 2304, 2), 2 / 144)

    def train_step() -> None:
        with torch.enable_grad():
            net.train()
            loss = (net(patches, coord, cell, mode="fast", encoder_bf16=True).float() - gt).abs().mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            net.eval()

    cases = {
        "matmul 1024": {"fp32": lambda: a @ a, "bf16": lambda: a.bfloat16() @ a.bfloat16()},
        "liif upscale 64x64 -> x4, fast mode": {
            "fp32": lambda: up.upscale(lr, size=(256, 256)),
            "bf16": lambda: up.upscale(lr, size=(256, 256)),
        },
        "liif training step, batch 4": {"fp32": train_step, "bf16": train_step},
    }
    times: dict[str, dict[str, list[float]]] = {name: {"fp32": [], "bf16": []} for name in cases}
    for rep in range(args.reps + 1):  # the first round warms up and is not kept
        for name, pair in cases.items():
            for dtype in ("fp32", "bf16"):
                os.environ[ENV] = "1" if dtype == "bf16" else "0"
                t = _timed(pair[dtype])
                if rep:
                    times[name][dtype].append(t)
    os.environ.pop(ENV, None)
    rows = {}
    print("| case | float32 s | bfloat16 s | bf16 / fp32 |\n|---|---|---|---|")
    for name, t in times.items():
        f, b = statistics.median(t["fp32"]), statistics.median(t["bf16"])
        rows[name] = {"fp32_s": round(f, 4), "bf16_s": round(b, 4), "ratio": round(b / f, 2)}
        print(f"| {name} | {f:.4f} | {b:.4f} | {b / f:.2f} |")
    result = {
        "cpu": _cpu_name(),
        "native_bf16_detected": cpu_has_bf16(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": args.threads,
        "reps": args.reps,
        "cases": rows,
    }
    write_bytes_atomic(HERE / "results" / "precision_speed.json", (json.dumps(result, indent=1) + "\n").encode())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
