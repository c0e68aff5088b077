"""The one training engine: step loop, checkpoints and exact resume, stop signals, DDP, progress, validation.

A :class:`Recipe` (one per task, :mod:`anyres.train.recipes`) owns the networks, their Adams, the batches
and the loss of one step; the :class:`Engine` runs it. Iteration ``i`` must be a pure function of
``(seed, i)`` and the weights, and a checkpoint is one safetensors file (weights, Adam moments, JSON
metadata), so a resumed run ends bit-identical to an uninterrupted one. Determinism rules, the checkpoint
layout and DDP (``torchrun``, gloo): docs/training.md.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from anyres.degrade.base import derive_seed
from anyres.errors import ConfigError
from anyres.io import write_bytes_atomic
from anyres.parallel import distributed

__all__ = [
    "Recipe",
    "Engine",
    "CHECKPOINT",
    "train",
    "build",
    "distributed",
    "update",
    "milestone_lr",
    "load_init_weights",
    "adam_state_tensors",
    "load_adam_state",
    "make_grads_contiguous",
    "ema_update",
    "format_eta",
    "stderr_log",
    "keep_freed_memory",
    "train_device",
    "BatchStream",
    "to_device",
]

CHECKPOINT = "checkpoint.safetensors"


# glibc mallopt parameters (malloc.h) and the values training uses: see keep_freed_memory.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
# mallopt takes a C int: the trim threshold is the largest one (2 GiB - 1), i.e. practically never trim.
_KEEP = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 2**31 - 1, _M_TOP_PAD: 1 << 30}


def keep_freed_memory() -> bool:
    """Make glibc's allocator keep freed memory for reuse instead of returning it to the system.

    A training step allocates and frees the same large activations every time; with glibc's defaults many
    of them are fresh ``mmap`` regions whose pages fault in again at each step. Serving blocks up to 32 MiB
    (glibc's largest ``mmap`` threshold) from the heap and never trimming it removed nearly all the page
    faults of a LIIF training step and made it ~11 % faster here (benchmarks/train_allocator.py). The process keeps
    its peak memory until it exits. Returns whether it applied (glibc only; ``ANYRES_KEEP_FREED_MEMORY=0``
    turns it off)."""
    import ctypes
    import ctypes.util
    import os

    if os.environ.get("ANYRES_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (e.g. musl has no mallopt)
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in _KEEP.items())


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# Pieces a recipe uses


def train_device(spec: str = "auto") -> torch.device:
    """The device a run trains on: ``auto`` (CUDA when PyTorch sees a GPU, else the CPU), ``cpu``, ``cuda`` or
    ``cuda:N``. Under torchrun a bare ``cuda`` (or ``auto``) is ``cuda:LOCAL_RANK``. A CUDA device that is not
    there is a :class:`ConfigError` before the run starts, not a crash at its first step."""
    import os

    if not isinstance(spec, str):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {spec!r}")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {spec!r}") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {spec!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"device: {spec!r}, but PyTorch sees no CUDA device here; use cpu or auto")
    index = dev.index if dev.index is not None else int(os.environ.get("LOCAL_RANK", "0"))
    if index >= torch.cuda.device_count():
        raise ConfigError(f"device: {spec!r}, but PyTorch sees only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor in it (also inside lists, tuples, dicts and dataclasses) moved to ``device``."""
    import dataclasses

    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(x, device) for x in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(
            obj, **{f.name: to_device(getattr(obj, f.name), device) for f in dataclasses.fields(obj)}
        )
    return obj


class _ByIteration(torch.utils.data.Dataset):
    """Item ``k`` is the batch of iteration ``start + k``."""

    def __init__(self, make: Callable[[int], Any], start: int, stop: int):
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, k: int) -> Any:
        return self.make(self.start + k)


