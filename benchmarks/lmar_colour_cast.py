"""Does an LMAR resampler keep the colours? Mean colour of its downscaled photos against MATLAB bicubic's.

For each Set14 photo, damaged by ``--task`` with the per-image record that ``anyres evaluate --task`` draws, both
resamplers downscale to the working size of ``--scale``; prints, per channel, the mean over photos of
``mean(LMAR) / mean(bicubic) - 1`` (a colour cast in per cent of the bicubic level), and the same for the
enhancer's output at the working size.

Usage: ``python benchmarks/lmar_colour_cast.py --enhancer src/anyres/weights/deeplpf-lowlight --lmar FOLDER
[--task lowlight] [--scale 2] [--set ../shared/data/benchmark/Set14]``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from anyres.enhancement.api import downsample_for, enhance_rgb, load_enhancer, load_resampler, working_size
from anyres.enhancement.tasks import get_task
from anyres.evaluation.benchmark import make_damaged
from anyres.io import list_images, read_image
from anyres.ops.color import to_rgb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enhancer", required=True)
    ap.add_argument("--lmar", required=True)
    ap.add_argument("--task", default="lowlight")
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--set", default="../shared/data/benchmark/Set14")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = load_enhancer(args.enhancer)
    lmar = load_resampler("lmar", args.lmar)
    task = get_task(args.task)
    casts: dict[str, list[torch.Tensor]] = {"downscaled": [], "enhanced": []}
    for path in list_images(Path(args.set)):
        clean = to_rgb(read_image(path)[0]).contiguous()
        damaged, _ = make_damaged(clean, task, args.seed, path.name)
        work = working_size(*damaged.shape[-2:], scale=args.scale)
        with torch.no_grad():
            small = {
                "bicubic": downsample_for(damaged.float(), work, None),
                "lmar": downsample_for(damaged.float(), work, lmar),
            }
            out = {k: enhance_rgb(net, v) for k, v in small.items()}
        for key, pair in (("downscaled", small), ("enhanced", out)):
            means = {k: v.float().reshape(3, -1).mean(1) for k, v in pair.items()}
            casts[key].append(means["lmar"] / means["bicubic"].clamp_min(1e-6) - 1)
    report = {
        "enhancer": args.enhancer,
        "lmar": args.lmar,
        "task": args.task,
        "scale": args.scale,
        "images": len(casts["downscaled"]),
        **{
            f"{key}_cast_percent": {c: round(x, 1) for c, x in zip("RGB", (torch.stack(v).mean(0) * 100).tolist())}
            for key, v in casts.items()
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
