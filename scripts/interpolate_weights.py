"""Network interpolation (ESRGAN, Sec. 4.4): weights ``(1 - alpha) * A + alpha * B`` of two same-shaped models.

Usage: python scripts/interpolate_weights.py A B --alpha 0.8 -o FOLDER

``A`` and ``B`` are weights folders (``model.safetensors`` + ``config.json``) of one architecture, typically a
PSNR-trained model and its GAN-fine-tuned descendant: alpha trades distortion (PSNR) for perceptual quality
continuously, without retraining. Every floating tensor is interpolated in float32; integer buffers must be
equal. The output folder holds float32 weights and B's config.json with ``interpolation: {a, b, alpha}``
added; ship it with ``scripts/ship_model.py``'s float16 packing (``--repack``) when it becomes a shipped model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from anyres.hub import CONFIG


def interpolate(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    if a.keys() != b.keys():
        raise SystemExit(f"the two models have different tensors: {sorted(a.keys() ^ b.keys())[:5]}")
    out = {}
    for key, x in a.items():
        y = b[key]
        if x.shape != y.shape:
            raise SystemExit(f"{key}: shapes {tuple(x.shape)} and {tuple(y.shape)} differ")
        if x.is_floating_point():
            out[key] = ((1 - alpha) * x.float() + alpha * y.float()).contiguous()
        elif torch.equal(x, y):
            out[key] = x
        else:
            raise SystemExit(f"{key}: integer tensors differ; they cannot be interpolated")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--alpha", type=float, required=True, help="0 gives A, 1 gives B")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    if not 0 <= args.alpha <= 1:
        raise SystemExit(f"--alpha must be in [0, 1], got {args.alpha}")
    ca, cb = (json.loads((f / CONFIG).read_text()) for f in (args.a, args.b))
    if ca.get("arch") != cb.get("arch"):
        raise SystemExit(f"different architectures: {ca.get('arch')} and {cb.get('arch')}")
    weights = interpolate(
        load_file(str(args.a / "model.safetensors")), load_file(str(args.b / "model.safetensors")), args.alpha
    )
    args.output.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(args.output / "model.safetensors"))
    config = {**cb, "interpolation": {"a": str(args.a), "b": str(args.b), "alpha": args.alpha}}
    (args.output / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {args.output}: (1 - {args.alpha:g}) * {args.a} + {args.alpha:g} * {args.b}")


if __name__ == "__main__":
    main()
