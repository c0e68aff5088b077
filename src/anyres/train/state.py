"""What the trainers share: Adam state as flat tensors (checkpoints stay plain safetensors files, no pickled
objects), the contiguous-gradient guard, and the run loop wrapper with graceful stop signals."""

from __future__ import annotations

import signal
from typing import Any, Iterable

import torch

__all__ = ["adam_state_tensors", "load_adam_state", "make_grads_contiguous", "run_until_stopped"]


def adam_state_tensors(optim: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter],
                       prefix: str = "optim") -> dict[str, torch.Tensor]:
    """``{prefix.i.exp_avg, prefix.i.exp_avg_sq, prefix.i.step}`` for every parameter that has a state."""
    tensors = {}
    for i, p in enumerate(params):
        st = optim.state.get(p)
        if st:
            tensors[f"{prefix}.{i}.exp_avg"] = st["exp_avg"].contiguous()
            tensors[f"{prefix}.{i}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
            tensors[f"{prefix}.{i}.step"] = st["step"].reshape(1).float().clone()
    return tensors


def load_adam_state(optim: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter],
                    tensors: dict[str, torch.Tensor], prefix: str = "optim") -> None:
    """Inverse of :func:`adam_state_tensors` (parameters in the same order)."""
    for i, p in enumerate(params):
        if f"{prefix}.{i}.exp_avg" in tensors:
            optim.state[p] = {
                "step": torch.tensor(float(tensors[f"{prefix}.{i}.step"][0])),
                "exp_avg": tensors[f"{prefix}.{i}.exp_avg"].clone(),
                "exp_avg_sq": tensors[f"{prefix}.{i}.exp_avg_sq"].clone(),
            }


def make_grads_contiguous(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace non-contiguous gradients by contiguous copies before ``optim.step()``.

    torch 2.13's CPU Adam mishandles non-contiguous gradients (seen with KernelGAN's transposed weight
    views: the parameters never learnt), so every optimiser step in anyres goes through this guard.
    """
    for p in params:
        if p.grad is not None and not p.grad.is_contiguous():
            p.grad = p.grad.contiguous()


def run_until_stopped(trainer: Any, name: str) -> None:
    """``trainer.run()`` with SIGINT/SIGTERM turned into a graceful stop: the first signal sets
    ``trainer.stop_requested`` (the loop finishes its step, checkpoints and returns), a second one aborts.
    The previous handlers are restored afterwards. Shared by the SR, enhancement and LMAR trainers."""

    def request_stop(signum, frame):
        if trainer.stop_requested:  # a second signal stops at once
            raise KeyboardInterrupt
        trainer.stop_requested = True
        trainer.log(f"[{name}] stopping after this step (signal {signum}); send again to abort")

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        trainer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
