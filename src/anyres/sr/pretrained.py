"""Registers the weight folders shipped inside the package (``anyres/weights/<name>/``) as models.

Importing this module imports :mod:`anyres.sr` first, so the baselines are registered too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyres.sr  # noqa: F401  (baselines first)
from anyres.errors import RegistryError
from anyres.hub import WEIGHTS_DIR, load_network
from anyres.registry import MODELS


# Models the package promises; a missing folder is reported clearly instead of silently absent.
_SHIPPED = {
    "liif": "LIIF, EDSR-baseline encoder, trained here on CPU (T91+BSD200+General100), any scale; the default",
    "liif-real": "LIIF fine-tuned on Real-ESRGAN-degraded LR (blind: noise, blur, JPEG), any scale",
    "diinn": "DIINN, EDSR-baseline encoder, LIIF's recipe (1,823 iterations), any scale",
    "liifusion-s1": "LIIFusion stage 1 (HR prior; LR-only fallback without an HR image), any scale",
    "liifusion": "LIIFusion stage 2: prior sampled from the LR in 4 diffusion steps (--seed), any scale",
}


def _register(name: str, description: str) -> None:
    folder = WEIGHTS_DIR / name
    card = folder / "config.json"
    if card.is_file():
        try:
            description = json.loads(card.read_text()).get("description", description)
        except ValueError:
            pass

    @MODELS.register(name, description)
    def build(device: str | None = None, **options):
        if not (folder / "config.json").is_file():
            raise RegistryError(f"model {name!r}: its weights are missing from this installation ({folder})")
        return load_folder_upscaler(folder, device=device, name=name, **options)


for _name, _desc in _SHIPPED.items():
    _register(_name, _desc)


def load_folder_upscaler(folder: str | Path, device: str | None = None, name: str | None = None, **options: Any):
    """A model folder as an :class:`~anyres.sr.render.LIIFUpscaler` (options: ``mode``, ``tile``, ``chunk``)."""
    from anyres.sr.render import LIIFUpscaler

    net, config = load_network(folder, device=device)
    return LIIFUpscaler(net, name=name or config.get("name", Path(folder).name),
                        description=config.get("description", ""), **options)


def load_upscaler(model: Any = "bicubic", device: str | None = None, **options: Any):
    """An :class:`~anyres.sr.upscaler.Upscaler` from a registered name, a weight folder or an instance."""
    from anyres.sr.upscaler import Upscaler

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
