"""How large, and how colour-sensitive, each enhancer's encoder features are (what LMAR's feature terms compare).

For each enhancer, on the top-left 256 x 256 crop of Set14's lenna: the RMS of the features that
``anyres.train.lmar_losses.encoder_features`` returns, and the mean absolute change of those features when the
blue channel of the input is halved.

Usage: ``python benchmarks/enhancer_feature_scale.py [--enhancers deeplpf-retouch,deeplpf-lowlight,checkpoints/unet-lowlight]``.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json

import torch

from anyres.enhancement.api import load_enhancer
from anyres.io import read_image
from anyres.ops.color import to_rgb
from anyres.train.lmar_losses import encoder_features

IMAGE = "../shared/data/benchmark/Set14/lenna.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enhancers", default="deeplpf-retouch,deeplpf-lowlight,checkpoints/unet-lowlight")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = to_rgb(read_image(IMAGE)[0])
    x = (x if x.dim() == 4 else x[None])[..., :256, :256]
    bluer = x * torch.tensor([1.0, 1.0, 0.5])[:, None, None]
    out = {}
    with torch.no_grad():
        for name in args.enhancers.split(","):
            encoder = encoder_features(load_enhancer(name))
            f, g = encoder(x)[0], encoder(bluer)[0]
            out[name] = {
                "channels": f.shape[1],
                "rms": round(float(f.pow(2).mean().sqrt()), 5),
                "change_when_blue_halved": round(float((f - g).abs().mean()), 6),
            }
    print(json.dumps({"command": "python benchmarks/enhancer_feature_scale.py", "image": IMAGE, "enhancers": out}))


if __name__ == "__main__":
    main()
