"""Registers the weight folders shipped inside the package (``anyres/weights/<name>/``) as models.

Importing this module imports :mod:`anyres.models` first, so the baselines are registered too.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyres.models  # noqa: F401  (baselines first)
from anyres.errors import RegistryError
from anyres.registry import MODELS

WEIGHTS_DIR = Path(__file__).parent / "weights"

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
        from anyres.hub import load_folder_upscaler

        if not (folder / "config.json").is_file():
            raise RegistryError(f"model {name!r}: its weights are missing from this installation ({folder})")
        return load_folder_upscaler(folder, device=device, name=name, **options)


for _name, _desc in _SHIPPED.items():
    _register(_name, _desc)