class BatchStream:
    """The batches of a run: batch ``i`` is ``make(i)``, a pure function of ``i`` made on the CPU and moved to
    ``device``. With ``workers > 0``, DataLoader processes make the next batches while the current step runs;
    they are the same batches as with ``workers=0``, so a run's result does not depend on ``workers``.
    ``make`` must pickle where processes are spawned rather than forked (a module-level function or a
    ``functools.partial`` of one)."""

    def __init__(self, make: Callable[[int], Any], workers: int = 0, device: torch.device | None = None, stop: int = 0):
        self.make, self.workers, self.stop = make, int(workers), int(stop)
        self.device = device or torch.device("cpu")
        self._it: Any = None
        self._next = -1

    def get(self, iteration: int) -> Any:
        if self.workers == 0 or iteration >= self.stop:
            batch = self.make(iteration)
        else:
            if self._it is None or iteration != self._next:  # first call, or a jump (resume): restart there
                loader = torch.utils.data.DataLoader(
                    _ByIteration(self.make, iteration, self.stop),
                    batch_size=None,
                    num_workers=self.workers,
                    pin_memory=self.device.type == "cuda",
                    # its own generator for the workers' base seed: the global RNG (dropout) stays untouched
                    generator=torch.Generator().manual_seed(0),
                )
                self._it = iter(loader)
            batch = next(self._it)
            self._next = iteration + 1
        return batch if self.device.type == "cpu" else to_device(batch, self.device)

    def close(self) -> None:
        """Stop the worker processes (the next :meth:`get` starts them again)."""
        self._it, self._next = None, -1


def make_grads_contiguous(params: Iterable[nn.Parameter]) -> None:
    """Replace non-contiguous gradients by contiguous copies before ``optim.step()``: torch 2.13's CPU Adam
    mishandles them (seen with transposed weight views, whose parameters then never learnt)."""
    for p in params:
        if p.grad is not None and not p.grad.is_contiguous():
            p.grad = p.grad.contiguous()


def update(optim: torch.optim.Optimizer, module: nn.Module, loss: torch.Tensor) -> None:
    """One optimiser step of ``module`` on ``loss``: zero grads, backward, contiguous grads, step."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    make_grads_contiguous(module.parameters())
    optim.step()


@torch.no_grad()
def ema_update(average: nn.Module, module: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * module`` for every floating parameter and buffer (other
    buffers are copied): one step of an exponential moving average of weights."""
    for a, m in zip(average.state_dict().values(), module.state_dict().values(), strict=True):
        if a.is_floating_point():
            a.lerp_(m.detach(), 1.0 - decay)
        else:
            a.copy_(m)


def milestone_lr(lr: float, iteration: int, milestones: Iterable[int], gamma: float, warmup: int = 0) -> float:
    """``lr * min(1, (i + 1) / warmup) * gamma ** #{m <= i}``: step decay with an optional linear warm-up."""
    ramp = min(1.0, (iteration + 1) / warmup) if warmup > 0 else 1.0
    return lr * ramp * gamma ** sum(iteration >= m for m in milestones)


def load_init_weights(net: nn.Module, folder: str, fresh: tuple[str, ...] = ()) -> None:
    """Start ``net`` from a weights folder; parameters under the prefixes ``fresh`` (modules a network adds on
    top of the one it starts from) keep their own initialisation when the file has none of that module, every
    other one must be in the file (a file holding part of a module does not match)."""
    from safetensors.torch import load_file

    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"init: {path} not found (expected a weights folder with model.safetensors)")
    state = load_file(str(path))
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ConfigError(f"init: {path} does not match the model spec ({str(err).splitlines()[0]})") from None
    absent = tuple(p for p in fresh if not any(k.startswith(p) for k in state))
    missing = [k for k in missing if not (absent and k.startswith(absent))]
    if missing or unexpected:
        raise ConfigError(
            f"init: {path} does not match the model spec (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def adam_state_tensors(
    optim: torch.optim.Optimizer, params: Iterable[nn.Parameter], prefix: str = "optim"
) -> dict[str, torch.Tensor]:
    """``{prefix.i.exp_avg, prefix.i.exp_avg_sq, prefix.i.step}`` for every parameter that has a state."""
    tensors = {}
    for i, p in enumerate(params):
        st = optim.state.get(p)
        if st:
            tensors[f"{prefix}.{i}.exp_avg"] = st["exp_avg"].cpu().contiguous()
            tensors[f"{prefix}.{i}.exp_avg_sq"] = st["exp_avg_sq"].cpu().contiguous()
            tensors[f"{prefix}.{i}.step"] = st["step"].reshape(1).float().cpu().clone()
    return tensors


def load_adam_state(
    optim: torch.optim.Optimizer,
    params: Iterable[nn.Parameter],
    tensors: dict[str, torch.Tensor],
    prefix: str = "optim",
) -> None:
    """Inverse of :func:`adam_state_tensors` (parameters in the same order)."""
    for i, p in enumerate(params):
        if f"{prefix}.{i}.exp_avg" in tensors:
            optim.state[p] = {
                "step": torch.tensor(float(tensors[f"{prefix}.{i}.step"][0])),
                "exp_avg": tensors[f"{prefix}.{i}.exp_avg"].to(p.device, copy=True),
                "exp_avg_sq": tensors[f"{prefix}.{i}.exp_avg_sq"].to(p.device, copy=True),
            }


