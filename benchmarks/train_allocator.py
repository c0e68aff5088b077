"""LIIF training-step time with glibc's default allocator settings vs ``keep_freed_memory`` (the training default).

Each measurement is a child process that builds the shipped ``liif`` architecture (fresh weights), runs one
warm-up step and then ``--steps`` steps of the recipe's batch (16 LR patches of 48x48, 2,304 queries each,
bf16 fast path, Adam), and reports the median step time and its minor page faults. The two settings alternate
``--pairs`` times so both see the same machine load; the ratio is taken per pair.

Usage: ``python benchmarks/train_allocator.py [--pairs 3] [--steps 10] [--threads 1]``. Prints a Markdown table
and one JSON line (also written to ``benchmarks/results/train_allocator.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(steps: int, threads: int) -> dict:
    import resource

    import torch

    from anyres.sr.liif import LIIF
    from anyres.sr.pretrained import load_upscaler
    from anyres.train.engine import keep_freed_memory

    applied = keep_freed_memory()  # a no-op under ANYRES_KEEP_FREED_MEMORY=0
    torch.set_num_threads(threads)
    config = {k: v for k, v in load_upscaler("liif").net.config_dict().items() if k != "arch"}
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(16, 3, 48, 48, generator=g).contiguous(memory_format=torch.channels_last)
    coord = torch.rand(16, 2304, 2, generator=g) * 2 - 1
    cell = torch.full((16, 2304, 2), 2 / 96)
    gt = torch.rand(16, 2304, 3, generator=g)
    net = LIIF(config).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), 1e-4)

    def step() -> float:
        start = time.perf_counter()
        loss = (net(lr, coord, cell, mode="fast", encoder_bf16=True) - gt).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = [step() for _ in range(steps)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"applied": applied, "step_s": statistics.median(times), "faults_per_step": faults / steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.steps, args.threads)))
        return
    rows = []
    for _ in range(args.pairs):
        pair = {}
        for name, flag in (("default", "0"), ("keep", "1")):
            env = {**os.environ, "ANYRES_KEEP_FREED_MEMORY": flag, "OMP_NUM_THREADS": str(args.threads)}
            cmd = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--threads", str(args.threads)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            pair[name] = json.loads(out.strip().splitlines()[-1])
        pair["ratio"] = pair["keep"]["step_s"] / pair["default"]["step_s"]
        rows.append(pair)
    print("| pair | default s/step | keep s/step | keep / default | faults/step default | faults/step keep |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        d, k = r["default"], r["keep"]
        print(
            f"| {i} | {d['step_s']:.3f} | {k['step_s']:.3f} | {r['ratio']:.3f} | "
            f"{d['faults_per_step']:,.0f} | {k['faults_per_step']:,.0f} |"
        )
    summary = {
        "threads": args.threads,
        "steps": args.steps,
        "applied": all(r["keep"]["applied"] for r in rows),
        "median_ratio": round(statistics.median(r["ratio"] for r in rows), 3),
        "pairs": rows,
    }
    (HERE / "results" / "train_allocator.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "pairs"}))


if __name__ == "__main__":
    main()
