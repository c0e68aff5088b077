"""Peak memory, wall time and exit status of the commands users run on a 64-megapixel photo.

Usage: ``python benchmarks/large_photo_memory.py [--side 8000] [--only NAME ...] [--keep DIR]``

Writes a smooth synthetic 8000 x 8000 RGB PNG (8-bit; sums of low-frequency waves, like a defocused
photo) into a temporary folder, then runs each command in a fresh Python process with ``OMP_NUM_THREADS=1``:
the process calls ``anyres``'s command line in-process and, at exit, records its own ``VmHWM`` (the peak
resident set size, from ``/proc/self/status``), so the figure is that command's alone. The parent also
polls the child's ``VmHWM`` (a fallback if the child is killed) and kills a command that passes
``--max-rss-gb`` (12 GB: the machine is shared), reporting its peak as "more than" what it reached. Prints a Markdown table and writes
``benchmarks/results/large_photo_memory.json``. Commands: ``enhance`` at full size and at working sizes
1024 and 256 (the shipped ``deeplpf-retouch``), ``estimate-kernel --scale 2``, ``degrade --pipeline classical
--scale 4`` and ``upscale --scale 1.25 --model bicubic``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "large_photo_memory.json"

# name -> the arguments after `anyres`, with {src} and {out} (an output folder) filled in
COMMANDS: dict[str, list[str]] = {
    "enhance (full size)": ["enhance", "{src}", "-o", "{out}/enhanced_full.png", "--model", "deeplpf-retouch"],
    "enhance --working-size 1024": [
        "enhance",
        "{src}",
        "-o",
        "{out}/enhanced_1024.png",
        "--model",
        "deeplpf-retouch",
        "--working-size",
        "1024",
    ],
    "enhance --working-size 256": [
        "enhance",
        "{src}",
        "-o",
        "{out}/enhanced_256.png",
        "--model",
        "deeplpf-retouch",
        "--working-size",
        "256",
    ],
    "estimate-kernel --scale 2": ["estimate-kernel", "{src}", "--scale", "2", "-o", "{out}/kernel_x2.npy"],
    "degrade --pipeline classical --scale 4": [
        "degrade",
        "{src}",
        "-o",
        "{out}/degraded_x4.png",
        "--pipeline",
        "classical",
        "--scale",
        "4",
    ],
    "upscale --scale 1.25 --model bicubic": [
        "upscale",
        "{src}",
        "-o",
        "{out}/upscaled_x1.25.png",
        "--scale",
        "1.25",
        "--model",
        "bicubic",
    ],
}

# Runs in the child: the CLI in-process, then this process's own peak RSS into the file named by argv[1].
CHILD = """
import json, sys, time
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
start = time.perf_counter()
code = 0
try:
    from anyres.cli import main
    main(sys.argv[2:], prog_name="anyres", standalone_mode=False)
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
except BaseException as e:
    print(f"{type(e).__name__}: {e}", file=sys.stderr)
    code = 1
with open(sys.argv[1], "w") as f:
    json.dump({"exit": code, "peak_mb": peak_mb(), "seconds": time.perf_counter() - start}, f)
