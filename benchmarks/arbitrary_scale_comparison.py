"""LIIF vs DIINN vs LIIFusion under one recipe: PSNR / SSIM / LPIPS on Set5 and Set14 at x2, x3, x4, x6, x8,
parameters, and CPU time for 256 x 256 -> x4.

Models are given as ``label=spec`` where spec is a registered name (``liif``) or a weights folder. A
LIIFusion stage-1 model is scored twice: ``label[hr-prior]`` with the prior its encoder makes from the HR
image (an oracle: what stage 1 is trained with, and the upper bound for stage 2) and ``label[lr-prior]``
with the LR-only fallback; ``--priors hr,lr,swap`` adds ``label[swap-prior]``, each image decoded with the
HR prior of the next image of its set at the same scale (what the prior is worth: if swapping costs
nothing, the decoder ignores it). LIIFusion stage 2 samples its prior with ``--seed``.

Protocol: ``anyres evaluate``'s (bicubic LR from the HR cropped to a multiple of the scale, rounded to 8
bits; PSNR/SSIM on Y with the border shaved by the scale; LPIPS-alex on RGB with the same shave), with one
difference: every HR is made RGB first, so the two grayscale images of Set14 are scored as RGB copies (Y in
[16, 235]) where ``anyres evaluate`` scores their gray channel as it is, as the published tables do. Set14
PSNRs here are therefore about 0.1 dB above ``anyres evaluate``'s for every model (bicubic x2 / x3 / x4:
30.32 / 27.63 / 26.09 here, 30.22 / 27.53 / 25.99 there); compare Set14 rows within this script only.
Timing: the first 256 x 256 crop of Set14's ``baboon`` upscaled to 1024 x 1024 in one pass, ``fast`` mode,
2 threads, median of ``--repeats`` runs after a warm-up.

Usage: ``python benchmarks/arbitrary_scale_comparison.py --models liif=liif,diinn=runs/diinn-edsr-baseline/model,
liifusion-s1=runs/liifusion-s1/model [--sets Set5,Set14] [--scales 2,3,4,6,8] [--parts scores,timing]``.
Writes ``benchmarks/results/arbitrary_scale_comparison.json`` and prints a Markdown table; the last line
printed is one JSON object. ``--parts timing`` (or ``scores``) measures only that part and merges it into the
existing JSON, so the timings can be taken side by side on an otherwise idle machine while the scores were
computed earlier (each part's command is recorded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from anyres.evaluation import lpips_score, make_lr
from anyres.hub import WEIGHTS_DIR
from anyres.io import list_images, read_image, write_bytes_atomic
from anyres.metrics import measure
from anyres.ops.color import to_rgb
from anyres.sr.pretrained import load_upscaler
from anyres.sr.render import render

HERE = Path(__file__).resolve().parent
BENCH = Path("../shared/data/benchmark")


def _variants(label: str, spec: str, priors: list[str]):
    up = load_upscaler(spec, mode="fast")
    net = getattr(up, "net", None)
    if getattr(net, "uses_hr_prior", False) and net.config.stage == 1:
        for mode in priors:
            yield f"{label}[{mode}-prior]", up, mode
    else:
        yield label, up, None


def _iterations(spec: str):
    """Training iterations recorded in a model folder's (or a shipped model's) config.json, if any."""
    folder = Path(spec) if Path(spec).is_dir() else WEIGHTS_DIR / spec
    cfg = folder / "config.json"
    return json.loads(cfg.read_text()).get("iterations") if cfg.is_file() else None


def _upscale(up, lr, size, prior_mode, hr, seed, other=None):
    """``other``: the ``(hr, lr)`` pair whose HR prior ``prior_mode="swap"`` decodes with."""
    net = getattr(up, "net", None)
    if net is None:
        return up.upscale(lr, size)
    if prior_mode == "hr":
        prior = net.prior_from(lr, hr)
    elif prior_mode == "swap":
        prior = net.prior_from(other[1], other[0])
    elif getattr(net, "uses_hr_prior", False):
        prior = net.lr_prior(lr, seed)
    else:
        prior = None
    return render(net, lr, size, mode="fast", tile=None, prior=prior)


def score(up, prior_mode, sets, scales, seed):
    out = {}
    for name in sets:
        for s in scales:
            rows = []
            pairs = [make_lr(to_rgb(read_image(path)[0]), s) for path in list_images(BENCH / name)]
            for i, (hr, lr) in enumerate(pairs):
                other = pairs[(i + 1) % len(pairs)]
                with torch.inference_mode():
                    sr = _upscale(up, lr, tuple(hr.shape[-2:]), prior_mode, hr, seed, other).clamp(0, 1)
                m = measure(sr, hr, s, "benchmark")
                rows.append((m.psnr, m.ssim, lpips_score(sr, hr, s, "benchmark")))
            out[f"{name}/x{s:g}"] = {
                k: round(statistics.fmean(r[i] for r in rows), 4) for i, k in enumerate(("psnr", "ssim", "lpips"))
            }
    return out


def timing(up, prior_mode, repeats, seed):
    img = to_rgb(read_image(BENCH / "Set14" / "baboon.png")[0])[..., :256, :256]
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.inference_mode():
            _upscale(
                up,
                img,
                (1024, 1024),
                prior_mode,
                None if prior_mode != "hr" else torch.nn.functional.interpolate(img, size=(1024, 1024)),
                seed,
            )
        if i:
            times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="label=spec,... (spec: a registered name or a weights folder)")
    ap.add_argument("--sets", default="Set5,Set14")
    ap.add_argument("--scales", default="2,3,4,6,8")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--priors", default="hr,lr", help="stage-1 LIIFusion priors to score: hr, lr, swap")
    ap.add_argument("--parts", default="scores,timing", help="scores, timing or both (merged into --out)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "arbitrary_scale_comparison.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sets, scales = args.sets.split(","), [float(s) for s in args.scales.split(",")]
    parts = set(args.parts.split(","))
    priors = args.priors.split(",")
    if set(priors) - {"hr", "lr", "swap"}:
        raise SystemExit(f"--priors: expected hr, lr and/or swap, got {args.priors!r}")
    if not parts or parts - {"scores", "timing"}:
        raise SystemExit(f"--parts: expected scores, timing or both, got {args.parts!r}")
    report = {"commands": [], "models": {}}
    if parts != {"scores", "timing"} and args.out.exists():
        report = json.loads(args.out.read_text())
    report.setdefault("commands", []).append(
        {"parts": sorted(parts), "threads": args.threads, "command": " ".join(["python", *sys.argv])}
    )
    for item in args.models.split(","):
        label, spec = item.split("=", 1)
        for name, up, prior_mode in _variants(label, spec, priors):
            net = getattr(up, "net", None)
            entry = report["models"].setdefault(name, {})
            entry.update(
                spec=spec,
                params=sum(p.numel() for p in net.parameters()) if net is not None else 0,
                iterations=_iterations(spec),
            )
            if "timing" in parts:
                entry["seconds_256_to_x4"] = timing(
                    up, "hr" if prior_mode == "swap" else prior_mode, args.repeats, args.seed
                )
            if "scores" in parts:
                entry["scores"] = score(up, prior_mode, sets, scales, args.seed)
            report["models"][name] = entry
            print(name, json.dumps(entry), file=sys.stderr, flush=True)
    write_bytes_atomic(args.out, (json.dumps(report, indent=1) + "\n").encode())
    print("| model | iterations | params | s (256->x4) |")
    print("|---|---|---|---|")
    for name, e in report["models"].items():
        print(f"| {name} | {e.get('iterations') or '-'} | {e['params']:,} | {e.get('seconds_256_to_x4', '-')} |")
    for set_name in sets:
        print(f"\n{set_name}, PSNR (dB) / SSIM / LPIPS-alex\n")
        print("| model | " + " | ".join(f"x{s:g}" for s in scales) + " |")
        print("|---" * (1 + len(scales)) + "|")
        for name, e in report["models"].items():
            scores = e.get("scores", {})
            cells = [
                f"{v['psnr']:.2f} / {v['ssim']:.4f} / {v['lpips']:.3f}"
                if (v := scores.get(f"{set_name}/x{s:g}"))
                else "-"
                for s in scales
            ]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        json.dumps(
            {m: {"params": e["params"], "seconds": e.get("seconds_256_to_x4")} for m, e in report["models"].items()}
        )
    )


if __name__ == "__main__":
    main()
