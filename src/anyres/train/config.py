"""Typed training configuration, loaded from YAML; unknown keys are an error."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from anyres.errors import ConfigError

__all__ = ["TrainConfig", "DataConfig", "OptimConfig", "ValConfig", "load_config", "config_task", "TRAIN_TASKS"]


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)  # folders of HR images
    patch: int = 48                                  # LR patch side
    scale_min: float = 1.0
    scale_max: float = 4.0
    queries: int = 2304                              # sampled HR pixels per patch
    augment: bool = True
    degradation: Any = None                          # None: bicubic LR; else a pipeline name or {name, args}
    query_layout: str = "random"                     # "patch": a contiguous sqrt(queries)^2 window (GAN/VGG)


@dataclass
class OptimConfig:
    lr: float = 1e-4
    milestones: list[int] = field(default_factory=list)  # iterations at which lr *= gamma
    gamma: float = 0.5
    warmup: int = 0                                      # iterations of linear lr warm-up (fine-tuning)


@dataclass
class ValConfig:
    data: str | None = None          # folder of HR images (benchmark protocol)
    scales: list[float] = field(default_factory=lambda: [2.0, 3.0, 4.0])
    every: int = 1000                # iterations


@dataclass
class TrainConfig:
    name: str = "liif"
    model: dict[str, Any] = field(default_factory=lambda: {"name": "liif", "args": {}})
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 16
    iterations: int = 1000
    optim: OptimConfig = field(default_factory=OptimConfig)
    precision: str = "bf16"          # bf16: bf16 encoder autocast + bf16 MLP hidden layers; fp32: exact
    val: ValConfig = field(default_factory=ValConfig)
    checkpoint_minutes: float = 5.0
    log_every: int = 50
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/liif"
    init: str | None = None          # weights folder to start from (fine-tuning); ignored when resuming
    prior_weight: float = 0.05       # LIIFusion stage 2: weight of the prior (diffusion) L1 loss
    pixel_loss: str = "l1"           # "mse" for LIIFusion stage 2 (the paper's eq. 9)
    perceptual_weight: float = 0.0   # VGG16 relu5_3 MSE (needs data.query_layout: patch)
    gan_weight: float = 0.0          # relativistic GAN loss with a U-Net discriminator (needs patch queries)
    discriminator: dict[str, Any] = field(default_factory=lambda: {"channels": 64})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: str, where: str) -> Any:
    # PyYAML reads 1e-4 (no dot) as a string; numbers are coerced by the annotated type.
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None and "None" in kinds:
        return None
    try:
        if kinds[0] == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kinds[0] == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {annotation}, got {value!r}") from None
    if kinds[0] == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _build(cls: type, raw: Any, where: str, sections: dict[str, type] | None = None) -> Any:
    """``cls`` from a YAML mapping: unknown keys and ill-typed scalars raise :class:`ConfigError` naming
    ``where``; keys in ``sections`` (top level only) are nested dataclasses built the same way. Shared by the SR,
    enhancement and LMAR configs."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys: {sorted(known)}")
    values = {}
    for key, value in raw.items():
        sub = (sections or {}).get(key)
        if sub is not None:
            values[key] = _build(sub, value, f"{where}.{key}")
        else:
            values[key] = _coerce(value, str(known[key].type), f"{where}.{key}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:  # dataclasses that check their values with ValueError
        raise ConfigError(f"{where}: {err}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def _apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | None, where: str) -> None:
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: cannot set {dotted!r}: {p!r} is not a mapping")
        node[last] = value


TRAIN_TASKS = ("enhance", "lmar")   # top-level ``task:`` values; absent means arbitrary-scale SR


def config_task(path: str | Path, overrides: dict[str, Any] | None = None) -> str | None:
    """The top-level ``task`` of a YAML training config (after overrides): ``"enhance"`` (an enhancement
    network), ``"lmar"`` (an LMAR resampler) or ``None`` (arbitrary-scale SR); any other value is a
    :class:`~anyres.errors.ConfigError`."""
    path = Path(path)
    raw = _read_yaml(path)
    _apply_overrides(raw, overrides, str(path))
    task = raw.get("task")
    if task is not None and task not in TRAIN_TASKS:
        raise ConfigError(f"{path}: task must be 'enhance' (enhancement training), 'lmar' (LMAR resampler "
                          f"training) or absent (SR training), got {task!r}")
    return task


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML training config; ``overrides`` maps dotted keys (``"optim.lr"``) to values."""
    path = Path(path)
    raw = _read_yaml(path)
    _apply_overrides(raw, overrides, str(path))
    cfg = _build(TrainConfig, raw, str(path), {"data": DataConfig, "optim": OptimConfig, "val": ValConfig})
    if cfg.precision not in ("bf16", "fp32"):
        raise ConfigError(f"{path}: precision must be 'bf16' or 'fp32', got {cfg.precision!r}")
    if (cfg.perceptual_weight or cfg.gan_weight) and cfg.data.query_layout != "patch":
        raise ConfigError(f"{path}: perceptual and GAN losses need data.query_layout: patch (image-shaped queries)")
    return cfg
