"""1 vs 2 torch threads on this 2-core machine, idle and under a competing CPU load, side by side.

Usage:
  python benchmarks/threads_under_load.py [--model liif] [--size 160] [--scale 4] [--repeats 3]
      [--json benchmarks/results/threads_under_load.json]

Times one ``anyres upscale`` of a ``--size`` x ``--size`` random image by ``--scale`` (the shipped ``--model``,
default fast mode) in fresh processes, under four settings: ``--threads 1``; ``--threads 2`` with OpenMP's
default wait policy (its threads spin while they wait); ``--threads 2`` with ``OMP_WAIT_POLICY=PASSIVE`` (they
sleep); and no flag, the anyres CLI's own default. Each runs with the machine idle and with one competing process that keeps a
core busy (a single-threaded matmul loop, as a second job or a training run would), interleaved round by
round; the best of ``--repeats`` per cell is kept (the time inside the process, from model load to written
file, via the CLI's own clock). Other busy processes should be paused while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

LOAD = """
import torch
torch.set_num_threads(1)
a = torch.rand(512, 512)
while True:
    a = (a @ a).clamp_(-1, 1)
"""

RUN = """
import sys, time
t0 = time.perf_counter()
from anyres.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print("SECONDS", time.perf_counter() - t0)
"""

# OMP_WAIT_POLICY="" leaves OpenMP's own default (spin, then sleep), what torch does when nothing sets it; the
# anyres CLI sets PASSIVE unless the environment says otherwise.
SETTINGS = {
    "--threads 1": (["--threads", "1"], {}),
    "--threads 2, OpenMP's default wait policy (spinning)": (["--threads", "2"], {"OMP_WAIT_POLICY": ""}),
    "--threads 2, OMP_WAIT_POLICY=PASSIVE": (["--threads", "2"], {"OMP_WAIT_POLICY": "PASSIVE"}),
    "anyres default (no flag: torch's thread count, PASSIVE)": ([], {}),
}


def _time(args: list[str], env: dict[str, str]) -> float:
    full_env = {**os.environ, **env}
    full_env.pop("OMP_NUM_THREADS", None)
    if "OMP_WAIT_POLICY" not in env:
        full_env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=full_env, check=True)
    return float(out.stdout.split("SECONDS")[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="liif")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--scale", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "threads_under_load.json")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)).save(src)
        for _ in range(args.repeats):
            for load in ("idle", "one core busy"):
                hog = subprocess.Popen([sys.executable, "-c", LOAD]) if load != "idle" else None
                if hog is not None:
                    time.sleep(1.0)
                try:
                    for name, (flags, env) in SETTINGS.items():
                        cmd = ["upscale", str(src), "--scale", str(args.scale), "--model", args.model]
                        cmd += ["-o", str(Path(tmp) / "out.png"), "--overwrite", *flags]
                        times.setdefault((name, load), []).append(_time(cmd, env))
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
    rows = [
        {"setting": name, "idle_s": min(times[(name, "idle")]), "loaded_s": min(times[(name, "one core busy")])}
        for name in SETTINGS
    ]
    print(f"\nanyres upscale {args.size}x{args.size} x{args.scale:g} --model {args.model}, best of {args.repeats}\n")
    print("| setting | idle (s) | one core busy (s) | slowdown under load |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['idle_s']:.2f} | {r['loaded_s']:.2f} | {r['loaded_s'] / r['idle_s']:.2f}x |")
    record = {"command": " ".join(["python", "benchmarks/threads_under_load.py", *sys.argv[1:]]), "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
