"""DeepLPF's training loss (paper Sec. 3.4, Eq. 8) and the multi-scale SSIM it needs (Wang et al. 2003).

``loss = mean |Lab(pred) - Lab(target)| + 1e-3 * mean (1 - MS-SSIM(L(pred), L(target)))`` on ``(B, 3, H, W)``
sRGB in [0, 1], with Lab rescaled to [0, 1]; ``ms_ssim`` returns ``(B,)``, 1 for identical images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from anyres.checks import check_image, check_same_shape
from anyres.metrics import gaussian_taps, ssim_statistics
from anyres.ops.color_lab import rgb_to_lab

__all__ = ["MS_SSIM_WEIGHTS", "deeplpf_loss", "ms_ssim", "ssim_components"]

# Wang, Simoncelli & Bovik (2003): exponents of the five scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_POSITIVE = 1e-12  # floor before the fractional powers when not shifting (0 ** w has an infinite slope)


def ssim_components(
    a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image, ``((B,), (B,))``, at one scale.

    ``a``, ``b``: ``(B, C, H, W)`` float in [0, data_range] with ``H, W >= window``. Gaussian window of side
    ``window`` and standard deviation ``sigma`` (separable), 'valid' filtering (no padding), ``C1 = (0.01
    data_range)^2``, ``C2 = (0.03 data_range)^2``; maps averaged over channels and positions. With
    ``cs = (2 cov + C2) / (var_a + var_b + C2)`` and ``l = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)``,
    SSIM is the mean of ``l cs``. Equals :func:`anyres.metrics.ssim` (MATLAB's ``ssim``) for window 11.
    """
    check_image(a, "a")
    check_same_shape(b, "b", a, "a")
    if a.shape[-2] < window or a.shape[-1] < window:
        raise ValueError(
            f"SSIM with a {window}x{window} window needs images at least that large, got shape {tuple(a.shape)}"
        )
    c = a.shape[1]
    g = gaussian_taps(window, sigma).to(device=a.device, dtype=a.dtype)
    rows = g.view(1, 1, window, 1).expand(c, 1, window, 1)
    cols = g.view(1, 1, 1, window).expand(c, 1, 1, window)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, rows, groups=c), cols, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b, var_a, var_b, cov = ssim_statistics(a, b, filt)
    cs = (2.0 * cov + c2) / (var_a + var_b + c2)
    luminance = (2.0 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return (luminance * cs).flatten(1).mean(dim=1), cs.flatten(1).mean(dim=1)


def ms_ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    shift: bool = False,
) -> torch.Tensor:
    """Multi-scale SSIM per image (Wang et al. 2003), ``(B,)``; 1 for identical images. Differentiable.

    ``a``, ``b``: ``(B, C, H, W)`` float in [0, data_range]. Scale ``j`` (``j = 1..M``) sees the images average-
    pooled ``j - 1`` times by 2 (an odd last row or column is dropped); with :func:`ssim_components` at each::

        MS-SSIM = prod_{j < M} cs_j ** w_j  *  ssim_M ** w_M

    (the standard grouping; the v1 DeepLPF code instead raised ``ssim_M`` to every weight).

    Small images: ``M`` is the largest number of scales, up to ``len(weights)``, whose coarsest image still
    holds one window (``min(H, W) // 2^(M-1) >= window``); when that is fewer than ``len(weights)``, the first
    ``M`` weights are renormalised to sum to 1 so the result stays a weighted geometric mean (all five standard
    weights are used as published, summing to 1.0001). An image smaller than one window is an error.

    ``shift``: map each ``cs`` and ``ssim`` value ``v`` (in [-1, 1]) to ``(v + 1) / 2`` before the powers, as the
    DeepLPF code does; otherwise values are floored at 1e-12 (a negative base has no real fractional power).
    """
    check_image(a, "a")
    check_same_shape(b, "b", a, "a")
    if not weights or any(w < 0 for w in weights):
        raise ValueError(f"weights must be a non-empty list of numbers >= 0, got {list(weights)!r}")
    side = min(a.shape[-2:])
    if side < window:
        raise ValueError(
            f"MS-SSIM with a {window}x{window} window needs images at least that large, got shape {tuple(a.shape)}"
        )
    scales = 1
    while scales < len(weights) and side // 2**scales >= window:
        scales += 1
    used = [float(w) for w in weights[:scales]]
    if scales < len(weights):
        if sum(used) <= 0:
            raise ValueError(
                f"the first {scales} MS-SSIM weights (all that fit a {tuple(a.shape[-2:])} image) sum to 0: {used}"
            )
        used = [w / sum(used) for w in used]
    result = None
    for j, w in enumerate(used):
        if j:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        full, cs = ssim_components(a, b, data_range=data_range, window=window, sigma=sigma)
        value = full if j == scales - 1 else cs
        value = (value + 1.0) / 2.0 if shift else value.clamp_min(_POSITIVE)
        term = value**w
        result = term if result is None else result * term
    return result


def deeplpf_loss(
    pred: torch.Tensor, target: torch.Tensor, *, lab_weight: float = 1.0, ms_ssim_weight: float = 1e-3
) -> torch.Tensor:
    """DeepLPF's training loss (Sec. 3.4, Eq. 8; digest Sec. 1.7), a scalar, 0 for ``pred == target``.

    ``pred``, ``target``: ``(B, 3, H, W)`` sRGB in [0, 1], ``H, W >= 5``. Both go to CIELab (:func:`rgb_to_lab`,
    D65) rescaled to [0, 1] as the reference does: ``L / 100``, ``a / 220 + 1/2``, ``b / 220 + 1/2``. Then::

        loss = lab_weight * mean |Lab(pred) - Lab(target)|                      (all three channels)
             + ms_ssim_weight * mean_b (1 - MS-SSIM(L(pred), L(target)))       (L channel only)

    with the reference's MS-SSIM settings: window 5, sigma 1.5, data range 1, the five standard weights and
    the ``(v + 1) / 2`` shift (fewer scales on images under 80 pixels a side, see :func:`ms_ssim`). The
    weights default to the digest's MIT-Adobe-5K-DPE values ``1`` and ``1e-3``.
    """
    check_image(pred, "pred", channels=3)
    check_same_shape(target, "target", pred, "pred")
    offset = pred.new_tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)
    span = pred.new_tensor([100.0, 220.0, 220.0]).view(1, 3, 1, 1)
    lab_pred = rgb_to_lab(pred) / span + offset
    lab_target = rgb_to_lab(target) / span + offset
    l1 = (lab_pred - lab_target).abs().mean()
    structure = ms_ssim(lab_pred[:, :1], lab_target[:, :1], data_range=1.0, window=5, sigma=1.5, shift=True)
    return lab_weight * l1 + ms_ssim_weight * (1.0 - structure).mean()
