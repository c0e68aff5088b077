"""HLLHGAN experiment: SR trained on pairs from a learned degradation vs SR trained on bicubic pairs, tested on
a degradation neither SR model was shown.

1. ``data``: the 391 training images (T91, BSD200, General100, sorted) are split by index parity: even -> the
   HR half (``hr_half/``, symlinks), odd -> the "real" half, degraded x4 by one **hidden** Real-ESRGAN
   parameter draw (the records drawn from one generator seeded with ``--hidden-seed``, the same for every
   image: same kernels, factors, noise levels and JPEG qualities) into ``real_lr/``. Set14 is degraded by
   the same hidden draw into ``set14_lr/``. Nothing downstream is told the hidden parameters.
2. ``gan``: HLLHGAN (``anyres.degrade.learned.hllhgan``) learns High-to-Low from ``hr_half`` and ``real_lr``
   (unpaired: different images).
3. ``sr``: fine-tunes of ``liif`` (as shipped at 6,130 iterations, ``--init``) at x4 on ``hr_half``, same seed,
   iterations and schedule: ``liif-hllhgan`` (LR made on the fly by the learned H2L generator),
   ``liif-bicubic`` (bicubic LR) and ``liif-oracle`` (LR made by the hidden draw itself: the upper bound).
4. ``eval``: PSNR/SSIM (Y, shave 4) and LPIPS (alex) on ``set14_lr`` -> Set14 x4 for bicubic, ``liif``,
   ``liif-bicubic`` and ``liif-hllhgan``; and ``gallery.png``: rows of real LR patches, H2L-generated LR
   patches and bicubic LR patches (16 x 16, shown x4 nearest).
5. ``stats``: sharpness statistics of real, generated, bicubic and average-pool LR crops (is the learned
   degradation closer to the real one than bicubic is?).

Usage: ``python benchmarks/hllhgan_experiment.py [--stage all|data|gan|sr|eval|stats] [--gan-iters 1500]
[--sr-iters 800]``. The finished GAN's generator (15,000 iterations) is committed in float16 as
``checkpoints/hllhgan-h2l``; the ``sr``, ``eval`` and ``stats`` stages use it when ``gan/h2l`` is missing.
While a GAN run is in progress its resume state travels between machines as
``checkpoints/hllhgan-gan.safetensors`` (copy ``gan/checkpoint.safetensors`` there when a session stops; the
``gan`` stage starts from it when its run folder has none). Everything goes to ``benchmarks/results/hllhgan/``
(images and runs are not committed; ``hllhgan.json`` and ``gallery.png`` are). The last line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from anyres.degrade import get_pipeline
from anyres.degrade.realesrgan import RealESRGANPipeline
from anyres.io import list_images, read_image, write_bytes_atomic, write_image
from anyres.ops.color import to_rgb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = Path("../shared/data")
TRAIN = [DATA / "train" / n for n in ("T91", "BSD200", "General100")]
SCALE = 4
FINAL_H2L = ROOT / "checkpoints" / "hllhgan-h2l"  # the finished GAN's generator, float16


def h2l_folder(root: Path) -> Path:
    """The learned degradation: this machine's ``gan/h2l`` when there is one, else the committed one."""
    made = root / "gan" / "h2l"
    return made if made.is_dir() or not FINAL_H2L.is_dir() else FINAL_H2L


def hidden_records(hr: torch.Tensor, seed: int) -> list[dict]:
    """The hidden draw for one image: Real-ESRGAN records drawn from a generator seeded with ``seed`` for
    *every* image, so every image gets the same kernels, resize factors, noise levels and JPEG qualities
    (sizes follow each image's own size; noise fields repeat their seeds)."""
    return get_pipeline("realesrgan").sample(
        1, torch.Generator().manual_seed(seed), scale=SCALE, hr_size=list(hr.shape[-2:])
    )


class HiddenDraw(RealESRGANPipeline):
    """The oracle's LR: every crop degraded by the hidden draw itself (its records for the crop's size)."""

    name = "hllhgan-hidden"
    seed = 0  # the hidden seed, set by stage_sr

    def sample(self, batch, generator, *, scale, hr_size):
        if scale != SCALE:
            raise ValueError(f"the hidden draw is x{SCALE}, not x{scale}")
        return [
            {**hidden_records(torch.zeros(1, 3, *hr_size), self.seed)[0], "pipeline": self.name} for _ in range(batch)
        ]


