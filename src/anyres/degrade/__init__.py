"""Degradation pipelines that synthesise LR images from HR images: sample parameters, then apply them.

:func:`get_pipeline` builds a registered pipeline (:data:`anyres.registry.DEGRADATIONS`) with config overrides::

    pipe = get_pipeline("realesrgan", noise_range=(1, 15))
    records = pipe.sample(8, torch.Generator().manual_seed(0), scale=3.5, hr_size=(128, 128))
    lr = pipe.apply(hr, records)            # (8, 3, 37, 37), bit-identical for the same records

See ``base`` for the record contract and the LR/HR alignment at any scale.
"""

from __future__ import annotations

from typing import Any

from anyres.degrade.base import Pipeline, derive_seed, lr_size
from anyres.degrade.bsrgan import BSRGANConfig, BSRGANPipeline
from anyres.degrade.classical import ClassicalConfig, ClassicalPipeline
from anyres.degrade.learned.hllhgan import HLLHGANPipeline
from anyres.degrade.realesrgan import RealESRGANConfig, RealESRGANPipeline
from anyres.registry import DEGRADATIONS

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

# "synthetic" pipelines build with their defaults; "learned" ones need trained weights (``weights=FOLDER``).
DEGRADATIONS.add_class(ClassicalPipeline, role="synthetic")
DEGRADATIONS.add_class(BSRGANPipeline, role="synthetic")
DEGRADATIONS.add_class(RealESRGANPipeline, role="synthetic")
DEGRADATIONS.add_class(HLLHGANPipeline, role="learned")

# Name -> class views of the registry, by role.
PIPELINES: dict[str, type[Pipeline]] = {n: DEGRADATIONS[n].builder for n in DEGRADATIONS.names("synthetic")}
LEARNED_PIPELINES: dict[str, type[Pipeline]] = {n: DEGRADATIONS[n].builder for n in DEGRADATIONS.names("learned")}


def get_pipeline(name: str, config: Any = None, **overrides: Any) -> Pipeline:
    """Build the pipeline called ``name`` from an optional config (dataclass or dict) plus field overrides.

    Raises :class:`~anyres.errors.RegistryError` for an unknown name and
    :class:`~anyres.errors.ConfigError` for an unknown or invalid option (both one-line user errors).
    """
    return DEGRADATIONS.get(name).builder(config, **overrides)
