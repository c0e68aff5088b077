"""The campaign's Set14 gap to the `liif` target, and the iterations and hours that would close it, from a
fit of the run's own Set14 scores.

Usage:
  python benchmarks/campaign_projection.py                       # table from the recorded points
  python benchmarks/campaign_projection.py --add 19895 F.json --weights cooled --command "..."
  python benchmarks/campaign_projection.py --at 19895             # also the fit's scores there

``benchmarks/results/campaign_set14.json`` holds one point per scoring of the campaign run (``anyres evaluate
--data Set14 --scales 2,3,4,6,8 --json F`` on its weights; ``--add`` records one from such a JSON). The
projection fits ``psnr = a + b ln(iteration)`` per scale to the points of the constant-rate run's average
(``--weights average``), from ``--since`` on, and solves for the target. A log fit says each doubling of the
iterations gains ``b ln 2`` dB; the recent gains have shrunk faster than that at some scales, so read the
projection as an estimate, not a promise. Hours are hours of training steps at the run's recent rate (the
resume state's clock since its first clocked validation, with whatever threads the run had), or
``--seconds-per-iteration``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

from anyres.train.states import read_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORD = HERE / "results" / "campaign_set14.json"
STATE = ROOT / "checkpoints" / "liif-edsr-baseline.safetensors"
SCALES = ("x2", "x3", "x4", "x6", "x8")


def _line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``; returns ``(a, b, sum of squared residuals)``."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("the fit needs points at two or more iterations")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b, sum((my + b * (x - mx) - y) ** 2 for x, y in zip(xs, ys))


def fit_log(points: list[tuple[int, float]]) -> tuple[float, float, float]:
    """Least squares ``y = a + b ln(x)``; returns ``(a, b, RMS error)``."""
    a, b, sse = _line([math.log(x) for x, _ in points], [y for _, y in points])
    return a, b, math.sqrt(sse / len(points))


def fit_power(points: list[tuple[int, float]]) -> tuple[float, float, float, float]:
    """Least squares ``y = c - k x^-alpha`` over alpha in 0.05, 0.06, ..., 3.00; returns ``(c, k, alpha, RMS
    error)``."""
    fits = []
    for step in range(5, 301):
        c, slope, sse = _line([x ** -(step / 100) for x, _ in points], [y for _, y in points])
        fits.append((sse, c, -slope, step / 100))
    sse, c, k, alpha = min(fits)
    return c, k, alpha, math.sqrt(sse / len(points))


def _reach(
    gap: float, iteration: float | None, last: int, seconds_per_iteration: float, why_not: str
) -> tuple[str, str]:
    """The table's "iteration reaching the target" and "hours" cells; ``iteration`` None: ``why_not``."""
    if gap >= 0:
        return "met", "0"
    if iteration is None:
        return why_not, "-"
    return f"{iteration:,.0f}", f"{max(iteration - last, 0) * seconds_per_iteration / 3600:.1f}"


def recent_seconds_per_iteration(state: Path) -> float:
    """Seconds of training steps per iteration since the run's first clocked validation."""
    meta, _ = read_state(state, tensors=False)
    clocked = [h for h in meta["history"] if "elapsed" in h]
    if not clocked or meta["iteration"] <= clocked[0]["iteration"]:
        return meta["elapsed"] / max(meta["iteration"], 1)
    first = clocked[0]
    return (meta["elapsed"] - first["elapsed"]) / (meta["iteration"] - first["iteration"])


def add_point(record: dict, iteration: int, eval_json: Path, weights: str, command: str) -> dict:
    report = json.loads(eval_json.read_text())
    psnr = {f"x{r['scale']:g}": round(r["psnr"], 3) for r in report["results"]}
    missing = [s for s in SCALES if s not in psnr]
    if missing:
        raise SystemExit(f"{eval_json}: no result at {', '.join(missing)} (evaluate with --scales 2,3,4,6,8)")
    if report.get("dataset") != "Set14":
        raise SystemExit(f"{eval_json}: scores {report.get('dataset')!r}, not Set14")
    point = {"iteration": iteration, "weights": weights, "psnr": {s: psnr[s] for s in SCALES}, "command": command}
    points = [p for p in record["points"] if (p["iteration"], p["weights"]) != (iteration, weights)]
    record["points"] = sorted([*points, point], key=lambda p: (p["iteration"], p["weights"]))
    return record


def _average_run(record: dict, since: int) -> list[dict]:
    """The average's points from iteration ``since`` on, the ones both fits use."""
    return [p for p in record["points"] if p["weights"] == "average" and p["iteration"] >= since]


