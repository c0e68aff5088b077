"""Training enhancement networks (DeepLPF, the U-Net baseline) on synthetic damage of good photos.

A config with ``task: enhance`` at its top level (``anyres train CONFIG`` dispatches on that key; SR configs
have no ``task``) names a network ``{name, args}``, folders of HR photos and a damage task of
:mod:`anyres.enhancement.tasks` (``retouch`` or ``lowlight``, with optional overrides of its ranges). Each
iteration crops ``batch_size`` patches, flips them, damages them with per-sample records and trains the
network to map the damaged patch back to the clean one.

Exact resume
    Everything random in iteration ``i`` comes from seeds derived from ``(seed, i)``: the batch generator
    (image, crop, flips, damage records) and the global RNG that dropout reads (DeepLPF's heads), which is
    re-seeded inside a forked RNG state around each forward pass. The learning rate is a pure function of
    ``i``. A checkpoint holds the weights and Adam's moments as flat tensors (one safetensors file,
    counters and config as JSON metadata, nothing unpickled), so a run stopped and resumed at any
    iteration ends with the weights of an uninterrupted run, bit for bit.

Outputs in ``out_dir``: ``config.yaml`` (the resolved config), ``checkpoint.safetensors`` (every
``checkpoint_minutes``, at a stop request and at the end) and ``model/`` (``model.safetensors``, ``config.json``
and a ``README.md`` card with the recipe; metrics are added by whoever measures them).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from anyres.enhancement.tasks import EnhancePairSampler, get_task
from anyres.sr.data import load_hr_folders
from anyres.degrade.base import derive_seed
from anyres.errors import AnyresError, ConfigError
from anyres.hub import CARD, save_network
from anyres.io import write_bytes_atomic
from anyres.registry import NETWORKS
from anyres.train.config import _apply_overrides, _build, _read_yaml
from anyres.train.state import (adam_state_tensors, load_adam_state, make_grads_contiguous, run_until_stopped,
                                step_loop)

__all__ = ["EnhanceTrainConfig", "EnhanceDataConfig", "EnhanceOptimConfig", "EnhanceTrainer", "LOSSES",
           "TASK_KEY", "load_enhance_config", "check_config", "train", "CHECKPOINT"]

CHECKPOINT = "checkpoint.safetensors"
TASK_KEY = "enhance"          # the top-level ``task:`` value of an enhancement config
LOSSES = ("deeplpf", "l1")
_MIN_PATCH = 5                # DeepLPF's loss uses a 5x5 MS-SSIM window


@dataclass
class EnhanceDataConfig:
    train: list[str] = field(default_factory=list)  # folders of HR photos (the clean targets)
    # Damage task of anyres.enhancement.tasks: {name: retouch|lowlight, args: {range overrides}}; a bare name is
    # accepted and stored in this form.
    task: Any = field(default_factory=lambda: {"name": "retouch", "args": {}})
    patch: int | None = 256       # crop side; None trains on whole images (batch of one size)
    augment: bool = True          # independent 50 % horizontal and vertical flips


@dataclass
class EnhanceOptimConfig:
    lr: float = 1e-4
    milestones: list[int] = field(default_factory=list)  # iterations at which lr *= gamma
    gamma: float = 0.5


@dataclass
class EnhanceTrainConfig:
    task: str = TASK_KEY
    name: str = "deeplpf-retouch"
    model: dict[str, Any] = field(default_factory=lambda: {"name": "deeplpf", "args": {}})
    data: EnhanceDataConfig = field(default_factory=EnhanceDataConfig)
    batch_size: int = 4
    iterations: int = 3000
    optim: EnhanceOptimConfig = field(default_factory=EnhanceOptimConfig)
    loss: str = "deeplpf"            # "deeplpf": Lab L1 + MS-SSIM (models.deeplpf.deeplpf_loss); "l1": RGB L1
    seed: int = 0
    threads: int | None = None
    checkpoint_minutes: float = 5.0
    log_every: int = 25
    out_dir: str = "runs/enhance"
    init: str | None = None          # weights folder to start from (fine-tuning); ignored when resuming

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SUBCONFIGS = {"data": EnhanceDataConfig, "optim": EnhanceOptimConfig}


# ---------------------------------------------------------------------------------------------------------
# Loading and validation


def _check_int(value: Any, minimum: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")


def _validate(cfg: EnhanceTrainConfig, where: str) -> None:
    if cfg.task != TASK_KEY:
        raise ConfigError(f"{where}: task must be {TASK_KEY!r} for enhancement training, got {cfg.task!r}")
    spec = cfg.model
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or set(spec) - {"name", "args"} \
            or not isinstance(spec.get("args", {}) or {}, dict):
        raise ConfigError(f"{where}.model must be {{name, args}}, got {spec!r}")
    cfg.model = {"name": spec["name"], "args": dict(spec.get("args") or {})}
    task = cfg.data.task
    if isinstance(task, str):
        task = {"name": task, "args": {}}
    if not isinstance(task, dict) or not isinstance(task.get("name"), str) or set(task) - {"name", "args"} \
            or not isinstance(task.get("args", {}) or {}, dict):
        raise ConfigError(f"{where}.data.task must be a task name or {{name, args}}, got {task!r}")
    cfg.data.task = {"name": task["name"], "args": dict(task.get("args") or {})}
    try:
        get_task(cfg.data.task["name"], cfg.data.task["args"] or None)
    except (AnyresError, TypeError, ValueError) as err:
        raise ConfigError(f"{where}.data.task: {err}") from None
    if not isinstance(cfg.data.train, list) or not all(isinstance(p, str) for p in cfg.data.train):
        raise ConfigError(f"{where}.data.train must be a list of folders, got {cfg.data.train!r}")
    if cfg.data.patch is not None:
        _check_int(cfg.data.patch, _MIN_PATCH, f"{where}.data.patch")
    _check_int(cfg.batch_size, 1, f"{where}.batch_size")
    _check_int(cfg.iterations, 0, f"{where}.iterations")
    _check_int(cfg.log_every, 1, f"{where}.log_every")
    _check_int(cfg.seed, 0, f"{where}.seed")
    if cfg.threads is not None:
        _check_int(cfg.threads, 1, f"{where}.threads")
    if cfg.loss not in LOSSES:
        raise ConfigError(f"{where}.loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
    if not cfg.optim.lr > 0 or not cfg.optim.gamma > 0 or not cfg.checkpoint_minutes > 0:
        raise ConfigError(f"{where}: optim.lr, optim.gamma and checkpoint_minutes must be positive")
    if not isinstance(cfg.optim.milestones, list):
        raise ConfigError(f"{where}.optim.milestones must be a list of iterations, got {cfg.optim.milestones!r}")
    for m in cfg.optim.milestones:
        _check_int(m, 0, f"{where}.optim.milestones")


def load_enhance_config(path: str | Path, overrides: dict[str, Any] | None = None) -> EnhanceTrainConfig:
    """Read and validate a YAML enhancement config; ``overrides`` maps dotted keys (``"optim.lr"``) to values.

    Unknown keys, wrong types, an unknown network, task or loss are a :class:`~anyres.errors.ConfigError`.
    """
    path = Path(path)
    raw = _read_yaml(path)
    _apply_overrides(raw, overrides, str(path))
    if "task" not in raw:
        raise ConfigError(f"{path}: an enhancement config needs 'task: {TASK_KEY}' at the top level")
    cfg = _build(EnhanceTrainConfig, raw, str(path), _SUBCONFIGS)
    _validate(cfg, str(path))
    if cfg.model["name"] not in NETWORKS:
        NETWORKS.get(cfg.model["name"])  # raises RegistryError listing the valid names
    return cfg


def check_config(cfg: EnhanceTrainConfig) -> EnhanceTrainConfig:
    """Validate a config built in Python (the YAML loader does this itself); returns it, normalised."""
    _validate(cfg, "config")
    return cfg


# ---------------------------------------------------------------------------------------------------------
# The trainer


def _lab_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from anyres.enhancement.deeplpf import deeplpf_loss

    return deeplpf_loss(pred, target)


def _l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


_LOSS_FUNCTIONS = {"deeplpf": _lab_loss, "l1": _l1_loss}


class EnhanceTrainer:
    """Owns the network, Adam and the pair sampler of one run; :meth:`run` trains to ``config.iterations``.

    ``images``: ``(3, H, W)`` uint8 photos to train on instead of ``config.data.train`` (tests).
    """

    def __init__(self, config: EnhanceTrainConfig, images: list[torch.Tensor] | None = None,
                 log: Callable[[str], None] | None = None):
        self.config = check_config(config)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        with torch.random.fork_rng(devices=[]):  # initial weights from the seed, the caller's RNG untouched
            torch.manual_seed(config.seed)
            self.net = NETWORKS.build(config.model["name"], **config.model["args"])
        if not hasattr(self.net, "config_dict"):
            raise ConfigError(f"network {config.model['name']!r} cannot be saved as a weights folder "
                              f"(it has no config_dict)")
        if config.init:
            self._load_init(config.init)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=config.optim.lr)
        self.loss_fn = _LOSS_FUNCTIONS[config.loss]
        d = config.data
        if images is None:
            images = load_hr_folders(d.train)
        task = get_task(d.task["name"], d.task["args"] or None)
        self.sampler = EnhancePairSampler(images, task, patch=d.patch, flip=d.augment)
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self.out_dir = Path(config.out_dir)
        self.stop_requested = False  # set by SIGINT/SIGTERM: finish the step, checkpoint, return

    def _load_init(self, folder: str) -> None:
        from safetensors.torch import load_file

        path = Path(folder) / "model.safetensors"
        if not path.is_file():
            raise ConfigError(f"init: {path} not found (expected a weights folder with model.safetensors)")
        try:
            self.net.load_state_dict(load_file(str(path)))
        except RuntimeError as err:
            raise ConfigError(f"init: {path} does not match the model spec ({str(err).splitlines()[0]})") from None

    # -- schedule ------------------------------------------------------------------------------------
    def lr_at(self, iteration: int) -> float:
        o = self.config.optim
        return o.lr * o.gamma ** sum(iteration >= m for m in o.milestones)

    def batch_at(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(degraded, target)`` of an iteration, each ``(B, 3, p, p)`` in [0, 1]; a pure function of it."""
        g = torch.Generator().manual_seed(derive_seed(self.config.seed, f"enhance/batch/{iteration}"))
        return self.sampler.sample(self.config.batch_size, g)

    # -- one step ------------------------------------------------------------------------------------
    def step(self) -> float:
        degraded, target = self.batch_at(self.iteration)
        for group in self.optim.param_groups:
            group["lr"] = self.lr_at(self.iteration)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.config.seed, f"enhance/dropout/{self.iteration}"))
            loss = self.loss_fn(self.net(degraded), target)
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
        make_grads_contiguous(self.net.parameters())
        self.optim.step()
        self.iteration += 1
        return float(loss.detach())

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"model.{k}": v.detach().contiguous() for k, v in self.net.state_dict().items()}
        tensors.update(adam_state_tensors(self.optim, self.net.parameters()))
        return tensors

    def save_checkpoint(self, path: Path | None = None) -> Path:
        from safetensors.torch import save

        path = path or self.out_dir / CHECKPOINT
        meta = {"iteration": self.iteration, "elapsed": self.elapsed, "config": self.config.to_dict(),
                "history": self.history}
        write_bytes_atomic(path, save(self.state_tensors(), metadata={"anyres": json.dumps(meta)}))
        self.save_model()
        return path

    def save_model(self) -> Path:
        """Write the weights folder ``out_dir/model`` (weights, config.json with the recipe, README.md card)."""
        cfg = self.config
        recipe = {
            "task": cfg.data.task, "data": list(cfg.data.train), "patch": cfg.data.patch,
            "augment": cfg.data.augment, "batch_size": cfg.batch_size, "iterations": self.iteration,
            "planned_iterations": cfg.iterations, "loss": cfg.loss,
            "optimizer": {"name": "adam", "lr": cfg.optim.lr, "milestones": list(cfg.optim.milestones),
                          "gamma": cfg.optim.gamma},
            "seed": cfg.seed, "wall_time_hours": round(self.elapsed / 3600, 3),
        }
        folder = save_network(self.net, self.out_dir / "model",
                              extra={"name": cfg.name, "iterations": self.iteration, "training": recipe})
        write_bytes_atomic(folder / CARD, self._card(recipe).encode())
        return folder

    def _card(self, recipe: dict[str, Any]) -> str:
        cfg = self.config
        last = self.history[-1]["loss"] if self.history else None
        task = cfg.data.task
        overrides = f" with overrides {json.dumps(task['args'])}" if task["args"] else " (default ranges)"
        lines = [
            f"# {cfg.name}",
            "",
            f"Enhancement network `{cfg.model['name']}` (args {json.dumps(cfg.model['args'])}), trained by "
            f"`anyres train` to undo the synthetic `{task['name']}` damage of `anyres.enhancement.tasks`{overrides}.",
            "",
            "## Recipe",
            "",
            f"- data: {', '.join(cfg.data.train) or '(images given in Python)'}; random {cfg.data.patch} px crops"
            f"{', random flips' if cfg.data.augment else ''}, damage drawn per sample",
            f"- {recipe['iterations']} of {cfg.iterations} iterations, batch {cfg.batch_size}, loss `{cfg.loss}`",
            f"- Adam, lr {cfg.optim.lr:g}, " + (f"x{cfg.optim.gamma:g} at iterations {list(cfg.optim.milestones)}"
                                                  if cfg.optim.milestones else "constant") + f"; seed {cfg.seed}",
            f"- wall time {recipe['wall_time_hours']} h"
            + (f"; last logged training loss {last:.4f}" if last is not None else ""),
            "",
            "## Metrics",
            "",
            f"Not measured by the trainer. Measure with `anyres evaluate --task {task['name']} --model FOLDER "
            "--data DIR --seed 0 --json report.json` and record the command beside the numbers.",
            "",
        ]
        return "\n".join(lines)

    def load_checkpoint(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["anyres"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        self.net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        load_adam_state(self.optim, self.net.parameters(), tensors)
        self.iteration = int(meta["iteration"])
        self.elapsed = float(meta["elapsed"])
        self.history = list(meta.get("history", []))

    # -- loop ----------------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> None:
        """Train until ``config.iterations`` (or ``stop_after`` more iterations, for tests)."""
        self.net.train()
        step_loop(self, lambda: {"loss": self.step()}, stop_after, lambda mean: f"loss {mean['loss']:.4f}")


def train(config: EnhanceTrainConfig, resume: bool = True, log: Callable[[str], None] | None = None,
          images: list[torch.Tensor] | None = None) -> EnhanceTrainer:
    """Run a config to completion, resuming from ``out_dir/checkpoint.safetensors`` if it exists."""
    return _resume_and_run(EnhanceTrainer(config, images=images, log=log), config, resume)


def _resume_and_run(trainer: Any, config: Any, resume: bool) -> Any:
    """Resume ``trainer`` from ``out_dir/checkpoint.safetensors`` if asked and present, write the resolved
    config beside it, and run to completion with graceful stop signals (the enhancement and LMAR trainers)."""
    ckpt = Path(config.out_dir) / CHECKPOINT
    if resume and ckpt.exists():
        trainer.load_checkpoint(ckpt)
        trainer.log(f"[{config.name}] resumed from {ckpt} at iteration {trainer.iteration}")
    write_bytes_atomic(Path(config.out_dir) / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
    run_until_stopped(trainer, config.name)
    return trainer
