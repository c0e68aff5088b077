"""Copy a training run's exported model into the package as a shipped weight folder.

Usage: python scripts/ship_model.py runs/liif-edsr-baseline liif [--description "..."]
       python scripts/ship_model.py --repack FOLDER [FOLDER ...]

Ships ``RUN/model/{model.safetensors,config.json}`` to ``src/anyres/weights/NAME/`` and records in
config.json what the model card needs: training data, iterations, wall time and the recipe, read from the
run's checkpoint metadata (safetensors header; nothing is unpickled). The measured table of the card is
written afterwards by ``python benchmarks/liif_quality.py --card``.

A shipped folder is lean: its floating tensors are stored as float16 (``hub.load_network`` upcasts them to
float32; ``python benchmarks/fp16_weights.py`` measures the PSNR this costs), and a stage-2 LIIFusion leaves
out its frozen stage-1 prior encoder, which only training runs (config.json ``hr_prior_encoder: false``).
The decoder of an arbitrary-scale model stays float32 (:data:`KEEP_FLOAT32`): the default ``fast`` mode casts
its weights to bfloat16, and float32 -> float16 -> bfloat16 rounds differently from float32 -> bfloat16
wherever the float16 value falls on a bfloat16 tie (about one weight in sixteen, by one bfloat16 step); on
Set5 x2 that took DIINN from -0.001 dB (float16 everywhere, ``exact`` mode) to -0.012 dB in ``fast`` mode.
``--repack`` rewrites existing weight folders in place in that form (config.json card fields and README.md
are kept). Training runs keep saving float32 with every module: resume from their checkpoints, not from a
shipped folder.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from anyres.train.states import read_state

ROOT = Path(__file__).resolve().parents[1]
# Per architecture, the state-dict prefixes the fast render casts to bfloat16: stored float32 (module doc).
KEEP_FLOAT32 = {"liif": ("imnet.",), "liifusion": ("imnet.",), "diinn": ("modulation.", "synthesis.", "out.")}


def inference_network(net: Any) -> Any:
    """``net`` without what inference never runs: a stage-2 LIIFusion's stage-1 prior encoder (the frozen
    target of its prior loss). Other networks are returned as they are."""
    from anyres.sr.liifusion import LIIFusion

    if not (isinstance(net, LIIFusion) and net.config.stage == 2 and net.prior_encoder is not None):
        return net
    slim = LIIFusion({**asdict(net.config), "hr_prior_encoder": False})
    # Strict: the file may lack exactly the prior encoder, nothing else.
    slim.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("prior_encoder.")})
    return slim.eval()


def write_shipped(net: Any, card: dict[str, Any], dest: Path) -> Path:
    """Write ``dest/{model.safetensors,config.json}`` in the shipped form; ``card`` holds the config.json fields
    beside the network's own (name, description, training, ...)."""
    from anyres.hub import save_network

    net = inference_network(net)
    own = net.config_dict()
    return save_network(
        net,
        dest,
        extra={k: v for k, v in card.items() if k not in own},
        float16=True,
        keep_float32=KEEP_FLOAT32.get(own["arch"], ()),
    )


def repack(folder: Path) -> None:
    from anyres.hub import WEIGHTS, load_network

    before = (folder / WEIGHTS).stat().st_size
    net, config = load_network(folder)
    write_shipped(net, config, folder)
    print(f"repacked {folder}: {before / 2**20:.2f} -> {(folder / WEIGHTS).stat().st_size / 2**20:.2f} MiB")


def ship(run: Path, name: str, description: str | None) -> None:
    from anyres.hub import load_network

    meta, _ = read_state(run / "checkpoint.safetensors", tensors=False)
    model_dir = run / "model"
    net, config = load_network(model_dir)
    if config.get("iterations") != meta["iteration"]:
        raise SystemExit(
            f"{model_dir} (it {config.get('iterations')}) and the checkpoint "
            f"(it {meta['iteration']}) differ; wait for the next checkpoint"
        )
    train = meta["config"]
    shipped = ROOT / "src" / "anyres" / "weights" / name / "config.json"
    if not (description or config.get("description")) and shipped.is_file():  # a new version keeps its line
        description = json.loads(shipped.read_text()).get("description")
    config.update(
        {
            "name": name,
            "description": description or config.get("description", ""),
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
                **({"precision_spans": meta["precision_spans"]} if meta.get("precision_spans") else {}),
                "seed": train["seed"],
                **({"init": train["init"]} if train.get("init") else {}),
                **({"ema": train["ema"]} if train.get("ema") else {}),
                **({"sharpen_gt": True} if train["data"].get("sharpen_gt") else {}),
                "validation": meta.get("history", [])[-5:],
            },
        }
    )
    dest = write_shipped(net, config, ROOT / "src" / "anyres" / "weights" / name)
    print(f"shipped {run} (iteration {meta['iteration']}, {meta['elapsed'] / 3600:.2f} h) -> {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?")
    ap.add_argument("name", nargs="?")
    ap.add_argument("--description", default=None)
    ap.add_argument(
        "--repack",
        type=Path,
        nargs="+",
        metavar="FOLDER",
        help="rewrite these weight folders in place in the shipped form",
    )
    args = ap.parse_args()
    if args.repack:
        if args.run is not None:
            ap.error("--repack takes folders only")
        for folder in args.repack:
            repack(folder)
    elif args.run is None or args.name is None:
        ap.error("give RUN and NAME, or --repack FOLDER ...")
    else:
        ship(args.run, args.name, args.description)


if __name__ == "__main__":
    main()