sys.exit(code)
"""


def smooth_photo(path: Path, side: int) -> None:
    """A smooth 8-bit RGB PNG of ``side x side``: a few low-frequency waves per channel plus gradients."""
    from PIL import Image

    rng = np.random.default_rng(0)
    img = np.empty((side, side, 3), dtype=np.uint8)
    x = np.linspace(0.0, 1.0, side, dtype=np.float32)
    waves = [(rng.uniform(0.5, 4.0, 2), rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.05, 0.2)) for _ in range(12)]
    for top in range(0, side, 500):
        y = x[top : top + 500, None]
        for c in range(3):
            v = 0.25 + 0.5 * (0.6 * x[None, :] + 0.4 * y) * (0.6 + 0.2 * c)
            for (fx, fy), (px, py), amp in waves[4 * c : 4 * c + 4]:
                v = v + amp * np.sin(2 * np.pi * fx * x[None, :] + px) * np.cos(2 * np.pi * fy * y + py)
            img[top : top + 500, :, c] = np.clip(np.rint(v * 255), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, compress_level=1)


def _status_mb(pid: int, key: str = "VmHWM") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_one(name: str, args: list[str], workdir: Path, timeout: float, max_rss_gb: float = 12.0) -> dict:
    report = workdir / "child.json"
    report.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD, str(report), *args]
    start = time.perf_counter()
    with open(workdir / "child.log", "w") as log:
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        polled, killed = 0.0, None
        while child.poll() is None:
            polled = max(polled, _status_mb(child.pid) or 0.0)
            if time.perf_counter() - start > timeout:
                killed = f"killed after {timeout:.0f} s"
            elif polled > max_rss_gb * 1024:  # this machine is shared: stop a command before it takes it all
                killed = f"killed above {max_rss_gb:g} GB"
            if killed:
                child.kill()
                break
            time.sleep(0.2)
        child.wait()
    seconds = time.perf_counter() - start
    tail = (workdir / "child.log").read_text(errors="replace").strip().splitlines()[-3:]
    row = {"command": name, "args": args, "exit": child.returncode, "wall_s": round(seconds, 1), "log_tail": tail}
    if report.exists():
        own = json.loads(report.read_text())
        row.update(peak_mb=round(own["peak_mb"]), cli_s=round(own["seconds"], 1), exit=own["exit"])
    else:  # killed or crashed before reporting: the parent's last poll
        row.update(peak_mb=round(polled), cli_s=None)
    row["peak_source"] = "child VmHWM at exit" if report.exists() else "parent poll of VmHWM"
    if killed:
        row["killed"] = killed
    return row


def shown(args: list[str]) -> str:
    """The command line with the temporary paths shortened to file names."""
    return "anyres " + " ".join(Path(a).name if os.sep in a else a for a in args)


def table(rows: list[dict]) -> str:
    lines = ["| command | exit | peak RSS (MB) | wall (s) |", "|---|---:|---:|---:|"]
    for r in rows:
        peak = f"> {r['peak_mb']:,} ({r['killed']})" if r.get("killed") else f"{r['peak_mb']:,}"
        lines.append(f"| `{shown(r['args'])}` | {r['exit']} | {peak} | {r['wall_s']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=8000, help="side of the square test photo (default 8000: 64 MP)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these commands (names as in the table)")
    ap.add_argument("--timeout", type=float, default=3 * 3600, help="seconds before a command is killed")
    ap.add_argument("--max-rss-gb", type=float, default=12.0, help="a command is killed above this peak RSS")
    ap.add_argument("--keep", type=Path, default=None, help="write the photo and outputs here and keep them")
    ap.add_argument("--json", type=Path, default=RESULTS, help="where the results go")
    opts = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="anyres_large_")) if opts.keep is None else opts.keep
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        src = workdir / f"photo_{opts.side}.png"
        if not src.exists():
            t = time.perf_counter()
            smooth_photo(src, opts.side)
            print(
                f"wrote {src} ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s", file=sys.stderr
            )
        out = workdir / "out"
        out.mkdir(exist_ok=True)
        rows = []
        for name, template in COMMANDS.items():
            if opts.only and name not in opts.only:
                continue
            args = [a.format(src=src, out=out) for a in template]
            print(f"running: anyres {' '.join(args)}", file=sys.stderr, flush=True)
            rows.append(run_one(name, args, workdir, opts.timeout, opts.max_rss_gb))
            print(f"  -> {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
            for f in out.iterdir():
                f.unlink()
        record = {
            "photo": {
                "size": [opts.side, opts.side],
                "megapixels": opts.side * opts.side / 1e6,
                "kind": "8-bit RGB PNG",
            },
            "threads": 1,
            "python": sys.version.split()[0],
            "results": rows,
        }
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(record, indent=2) + "\n")
        print(table(rows))
    finally:
        if opts.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
