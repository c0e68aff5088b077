"""Resolve ``--model NAME|PATH`` to an upscaler, and save/load weight folders.

A weight folder holds ``model.safetensors`` (never a pickle), ``config.json`` (enough to rebuild the
network alone) and ``README.md`` (the model card).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anyres.errors import RegistryError
from anyres.registry import MODELS, NETWORKS

__all__ = ["load_upscaler", "save_network", "load_network", "load_folder_upscaler", "WEIGHTS", "CONFIG", "CARD"]

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"


def _write_atomic(path: Path, data: bytes) -> None:
    from anyres.io import write_bytes_atomic

    write_bytes_atomic(path, data)


def save_network(net: Any, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (``net.config_dict()`` plus ``extra``) into ``folder``.

    Each file is replaced atomically; the config alone rebuilds the network (:func:`load_network`).
    """
    import json

    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    _write_atomic(folder / WEIGHTS, save(state))
    config = {**net.config_dict(), **(extra or {})}
    _write_atomic(folder / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
    return folder


def load_network(folder: str | Path, device: str | None = None):
    """Rebuild a network from a folder's ``config.json`` and load ``model.safetensors`` (never unpickles).

    ``config["arch"]`` names a :data:`~anyres.registry.NETWORKS` entry whose builder carries a
    ``config_class`` (``liif``, ``diinn``). Returns ``(net, config)``.
    """
    import json

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
    config_class = getattr(NETWORKS.get(arch).builder, "config_class", None) \
        if isinstance(arch, str) and arch in NETWORKS else None
    if config_class is None:
        raise RegistryError(f"{folder / CONFIG}: unknown architecture {arch!r}")
    fields = {k: v for k, v in config.items() if k in config_class.__dataclass_fields__}
    net = NETWORKS.build(arch, **fields)
    try:
        state = load_file(str(folder / WEIGHTS), device="cpu")
    except (OSError, SafetensorError) as err:
        raise RegistryError(f"{folder / WEIGHTS}: cannot read weights ({err})") from None
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise RegistryError(f"{folder / WEIGHTS}: weights do not match config.json ({first})") from None
    net.eval()
    if device:
        net.to(device)
    return net, config


def load_folder_upscaler(folder: str | Path, device: str | None = None, name: str | None = None, **options: Any):
    """A model folder as an :class:`~anyres.infer.LIIFUpscaler` (options: ``mode``, ``tile``, ``chunk``)."""
    from anyres.infer import LIIFUpscaler

    net, config = load_network(folder, device=device)
    return LIIFUpscaler(net, name=name or config.get("name", Path(folder).name),
                        description=config.get("description", ""), **options)


def load_upscaler(model: Any = "bicubic", device: str | None = None, **options: Any):
    """An :class:`~anyres.models.base.Upscaler` from a registered name, a weight folder or an instance."""
    from anyres.models.base import Upscaler

    if isinstance(model, Upscaler):
        return model.to(device) if device else model
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a name, a path or an Upscaler, got {type(model).__name__}")
    text = str(model)
    if text in MODELS:
        return MODELS.build(text, device=device, **options)
    path = Path(text).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return load_folder_upscaler(path, device=device, **options)
    if path.exists():
        raise RegistryError(f"{text}: not a model folder (expected config.json and model.safetensors inside)")
    raise RegistryError(f"unknown model {text!r}; available: {', '.join(MODELS.names())} or a model folder path")
