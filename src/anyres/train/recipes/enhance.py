"""Enhancement recipe (``task: enhance``): DeepLPF or the U-Net baseline learn to undo synthetic damage.

Each iteration crops ``batch_size`` patches ``(B, 3, p, p)`` in [0, 1] of good photos, flips them and damages
them with per-sample records of a task of :mod:`anyres.enhancement.tasks` (``retouch`` or ``lowlight``), all
from a generator seeded by ``(seed, i)``; the network maps the damaged patch back to the clean one under the
DeepLPF loss (Lab L1 + MS-SSIM, the paper's Eq. 8) or RGB L1. Dropout (DeepLPF's heads) reads the global RNG,
which the engine re-seeds per iteration, so resume is exact. Outputs: ``model/`` with a README card.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, field_validator

from anyres.degrade.base import derive_seed
from anyres.enhancement.tasks import EnhancePairSampler, get_task
from anyres.errors import AnyresError, ConfigError
from anyres.hub import save_network, write_card
from anyres.registry import NETWORKS
from anyres.sr.data import load_hr_folders
from anyres.train.config import (
    ConfigModel,
    Count,
    Milestones,
    PositiveFloat,
    PositiveInt,
    RunConfig,
    model_spec,
    register_task,
)
from anyres.train.engine import BatchStream, Recipe, load_init_weights, milestone_lr, train_device, update

__all__ = [
    "EnhanceTrainConfig",
    "EnhanceDataConfig",
    "EnhanceOptimConfig",
    "EnhanceRecipe",
    "TASK_KEY",
    "LOSSES",
    "task_spec",
]

TASK_KEY = "enhance"  # the top-level ``task:`` value of an enhancement config
LOSSES = ("deeplpf", "l1")
_MIN_PATCH = 5  # DeepLPF's loss uses a 5x5 MS-SSIM window


def task_spec(value: Any) -> dict[str, Any]:
    """A damage task of :mod:`anyres.enhancement.tasks` as ``{name, args}`` (a bare name is accepted), checked
    by building it; ValueError otherwise. Shared with the LMAR recipe."""
    spec = model_spec(value, "a task name or {name, args}")
    try:
        get_task(spec["name"], spec["args"] or None)
    except (AnyresError, TypeError, ValueError) as err:
        raise ValueError(str(err)) from None
    return spec


class EnhanceDataConfig(ConfigModel):
    train: list[str] = Field(default_factory=list)  # folders of HR photos (the clean targets)
    # Damage task of anyres.enhancement.tasks: {name: retouch|lowlight, args: {range overrides}}; a bare name is
    # accepted and stored in this form.
    task: Any = Field(default_factory=lambda: {"name": "retouch", "args": {}})
    patch: Annotated[int, Field(ge=_MIN_PATCH)] | None = 256  # crop side; None: whole images (batch of one size)
    augment: bool = True  # independent 50 % horizontal and vertical flips

    @field_validator("task")
    @classmethod
    def _task(cls, value: Any) -> dict[str, Any]:
        return task_spec(value)


class EnhanceOptimConfig(ConfigModel):
    lr: PositiveFloat = 1e-4
    milestones: Milestones = Field(default_factory=list)  # iterations at which lr *= gamma
    gamma: PositiveFloat = 0.5


class EnhanceTrainConfig(RunConfig):
    task: Literal["enhance"] = TASK_KEY
    name: str = "deeplpf-retouch"
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "deeplpf", "args": {}})
    data: EnhanceDataConfig = Field(default_factory=EnhanceDataConfig)
    batch_size: PositiveInt = 4
    iterations: Count = 3000
    optim: EnhanceOptimConfig = Field(default_factory=EnhanceOptimConfig)
    loss: Literal["deeplpf", "l1"] = "deeplpf"  # "deeplpf": Lab L1 + MS-SSIM (enhancement.deeplpf_loss); "l1": RGB L1
    seed: Count = 0
    threads: PositiveInt | None = None
    checkpoint_minutes: PositiveFloat = 5.0
    log_every: PositiveInt = 25
    out_dir: str = "runs/enhance"
    init: str | None = None  # weights folder to start from (fine-tuning); ignored when resuming

    @field_validator("model")
    @classmethod
    def _network(cls, value: Any) -> dict[str, Any]:
        spec = model_spec(value)
        NETWORKS.get(spec["name"])  # an unknown name raises RegistryError listing the valid ones
        return spec


def _lab_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from anyres.enhancement.deeplpf import deeplpf_loss

    return deeplpf_loss(pred, target)


def _l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


_LOSS_FUNCTIONS = {"deeplpf": _lab_loss, "l1": _l1_loss}


def _enhance_batch(
    sampler: EnhancePairSampler, size: int, seed: int, iteration: int
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(derive_seed(seed, f"enhance/batch/{iteration}"))
    return sampler.sample(size, g)


class EnhanceRecipe(Recipe):
    """The network, Adam and the pair sampler of one run. ``images``: ``(3, H, W)`` uint8 photos to train on
    instead of ``config.data.train`` (tests)."""

    rng_key = "enhance/dropout"

    def __init__(
        self,
        config: EnhanceTrainConfig,
        images: list[torch.Tensor] | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.config = config
        with torch.random.fork_rng(devices=[]):  # initial weights from the seed, the caller's RNG untouched
            torch.manual_seed(config.seed)
            self.net = NETWORKS.build(config.model["name"], **config.model["args"])
        if not hasattr(self.net, "config_dict"):
            raise ConfigError(
                f"network {config.model['name']!r} cannot be saved as a weights folder (it has no config_dict)"
            )
        if config.init:
            load_init_weights(self.net, config.init)
        # Channels-last convolutions: faster steps on CPU (benchmarks/enhance_train_speed.py, RESULTS
        # "Enhancement"); the same arithmetic up to float rounding.
        self.device = train_device(config.device)
        self.net = self.net.to(self.device, memory_format=torch.channels_last)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=config.optim.lr)
        self.modules, self.optimizers = {"model": self.net}, {"optim": (self.optim, self.net)}
        self.loss_fn = _LOSS_FUNCTIONS[config.loss]
        d = config.data
        if images is None:
            images = load_hr_folders(d.train)
        self.sampler = EnhancePairSampler(
            images, get_task(d.task["name"], d.task["args"] or None), patch=d.patch, flip=d.augment
        )
        make = functools.partial(_enhance_batch, self.sampler, config.batch_size, config.seed)
        self.batches = BatchStream(make, config.workers, self.device, stop=config.iterations)

    def lr_at(self, iteration: int) -> float:
        o = self.config.optim
        return milestone_lr(o.lr, iteration, o.milestones, o.gamma)

    def batch_at(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(degraded, target)`` of an iteration, each ``(B, 3, p, p)`` in [0, 1] on the CPU; a pure function of it."""
        return _enhance_batch(self.sampler, self.config.batch_size, self.config.seed, iteration)

    def step(self, iteration: int) -> dict[str, float]:
        degraded, target = self.batches.get(iteration)
        loss = self.loss_fn(self.net(degraded.contiguous(memory_format=torch.channels_last)), target)
        update(self.optim, self.net, loss)
        return {"loss": float(loss.detach())}

    def save_outputs(self, engine: Any) -> None:
        """Write the weights folder ``out_dir/model`` (weights, config.json with the recipe, README.md card)."""
        cfg = self.config
        recipe = {
            "task": cfg.data.task,
            "data": list(cfg.data.train),
            "patch": cfg.data.patch,
            "augment": cfg.data.augment,
            "batch_size": cfg.batch_size,
            "iterations": engine.iteration,
            "planned_iterations": cfg.iterations,
            "loss": cfg.loss,
            "optimizer": {
                "name": "adam",
                "lr": cfg.optim.lr,
                "milestones": list(cfg.optim.milestones),
                "gamma": cfg.optim.gamma,
            },
            "seed": cfg.seed,
            "wall_time_hours": round(engine.elapsed / 3600, 3),
        }
        folder = save_network(
            self.net,
            self.out_dir / "model",
            extra={"name": cfg.name, "iterations": engine.iteration, "training": recipe},
        )
        last = engine.history[-1]["loss"] if engine.history else None
        write_card(folder, self._card(recipe, last))

    def _card(self, recipe: dict[str, Any], last: float | None) -> str:
        cfg = self.config
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
            f"- Adam, lr {cfg.optim.lr:g}, "
            + (
                f"x{cfg.optim.gamma:g} at iterations {list(cfg.optim.milestones)}"
                if cfg.optim.milestones
                else "constant"
            )
            + f"; seed {cfg.seed}",
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


register_task(TASK_KEY, EnhanceTrainConfig, EnhanceRecipe)