def _fit_table(
    record: dict,
    run: list[dict],
    seconds_per_iteration: float,
    formula: str,
    columns: list[str],
    row: Callable[[str, float], tuple[list[str], float | None, str]],
) -> list[str]:
    """The lines of one fit's markdown table; ``row(scale, target)`` gives that fit's cells, the iteration where it
    meets the target (None: never) and what the reach cell says then."""
    target, last = record["target"], run[-1]
    lines = [
        f"Fit: psnr = {formula} over the average's {len(run)} points from {run[0]['iteration']:,} to "
        f"{last['iteration']:,}; hours at {seconds_per_iteration:.2f} s per iteration of training steps.",
        "",
        f"| Set14 | target | average at {last['iteration']:,} | gap | {' | '.join(columns)} | "
        f"iteration reaching the target | hours from {last['iteration']:,} |",
        "|---" * (6 + len(columns)) + "|",
    ]
    for s in SCALES:
        cells, it, why_not = row(s, target[s])
        gap = last["psnr"][s] - target[s]
        reach, hours = _reach(gap, it, last["iteration"], seconds_per_iteration, why_not)
        lines.append(
            "| "
            + " | ".join([s, f"{target[s]:.2f}", f"{last['psnr'][s]:.3f}", f"{gap:+.3f}", *cells, reach, hours])
            + " |"
        )
    return lines


def power_projection(record: dict, since: int, seconds_per_iteration: float) -> str:
    """The markdown table of the levelling-off fit: its ceiling per scale and where it meets the target."""
    run = _average_run(record, since)

    def row(s: str, target: float) -> tuple[list[str], float | None, str]:
        c, k, alpha, rms = fit_power([(p["iteration"], p["psnr"][s]) for p in run])
        it = ((c - target) / k) ** (-1 / alpha) if 0 < k and target < c else None
        return [f"{alpha:.2f}", f"{c:.3f}", f"{rms:.4f}"], it, "above the ceiling"

    columns = ["fit: alpha", "ceiling c", "fit RMS error"]
    return "\n".join(_fit_table(record, run, seconds_per_iteration, "c - k iteration^-alpha", columns, row))


def projection(record: dict, since: int, seconds_per_iteration: float, at: int | None = None) -> str:
    """The markdown table of gaps and projected iterations; ``at``: also the fit's scores at that iteration."""
    run = _average_run(record, since)
    last = run[-1]
    fits = {s: fit_log([(p["iteration"], p["psnr"][s]) for p in run]) for s in SCALES}

    def row(s: str, target: float) -> tuple[list[str], float | None, str]:
        a, b, rms = fits[s]
        it = math.exp((target - a) / b) if b > 0 else None
        return [f"{b * math.log(2):+.3f}", f"{rms:.4f}"], it, "not on this curve"

    columns = ["fit: dB per doubling", "fit RMS error"]
    lines = _fit_table(record, run, seconds_per_iteration, "a + b ln(iteration)", columns, row)
    if at:
        gains = [fits[s][1] * math.log(at / last["iteration"]) for s in SCALES]
        lines += [
            "",
            f"At {at:,} iterations (constant rate): the fit's gain over {last['iteration']:,} is "
            + " / ".join(f"{g:+.3f}" for g in gains)
            + " dB, so about "
            + " / ".join(f"{last['psnr'][s] + g:.3f}" for s, g in zip(SCALES, gains))
            + ".",
        ]
    others = [p for p in record["points"] if p["weights"] != "average"]
    if others:
        lines += ["", "Other weights scored (not in the fit):", ""]
        for p in others:
            scores = " / ".join(f"{p['psnr'][s]:.3f}" for s in SCALES)
            gaps = " / ".join(f"{p['psnr'][s] - record['target'][s]:+.3f}" for s in SCALES)
            lines.append(f"- {p['weights']} at {p['iteration']:,}: {scores} (gap {gaps})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", type=Path, default=RECORD)
    ap.add_argument("--add", nargs=2, metavar=("ITERATION", "EVAL_JSON"), help="record a scoring of the run")
    ap.add_argument("--weights", default="average", help="with --add: average, raw, cooled, ...")
    ap.add_argument("--command", default="", help="with --add: the commands that made the JSON")
    ap.add_argument("--since", type=int, default=11806, help="first iteration the fit uses")
    ap.add_argument("--state", type=Path, default=STATE, help="resume state whose clock gives the rate")
    ap.add_argument("--seconds-per-iteration", type=float, default=None)
    ap.add_argument("--at", type=int, default=None, help="also print the fit's scores at this iteration")
    ap.add_argument("--fit", choices=("log", "power"), default="log", help="power: a curve that levels off")
    args = ap.parse_args()
    record = json.loads(args.record.read_text())
    if args.add:
        record = add_point(record, int(args.add[0]), Path(args.add[1]), args.weights, args.command)
        args.record.write_text(json.dumps(record, indent=1) + "\n")
    rate = args.seconds_per_iteration or recent_seconds_per_iteration(args.state)
    if args.fit == "power":
        print(power_projection(record, args.since, rate))
    else:
        print(projection(record, args.since, rate, args.at))


if __name__ == "__main__":
    main()
