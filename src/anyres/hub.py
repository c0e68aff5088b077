"""The weights-folder format: save and load networks.

A weight folder holds ``model.safetensors`` (never a pickle), ``config.json`` (enough to rebuild the
network alone) and ``README.md`` (the model card).

Precision: training runs save float32; shipped folders store their floating tensors as float16
(``save_network(..., float16=True)``, about half the bytes), but for those named by ``keep_float32``. :func:`load_network` upcasts float16 and bfloat16
tensors to float32, so every folder loads to the same float32 network whatever it stores (the float16 copy
of a float32 folder loads to that network's weights rounded to float16: benchmarks/fp16_weights.py measures
what that costs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anyres.errors import RegistryError
from anyres.registry import NETWORKS

__all__ = [
    "save_network",
    "load_network",
    "card_header",
    "write_card",
    "with_card_header",
    "WEIGHTS",
    "CONFIG",
    "CARD",
    "WEIGHTS_DIR",
]

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
# Weights folders shipped inside the package, one per model name.
WEIGHTS_DIR = Path(__file__).parent / "weights"


def _write_atomic(path: Path, data: bytes) -> None:
    from anyres.io import write_bytes_atomic

    write_bytes_atomic(path, data)


def save_network(
    net: Any,
    folder: str | Path,
    extra: dict[str, Any] | None = None,
    *,
    float16: bool = False,
    keep_float32: tuple[str, ...] = (),
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (``net.config_dict()`` plus ``extra``) into ``folder``.

    Each file is replaced atomically; the config alone rebuilds the network (:func:`load_network`).
    ``float16=True`` stores every floating tensor as float16 (shipping; :func:`load_network` upcasts them)
    except those whose key starts with one of ``keep_float32``; integer tensors are kept as they are.
    Training runs keep the default, float32 as trained.
    """
    import json

    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if float16:
        state = {
            k: v.half() if v.is_floating_point() and not k.startswith(keep_float32) else v for k, v in state.items()
        }
    _write_atomic(folder / WEIGHTS, save(state))
    config = {**net.config_dict(), **(extra or {})}
    _write_atomic(folder / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
    return folder


def load_network(folder: str | Path, device: str | None = None):
    """Rebuild a network from a folder's ``config.json`` and load ``model.safetensors`` (never unpickles).

    ``config["arch"]`` names a :data:`~anyres.registry.NETWORKS` entry whose builder carries a
    ``config_class`` (``liif``, ``diinn``). Float16 and bfloat16 tensors are upcast to float32, so a
    float16 folder and a float32 one load to the same float32 network. Returns ``(net, config)``.
    """
    import json

    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise RegistryError(f"{folder / CONFIG}: cannot read model config ({err})") from None
    arch = config.get("arch") if isinstance(config, dict) else None
    # A saveable architecture is a NETWORKS entry whose builder names its config dataclass; config.json
    # also holds card fields (name, iterations, ...), so only that dataclass's keys go to the builder.
    config_class = (
        getattr(NETWORKS.get(arch).builder, "config_class", None)
        if isinstance(arch, str) and arch in NETWORKS
        else None
    )
    if config_class is None:
        raise RegistryError(f"{folder / CONFIG}: unknown architecture {arch!r}")
    fields = {k: v for k, v in config.items() if k in config_class.__dataclass_fields__}
    net = NETWORKS.build(str(arch), **fields)
    try:
        state = load_file(str(folder / WEIGHTS), device="cpu")
    except (OSError, SafetensorError) as err:
        raise RegistryError(f"{folder / WEIGHTS}: cannot read weights ({err})") from None
    state = {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in state.items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise RegistryError(f"{folder / WEIGHTS}: weights do not match config.json ({first})") from None
    net.eval()
    if device:
        net.to(device)
    return net, config


# -- model cards: a Hugging Face-style metadata header (YAML front matter) above the README text ---------------
_TAGS = {
    "upscaler": ["super-resolution", "image-restoration", "arbitrary-scale"],
    "enhancer": ["image-enhancement", "image-restoration"],
    "resampler": ["image-resampling"],
}
_TASKS = {
    "upscaler": ("image-super-resolution", "Image Super-Resolution"),
    "enhancer": ("image-enhancement", "Image Enhancement"),
    "resampler": ("image-resampling", "Image Resampling"),
}


def card_header(config: dict[str, Any], metrics: list[dict[str, Any]] | None = None, *, license: str = "mit") -> str:
    """The YAML front matter of a weights folder's card, built from its ``config.json``: license, library, tags
    (the task, the architecture), the training datasets, and a ``model-index`` with ``metrics`` (each
    ``{"dataset", "type", "value", "name"}``, e.g. PSNR on Set5 at x2), so the folder can be published as it is."""
    import yaml

    arch = str(config.get("arch", ""))
    role = NETWORKS[arch].role if arch in NETWORKS else ""
    data = (config.get("training") or {}).get("data") or []
    meta: dict[str, Any] = {
        "license": license,
        "library_name": "anyres",
        "pipeline_tag": "image-to-image",
        "tags": [*_TAGS.get(role, []), arch, "anyres"],
    }
    if data:
        meta["datasets"] = [Path(str(d)).name for d in data]
    if config.get("source"):
        meta["tags"].append("converted")
    if metrics:
        by_set: dict[str, list[dict[str, Any]]] = {}
        for m in metrics:
            by_set.setdefault(m["dataset"], []).append({k: m[k] for k in ("type", "value", "name")})
        meta["model-index"] = [
            {
                "name": str(config.get("name", arch)),
                "results": [
                    {
                        "task": dict(zip(("type", "name"), _TASKS.get(role, ("image-to-image", "Image to Image")))),
                        "dataset": {"name": name, "type": name},
                        "metrics": values,
                    }
                    for name, values in by_set.items()
                ],
            }
        ]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def write_card(folder: str | Path, text: str, metrics: list[dict[str, Any]] | None = None, **header: Any) -> Path:
    """Write ``folder/README.md``: the metadata header from the folder's ``config.json`` (:func:`card_header`),
    then ``text``. Returns the card's path."""
    import json

    folder = Path(folder)
    config = json.loads((folder / CONFIG).read_text())
    path = folder / CARD
    _write_atomic(path, with_card_header(text, card_header(config, metrics, **header)).encode())
    return path


def with_card_header(card: str, header: str) -> str:
    """``card`` with its front matter replaced by ``header`` (or ``header`` added above it)."""
    if card.startswith("---\n"):
        end = card.find("\n---\n", 4)
        if end != -1:
            card = card[end + len("\n---\n") :].lstrip("\n")
    return header + "\n" + card
