"""Degradation pipelines that synthesise LR images from HR images: sample parameters, then apply them.

``PIPELINES`` maps a name to its pipeline class; :func:`get_pipeline` builds one with config overrides::

    pipe = get_pipeline("realesrgan", noise_range=(1, 15))
    records = pipe.sample(8, torch.Generator().manual_seed(0), scale=3.5, hr_size=(128, 128))
    lr = pipe.apply(hr, records)            # (8, 3, 37, 37), bit-identical for the same records

See ``base`` for the record contract and the LR/HR alignment at any scale.
"""

from __future__ import annotations

from typing import Any

from anyres.errors import RegistryError

from anyres.degrade.base import Pipeline, derive_seed, lr_size
from anyres.degrade.bsrgan import BSRGANConfig, BSRGANPipeline
from anyres.degrade.classical import ClassicalConfig, ClassicalPipeline
from anyres.degrade.learned.hllhgan import HLLHGANPipeline
from anyres.degrade.realesrgan import RealESRGANConfig, RealESRGANPipeline

__all__ = [
    "PIPELINES",
    "LEARNED_PIPELINES",
    "get_pipeline",
    "Pipeline",
    "lr_size",
    "derive_seed",
    "ClassicalConfig",
    "ClassicalPipeline",
    "BSRGANConfig",
    "BSRGANPipeline",
    "RealESRGANConfig",
    "RealESRGANPipeline",
]

PIPELINES: dict[str, type[Pipeline]] = {
    ClassicalPipeline.name: ClassicalPipeline,
    BSRGANPipeline.name: BSRGANPipeline,
    RealESRGANPipeline.name: RealESRGANPipeline,
}

# Pipelines that need trained weights (``weights=FOLDER``): not in PIPELINES, whose entries all build with
# their defaults.
LEARNED_PIPELINES: dict[str, type[Pipeline]] = {
    HLLHGANPipeline.name: HLLHGANPipeline,
}


def get_pipeline(name: str, config: Any = None, **overrides: Any) -> Pipeline:
    """Build the pipeline called ``name`` from an optional config (dataclass or dict) plus field overrides.

    Raises :class:`~anyres.errors.RegistryError` for an unknown name and
    :class:`~anyres.errors.ConfigError` for an unknown or invalid option (both one-line user errors).
    """
    known = {**PIPELINES, **LEARNED_PIPELINES}
    if name not in known:
        raise RegistryError(f"unknown degradation pipeline {name!r}; available: {', '.join(known)}")
    return known[name](config, **overrides)
