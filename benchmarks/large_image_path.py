"""Peak memory and time of the large-image enhancement path: a 4000 x 3000 photo enhanced at a working size.

Runs in this process from a clean start, so ``ru_maxrss`` is the path's peak (plus torch's import).
Usage: ``python benchmarks/large_image_path.py [--working-size 512] [--threads 1]``; the last line printed
is one JSON object. The enhancer is an untrained default-size ``unet-enhancer`` (1.69 M parameters, the size
of DeepLPF): memory and time do not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--working-size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from anyres.api import enhance_rgb, working_size
    from anyres.models.unet_enhancer import UNetEnhancer

    x = torch.rand(1, 3, 3000, 4000, generator=torch.Generator().manual_seed(0))
    net = UNetEnhancer().eval()
    work = working_size(3000, 4000, long_side=args.working_size)
    t0 = time.perf_counter()
    out = enhance_rgb(net, x, working=work)
    seconds = time.perf_counter() - t0
    assert out.shape == x.shape
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"input": [3000, 4000], "working": list(work), "threads": args.threads,
                      "seconds": round(seconds, 2), "peak_rss_mb": round(peak)}))


if __name__ == "__main__":
    main()
