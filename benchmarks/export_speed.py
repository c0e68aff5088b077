"""The exported ONNX graph under onnxruntime vs anyres fast and exact, side by side: 256x256 -> x4.

Usage:
  python benchmarks/export_speed.py [--model liif] [--size 256] [--scale 4] [--threads 2] [--repeats 3]
      [--json benchmarks/results/export_speed.json]

Exports ``--model`` with ``anyres.sr.export.export`` (ONNX, ``--mode exact`` in one pass) into a temporary
file, then runs each path in its own fresh Python process, one after the other in this one command:
(1) onnxruntime's CPU provider on that file, (2) ``anyres`` ``--mode fast`` and (3) ``--mode exact``
(default tiling, as ``anyres upscale`` runs), on the same random LR image (seed 0). Each child keeps the
best of ``--repeats`` runs, reports its peak resident memory (VmHWM) and saves its output, from which the
largest difference to ``exact`` in 8-bit levels (255 x max |difference|) is computed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

CHILD = """
import sys, time, numpy as np, torch
path, model, onnx, size, scale, threads, repeats, out = sys.argv[1:]
size, scale, threads, repeats = int(size), int(scale), int(threads), int(repeats)
torch.set_num_threads(threads)
torch.manual_seed(0)
lr = torch.rand(1, 3, size, size)
hw = (size * scale, size * scale)
if path == "onnxruntime":
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    s = ort.InferenceSession(onnx, o, providers=["CPUExecutionProvider"])
    run = lambda: s.run(None, {"lr": lr.numpy(), "size": np.array(hw, dtype=np.int64)})[0]
else:
    from anyres import load
    up = load(model, options={"mode": path})
    run = lambda: up.upscale(lr, hw).numpy()
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    with torch.no_grad():
        y = run()
    best = min(best, time.perf_counter() - t0)
np.save(out, y)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(best, peak)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="liif")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "export_speed.json")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from anyres import load
    from anyres.io import write_bytes_atomic
    from anyres.sr.export import export

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(tmp) / "model.onnx"
        t0 = time.perf_counter()
        export(load(args.model, options={"mode": "exact"}), onnx, "onnx")
        export_s = time.perf_counter() - t0
        outs = {}
        for path in ("onnxruntime", "fast", "exact"):
            out = Path(tmp) / f"{path}.npy"
            argv = [path, args.model, str(onnx), args.size, args.scale, args.threads, args.repeats, out]
            res = subprocess.run(
                [sys.executable, "-c", CHILD, *map(str, argv)], capture_output=True, text=True, check=True
            )
            seconds, peak = map(float, res.stdout.split()[-2:])
            outs[path] = np.load(out)
            rows.append(
                {"path": path if path == "onnxruntime" else f"anyres {path}", "seconds": seconds, "peak_mb": peak}
            )
    for r, path in zip(rows, ("onnxruntime", "fast", "exact")):
        r["levels_vs_exact"] = float(np.abs(outs[path] - outs["exact"]).max()) * 255
    base = rows[1]["seconds"]
    print(f"\n{args.model}: {args.size}x{args.size} -> x{args.scale}, {args.threads} threads, best of {args.repeats}")
    print(f"(ONNX export took {export_s:.1f} s)\n")
    print("| path | seconds | vs anyres fast | max difference to exact (8-bit levels) | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['path']} | {r['seconds']:.2f} | {r['seconds'] / base:.2f}x | {r['levels_vs_exact']:.3f} | "
            f"{r['peak_mb']:.0f} |"
        )
    record = {
        "command": " ".join(["python", "benchmarks/export_speed.py", *sys.argv[1:]]),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "export_seconds": export_s,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.json, (json.dumps(record, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
