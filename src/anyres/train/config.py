"""One loader for every YAML training recipe: read, apply ``--set`` overrides, validate with pydantic.

A recipe module (:mod:`anyres.train.recipes`) registers its config model under the top-level ``task:`` value
it answers to (``None``: arbitrary-scale SR, ``"enhance"``, ``"lmar"``). :func:`load_config` picks the model
by that value and validates the whole file at once: an unknown key, a wrong type, a list given a string or a
negative count is one :class:`~anyres.errors.ConfigError` whose single line names the dotted key.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from anyres.errors import ConfigError

__all__ = [
    "ConfigModel",
    "RunConfig",
    "Count",
    "PositiveInt",
    "PositiveFloat",
    "Milestones",
    "load_config",
    "config_task",
    "register_task",
    "TASKS",
    "apply_overrides",
    "model_spec",
    "validation_message",
]

# Shared field types (the constraint is part of the error message pydantic writes).
Count = Annotated[int, Field(ge=0)]  # iterations, seeds
PositiveInt = Annotated[int, Field(ge=1)]  # batch sizes, log intervals, thread counts
PositiveFloat = Annotated[float, Field(gt=0)]  # learning rates, gammas, minutes
Milestones = list[Annotated[int, Field(ge=0)]]  # iterations at which lr *= gamma


_DEPTH: ContextVar[int] = ContextVar("config_depth", default=0)


class ConfigModel(BaseModel):
    """A config section: unknown keys are an error, assignments are validated too, booleans are strict."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=False)

    def __init__(self, **values: Any):
        depth = _DEPTH.get()  # sections built inside a config let the outer one report the full key path
        token = _DEPTH.set(depth + 1)
        try:
            super().__init__(**values)
        except ValidationError as err:
            if depth:
                raise
            raise ConfigError(validation_message(err, type(self), "config")) from None
        finally:
            _DEPTH.reset(token)

    def __setattr__(self, key: str, value: Any) -> None:
        try:
            super().__setattr__(key, value)
        except ValidationError as err:
            raise ConfigError(validation_message(err, type(self), "config")) from None

    def checked(self) -> ConfigModel:
        """A validated copy: nested assignments (``cfg.data.patch = 3``) skip the checks that span sections."""
        return build(type(self), self.model_dump(), "config")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in declaration order (what ``config.yaml`` and the checkpoint metadata hold)."""
        return self.model_dump()


class RunConfig(ConfigModel):
    """Where a run computes, shared by every task's config: the same recipe on any machine (docs/training.md,
    "Devices and data workers")."""

    device: str = "auto"  # auto (CUDA when there is a GPU, else the CPU), cpu, cuda or cuda:N
    workers: Count = 0  # DataLoader processes making the next batches (0: in the training process)


# task value -> (config model, recipe factory); filled by anyres.train.recipes
TASKS: dict[str | None, tuple[type[ConfigModel], Callable[..., Any]]] = {}


def register_task(task: str | None, config: type[ConfigModel], recipe: Callable[..., Any]) -> None:
    if task in TASKS:
        raise ValueError(f"training task {task!r} is registered twice")
    TASKS[task] = (config, recipe)


def _tasks() -> dict[str | None, tuple[type[ConfigModel], Callable[..., Any]]]:
    import anyres.train.recipes  # noqa: F401  (registers every recipe)

    return TASKS


def model_spec(value: Any, what: str = "a {name, args} spec", name: str | None = None) -> dict[str, Any]:
    """``{name, args}`` with ``args`` a dict (a bare name is accepted and stored in this form); else ValueError."""
    if isinstance(value, str):
        value = {"name": value, "args": {}}
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("name"), str)
        or set(value) - {"name", "args"}
        or not isinstance(value.get("args", {}) or {}, dict)
        or (name and value["name"] != name)
    ):
        raise ValueError(f"expected {what}, got {value!r}")
    return {"name": value["name"], "args": dict(value.get("args") or {})}


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        sub = getattr(field, "annotation", None)
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            break
        cls = sub
    return sorted(cls.model_fields)


def validation_message(err: ValidationError, cls: type[BaseModel], where: str) -> str:
    """One line per config: ``where: key.path: what is wrong (got value)``, issues joined by ``; ``."""
    parts = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not str(p).startswith(("function-", "list[", "int", "float")))
        key = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden":
            parts.append(f"{key}: unknown key; valid keys here: {', '.join(_fields_at(cls, loc[:-1]))}")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        got = "" if e["type"].startswith("value_error") else f" (got {e['input']!r})"
        parts.append(f"{key}: {msg[0].lower() + msg[1:]}{got}" if key else msg + got)
    return f"{where}: " + "; ".join(parts)


def build(cls: type[ConfigModel], raw: dict[str, Any], where: str) -> ConfigModel:
    """``cls(**raw)`` with pydantic's errors turned into one :class:`ConfigError` line."""
    token = _DEPTH.set(_DEPTH.get() + 1)
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(validation_message(err, cls, where)) from None
    finally:
        _DEPTH.reset(token)


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


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | None, where: str) -> None:
    """Set dotted keys (``"optim.lr"``) of a raw YAML mapping in place, creating missing sections."""
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: cannot set {dotted!r}: {p!r} is not a mapping")
        node[last] = value


def _raw(path: str | Path, overrides: dict[str, Any] | None) -> tuple[Path, dict[str, Any]]:
    path = Path(path)
    raw = _read_yaml(path)
    apply_overrides(raw, overrides, str(path))
    return path, raw


def _task_of(raw: dict[str, Any], where: str) -> str | None:
    task = raw.get("task")
    tasks = _tasks()
    if task not in tasks:
        named = ", ".join(repr(t) for t in tasks if t is not None)
        raise ConfigError(f"{where}: task must be one of {named} or absent (SR training), got {task!r}")
    return task


def config_task(path: str | Path, overrides: dict[str, Any] | None = None) -> str | None:
    """The top-level ``task`` of a YAML training config (after overrides): ``None`` for arbitrary-scale SR."""
    path, raw = _raw(path, overrides)
    return _task_of(raw, str(path))


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ConfigModel:
    """Read and validate a YAML training config of any task; ``overrides`` maps dotted keys to values.

    Returns the task's config model (:func:`anyres.train.engine.train` runs it)."""
    path, raw = _raw(path, overrides)
    cls, _ = _tasks()[_task_of(raw, str(path))]
    return build(cls, raw, str(path))
