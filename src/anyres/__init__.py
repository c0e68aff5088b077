"""anyres: image restoration at any resolution.

The public API: :func:`evaluate`, :func:`upscale`, :func:`enhance` (same-size enhancement), :func:`load`,
:func:`degrade_image` (one synthetic LR image and its parameter record; the pipelines themselves live in
:mod:`anyres.degrade`), :func:`estimate_kernel` (an image's own x2 / x4 downscaling kernel, KernelGAN), and
the image I/O helpers :func:`read_image` / :func:`write_image`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "evaluate",
    "upscale",
    "enhance",
    "load",
    "degrade_image",
    "estimate_kernel",
    "read_image",
    "write_image",
]


# Where each public name lives; imported on first use so that `import anyres` stays cheap for the CLI.
_LOCATIONS = {
    "evaluate": "anyres.evaluation",
    "upscale": "anyres.sr.api",
    "enhance": "anyres.enhancement.api",
    "degrade_image": "anyres.degrade.api",
    "load": "anyres.registry",
    "estimate_kernel": "anyres.degrade.learned.kernelgan",
    "read_image": "anyres.io",
    "write_image": "anyres.io",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'anyres' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LOCATIONS[name]), name)
