"""Blind any-scale SR of one image: estimate its own kernel, then adapt the model to it (internal learning).

KernelGAN's x2 kernel makes ``(son, crop)`` pairs from the LR image itself (``2p x 2p`` crop, filtered and
sampled every second pixel), a copy of the network is fine-tuned on them (L1, Adam) and renders the LR at the
requested size. The recipe and its alignment: docs/methods/liif.md ("Blind SR of one image").
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch

from anyres.errors import AnyresError
from anyres.ops.coords import make_coord
from anyres.ops.filtering import filter2d
from anyres.progress import Progress

__all__ = ["make_internal_pair", "internal_finetune", "blind_upscale", "DEFAULT_ITERS"]

DEFAULT_ITERS = 100


def make_internal_pair(
    image: torch.Tensor, kernel: torch.Tensor, patch: int, generator: torch.Generator, batch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` (son, father) pairs from one ``(1, 3, h, w)`` image in [0, 1]: father ``(B, 3, 2p, 2p)`` crops,
    son ``(B, 3, p, p)`` = father filtered with ``kernel`` ``(k, k)`` and sampled at even pixels, 8-bit rounded."""
    h, w = image.shape[-2:]
    side = 2 * patch
    if h < side or w < side:
        raise AnyresError(f"image of {w}x{h} is too small for blind adaptation (needs at least {side}x{side})")
    fathers = []
    for _ in range(batch):
        y = int(torch.randint(h - side + 1, (), generator=generator))
        x = int(torch.randint(w - side + 1, (), generator=generator))
        fathers.append(image[0, :, y : y + side, x : x + side])
    father = torch.stack(fathers)
    son = filter2d(father.double(), kernel.double()[None]).clamp(0, 1)[..., ::2, ::2]
    son = torch.round(son * 255) / 255
    return son.to(image.dtype), father


def internal_finetune(
    net: torch.nn.Module,
    image: torch.Tensor,
    kernel: torch.Tensor,
    *,
    iters: int = DEFAULT_ITERS,
    patch: int = 24,
    batch: int = 4,
    lr: float = 2e-5,
    seed: int = 0,
    mode: str = "fast",
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[torch.nn.Module, list[float]]:
    """Fine-tune a copy of a LIIF-style ``net`` on pairs made from ``image`` with ``kernel``; returns it and the
    per-iteration L1 losses. ``net`` itself is not changed. Deterministic for a seed (on one device).
    ``mode``: ``fast`` (the training recipe's bf16 encoder autocast and decoder) or ``exact`` (float32)."""
    if iters < 0:
        raise AnyresError(f"blind iterations must be >= 0, got {iters}")
    tuned = copy.deepcopy(net).float().train()
    for p in tuned.parameters():
        p.requires_grad_(True)
    device = next(tuned.parameters()).device
    image = image.to(device=device, dtype=torch.float32)
    kernel = kernel.to(device)
    optim = torch.optim.Adam(tuned.parameters(), lr=lr)
    g = torch.Generator().manual_seed(int(seed))
    side = 2 * patch
    coord = make_coord(side, side, device=device).unsqueeze(0).expand(batch, -1, -1)
    cell = torch.full((batch, side * side, 2), 2.0 / side, device=device)
    losses = []
    for i in range(iters):
        son, father = make_internal_pair(image, kernel, patch, g, batch)
        gt = father.reshape(batch, 3, -1).transpose(1, 2)
        pred = tuned(
            son.contiguous(memory_format=torch.channels_last), coord, cell, mode=mode, encoder_bf16=mode == "fast"
        )
        loss = (pred.float() - gt).abs().mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        # Contiguous gradients: the CPU Adam kernels of some torch versions mishandle strided ones.
        for p in tuned.parameters():
            if p.grad is not None and not p.grad.is_contiguous():
                p.grad = p.grad.contiguous()
        optim.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(i, losses[-1])
    return tuned.eval(), losses


def blind_upscale(
    upscaler: Any,
    image: torch.Tensor,
    size: tuple[int, int],
    *,
    kernel: torch.Tensor | None = None,
    iters: int = DEFAULT_ITERS,
    seed: int = 0,
    progress: bool = False,
) -> tuple[torch.Tensor, dict]:
    """Upscale ``image`` ``(1, C, h, w)`` in [0, 1] to ``size`` after adapting ``upscaler`` (a LIIF-style
    :class:`~anyres.sr.render.LIIFUpscaler`) to the image's own kernel. Returns ``(sr, info)`` with ``info``:
    ``{"kernel": (k, k) list, "kernel_seconds", "adapt_seconds", "iters", "loss_first", "loss_last"}``."""
    from anyres.degrade.learned.kernelgan import estimate_kernel
    from anyres.ops.color import to_rgb
    from anyres.sr.render import LIIFUpscaler

    net = getattr(upscaler, "net", None)
    if net is None:
        raise AnyresError(f"--blind needs a learned arbitrary-scale model, not {getattr(upscaler, 'name', upscaler)!r}")
    rgb = to_rgb(image.float())
    t0 = time.perf_counter()
    if kernel is None:
        kernel = estimate_kernel(rgb, 2, seed=seed, progress=progress)
    t1 = time.perf_counter()
    bar = Progress(iters, label="adapting", unit="it") if progress else None
    tuned, losses = internal_finetune(
        net,
        rgb,
        kernel,
        iters=iters,
        seed=seed,
        mode="exact" if upscaler.options.mode == "exact" else "fast",
        on_step=(lambda _step, _loss: bar.update(1)) if bar is not None else None,
    )
    if bar is not None:
        bar.close()
    t2 = time.perf_counter()
    adapted = LIIFUpscaler(tuned, name=f"{upscaler.name}+blind", options=upscaler.options, progress=progress)
    with torch.inference_mode():
        sr = adapted.upscale(image, size)
    info = {
        "kernel": kernel.tolist(),
        "kernel_seconds": t1 - t0,
        "adapt_seconds": t2 - t1,
        "iters": iters,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
    }
    return sr, info
