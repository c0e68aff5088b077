"""What storing the shipped weights as float16 costs: PSNR of the float32 and the float16 folders side by side.

Usage:
  python benchmarks/fp16_weights.py [--fp32-commit 214e54b | --fp32-dir DIR] [--models liif,liif-real,...]
      [--sets Set5,Set14] [--scales 2,3,4] [--enhancers deeplpf-retouch=retouch,deeplpf-lowlight=lowlight]
      [--task-sets Set14] [--threads 2] [--json benchmarks/results/fp16_weights.json] [--resume [--replace]]

The float16 folders are this tree's ``src/anyres/weights/NAME``; the float32 ones are the same folders as
they were at ``--fp32-commit`` (the last commit that shipped float32 weights; extracted with ``git show``
into a temporary folder), or ``DIR/NAME`` with ``--fp32-dir``. Both load through ``hub.load_network``,
which upcasts float16 to float32, so the two networks differ only by the rounding of every weight to
float16 (the stage-2 ``liifusion`` also leaves out its unused stage-1 prior encoder: same output).

SR models are scored by ``anyres.evaluate(folder, set, scales)`` (the benchmark protocol: bicubic LR, Y
PSNR, shave = scale, default ``fast`` mode; LIIFusion stage 2 with seed 0); enhancers by
``anyres.evaluation.evaluate_task(folder, set, task, seed=0)`` (RGB, no shave). The JSON records, per model,
set and scale, the mean PSNR of each folder, their difference (float16 - float32) and the largest
per-image difference. Prints a Markdown table. ``--resume`` keeps the rows already in the JSON and measures
only what is missing (the JSON is rewritten after every model and set; ``commands`` lists every run, and
``folders.NAME.fp32_from`` where each model's float32 weights came from: a model shipped after the float16
switch is compared with its training run's float32 folder, e.g. ``--fp32-dir`` over ``runs/``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from anyres.evaluation import evaluate, evaluate_task
from anyres.hub import CONFIG, WEIGHTS, WEIGHTS_DIR
from anyres.io import write_bytes_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH = ROOT.parent / "shared" / "data" / "benchmark"
FP32_COMMIT = "214e54b"  # the last commit whose src/anyres/weights held float32 files


def _extract(commit: str, names: list[str], dest: Path) -> Path:
    """``dest/NAME/{config.json,model.safetensors}`` as they were at ``commit``."""
    for name in names:
        (dest / name).mkdir(parents=True, exist_ok=True)
        for file in (CONFIG, WEIGHTS):
            rel = (WEIGHTS_DIR / name / file).relative_to(ROOT).as_posix()
            blob = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, capture_output=True, check=True).stdout
            (dest / name / file).write_bytes(blob)
    return dest


def _dtypes(folder: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(folder / WEIGHTS), framework="pt") as f:
        kinds = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})
    return {"dtypes": kinds, "bytes": (folder / WEIGHTS).stat().st_size}


def _psnrs(report: dict) -> dict[float, tuple[float, dict[str, float]]]:
    return {r["scale"]: (r["psnr"], {k: v["psnr"] for k, v in r["per_image"].items()}) for r in report["results"]}


def _compare(old: dict, new: dict) -> list[dict]:
    rows = []
    a, b = _psnrs(old), _psnrs(new)
    for scale in a:
        (pa, ia), (pb, ib) = a[scale], b[scale]
        rows.append(
            {
                "scale": scale,
                "psnr_fp32": round(pa, 4),
                "psnr_fp16": round(pb, 4),
                "delta": round(pb - pa, 4),
                "max_abs_delta_per_image": round(max(abs(ib[k] - ia[k]) for k in ia), 4),
                "n": len(ia),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32-commit", default=FP32_COMMIT)
    ap.add_argument("--fp32-dir", type=Path, default=None, help="float32 folders DIR/NAME (instead of git history)")
    ap.add_argument("--models", default="liif,liif-real,diinn,liifusion-s1,liifusion")
    ap.add_argument("--sets", default="Set5,Set14")
    ap.add_argument("--scales", default="2,3,4")
    ap.add_argument("--enhancers", default="deeplpf-retouch=retouch,deeplpf-lowlight=lowlight")
    ap.add_argument("--task-sets", default="Set14")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "fp16_weights.json")
    ap.add_argument("--resume", action="store_true", help="keep the rows of --json; measure only the missing ones")
    ap.add_argument(
        "--replace", action="store_true", help="with --resume: drop the rows of the listed models first (re-shipped)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    enhancers = dict(pair.split("=") for pair in args.enhancers.split(",") if pair)
    command = " ".join(["python", *sys.argv])
    report = {
        "commands": [command],
        "fp32": str(args.fp32_dir or args.fp32_commit),
        "sr": [],
        "enhancement": [],
        "folders": {},
    }
    if args.resume and args.json.is_file():
        done = json.loads(args.json.read_text())
        report.update({k: done[k] for k in ("fp32", "sr", "enhancement", "folders") if k in done})
        report["commands"] = done.get("commands", [done.get("command")]) + [command]
        if args.replace:
            for part in ("sr", "enhancement"):
                report[part] = [r for r in report[part] if r["model"] not in models and r["model"] not in enhancers]
    measured = {(r["model"], r["set"]) for r in report["sr"] + report["enhancement"]}

    def save() -> None:
        write_bytes_atomic(args.json, (json.dumps(report, indent=1) + "\n").encode())

    with tempfile.TemporaryDirectory() as tmp:
        fp32_root = args.fp32_dir or _extract(args.fp32_commit, models + list(enhancers), Path(tmp))
        for name in models + list(enhancers):
            report["folders"][name] = {
                "fp32": _dtypes(fp32_root / name),
                "fp16": _dtypes(WEIGHTS_DIR / name),
                "fp32_from": str(args.fp32_dir / name) if args.fp32_dir else f"git {args.fp32_commit}",
            }
        for name in models:
            for set_name in args.sets.split(","):
                if (name, set_name) in measured:
                    continue
                start = time.perf_counter()
                old = evaluate(fp32_root / name, BENCH / set_name, args.scales, progress=False)
                new = evaluate(WEIGHTS_DIR / name, BENCH / set_name, args.scales, progress=False)
                for row in _compare(old, new):
                    report["sr"].append({"model": name, "set": set_name, **row})
                print(f"{name} {set_name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
                save()
        for name, task in enhancers.items():
            for set_name in args.task_sets.split(","):
                if (name, set_name) in measured:
                    continue
                old = evaluate_task(fp32_root / name, BENCH / set_name, task, seed=0, progress=False)
                new = evaluate_task(WEIGHTS_DIR / name, BENCH / set_name, task, seed=0, progress=False)
                for row in _compare(old, new):
                    report["enhancement"].append({"model": name, "task": task, "set": set_name, **row})
                save()

    print("| model | set | scale | PSNR fp32 | PSNR fp16 | change (dB) | largest per-image change |")
    print("|---|---|---|---|---|---|---|")
    for r in report["sr"]:
        print(
            f"| {r['model']} | {r['set']} | x{r['scale']:g} | {r['psnr_fp32']:.4f} | {r['psnr_fp16']:.4f} | "
            f"{r['delta']:+.4f} | {r['max_abs_delta_per_image']:.4f} |"
        )
    for r in report["enhancement"]:
        print(
            f"| {r['model']} ({r['task']}) | {r['set']} | x1 | {r['psnr_fp32']:.4f} | {r['psnr_fp16']:.4f} | "
            f"{r['delta']:+.4f} | {r['max_abs_delta_per_image']:.4f} |"
        )
    worst = max(abs(r["delta"]) for r in report["sr"] + report["enhancement"])
    print(json.dumps({"largest_mean_change_db": worst}))


if __name__ == "__main__":
    main()
