"""Networks by role and the user-facing models; importing this package registers them all."""

from anyres.models import baselines  # noqa: F401  (registers the interpolation baselines)
from anyres.models import encoders  # noqa: F401  (registers edsr-baseline, rdn)
from anyres.models import liif  # noqa: F401  (registers the liif network)
from anyres.models import diinn  # noqa: F401  (registers the diinn network)
from anyres.models import liifusion  # noqa: F401  (registers the liifusion network)
from anyres.models import deeplpf  # noqa: F401  (registers the deeplpf network)
from anyres.models import lmar  # noqa: F401  (registers the lmar resampler)
from anyres.models import unet_enhancer  # noqa: F401  (registers the unet-enhancer network)
