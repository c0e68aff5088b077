"""KernelGAN (Bell-Kligler, Shocher & Irani, NeurIPS 2019): estimate one image's own x2 (and x4) kernel.

A deep linear generator ``G`` learns to downscale crops of the image by 2 so that a patch discriminator ``D``
cannot tell its output from the image's own patches; ``G``'s composite filter is then the image's kernel, and
the x4 kernel is the x2 kernel composed with its 2x-dilated copy. :func:`estimate_kernel` takes a
``(1, C, H, W)`` image in [0, 1] and returns a ``(k, k)`` correlation kernel summing to 1.

The method, its equations and hyperparameters, and where anyres departs from the paper and the reference
code: docs/methods/kernelgan.md.
"""

from anyres.degrade.learned.kernelgan.config import (
    DEFAULT_ITERS,
    SCALES,
    ImageTooSmallError,
    KernelGANConfig,
    min_image_side,
)
from anyres.degrade.learned.kernelgan.crops import crop_probability, gradient_map, sample_crop_corners
from anyres.degrade.learned.kernelgan.estimate import estimate_kernel
from anyres.degrade.learned.kernelgan.losses import (
    KernelGANSchedule,
    adversarial_loss,
    bicubic_loss,
    bicubic_target,
    bicubic_x2_kernel,
    boundary_loss,
    boundary_mask,
    centre_loss,
    centre_target,
    sparsity_loss,
    sum_to_one_loss,
)
from anyres.degrade.learned.kernelgan.networks import (
    KernelGenerator,
    PatchDiscriminator,
    compose_kernel,
    downscale_with_kernel,
)
from anyres.degrade.learned.kernelgan.postprocess import (
    analytic_x4_kernel,
    postprocess_kernel,
    shift_kernel,
    zero_small_taps,
)

__all__ = [
    "KernelGANConfig",
    "ImageTooSmallError",
    "SCALES",
    "DEFAULT_ITERS",
    "estimate_kernel",
    "compose_kernel",
    "downscale_with_kernel",
    "KernelGenerator",
    "PatchDiscriminator",
    "KernelGANSchedule",
    "adversarial_loss",
    "sum_to_one_loss",
    "boundary_mask",
    "boundary_loss",
    "sparsity_loss",
    "centre_loss",
    "centre_target",
    "bicubic_x2_kernel",
    "bicubic_target",
    "bicubic_loss",
    "gradient_map",
    "crop_probability",
    "sample_crop_corners",
    "zero_small_taps",
    "shift_kernel",
    "postprocess_kernel",
    "analytic_x4_kernel",
    "min_image_side",
]
