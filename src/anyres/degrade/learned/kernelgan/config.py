"""KernelGAN's constants: every size, learning rate and regulariser weight, and the accepted scales.

See docs/methods/kernelgan.md for where each value comes from.
"""

from __future__ import annotations

import dataclasses

from anyres.errors import AnyresError

__all__ = ["SCALES", "DEFAULT_ITERS", "ImageTooSmallError", "KernelGANConfig", "min_image_side"]

SCALES = (2, 4)

# The paper's 3000: the schedule (learning-rate steps every 750 iterations) is written for it, so the count
# was kept rather than cut (the cost per image: docs/methods/kernelgan.md).
DEFAULT_ITERS = 3000


class ImageTooSmallError(AnyresError, ValueError):
    """The image has fewer pixels than KernelGAN's crops need (one line, for the CLI)."""


@dataclasses.dataclass(frozen=True)
class KernelGANConfig:
    """Every constant of KernelGAN, with the reference code's values (the digest, Sec. 3).

    Sizes in pixels; learning rates per Adam step; ``noise_std`` in [0, 1] image units.
    """

    crop: int = 64  # G's input crop; D's crop is G's output size
    g_kernels: tuple[int, ...] = (7, 5, 3, 1, 1, 1)  # the last layer carries the stride 2
    g_channels: int = 64
    d_kernel: int = 7
    d_channels: int = 64
    d_blocks: int = 5  # 1x1 conv + BN + ReLU blocks between first and last
    init_gain: float = 0.1
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_every: int = 750
    lr_factor: float = 10.0
    lambda_sum2one: float = 0.5
    lambda_boundaries: float = 0.5
    lambda_bicubic: float = 5.0
    lambda_sparse_end: float = 5.0
    lambda_center_end: float = 1.0
    bicubic_threshold: float = 0.25  # MSE / mean(target^2); docs/methods/kernelgan.md, diff. 2
    bicubic_patience: int = 3  # consecutive iterations below the threshold
    lambda_every: int = 200
    bicubic_decay: float = 100.0
    bicubic_min: float = 5e-6
    constraints_below: float = 5e-3
    boundary_weight: float = 30.0
    sparsity_power: float = 0.2
    noise_std: float = 1.0 / 255.0
    shave: int = 10  # pixels dropped from each border before cropping
    keep_taps: int = 40  # zero_small_taps' n

    def __post_init__(self) -> None:
        if any(k < 1 or k % 2 == 0 for k in self.g_kernels) or self.d_kernel % 2 == 0:
            raise ValueError(f"layer kernels must be odd, got {self.g_kernels} and {self.d_kernel}")
        if self.crop < self.g_kernel_size or self.d_crop < self.d_kernel:
            raise ValueError(
                f"crop {self.crop} is too small for the generator {self.g_kernels} and a "
                f"{self.d_kernel}x{self.d_kernel} discriminator"
            )
        if self.shave < 0 or self.keep_taps < 1 or self.lr_every < 1 or self.lambda_every < 1:
            raise ValueError("shave must be >= 0 and keep_taps, lr_every, lambda_every >= 1")

    @property
    def g_kernel_size(self) -> int:
        """Side of G's composite kernel: ``sum(kernels) - (layers - 1)`` (13 for the default)."""
        return sum(self.g_kernels) - len(self.g_kernels) + 1

    @property
    def d_crop(self) -> int:
        """Side of D's real crops = G's output side for a ``crop`` input (26 for the default)."""
        return (self.crop - self.g_kernel_size) // 2 + 1


def min_image_side(config: KernelGANConfig | None = None) -> int:
    """The smallest image side ``estimate_kernel`` accepts: one G crop after shaving (84 by default)."""
    cfg = config or KernelGANConfig()
    return cfg.crop + 2 * cfg.shave