def format_eta(seconds: float) -> str:
    """``1h05m`` / ``4m07s`` (``?`` when unknown)."""
    if not math.isfinite(seconds):
        return "?"
    h, rem = divmod(int(seconds), 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


# ---------------------------------------------------------------------------------------------------------
# The recipe contract


class Recipe:
    """What a task supplies to the engine. Subclasses set, in ``__init__``:

    ``config`` (``iterations``, ``seed``, ``checkpoint_minutes``, ``log_every``, ``name``, ``out_dir``),
    ``modules`` (checkpoint prefix -> trained module), ``optimizers`` (checkpoint prefix -> ``(Adam, module)``)
    and define :meth:`step`, :meth:`lr_at` and :meth:`save_outputs`.
    """

    config: Any
    modules: dict[str, nn.Module]
    optimizers: dict[str, tuple[torch.optim.Optimizer, nn.Module]]
    rng_key: str | None = None  # re-seed the global RNG per iteration under this key (dropout)
    progress_bar: str | None = None  # a progress label (anyres.progress) instead of log lines
    validate_every: int = 0
    device: torch.device = torch.device("cpu")  # set by a recipe from its config's device (train_device)
    batches: BatchStream | None = None  # a recipe's batches when it makes them through a BatchStream

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def out_dir(self) -> Path:
        return Path(self.config.out_dir)

    @property
    def log_every(self) -> int:
        return self.config.log_every

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def lr_at(self, iteration: int) -> float:
        raise NotImplementedError

    def step(self, iteration: int) -> dict[str, float]:
        """One update at ``iteration`` (learning rates already set); returns its loss terms."""
        raise NotImplementedError

    def history_entry(
        self, iteration: int, window: list[dict[str, float]], mean: dict[str, float]
    ) -> dict[str, Any] | None:
        """What a log point adds to the history (``None``: nothing); by default the window means."""
        return {"iteration": iteration, **{k: round(v, 6) for k, v in mean.items()}}

    def describe(self, mean: dict[str, float]) -> str:
        return " ".join(f"{k} {v:.4f}" for k, v in mean.items())

    def postfix(self, losses: dict[str, float]) -> dict[str, str]:
        return {k: f"{v:.3f}" for k, v in losses.items()}

    def validate(self, iteration: int) -> dict[str, Any] | None:
        return None

    def metadata(self) -> dict[str, Any]:
        """Extra checkpoint metadata (e.g. what a resume must match)."""
        return {}

    def computes_in(self) -> str | None:
        """The arithmetic the steps actually use here ("bf16", "float32"), for the checkpoint's precision
        spans; ``None`` for recipes that do not say."""
        return None

    def check_resume(self, meta: dict[str, Any], path: Path) -> None:
        """Raise :class:`ConfigError` when the checkpoint ``meta`` cannot be resumed by this recipe."""

    def fill_missing(self, prefix: str) -> bool:
        """A checkpoint has no tensors for the module ``prefix`` (e.g. an EMA switched on when resuming a run
        that had none): start it some other way and return True, or return False to refuse the checkpoint."""
        return False

    def save_outputs(self, engine: Engine) -> None:
        """Write the weights folder(s) beside the checkpoint."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------
# The engine


class Engine:
    """Runs a :class:`Recipe` to ``config.iterations``; counts iterations, step time and the history."""

    def __init__(self, recipe: Recipe, log: Callable[[str], None] | None = None, progress: bool = True):
        self.recipe = recipe
        self.config = recipe.config
        self.log = log or stderr_log
        self.progress = progress
        self.world, self.rank = distributed()
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        # [first, last, precision] stretches of iterations from earlier sessions, and where this one began
        self.spans_before: list[list[Any]] = []
        self.session_start = 0
        self.last_losses: dict[str, float] = {}
        self.stop_requested = False  # set by SIGINT/SIGTERM: finish the step, checkpoint, return
        self.deadline: float | None = None  # time.monotonic() at which a --budget-minutes run stops the same way
        self.budget_reached = False

    @property
    def checkpoint_path(self) -> Path:
        return self.recipe.out_dir / CHECKPOINT

    # -- one step ------------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        r, i = self.recipe, self.iteration
        lr = r.lr_at(i)
        for optim, _ in r.optimizers.values():
            for group in optim.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
        rng = torch.random.fork_rng(devices=[]) if r.rng_key else nullcontext()
        with rng:
            if r.rng_key:
                torch.manual_seed(derive_seed(self.config.seed, f"{r.rng_key}/{i}"))
            self.last_losses = r.step(i)
        self.iteration += 1
        return self.last_losses

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {}
        for prefix, module in self.recipe.modules.items():
            tensors.update({f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
        for prefix, (optim, module) in self.recipe.optimizers.items():
            tensors.update(adam_state_tensors(optim, module.parameters(), prefix))
        return tensors

    def save_checkpoint(self, path: Path | None = None) -> Path:
        from safetensors.torch import save

        path = path or self.checkpoint_path
        meta = {
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "config": self.recipe.config_dict(),
            "history": self.history,
            **({"precision_spans": spans} if (spans := self.precision_spans()) else {}),
            **self.recipe.metadata(),
        }
        write_bytes_atomic(path, save(self.state_tensors(), metadata={"anyres": json.dumps(meta)}))
        self.recipe.save_outputs(self)
        return path

    def load_checkpoint(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["anyres"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        self.recipe.check_resume(meta, path)
        for prefix, module in self.recipe.modules.items():
            n = len(prefix) + 1
            part = {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            if not part:
                if self.recipe.fill_missing(prefix):
                    continue
                raise ConfigError(f"{path} has no weights for '{prefix}': it was made by a different config")
            module.load_state_dict(part)
        for prefix, (optim, module) in self.recipe.optimizers.items():
            load_adam_state(optim, module.parameters(), tensors, prefix)
        self.iteration = int(meta["iteration"])
        self.elapsed = float(meta["elapsed"])
        self.history = list(meta.get("history", []))
        self.spans_before = [list(s) for s in meta.get("precision_spans", [])]
        self.session_start = self.iteration

    def precision_spans(self) -> list[list[Any]]:
        """Which iterations computed in which precision: earlier sessions' spans, this session's joined on
        when it continues the last one in the same precision (a model card lists the float32 stretches)."""
        spans = [list(s) for s in self.spans_before]
        now = self.recipe.computes_in()
        if now is None or self.iteration == self.session_start:
            return spans
        if spans and spans[-1][2] == now and spans[-1][1] == self.session_start:
            spans[-1][1] = self.iteration
        else:
            spans.append([self.session_start, self.iteration, now])
        return spans

    def resume(self) -> bool:
        """Load ``out_dir/checkpoint.safetensors`` if it exists; returns whether it did."""
        if not self.checkpoint_path.exists():
            return False
        self.load_checkpoint(self.checkpoint_path)
        self.log(f"[{self.recipe.name}] resumed from {self.checkpoint_path} at iteration {self.iteration}")
        return True

    # -- loop ----------------------------------------------------------------------------------------
    def _decide(self, due: bool, stop: bool) -> tuple[bool, bool]:
        if self.world > 1:  # every rank takes part so that DDP ranks stay in lock step
            flags = torch.tensor([int(due), int(stop)])
            dist.broadcast(flags, 0)
            due, stop = bool(flags[0]), bool(flags[1])
        return due, stop

    def _report(self, window: list[dict[str, float]], started: float, bar: Any) -> None:
        r, cfg = self.recipe, self.config
        mean = {k: sum(t[k] for t in window) / len(window) for k in window[0]}
        entry = r.history_entry(self.iteration, window, mean)
        if entry is not None:
            self.history.append(entry)
        if bar is None:
            rate = len(window) / max(time.monotonic() - started, 1e-9)
            eta = (cfg.iterations - self.iteration) / rate if rate > 0 else float("inf")
            self.log(
                f"[{r.name}] it {self.iteration}/{cfg.iterations} {r.describe(mean)} "
                f"lr {r.lr_at(self.iteration - 1):.2e} {rate:.2f} it/s ETA {format_eta(eta)}"
            )

    def run(self, stop_after: int | None = None) -> None:
        """Train until ``config.iterations`` (or ``stop_after`` more iterations, for tests)."""
        r, cfg = self.recipe, self.config
        main = self.rank == 0
        target = cfg.iterations if stop_after is None else min(cfg.iterations, self.iteration + stop_after)
        for module in r.modules.values():
            module.train()
        bar = None
        if r.progress_bar:
            from anyres.progress import Progress

            bar = Progress(target - self.iteration, label=r.progress_bar, unit="it", enabled=self.progress and main)
        last_ckpt = time.monotonic()
        started, window = time.monotonic(), []
        while self.iteration < target:
            t0 = time.monotonic()
            window.append(self.step())
            self.elapsed += time.monotonic() - t0
            if bar is not None:
                bar.update(1)
                bar.set_postfix(r.postfix(self.last_losses))
            if main and (self.iteration % r.log_every == 0 or self.iteration == target):
                self._report(window, started, bar)
                started, window = time.monotonic(), []
            if main and r.validate_every and self.iteration % r.validate_every == 0:
                entry = r.validate(self.iteration)
                if entry is not None:
                    entry.setdefault("elapsed", round(self.elapsed, 3))  # its clock: seconds of steps so far
                    self.history.append(entry)
                    self.log(f"[{r.name}] validation at it {self.iteration}: {entry.get('psnr', entry)}")
            over = self.deadline is not None and time.monotonic() >= self.deadline
            due, stop = self._decide(
                time.monotonic() - last_ckpt >= cfg.checkpoint_minutes * 60, self.stop_requested or over
            )
            if stop:
                self.budget_reached = not self.stop_requested
                if main:
                    self.save_checkpoint()
                    why = "the time budget is spent" if self.budget_reached else "stopped"
                    self.log(
                        f"[{r.name}] {why} at it {self.iteration}; checkpoint and weights folder saved, run the same "
                        "command to resume"
                    )
                if bar is not None:
                    bar.close()
                if r.batches is not None:
                    r.batches.close()
                return
            if due:
                if main:
                    self.save_checkpoint()
                    self.log(f"[{r.name}] checkpoint at it {self.iteration} -> {self.checkpoint_path}")
                last_ckpt = time.monotonic()
        if bar is not None:
            bar.close()
        if r.batches is not None:
            r.batches.close()
        if main:
            self.save_checkpoint()

    def run_until_stopped(self, stop_after: int | None = None) -> None:
        """:meth:`run` with SIGINT/SIGTERM turned into a graceful stop: the first signal sets
        ``stop_requested`` (the loop finishes its step, checkpoints and returns), a second one aborts.
        The previous handlers are restored afterwards."""

        def request_stop(signum, frame):
            if self.stop_requested:  # a second signal stops at once
                raise KeyboardInterrupt
            self.stop_requested = True
            self.log(f"[{self.recipe.name}] stopping after this step (signal {signum}); send again to abort")

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.run(stop_after)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------------------
# Entry points


def build(config: Any, images: list[torch.Tensor] | None = None, log: Callable[[str], None] | None = None) -> Engine:
    """The engine for a validated config of any registered task (:func:`anyres.train.config.load_config`)."""
    from anyres.train.config import _tasks

    recipes = {cls: factory for cls, factory in _tasks().values()}
    factory = recipes.get(type(config))
    if factory is None:
        raise ConfigError(f"no training recipe for a {type(config).__name__}")
    config = config.checked()
    if getattr(config, "threads", None):
        torch.set_num_threads(config.threads)
    keep_freed_memory()
    log = log or stderr_log
    recipe = factory(config, images=images, log=log)
    if distributed()[1] == 0:
        workers = getattr(config, "workers", 0)
        log(f"[{recipe.name}] training on {recipe.device}" + (f", {workers} data workers" if workers else ""))
    return Engine(recipe, log=log)


def train(
    config: Any,
    resume: bool = True,
    log: Callable[[str], None] | None = None,
    images: list[torch.Tensor] | None = None,
    budget_minutes: float | None = None,
) -> Engine:
    """Run a config to completion, resuming from ``out_dir/checkpoint.safetensors`` if it exists; the
    resolved config is written to ``out_dir/config.yaml``. ``budget_minutes``: stop cleanly once this much
    wall-clock time has passed (after the step in progress), saving the resume state and the weights folder
    as a signal would; the same command resumes (``engine.budget_reached`` says it stopped early)."""
    import yaml

    if budget_minutes is not None and not (isinstance(budget_minutes, (int, float)) and budget_minutes > 0):
        raise ConfigError(f"--budget-minutes must be a positive number of minutes, got {budget_minutes!r}")
    engine = build(config, images=images, log=log)
    if budget_minutes is not None:
        engine.deadline = time.monotonic() + 60.0 * budget_minutes
    if resume:
        engine.resume()
    if engine.rank == 0:
        text = yaml.safe_dump(config.to_dict(), sort_keys=False)
        write_bytes_atomic(engine.recipe.out_dir / "config.yaml", text.encode())
    engine.run_until_stopped()
    return engine
