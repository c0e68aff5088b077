"""Pictures of the real-world models: `anyres compare` crops on Real-ESRGAN-degraded Set14 LR.

Usage:
  python benchmarks/real_world_pictures.py [--models liif-real,liif-real-gan] [--scale 4] [--seed 0]
                                           [--no-x4plus] [--threads 1]

For each image below, the LR is the one ``anyres evaluate --degradation realesrgan --seed 0`` uses (so the
PSNR under each panel is that image's row of the real-world table), and the sheet holds nearest, bicubic,
each model, the released Real-ESRGAN x4plus (through ``benchmarks/realesrgan_x4plus.py``'s ncnn worker in
its own virtual environment; ``--no-x4plus`` leaves it out) and the HR crop. Equivalent command per image,
without the x4plus panel: ``anyres compare IMAGE --as-hr --scale 4 --degradation realesrgan --seed 0
--models liif-real,liif-real-gan --crop X,Y,W,H -o OUT.png``. Writes
benchmarks/results/real_world/{image}.png and prints one line per panel.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from anyres.evaluation.compare import make_comparison
from anyres.io import write_image
from anyres.pictures import from_pil

HERE = Path(__file__).resolve().parent
SET14 = Path("../shared/data/benchmark/Set14")
# Four Set14 images and a 160x160 crop (x, y, w, h in HR pixels) with texture, edges and a face or text.
CROPS = {
    "baboon": (180, 40, 160, 160),
    "comic": (60, 60, 160, 160),
    "zebra": (200, 120, 160, 160),
    "barbara": (330, 60, 160, 160),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="liif-real,liif-real-gan")
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-x4plus", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "real_world")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models: list = [m for m in args.models.split(",") if m]
    worker = None
    with tempfile.TemporaryDirectory(prefix="real-world-pictures-") as scratch:
        if not args.no_x4plus:
            sys.path.insert(0, str(HERE))
            from realesrgan_x4plus import RealESRGANx4plus, Worker, ensure_venv

            venv = Path.home() / ".cache/anyres-bench/realesrgan-ncnn"
            worker = Worker(ensure_venv(venv, sys.executable), 0, args.threads, venv / "worker.log")
            x4plus = RealESRGANx4plus(worker, Path(scratch))
            x4plus.name = "Real-ESRGAN x4plus"
            models.append(x4plus)
        try:
            for name, crop in CROPS.items():
                sheet, records = make_comparison(
                    SET14 / f"{name}.png",
                    args.scale,
                    models,
                    as_hr=True,
                    crop=crop,
                    degradation="realesrgan",
                    seed=args.seed,
                )
                path = args.out / f"{name}.png"
                write_image(path, from_pil(sheet), overwrite=True)
                cells = ", ".join(f"{r['label']} {r['psnr']:.2f} dB" for r in records if r["psnr"] is not None)
                print(f"{path}: {cells}")
        finally:
            if worker is not None:
                worker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
