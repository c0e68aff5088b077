"""Same-size photo enhancement: DeepLPF, the U-Net baseline, the synthetic damage tasks, LMAR and the
working-size path for very large photos.

Importing this package registers its networks.
"""

from anyres.enhancement import deeplpf, lmar, unet  # noqa: F401  (registration)
from anyres.enhancement.api import enhance, load_enhancer

__all__ = ["enhance", "load_enhancer"]