def _crop4(img: torch.Tensor) -> torch.Tensor:
    h, w = img.shape[-2:]
    return img[..., : h - h % SCALE, : w - w % SCALE]


def _degrade_folder(paths: list[Path], out: Path, seed: int) -> int:
    """Degrade the images not yet in ``out``; returns how many it made."""
    pipe = get_pipeline("realesrgan")
    out.mkdir(parents=True, exist_ok=True)
    made = 0
    for path in paths:
        target = out / f"{path.stem}.png"
        if target.exists():
            continue
        hr = _crop4(to_rgb(read_image(path)[0]))
        write_image(target, pipe.apply(hr, hidden_records(hr, seed)))
        made += 1
    return made


def stage_data(root: Path, hidden_seed: int) -> dict | None:
    """Make the unpaired data; None when it was all there already (its record, data.json, is kept)."""
    paths = sorted((p for folder in TRAIN for p in list_images(folder)), key=lambda p: (p.parent.name, p.name))
    hr_half, real_half = paths[0::2], paths[1::2]
    link_dir = root / "hr_half"
    link_dir.mkdir(parents=True, exist_ok=True)
    for p in hr_half:
        link = link_dir / f"{p.parent.name}_{p.name}"
        if not link.exists():
            os.symlink(p.resolve(), link)
    t0 = time.perf_counter()
    made = _degrade_folder(real_half, root / "real_lr", hidden_seed)
    made += _degrade_folder(list_images(DATA / "benchmark" / "Set14"), root / "set14_lr", hidden_seed)
    record = root / "data.json"
    if not made and record.is_file():
        return None
    info = {
        "hr_images": len(hr_half),
        "real_lr_images": len(real_half),
        "hidden_seed": hidden_seed,
        "hidden_record_256": hidden_records(torch.zeros(1, 3, 256, 256), hidden_seed)[0],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_bytes_atomic(record, (json.dumps(info, indent=1) + "\n").encode())
    return info


def stage_gan(root: Path, iters: int, threads: int) -> dict:
    from anyres.sr.data import load_hr_folders
    from anyres.train.recipes.hllhgan import HLLHGANConfig, train_hllhgan

    hr = load_hr_folders([root / "hr_half"])
    lr = load_hr_folders([root / "real_lr"])
    state, committed = root / "gan" / "checkpoint.safetensors", ROOT / "checkpoints" / "hllhgan-gan.safetensors"
    if not state.exists() and committed.exists():  # a new machine: go on from the committed resume state
        state.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(committed, state)
        print(f"resuming from the committed state {committed.relative_to(ROOT)}")
    return train_hllhgan(hr, lr, root / "gan", HLLHGANConfig(iterations=iters, threads=threads))


def _sr_config(root: Path, name: str, degradation: dict | None, iters: int, threads: int, init: Path) -> Path:
    import yaml

    cfg = {
        "name": name,
        "model": {
            "name": "liif",
            "args": {
                "encoder": {"name": "edsr-baseline", "args": {"n_resblocks": 16, "n_feats": 64}},
                "hidden": [256, 256],
            },
        },
        "init": str(init),
        "data": {
            "train": [str(root / "hr_half")],
            "patch": 48,
            "scale_min": 4.0,
            "scale_max": 4.0,
            "queries": 2304,
            "augment": True,
        },
        "batch_size": 16,
        "iterations": iters,
        "optim": {"lr": 1.0e-4, "milestones": [int(iters * 0.75)], "gamma": 0.5, "warmup": min(200, iters // 5)},
        "precision": "bf16",
        "val": {"data": None},
        "checkpoint_minutes": 5,
        "log_every": 50,
        "seed": 1,
        "threads": threads,
        "out_dir": str(root / "runs" / name),
    }
    if degradation:
        cfg["data"]["degradation"] = degradation
    path = root / f"{name}.yaml"
    write_bytes_atomic(path, yaml.safe_dump(cfg, sort_keys=False).encode())
    return path


def stage_sr(root: Path, iters: int, which: list[str], threads: int, init: Path, hidden_seed: int) -> dict:
    from anyres.registry import DEGRADATIONS
    from anyres.train.config import load_config
    from anyres.train.engine import train

    if not (init / "config.json").is_file():
        sys.exit(
            f"error: {init} is missing: the SR runs start from liif as shipped at 6,130 iterations; write it "
            f"with python scripts/earlier_weights.py liif --iterations 6130 --out {init}"
        )
    if HiddenDraw.name not in DEGRADATIONS:
        DEGRADATIONS.add_class(HiddenDraw, role="synthetic")
    HiddenDraw.seed = hidden_seed
    out = {}
    runs = {
        "liif-hllhgan": {"name": "hllhgan", "args": {"weights": str(h2l_folder(root))}},
        "liif-bicubic": None,
        "liif-oracle": {"name": HiddenDraw.name},
    }
    for name in which:
        t0 = time.perf_counter()
        trainer = train(load_config(_sr_config(root, name, runs[name], iters, threads, init)))
        out[name] = {
            "iterations": trainer.iteration,
            "seconds": round(trainer.elapsed, 1),
            "wall": round(time.perf_counter() - t0, 1),
        }
    return out


def stage_eval(root: Path, init: Path) -> dict:
    from anyres.metrics import measure
    from anyres.metrics.lpips import lpips
    from anyres.sr.pretrained import load_upscaler

    models = {
        "bicubic": "bicubic",
        "liif": str(init),  # the SR runs' start (the shipped liif has trained on since)
        "liif-bicubic": str(root / "runs" / "liif-bicubic" / "model"),
        "liif-hllhgan": str(root / "runs" / "liif-hllhgan" / "model"),
        "liif-oracle": str(root / "runs" / "liif-oracle" / "model"),
    }
    rows: dict[str, dict] = {}
    for label, spec in models.items():
        if spec.startswith("/") and not Path(spec).exists():
            print(f"skipping {label}: {spec} missing", file=sys.stderr)
            continue
        up = load_upscaler(spec, mode="fast") if label != "bicubic" else load_upscaler("bicubic")
        per = {}
        for path in list_images(DATA / "benchmark" / "Set14"):
            hr = _crop4(to_rgb(read_image(path)[0]))
            lr = read_image(root / "set14_lr" / f"{path.stem}.png")[0]
            with torch.inference_mode():
                sr = up.upscale(lr, tuple(hr.shape[-2:])).clamp(0, 1)
            score = measure(sr, hr, SCALE, "benchmark")
            per[path.name] = {
                "psnr": round(score.psnr, 3),
                "ssim": round(score.ssim, 4),
                "lpips": round(float(lpips(sr, hr, "alex")), 4),
            }
        n = len(per)
        rows[label] = {
            "psnr": round(sum(r["psnr"] for r in per.values()) / n, 3),
            "ssim": round(sum(r["ssim"] for r in per.values()) / n, 4),
            "lpips": round(sum(r["lpips"] for r in per.values()) / n, 4),
            "per_image": per,
        }
    return rows


def real_and_h2l_crops(root: Path, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` random 16x16 crops of the real LR, 64x64 crops of the HR half and the learned degradation's
    16x16 LR of those HR crops, all in [0, 1], from one generator seeded with ``seed``."""
    from anyres.degrade.learned.hllhgan import load_generator
    from anyres.sr.data import load_hr_folders
    from anyres.train.recipes.hllhgan import random_crops

    g = torch.Generator().manual_seed(seed)
    real = random_crops(load_hr_folders([root / "real_lr"]), 16, count, g)
    hr = random_crops(load_hr_folders([root / "hr_half"]), 64, count, g)
    net = load_generator(h2l_folder(root))
    with torch.no_grad():
        fake = ((net(hr * 2 - 1, net.make_noise(count, 64, 64, g)) + 1) / 2).clamp(0, 1)
    return real, hr, fake


def stage_gallery(root: Path, count: int = 8) -> Path:
    from anyres.ops.resize import imresize

    real, hr, fake = real_and_h2l_crops(root, count, 123)
    bic = imresize(hr, size=(16, 16)).clamp(0, 1)
    pad = 4
    rows = []
    for row in (real, fake, bic):
        tiles = [
            torch.nn.functional.pad(t.repeat_interleave(4, -1).repeat_interleave(4, -2), (pad,) * 4, value=1.0)
            for t in row
        ]
        rows.append(torch.cat(tiles, -1))
    grid = torch.cat(rows, -2)[None]
    path = root / "gallery.png"
    write_image(path, grid, overwrite=True)
    return path


def patch_statistics(root: Path, count: int = 256) -> dict:
    """Sharpness of real LR, H2L-generated LR, bicubic LR and 4x4 average-pool LR over ``count`` random 16x16
    crops: mean absolute gradient, the standard deviation of (x - 3x3 box blur of x) and the mean colour; and
    how far H2L's output is from the average pool of the same HR crops (RMSE, and the mean signed difference
    per RGB channel: a colour or brightness shift)."""
    from anyres.ops.resize import imresize

    real, hr, fake = real_and_h2l_crops(root, count, 7)
    avg = torch.nn.functional.avg_pool2d(hr, 4)
    sets = {"real": real, "h2l": fake, "bicubic": imresize(hr, size=(16, 16)).clamp(0, 1), "avgpool": avg}

    def grad(x):
        return float(
            ((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()) / 2
        )

    def high_freq(x):
        blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
        return float((x - blur).std())

    out = {
        k: {
            "mean_abs_gradient": round(grad(v), 4),
            "high_freq_std": round(high_freq(v), 4),
            "mean_rgb": [round(float(c), 4) for c in v.mean(dim=(0, 2, 3))],
        }
        for k, v in sets.items()
    }
    out["h2l_vs_avgpool_rmse"] = round(float(((fake - avg) ** 2).mean().sqrt()), 4)
    out["h2l_minus_avgpool_mean_rgb"] = [round(float(c), 4) for c in (fake - avg).mean(dim=(0, 2, 3))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", default="all", choices=("all", "data", "gan", "sr", "eval", "stats"))
    ap.add_argument("--root", type=Path, default=HERE / "results" / "hllhgan")
    ap.add_argument("--hidden-seed", type=int, default=0)
    ap.add_argument("--gan-iters", type=int, default=1500)
    ap.add_argument("--sr-iters", type=int, default=800)
    ap.add_argument(
        "--sr-runs", default="liif-hllhgan,liif-bicubic", help="any of liif-hllhgan, liif-bicubic, liif-oracle"
    )
    ap.add_argument(
        "--init", type=Path, default=ROOT / "runs" / "liif-6130", help="weights folder the SR runs start from"
    )
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    root = args.root
    root.mkdir(parents=True, exist_ok=True)
    summary_path = root / "hllhgan.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    stages = ["data", "gan", "sr", "eval", "stats"] if args.stage == "all" else [args.stage]
    for stage in stages:
        if stage == "data":
            data = stage_data(root, args.hidden_seed)
            if data is None:  # nothing new was made: the summary keeps the command that made the data
                continue
            result = {"data": data}
        elif stage == "gan":
            result = {"gan": stage_gan(root, args.gan_iters, args.threads)}
            if (
                result["gan"]["iterations"] < args.gan_iters
            ):  # stopped (SIGTERM / Ctrl-C): the record keeps the last run
                print(
                    f"stopped at iteration {result['gan']['iterations']} of {args.gan_iters}; the same command resumes"
                )
                return
        elif stage == "sr":
            result = {
                "sr": stage_sr(root, args.sr_iters, args.sr_runs.split(","), args.threads, args.init, args.hidden_seed)
            }
        elif stage == "eval":
            result = {"eval": stage_eval(root, args.init.resolve())}
            if h2l_folder(root).is_dir():
                result["gallery"] = str(stage_gallery(root).relative_to(ROOT))
        else:
            result = {"patch_statistics": patch_statistics(root)}
        # Re-read before writing: stages may run as separate processes at the same time.
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        if "sr" in result:
            result["sr"] = {**summary.get("sr", {}), **result["sr"]}
        if "eval" in result:  # rows of runs whose folders are gone (not committed) stay as they were measured
            result["eval"] = {**summary.get("eval", {}), **result["eval"]}
        summary.update(result)
        summary.setdefault("commands", {})[stage] = " ".join(["python", *sys.argv])
        write_bytes_atomic(summary_path, (json.dumps(summary, indent=1) + "\n").encode())
    brief = {k: v for k, v in summary.items() if k != "eval"}
    if "eval" in summary:
        brief["eval"] = {m: {k: r[k] for k in ("psnr", "ssim", "lpips")} for m, r in summary["eval"].items()}
    print(json.dumps(brief))


if __name__ == "__main__":
    main()
