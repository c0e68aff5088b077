"""Peak memory and CPU time of enhancing a 12-megapixel (4000 x 3000) photo, at full size or on the large-image path.

Usage: ``python benchmarks/large_image_path.py [--arch deeplpf|unet-enhancer] [--working-size 512] [--threads 1]``
measures one configuration in this process from a clean start, so ``ru_maxrss`` is its peak (plus torch's
import); ``--working-size 0`` enhances at full resolution. The last line printed is one JSON object.
``python benchmarks/large_image_path.py --all [--threads 1]`` runs every architecture at full size and at
working size 512, each in its own process, and prints a Markdown table and a JSON list.

The networks are untrained, default-size ``deeplpf`` (1,715,779 parameters) and ``unet-enhancer`` (1,692,633,
its baseline): time and memory do not depend on the weights. The photo is enhanced once at 64 x 64 first, so
one-time costs (allocator warm-up, lazy initialisation) stay out of the timing. Wall time and the process's
CPU time are both reported: on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

ARCHS = ("deeplpf", "unet-enhancer")
HEIGHT, WIDTH = 3000, 4000


def measure(arch: str, working_size: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    from anyres.enhancement.api import enhance_rgb
    from anyres.enhancement.api import working_size as size_for
    from anyres.registry import NETWORKS

    net = NETWORKS.build(arch).eval()
    params = sum(p.numel() for p in net.parameters())
    enhance_rgb(net, torch.rand(1, 3, 64, 64))
    x = torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))
    work = size_for(HEIGHT, WIDTH, long_side=working_size) if working_size else None
    t0, c0 = time.perf_counter(), time.process_time()
    out = enhance_rgb(net, x, working=work)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape == x.shape
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "arch": arch,
        "parameters": params,
        "input": [HEIGHT, WIDTH],
        "working": list(work) if work else [HEIGHT, WIDTH],
        "threads": threads,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak),
    }


def run_all(threads: int) -> None:
    rows = []
    for arch in ARCHS:
        for size in (0, 512):
            cmd = [sys.executable, __file__, "--arch", arch, "--working-size", str(size), "--threads", str(threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"done: {rows[-1]}", file=sys.stderr)
    print("| network | parameters | enhanced at | wall s | CPU s | peak RSS (MB) |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        at = "full size" if r["working"] == r["input"] else f"{r['working'][0]} x {r['working'][1]} (bicubic down/up)"
        print(
            f"| {r['arch']} | {r['parameters']:,} | {at} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
            f"{r['peak_rss_mb']:,} |"
        )
    print(json.dumps(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=ARCHS, default="unet-enhancer")
    ap.add_argument("--working-size", type=int, default=512, help="long side to enhance at; 0 = full size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--all", action="store_true", help="every architecture, full size and working size 512")
    args = ap.parse_args()
    if args.all:
        run_all(args.threads)
    else:
        print(json.dumps(measure(args.arch, args.working_size, args.threads)))


if __name__ == "__main__":
    main()
