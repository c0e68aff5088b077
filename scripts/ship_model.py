"""Copy a training run's exported model into the package as a shipped weight folder.

Usage: python scripts/ship_model.py runs/liif-edsr-baseline liif [--description "..."]

Copies ``RUN/model/{model.safetensors,config.json}`` to ``src/anyres/weights/NAME/`` and records in
config.json what the model card needs: training data, iterations, wall time and the recipe, read from the
run's checkpoint metadata (safetensors header; nothing is unpickled). The measured table of the card is
written afterwards by ``python benchmarks/liif_quality.py --card``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("name")
    ap.add_argument("--description", default=None)
    args = ap.parse_args()
    with safe_open(str(args.run / "checkpoint.safetensors"), framework="pt") as f:
        meta = json.loads(f.metadata()["anyres"])
    model_dir = args.run / "model"
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("iterations") != meta["iteration"]:
        raise SystemExit(f"{model_dir} (it {config.get('iterations')}) and the checkpoint "
                         f"(it {meta['iteration']}) differ; wait for the next checkpoint")
    train = meta["config"]
    config.update({
        "name": args.name,
        "description": args.description or config.get("description", ""),
        "training": {
            "data": [Path(p).name for p in train["data"]["train"]],
            "iterations": meta["iteration"],
            "wall_time_hours": round(meta["elapsed"] / 3600, 2),
            "batch_size": train["batch_size"],
            "patch": train["data"]["patch"],
            "scale_range": [train["data"]["scale_min"], train["data"]["scale_max"]],
            "queries_per_patch": train["data"]["queries"],
            "optimizer": {"name": "adam", **train["optim"]},
            "precision": train["precision"],
            "seed": train["seed"],
            "validation": meta.get("history", [])[-5:],
        },
    })
    dest = ROOT / "src" / "anyres" / "weights" / args.name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_dir / "model.safetensors", dest / "model.safetensors")
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"shipped {args.run} (iteration {meta['iteration']}, {meta['elapsed'] / 3600:.2f} h) -> {dest}")


if __name__ == "__main__":
    main()
