"""What LIIFusion's prior carries: similarity of priors across images and inputs, and what swapping them does.

For every image of the sets at one scale (bicubic LR, benchmark protocol) it computes the stage-1 HR prior
``z = prior_encoder(LR-up, HR)``, the stage-1 LR-only fallback ``prior_encoder(LR, LR)`` and, for a stage-2
model, the sampled prior (seed 0), then reports:

* ``cos_hr_between_images``: mean cosine between the HR priors of different images (1 = one direction for
  every image, i.e. the prior can only carry a magnitude); with ``prior_layout: window``, between the
  images' mean window priors, and ``cos_hr_between_windows`` is the mean cosine between the windows of one
  image (1 = the map is one vector repeated). Cosines, norms and L1 are over every prior vector (window);
* ``cos_hr_vs_lr`` / ``norm_ratio_lr_to_hr``: the LR-only prior against the HR one, same image;
* ``cos_sampled_vs_hr`` / ``l1_sampled_vs_hr``: stage 2's sampled prior against its target (the L1 of the
  prior loss);
* ``init``: the between-image cosine and mean norm of the HR priors of a freshly initialised network of the
  stage-1 config (``torch.manual_seed(0)``): where training started from;
* ``psnr_*``: PSNR (Y, shave = scale) with the HR prior, with the LR-only / sampled prior, and with another
  image's HR prior (the next image in the list), to show how much the decoder depends on the prior.

``--init-only`` instead reports, for freshly initialised prior encoders (``prior_init`` torch and kaiming,
``prior_layout`` image and window, ``torch.manual_seed(0)``), the mean variance of the raw prior (before any
standardisation) between images, or between the windows of all images, against BatchNorm's ``eps``.

Usage: ``python benchmarks/liifusion_prior_probe.py --stage1 src/anyres/weights/liifusion-s1
[--stage2 src/anyres/weights/liifusion] [--sets Set5,Set14] [--scale 4]``, or ``--init-only``. Prints one
JSON object and writes it to ``benchmarks/results/liifusion_prior_probe.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from anyres.evaluation import make_lr
from anyres.hub import load_network
from anyres.io import list_images, read_image, write_bytes_atomic
from anyres.metrics import measure
from anyres.ops.color import to_rgb
from anyres.sr.render import render

HERE = Path(__file__).resolve().parent
BENCH = Path("../shared/data/benchmark")


def _vectors(priors: list[torch.Tensor]) -> torch.Tensor:
    """Every prior vector of a list of ``(1, P)`` or ``(1, gh, gw, P)`` priors, as rows."""
    return torch.cat([z.reshape(-1, z.shape[-1]) for z in priors])


def _per_image(priors: list[torch.Tensor]) -> torch.Tensor:
    """One row per image: its prior, or the mean of its window priors."""
    return torch.cat([z.reshape(-1, z.shape[-1]).mean(0, keepdim=True) for z in priors])


def _mean_offdiag_cos(z: torch.Tensor) -> float:
    zn = F.normalize(z, dim=1)
    sim = zn @ zn.t()
    n = z.shape[0]
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


def _psnr(net, lr, hr, prior, scale) -> float:
    sr = render(net, lr, tuple(hr.shape[-2:]), mode="fast", prior=prior).clamp(0, 1)
    return measure(sr, hr, scale, "benchmark").psnr


def probe(folder: Path, pairs, scale: float, stage1: Path | None = None) -> dict:
    net, config = load_network(folder)
    stage = net.config.stage
    # A shipped stage-2 folder leaves out its frozen stage-1 prior encoder: the stage-1 model's is the same one.
    encoder = net if net.prior_encoder is not None else load_network(stage1)[0]
    with torch.inference_mode():
        hr_list = [encoder.prior_from(lr, hr) for hr, lr in pairs]
        lr_list = [net.lr_prior(lr, 0) for _, lr in pairs]
        hr_priors, lr_priors = _vectors(hr_list), _vectors(lr_list)
        out = {
            "model": str(folder),
            "stage": stage,
            "iterations": config.get("iterations"),
            "images": len(pairs),
            "cos_hr_between_images": round(_mean_offdiag_cos(_per_image(hr_list)), 4),
            "hr_prior_norm": round(float(hr_priors.norm(dim=1).mean()), 4),
        }
        if hr_list[0].dim() == 4:
            within = [_mean_offdiag_cos(z.reshape(-1, z.shape[-1])) for z in hr_list if z.shape[1] * z.shape[2] > 1]
            out["cos_hr_between_windows"] = round(statistics.fmean(within), 4)
        key = "sampled" if stage == 2 else "lr"
        cos = F.cosine_similarity(lr_priors, hr_priors, dim=1)
        out[f"cos_{key}_vs_hr"] = round(float(cos.mean()), 4)
        out[f"norm_ratio_{key}_to_hr"] = round(float((lr_priors.norm(dim=1) / hr_priors.norm(dim=1)).mean()), 4)
        out[f"l1_{key}_vs_hr"] = round(float((lr_priors - hr_priors).abs().mean()), 4)
        psnr = {"hr": [], key: [], "other_image_hr": []}
        for i, (hr, lr) in enumerate(pairs):
            psnr["hr"].append(_psnr(net, lr, hr, hr_list[i], scale))
            psnr[key].append(_psnr(net, lr, hr, lr_list[i], scale))
            j = (i + 1) % len(pairs)  # a window map of another size is resampled to this image's windows
            psnr["other_image_hr"].append(_psnr(net, lr, hr, hr_list[j], scale))
    for k, v in psnr.items():
        out[f"psnr_{k}"] = round(statistics.fmean(v), 4)
    return out


def init_priors(folder: Path, pairs) -> dict:
    from anyres.registry import NETWORKS

    trained, _ = load_network(folder)
    torch.manual_seed(0)
    net = NETWORKS.build("liifusion", **{**trained.config.__dict__, "stage": 1}).eval()
    with torch.inference_mode():
        z = [net.prior_from(lr, hr) for hr, lr in pairs]
    return {
        "cos_hr_between_images": round(_mean_offdiag_cos(_per_image(z)), 4),
        "hr_prior_norm": round(float(_vectors(z).norm(dim=1).mean()), 4),
    }


def init_spread(pairs) -> dict:
    """Variance of the raw prior between images (image layout) or windows (window layout) at init."""
    from anyres.sr.liifusion import LIIFusion

    out = {"batchnorm_eps": torch.nn.BatchNorm1d(1).eps}
    for init in ("torch", "kaiming"):
        for layout in ("image", "window"):
            torch.manual_seed(0)
            net = LIIFusion({"prior_init": init, "prior_layout": layout}).eval()
            with torch.inference_mode():
                z = _vectors([net.prior_from(lr, hr, normalise=False) for hr, lr in pairs])
            out[f"{init}_{layout}_raw_variance"] = float(f"{float(z.var(0).mean()):.3g}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage1", type=Path, default=None)
    ap.add_argument("--init-only", action="store_true", help="only the raw prior's spread at initialisation")
    ap.add_argument("--stage2", type=Path, default=None)
    ap.add_argument("--sets", default="Set5,Set14")
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "liifusion_prior_probe.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pairs = []
    for name in args.sets.split(","):
        for path in list_images(BENCH / name):
            pairs.append(make_lr(to_rgb(read_image(path)[0]), args.scale))
    report = {"command": " ".join(["python", *sys.argv]), "scale": args.scale, "sets": args.sets}
    if args.init_only:
        report["init_spread"] = init_spread(pairs)
        write_bytes_atomic(args.out, (json.dumps(report, indent=1) + "\n").encode())
        print(json.dumps(report))
        return
    if args.stage1 is None:
        raise SystemExit("--stage1 is required (or --init-only)")
    report["stage1"] = probe(args.stage1, pairs, args.scale)
    report["init"] = init_priors(args.stage1, pairs)
    if args.stage2 is not None:
        report["stage2"] = probe(args.stage2, pairs, args.scale, stage1=args.stage1)
    write_bytes_atomic(args.out, (json.dumps(report, indent=1) + "\n").encode())
    print(json.dumps(report))


if __name__ == "__main__":
    main()
