"""Resolve ``--model NAME|PATH`` to an upscaler, and save/load weight folders.

A weight folder holds ``model.safetensors`` (never a pickle), ``config.json`` (enough to rebuild the
network alone) and ``README.md`` (the model card).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anyres.errors import RegistryError
from anyres.registry import MODELS

__all__ = ["load_upscaler"]


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
        from anyres.models.saved import load_saved_upscaler

        return load_saved_upscaler(path, device=device, **options)
    if path.exists():
        raise RegistryError(f"{text}: not a model folder (expected config.json and model.safetensors inside)")
    raise RegistryError(f"unknown model {text!r}; available: {', '.join(MODELS.names())} or a model folder path")
