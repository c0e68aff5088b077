"""What the trainers share: Adam state as flat tensors (checkpoints stay plain safetensors files, no pickled
objects), the contiguous-gradient guard, the run loop wrapper with graceful stop signals, and the
single-process step loop (logging, history, periodic checkpoints) of the enhancement and LMAR trainers."""

from __future__ import annotations

import math
import signal
import time
from typing import Any, Callable, Iterable

import torch

__all__ = ["adam_state_tensors", "load_adam_state", "make_grads_contiguous", "run_until_stopped", "step_loop",
           "format_eta"]


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


def format_eta(seconds: float) -> str:
    """``1h05m`` / ``4m07s`` (``?`` when unknown)."""
    if not math.isfinite(seconds):
        return "?"
    h, rem = divmod(int(seconds), 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def step_loop(trainer: Any, step: Callable[[], dict[str, float]], stop_after: int | None,
              describe: Callable[[dict[str, float]], str]) -> None:
    """Run ``step()`` (one training step of ``trainer``) to ``config.iterations`` (or ``stop_after`` more).

    ``step()`` returns a dict of losses; every ``log_every`` iterations their window means
    (rounded to 6 places) go to ``trainer.history`` and a line ``describe(means)`` plus the learning rate,
    rate and ETA to ``trainer.log``. Checkpoints every ``checkpoint_minutes``, at a requested stop (then
    returns) and at the end. ``trainer.elapsed`` counts the time spent in steps only.
    """
    cfg = trainer.config
    target = cfg.iterations if stop_after is None else min(cfg.iterations, trainer.iteration + stop_after)
    last_ckpt = time.monotonic()
    window_start, window = time.monotonic(), []
    while trainer.iteration < target:
        t0 = time.monotonic()
        window.append(step())
        trainer.elapsed += time.monotonic() - t0
        if trainer.iteration % cfg.log_every == 0 or trainer.iteration == target:
            rate = len(window) / max(time.monotonic() - window_start, 1e-9)
            mean = {k: round(sum(t[k] for t in window) / len(window), 6) for k in window[0]}
            trainer.history.append({"iteration": trainer.iteration, **mean})
            eta = (cfg.iterations - trainer.iteration) / rate if rate > 0 else float("inf")
            trainer.log(f"[{cfg.name}] it {trainer.iteration}/{cfg.iterations} {describe(mean)} "
                        f"lr {trainer.lr_at(trainer.iteration - 1):.2e} {rate:.2f} it/s ETA {format_eta(eta)}")
            window_start, window = time.monotonic(), []
        if trainer.stop_requested:
            trainer.save_checkpoint()
            trainer.log(f"[{cfg.name}] stopped at it {trainer.iteration}; checkpoint saved, run the same command "
                        "to resume")
            return
        if time.monotonic() - last_ckpt >= cfg.checkpoint_minutes * 60:
            trainer.save_checkpoint()
            trainer.log(f"[{cfg.name}] checkpoint at it {trainer.iteration} -> {trainer.out_dir / 'checkpoint.safetensors'}")
            last_ckpt = time.monotonic()
    trainer.save_checkpoint()
