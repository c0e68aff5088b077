"""anyres: image restoration at any resolution.

The public API: :func:`evaluate`, :func:`upscale`, :func:`enhance` (same-size enhancement), :func:`load`,
:func:`degrade_image` (one synthetic LR image and its parameter record; the pipelines themselves live in
:mod:`anyres.degrade`), :func:`estimate_kernel` (an image's own x2 / x4 downscaling kernel, KernelGAN), and
the image I/O helpers :func:`read_image` / :func:`write_image`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "upscale", "enhance", "load", "degrade_image", "estimate_kernel",
           "read_image", "write_image"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import anyres` stays cheap for the CLI's help and error paths.
    if name == "evaluate":
        from anyres.evaluation import evaluate

        return evaluate
    if name == "upscale":
        from anyres.sr.api import upscale

        return upscale
    if name == "enhance":
        from anyres.enhancement.api import enhance

        return enhance
    if name == "degrade_image":
        from anyres.degrade.api import degrade_image

        return degrade_image
    if name == "load":
        from anyres.sr.pretrained import load_upscaler

        return load_upscaler
    if name == "estimate_kernel":
        from anyres.degrade.learned.kernelgan import estimate_kernel

        return estimate_kernel
    if name in ("read_image", "write_image"):
        from anyres import io

        return getattr(io, name)
    raise AttributeError(f"module 'anyres' has no attribute {name!r}")
