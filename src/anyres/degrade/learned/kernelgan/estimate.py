"""KernelGAN's training loop on one image and the public :func:`estimate_kernel`.

``estimate_kernel(image, scale)``: ``(1, C, H, W)`` float in [0, 1] (or a path) -> ``(k, k)`` correlation kernel
summing to 1 (``k`` usually 17 for x2, 33 for x4).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from anyres.degrade.learned.kernelgan.config import (
    DEFAULT_ITERS,
    SCALES,
    ImageTooSmallError,
    KernelGANConfig,
    min_image_side,
)
from anyres.degrade.learned.kernelgan.crops import crop_probability, gradient_map, sample_crop_corners
from anyres.degrade.learned.kernelgan.losses import (
    KernelGANSchedule,
    adversarial_loss,
    bicubic_target,
    bicubic_x2_kernel,
    boundary_loss,
    boundary_mask,
    centre_loss,
    centre_target,
    sparsity_loss,
    sum_to_one_loss,
)
from anyres.degrade.learned.kernelgan.networks import KernelGenerator, PatchDiscriminator, downscale_with_kernel
from anyres.degrade.learned.kernelgan.postprocess import analytic_x4_kernel, postprocess_kernel
from anyres.io import read_image
from anyres.ops.color import to_rgb
from anyres.ops.resize import imresize

__all__ = ["estimate_kernel"]


def _load(image: torch.Tensor | str | os.PathLike) -> torch.Tensor:
    if isinstance(image, (str, os.PathLike)):
        image, _ = read_image(Path(image))
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a tensor or a path, got {type(image).__name__}")
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"image must have shape (1, C, H, W) or (C, H, W) with C in {{1, 3}}, got shape {tuple(image.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"image must be a float tensor in [0, 1], got dtype {x.dtype}")
    if not torch.isfinite(x).all() or x.min() < -1e-3 or x.max() > 1 + 1e-3:
        raise ValueError(f"image values must be in [0, 1], got [{float(x.min()):.4g}, {float(x.max()):.4g}]")
    return to_rgb(x.float())


def _prepare(x: torch.Tensor, cfg: KernelGANConfig) -> torch.Tensor:
    """Shave the borders and crop to even sides; raise :class:`ImageTooSmallError` if a crop does not fit."""
    h, w = x.shape[-2:]
    need = min_image_side(cfg)
    if h < need or w < need:
        raise ImageTooSmallError(
            f"the image is {w}x{h} pixels; KernelGAN needs at least {need}x{need} "
            f"({cfg.crop}-pixel crops after shaving {cfg.shave} pixels per border)"
        )
    s = cfg.shave
    x = x[..., s : h - s, s : w - s]
    h, w = x.shape[-2:]
    return x[..., : h - h % 2, : w - w % 2]


def _crop_corners(img01: torch.Tensor, cfg: KernelGANConfig, iters: int, generator: torch.Generator):
    """Top-left corners of G's and D's crops for every iteration (gradient-weighted, drawn up front)."""
    cpu = img01.detach().cpu()
    map_big = gradient_map(cpu)
    small = imresize(cpu, 0.5)
    map_small = gradient_map(small).repeat_interleave(2, 0).repeat_interleave(2, 1)
    map_small = map_small[: map_big.shape[0], : map_big.shape[1]]
    corners_g = sample_crop_corners(crop_probability(map_small, cfg.crop), cfg.crop, iters, generator)
    corners_d = sample_crop_corners(crop_probability(map_big, cfg.d_crop), cfg.d_crop, iters, generator)
    return corners_g.tolist(), corners_d.tolist()


def _adam(net: nn.Module, cfg: KernelGANConfig) -> torch.optim.Optimizer:
    # The fused kernel is much faster per step than the loop over parameters for these small networks (a
    # step costs as much as a D forward pass otherwise); older torch builds lack it on some devices.
    try:
        return torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=cfg.betas, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=cfg.betas)


def _set_grads(params: list[nn.Parameter], grads: Sequence[torch.Tensor]) -> None:
    # Contiguous on purpose: torch's fused CPU Adam (2.13) reads a gradient in memory order and ignores its
    # strides, so the transposed gradients that compose_kernel's einsum/fold produce were applied to the
    # wrong weights (G then never learnt). Measured; the tests guard it.
    for param, grad in zip(params, grads):
        param.grad = grad.contiguous()


def _train(
    g_net: KernelGenerator,
    d_net: PatchDiscriminator,
    net_img: torch.Tensor,
    corners_g: list,
    corners_d: list,
    cfg: KernelGANConfig,
    generator: torch.Generator,
    progress: bool,
) -> None:
    """The KernelGAN loop: one G step and one D step per iteration, then the schedule (docs/methods/kernelgan.md)."""
    from anyres.progress import Progress

    device = net_img.device
    noise_std = 2.0 * cfg.noise_std  # [0, 1] units -> [-1, 1] units
    ksize = cfg.g_kernel_size
    mask = boundary_mask(ksize, cfg.boundary_weight, device=device)
    bicubic = bicubic_x2_kernel(ksize, device=device)
    target = centre_target(ksize, 2)
    opt_g, opt_d = _adam(g_net, cfg), _adam(d_net, cfg)
    g_params, d_params = list(g_net.parameters()), list(d_net.parameters())
    schedule = KernelGANSchedule(cfg)
    crop, d_crop = cfg.crop, cfg.d_crop

    bar = Progress(len(corners_g), label="KernelGAN", unit="it", enabled=bool(progress))
    for it in range(len(corners_g)):
        bar.update(1)
        top, left = corners_g[it]
        g_in = net_img[..., top : top + crop, left : left + crop]
        top, left = corners_d[it]
        real = net_img[..., top : top + d_crop, left : left + d_crop]
        noise = torch.randn(2, 3, d_crop, d_crop, generator=generator).to(device) * noise_std
        d_net.power_iteration()

        # G step: fool D, under the kernel regularisers. Only G's gradients are computed (the reference
        # also back-propagates into D's weights here and then discards them).
        kernel = g_net.kernel()
        g_out = downscale_with_kernel(g_in, kernel)
        target_bic = bicubic_target(g_in, bicubic)
        loss_bicubic = F.mse_loss(g_out, target_bic)
        loss = (
            adversarial_loss(d_net(g_out), real=True)
            + schedule.lambda_bicubic * loss_bicubic
            + schedule.lambda_sum2one * sum_to_one_loss(kernel)
            + schedule.lambda_boundaries * boundary_loss(kernel, mask)
        )
        if schedule.lambda_sparse:
            loss = loss + schedule.lambda_sparse * sparsity_loss(kernel, cfg.sparsity_power)
        if schedule.lambda_center:
            loss = loss + schedule.lambda_center * centre_loss(kernel, target)
        _set_grads(g_params, torch.autograd.grad(loss, g_params))
        opt_g.step()

        # D step: tell the image's own patches from the just-updated G's output, in one batched pass
        # (each crop normalised with its own BatchNorm statistics, as two separate passes would be).
        with torch.no_grad():
            fake = g_net(g_in)
        pred = d_net(torch.cat([real, fake]) + noise)
        loss_d = 0.5 * (adversarial_loss(pred[:1], real=True) + adversarial_loss(pred[1:], real=False))
        _set_grads(d_params, torch.autograd.grad(loss_d, d_params))
        opt_d.step()

        schedule.update(it, float(loss_bicubic.detach() / target_bic.square().mean()))
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * schedule.lr_scale


def estimate_kernel(
    image: torch.Tensor | str | os.PathLike,
    scale: int = 2,
    iters: int = DEFAULT_ITERS,
    seed: int = 0,
    progress: bool = False,
    *,
    config: KernelGANConfig | None = None,
    threads: int | None = 1,
) -> torch.Tensor:
    """Estimate the kernel that downscaled ``image``, with KernelGAN.

    Args:
        image: ``(1, C, H, W)`` or ``(C, H, W)`` float tensor in [0, 1] (C = 1 or 3), or an image path. Both
            sides must be at least :func:`min_image_side` (84) pixels.
        scale: 2 or 4. KernelGAN learns the x2 kernel; x4 is derived from it (:func:`analytic_x4_kernel`).
        iters: training iterations (the paper: 3000; each is one crop for G and one for D).
        seed: seeds the one ``torch.Generator`` behind every random draw; equal seeds give equal kernels.
        progress: show progress on stderr (a bar on a terminal, a line every 30 s off one).
        config: the method's constants (defaults: the reference's).
        threads: torch intra-op threads while training, restored afterwards (``None``: leave torch's
            setting). Every op here is tiny (a 26 x 26 crop through a 64-channel net), so more threads
            mostly add synchronisation and slow the loop down.
    Returns:
        ``(k, k)`` float32 correlation kernel summing to 1 on the image's device (``k`` usually 17 for x2
        and 33 for x4), centre of mass at ``+(scale - 1) / 2`` pixels from the centre tap (package docstring).
    Raises:
        ImageTooSmallError: the image is smaller than one crop; ImageReadError for an unreadable path.
    """
    if isinstance(scale, bool) or scale not in SCALES:
        raise ValueError(f"scale must be 2 or 4, got {scale!r}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    cfg = config or KernelGANConfig()
    img01 = _prepare(_load(image), cfg)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        generator = torch.Generator().manual_seed(int(seed))
        g_net = KernelGenerator(cfg.g_kernels, cfg.g_channels, gain=cfg.init_gain, generator=generator)
        d_net = PatchDiscriminator(
            3, cfg.d_channels, cfg.d_kernel, cfg.d_blocks, gain=cfg.init_gain, generator=generator
        )
        corners_g, corners_d = _crop_corners(img01, cfg, iters, generator)
        _train(
            g_net.to(img01.device),
            d_net.to(img01.device),
            img01 * 2.0 - 1.0,
            corners_g,
            corners_d,
            cfg,
            generator,
            progress,
        )
        with torch.no_grad():
            k2 = postprocess_kernel(g_net.kernel().detach(), cfg.keep_taps)
    finally:
        torch.set_num_threads(previous)
    return k2 if scale == 2 else analytic_x4_kernel(k2)
