"""Arbitrary-scale super-resolution: implicit networks (LIIF, DIINN, LIIFusion), their encoders, fixed-scale RRDBNet, exact tiled
rendering, the upscalers behind ``--model`` and test-time adaptation for blind upscaling.

Importing this package registers its networks and upscalers.
"""

from anyres.sr import baselines, diinn, encoders, liif, liifusion, rrdbnet  # noqa: F401  (registration)
from anyres.sr.api import target_size, upscale

__all__ = ["upscale", "target_size"]
