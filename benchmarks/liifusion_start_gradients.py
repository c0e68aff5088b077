"""How the injector's starting output conv decides what a LIIFusion stage-1 run learns first (issue 19).

For each start (the conv zeroed, at 0.1 x PyTorch's default init, at the default init), builds the ablation
row's network from its config (initialised from LIIF as the row is), draws the same training batch as the
trainer's iteration 5 and prints the starting L1 loss and the median |gradient| of the prior encoder, the
injector's window layers and its output conv. A gradient far below Adam's eps (1e-8) means that part does
not learn. ``--trained LABEL=FOLDER`` adds a row for a trained stage-1 model folder of the same architecture
(e.g. the zeroed-start row after its 300 iterations), on the same batch.

Usage: ``python benchmarks/liifusion_start_gradients.py [--config configs/ablation/liifusion-s1-window-kaiming-nonorm-random.yaml]
[--trained zeroed@300=runs/ablation/liifusion-s1-window-kaiming-nonorm/model]``.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch
import yaml

from anyres.degrade.base import derive_seed
from anyres.hub import load_network
from anyres.train.engine import build
from anyres.train.recipes.sr import TrainConfig, _batch_generator

STARTS = {
    "zeroed": {"start_identity": True},
    "x0.1": {"start_identity": False, "start_scale": 0.1},
    "default": {"start_identity": False, "start_scale": 1.0},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/ablation/liifusion-s1-window-kaiming-nonorm-random.yaml")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--trained", action="append", default=[], metavar="LABEL=FOLDER")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = yaml.safe_load(open(args.config))
    out: dict[str, dict[str, float]] = {}
    rows = [(label, start, None) for label, start in STARTS.items()]
    rows += [(label, STARTS["zeroed"], folder) for label, folder in (t.split("=", 1) for t in args.trained)]
    for label, start, folder in rows:
        cfg = {**base, "batch_size": args.batch, "out_dir": tempfile.mkdtemp(prefix="anyres-gradprobe-")}
        cfg["model"] = {"name": "liifusion", "args": {**base["model"]["args"], **start}}
        recipe = build(TrainConfig(**cfg), log=lambda msg: None).recipe
        net = recipe.net
        if folder is not None:
            net.load_state_dict(load_network(folder, device="cpu")[0].state_dict())
        batch = recipe.sampler.sample(args.batch, _batch_generator(cfg.get("seed", 0), 0, 5))
        g = torch.Generator().manual_seed(derive_seed(cfg.get("seed", 0), "prior/0/5"))
        prior, _ = net.prior_batch(batch.lr, batch.hr, g)
        loss = 2.0 * (net(batch.lr, batch.coord, batch.cell, prior=prior) - batch.gt).abs().mean()
        loss.backward()
        row = {"loss": round(float(loss.detach()), 5)}
        for part in ("prior_encoder.", "injector.layers.", "injector.conv."):
            grads = [
                p.grad.abs().flatten() for n, p in net.named_parameters() if n.startswith(part) and p.grad is not None
            ]
            row[f"median_grad_{part.rstrip('.')}"] = float(f"{float(torch.cat(grads).median()):.3g}")
        out[label] = row
        print(label, row, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
