"""Validation PSNR (Set5, x2 / x3 / x4) against iterations and against hours of training, per run, from the runs'
own records, as a PNG and a table.

Usage:
  python benchmarks/quality_per_cpu_hour.py [--checkpoint checkpoints/liif-edsr-baseline.safetensors ...]
      [--validation checkpoints/VALIDATION.txt] [--png benchmarks/results/quality_per_cpu_hour.png]
      [--json benchmarks/results/quality_per_cpu_hour.json]

Sources: a resume state's metadata (its ``history`` of validations, its ``iteration`` and ``elapsed`` seconds of
training steps), and ``checkpoints/VALIDATION.txt`` for finished runs whose resume state is gone (lines
``[name] validation at it N: {...}`` under a ``# name`` header), timed by the ``training.wall_time_hours`` of
the shipped weights folder of that name, and shipped folders trained as a cooled-down branch of a run
(``--branch``: their ``config.json`` records the validations; they are put on the parent run's clock). A
validation made by the engine since 2026-12-07 records ``elapsed``, the seconds of training steps so far: such
a point is placed at that clock. An older point, which has none, is placed at its iteration times the run's
average seconds per iteration up to its first clocked point (or over the whole run when none is clocked).
"Hours" are hours of training steps on the machine that ran them (validation time excluded): the run moved to
a slower CPU at iteration 18,274 (benchmarks/RESULTS.md, "Precision").
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from anyres.train.states import read_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCALES = ("x2", "x3", "x4")
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def from_checkpoint(path: Path) -> list[dict]:
    """The run's validations of its trained weights and, where it keeps an average of its weights
    (``ema``: a validation entry has ``psnr_raw``), a second series for the average."""
    meta, _ = read_state(path, tensors=False)
    history = [h for h in meta["history"] if isinstance(h.get("psnr"), dict)]
    clock = {h["iteration"]: h["elapsed"] / 3600 for h in history if "elapsed" in h}
    first = min(clock, default=None)
    rate = clock[first] / first if first else meta["elapsed"] / 3600 / max(meta["iteration"], 1)
    name = str(meta.get("config", {}).get("name") or path.stem)
    raw = [(h["iteration"], h.get("psnr_raw", h["psnr"])) for h in history]
    runs = [{"name": name, "hours_per_iteration": rate, "clock": clock, "iterations": meta["iteration"], "points": raw}]
    average = [(h["iteration"], h["psnr"]) for h in history if "psnr_raw" in h]
    if average:
        ema = meta.get("config", {}).get("ema")
        runs.append({**runs[0], "name": f"{name}, average of weights (ema {ema})", "points": average})
    return runs


def from_validation_file(path: Path, skip: set[str]) -> list[dict]:
    """Runs recorded in VALIDATION.txt (a ``# name ...`` header, then its validation lines)."""
    runs: dict[str, list] = {}
    current = None
    for line in path.read_text().splitlines():
        header = re.match(r"# ([\w-]+) \(", line)
        if header:
            current = header.group(1)
            continue
        m = re.match(r"\[[\w-]+\] validation at it (\d+): (\{.*\})", line)
        if m and current and current not in skip:
            runs.setdefault(current, []).append((int(m.group(1)), ast.literal_eval(m.group(2))))
    out = []
    for name, points in runs.items():
        folder = ROOT / "src" / "anyres" / "weights" / name
        if not (folder / "config.json").is_file():
            folder = ROOT / "checkpoints" / name
        training = json.loads((folder / "config.json").read_text()).get("training", {}) if folder.is_dir() else {}
        hours, iters = training.get("wall_time_hours"), training.get("iterations")
        if hours and iters:
            out.append({"name": name, "hours_per_iteration": hours / iters, "iterations": iters, "points": points})
    return out


def from_weights_folder(folder: Path) -> dict | None:
    """A shipped branch of a run (its config's ``training.optim.cooldown`` set): the validations its
    ``config.json`` records from the last one before the branch point on, timed by its ``wall_time_hours``."""
    training = json.loads((folder / "config.json").read_text()).get("training", {})
    cooldown = training.get("optimizer", {}).get("cooldown")
    points = [(v["iteration"], v["psnr"]) for v in training.get("validation", []) if isinstance(v.get("psnr"), dict)]
    hours, iters = training.get("wall_time_hours"), training.get("iterations")
    if not (cooldown and points and hours and iters):
        return None
    start = max([it for it, _ in points if it <= cooldown[0]], default=cooldown[0])
    name = f"{folder.name}, cooled down from {cooldown[0]}"
    return {
        "name": name,
        "hours_per_iteration": hours / iters,
        "iterations": iters,
        "points": [p for p in points if p[0] >= start],
    }


def hours_at(run: dict, iteration: int) -> float:
    """Hours of training steps at ``iteration``: the run's clock there, else iterations times its rate."""
    return run.get("clock", {}).get(iteration, iteration * run["hours_per_iteration"])


def plot(runs: list[dict], path: Path) -> None:
    font = ImageFont.load_default()
    panel_w, panel_h, margin = 360, 260, 48
    img = Image.new("RGB", (2 * panel_w + margin, len(SCALES) * panel_h + 40), "white")
    draw = ImageDraw.Draw(img)
    draw.text(
        (10, 8),
        "Set5 validation PSNR (dB): left against iterations, right against hours of training",
        fill="black",
        font=font,
    )
    for row, scale in enumerate(SCALES):
        values = [p[1][scale] for r in runs for p in r["points"]]
        lo, hi = min(values) - 0.2, max(values) + 0.2
        for col, axis in enumerate(("iterations", "hours")):
            x0, y0 = margin + col * panel_w, 40 + row * panel_h
            w, h = panel_w - margin, panel_h - 40
            xs = [p[0] if axis == "iterations" else hours_at(r, p[0]) for r in runs for p in r["points"]]
            xmax = max(xs) * 1.05
            draw.rectangle([x0, y0, x0 + w, y0 + h], outline="black")
            draw.text((x0 + 4, y0 + 4), f"{scale}", fill="black", font=font)
            draw.text((x0 + w - 60, y0 + h + 4), f"{axis} ({xmax:.3g})", fill="black", font=font)
            draw.text((x0 - 44, y0), f"{hi:.2f}", fill="black", font=font)
            draw.text((x0 - 44, y0 + h - 10), f"{lo:.2f}", fill="black", font=font)
            for k, r in enumerate(runs):
                pts = [
                    (
                        x0 + w * (p[0] if axis == "iterations" else hours_at(r, p[0])) / xmax,
                        y0 + h * (1 - (p[1][scale] - lo) / (hi - lo)),
                    )
                    for p in sorted(r["points"])
                ]
                colour = COLOURS[k % len(COLOURS)]
                if len(pts) > 1:
                    draw.line(pts, fill=colour, width=2)
                for x, y in pts:
                    draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
                if row == 0 and col == 0:
                    draw.text((x0 + 8, y0 + 20 + 12 * k), r["name"], fill=colour, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", type=Path, nargs="*", default=[ROOT / "checkpoints" / "liif-edsr-baseline.safetensors"]
    )
    parser.add_argument(
        "--branch",
        type=Path,
        nargs="*",
        default=[ROOT / "src" / "anyres" / "weights" / "liif"],
        help="shipped weights folders trained as a cooled-down branch of a run (optim.cooldown)",
    )
    parser.add_argument("--validation", type=Path, default=ROOT / "checkpoints" / "VALIDATION.txt")
    parser.add_argument("--png", type=Path, default=HERE / "results" / "quality_per_cpu_hour.png")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "quality_per_cpu_hour.json")
    args = parser.parse_args()
    runs = [run for p in args.checkpoint for run in from_checkpoint(p)]
    for branch in filter(None, map(from_weights_folder, args.branch)):
        # An iteration costs the same on a branch: put it on its parent run's clock, so the branch starts
        # where the parent was when it forked.
        parent = next((r for r in runs if branch["name"].startswith(r["name"] + ",")), None)
        if parent is not None:
            branch["hours_per_iteration"] = parent["hours_per_iteration"]
        runs.append(branch)
    runs += from_validation_file(args.validation, skip={"liif"})
    plot(runs, args.png)
    print("| run | iteration | hours | Set5 x2 | x3 | x4 | dB per hour since the previous point (x4) |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        prev = None
        for it, psnr in sorted(r["points"]):
            hours = hours_at(r, it)
            slope = "" if prev is None else f"{(psnr['x4'] - prev[1]) / (hours - prev[0]):+.3f}"
            print(
                f"| {r['name']} | {it} | {hours:.2f} | {psnr['x2']:.3f} | {psnr['x3']:.3f} | {psnr['x4']:.3f} | {slope} |"
            )
            prev = (hours, psnr["x4"])
    args.json.write_text(
        json.dumps({"command": "python benchmarks/quality_per_cpu_hour.py", "runs": runs}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
