"""The shared contract of degradation pipelines: draw parameters first, then apply them deterministically.

    records = pipeline.sample(batch, generator, scale=4, hr_size=(H, W))   # B plain JSON dicts
    lr = pipeline.apply(hr, records)                                        # no randomness left

``hr`` is ``(B, 3, H, W)`` float RGB in [0, 1]; ``lr`` is ``(B, 3, h, w)`` in [0, 1] with ``h = round(H / s)``,
``w = round(W / s)`` for any ``s >= 1``, LR pixel ``m`` covering HR rows ``[m H / h, (m + 1) H / h)``. Records
replay bit-identically without the config. The contract, the alignment and the range syntax ``(c, k)`` =
``c + k s``: docs/methods/classical.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from anyres.checks import check_image, check_scale, check_unit_range
from anyres.errors import ConfigError

__all__ = [
    "Configured",
    "Pipeline",
    "Draw",
    "Bound",
    "Range",
    "RECORD_FORMAT",
    "lr_size",
    "scaled_size",
    "derive_seed",
    "make_config",
    "resolve_range",
]

# Version of the record layout; stored in every record so that old parameter files can be recognised.
RECORD_FORMAT = 1

Bound = float | Sequence[float]
Range = Sequence[Bound]

# Seeds for noise fields are drawn below 2**53 so they survive any JSON reader, not only Python's.
_SEED_HIGH = 2**53


# ---------------------------------------------------------------------------------------------------------
# Sizes


def lr_size(hr_size: Sequence[int], scale: float | Sequence[float]) -> list[int]:
    """The LR size for an HR size ``(H, W)`` and a scale ``s`` (or ``(s_h, s_w)``): ``[round(H / s), round(W / s)]``.

    Halves round up (``floor(x + 0.5)``, not Python's banker's rounding); each side is at least 1.
    """
    sh, sw = (scale, scale) if isinstance(scale, (int, float)) else scale
    return [max(1, math.floor(hr_size[0] / sh + 0.5)), max(1, math.floor(hr_size[1] / sw + 0.5))]


def scaled_size(size: Sequence[int], factor: float) -> list[int]:
    """``[round(h * factor), round(w * factor)]`` (halves up, at least 1): the size after resizing by ``factor``."""
    return [max(1, math.floor(size[0] * factor + 0.5)), max(1, math.floor(size[1] * factor + 0.5))]


def derive_seed(seed: int, key: str) -> int:
    """A seed in ``[0, 2**63)`` for one item (e.g. an image name) from a run's seed.

    A hash of both, so an item's draws depend only on the run seed and the item's own key, not on which
    other items are processed or in which order.
    """
    digest = hashlib.sha256(f"anyres.degrade:{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# ---------------------------------------------------------------------------------------------------------
# Scale-dependent ranges


def _bound_value(bound: Bound, scale: float) -> float:
    if isinstance(bound, (int, float)):
        return float(bound)
    c, k = bound
    return float(c) + float(k) * scale


def resolve_range(rng: Range, scale: float) -> tuple[float, float]:
    """Evaluate a config range at a scale: each bound is a number or ``(c, k)`` meaning ``c + k * scale``."""
    return _bound_value(rng[0], scale), _bound_value(rng[1], scale)


# ---------------------------------------------------------------------------------------------------------
# Random draws into plain Python values


class Draw:
    """Random draws from one ``torch.Generator``, returned as plain Python numbers (for records).

    Every draw is made in float64 (or int64) on the generator's device, so a given generator state gives the
    same values on any machine and the values round-trip through JSON exactly.
    """

    def __init__(self, generator: torch.Generator):
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.generator = generator

    def unit(self) -> float:
        """U[0, 1)."""
        return torch.rand((), generator=self.generator, device=self.generator.device, dtype=torch.float64).item()

    def uniform(self, low: float, high: float) -> float:
        """U[low, high] (exactly ``low`` when ``low == high``)."""
        return low + (high - low) * self.unit()

    def integer(self, low: int, high: int) -> int:
        """A whole number uniform over ``low..high``, both ends included."""
        return int(
            torch.randint(int(low), int(high) + 1, (), generator=self.generator, device=self.generator.device).item()
        )

    def odd(self, low: int, high: int) -> int:
        """An odd number uniform over the odd numbers in ``[low, high]``."""
        first = low if low % 2 else low + 1
        last = high if high % 2 else high - 1
        if first > last:
            raise ConfigError(f"no odd kernel size in [{low}, {high}]")
        return first + 2 * self.integer(0, (last - first) // 2)

    def coin(self, p: float) -> bool:
        """True with probability ``p`` (never for 0, always for 1)."""
        return self.unit() < p

    def choice(self, options: Sequence[str], probs: Sequence[float] | None = None) -> str:
        """One of ``options``, uniformly or with the given probabilities."""
        u = self.unit()
        probs = probs if probs is not None else [1.0 / len(options)] * len(options)
        total = 0.0
        for option, p in zip(options, probs):
            total += p
            if u < total:
                return option
        return next(o for o, p in zip(reversed(options), reversed(probs)) if p > 0)  # float slack at the top

    def permutation(self, n: int) -> list[int]:
        """A uniformly random permutation of ``range(n)``."""
        return torch.randperm(n, generator=self.generator, device=self.generator.device).tolist()

    def seed(self) -> int:
        """A seed for a noise field, in ``[0, 2**53)``."""
        return int(torch.randint(0, _SEED_HIGH, (), generator=self.generator, device=self.generator.device).item())


# ---------------------------------------------------------------------------------------------------------
# The pipeline interface


class Configured:
    """A named object with a frozen-dataclass ``Config``: built from nothing (the defaults), a dict (checked by
    :func:`make_config`) or a ``Config``, with keyword overrides on top. The base of degradation pipelines
    and of the synthetic enhancement tasks."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = type(None)

    def __init__(self, config: Any = None, **overrides: Any):
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            config = make_config(self.Config, config)
        elif not isinstance(config, self.Config):
            raise ConfigError(f"{self.name} needs a {self.Config.__name__}, got {type(config).__name__}")
        if overrides:
            config = make_config(self.Config, {**dataclasses.asdict(config), **overrides})
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class Pipeline(Configured):
    """Base class: a named degradation model with a typed config, ``sample`` and ``apply``.

    Subclasses set ``name`` and ``Config`` (a frozen dataclass) and implement ``_sample_one`` (draw one
    sample's record from a :class:`Draw`) and ``_apply_one`` (apply one record to a ``(1, 3, H, W)`` image).
    """

    # -- sampling ------------------------------------------------------------------------------------------

    def sample(
        self, batch: int, generator: torch.Generator, *, scale: float | Sequence[float], hr_size: Sequence[int]
    ) -> list[dict]:
        """Draw ``batch`` parameter records for HR images of size ``hr_size = (H, W)``.

        Args:
            batch: number of samples ``B >= 1``.
            generator: the only source of randomness; its state advances.
            scale: one factor ``s >= 1`` for every sample, or a sequence of ``B`` factors (one per sample;
                samples whose LR sizes differ cannot share one ``apply`` call).
            hr_size: ``(H, W)`` of the images the records will be applied to.
        Returns:
            ``B`` JSON-serialisable dicts; each holds ``pipeline``, ``format``, ``scale``, ``hr_size``,
            ``lr_size`` and the pipeline's own steps (record layouts: docs/methods/<pipeline>.md).
        """
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an int >= 1, got {batch!r}")
        if isinstance(scale, (int, float)):
            scales = [check_scale(scale)] * batch
        else:
            scales = [check_scale(s) for s in scale]
            if len(scales) != batch:
                raise ValueError(f"scale must be one number or {batch} numbers (one per sample), got {len(scales)}")
        if (
            not isinstance(hr_size, (list, tuple))
            or len(hr_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in hr_size)
        ):
            raise ValueError(f"hr_size must be (H, W) with positive ints, got {hr_size!r}")
        draw = Draw(generator)
        records = []
        for s in scales:
            record = {
                "pipeline": self.name,
                "format": RECORD_FORMAT,
                "scale": s,
                "hr_size": list(hr_size),
                "lr_size": lr_size(hr_size, s),
            }
            record.update(self._sample_one(draw, s, list(hr_size), record["lr_size"]))
            records.append(record)
        return records

    def _sample_one(self, draw: Draw, scale: float, hr_size: list[int], lr_size: list[int]) -> dict:
        raise NotImplementedError

    # -- applying ------------------------------------------------------------------------------------------

    def apply(self, hr: torch.Tensor, params: Sequence[dict]) -> torch.Tensor:
        """Degrade ``hr`` with recorded parameters; deterministic.

        Args:
            hr: ``(B, 3, H, W)`` float RGB in [0, 1].
            params: ``B`` records from :meth:`sample` of this pipeline (or loaded from JSON), each made for
                ``hr_size == (H, W)``, all with the same ``lr_size``.
        Returns:
            ``(B, 3, h, w)`` LR images in [0, 1], ``hr``'s device and dtype. Sample ``b`` of the result equals
            ``apply(hr[b:b+1], params[b:b+1])`` exactly.
        """
        check_image(hr, "hr", channels=3)
        check_unit_range(hr, "hr")
        if len(params) != hr.shape[0]:
            raise ValueError(f"got {len(params)} parameter records for a batch of shape {tuple(hr.shape)}")
        sizes = set()
        for i, record in enumerate(params):
            if not isinstance(record, dict) or record.get("pipeline") != self.name:
                got = record.get("pipeline") if isinstance(record, dict) else type(record).__name__
                raise ValueError(f"record {i} is not a {self.name!r} record (pipeline {got!r})")
            if record.get("format") != RECORD_FORMAT:
                raise ValueError(f"record {i} has format {record.get('format')!r}; this anyres reads {RECORD_FORMAT}")
            if list(record["hr_size"]) != list(hr.shape[-2:]):
                raise ValueError(
                    f"record {i} was drawn for HR size {record['hr_size']}, but hr has shape {tuple(hr.shape)}"
                )
            sizes.add(tuple(record["lr_size"]))
        if len(sizes) > 1:
            raise ValueError(
                f"records of one batch must share one LR size, got {sorted(sizes)}; "
                f"apply samples with different scales separately"
            )
        out = [self._apply_one(hr[i : i + 1], record) for i, record in enumerate(params)]
        lr = torch.cat(out, dim=0)
        expected = tuple(params[0]["lr_size"])
        if tuple(lr.shape[-2:]) != expected:  # a broken pipeline, not a user mistake
            raise AssertionError(f"{self.name} produced {tuple(lr.shape)}, expected LR size {expected}")
        return lr.clamp(0.0, 1.0)

    def _apply_one(self, hr: torch.Tensor, record: dict) -> torch.Tensor:
        raise NotImplementedError

    def __call__(
        self, hr: torch.Tensor, generator: torch.Generator, *, scale: float | Sequence[float]
    ) -> tuple[torch.Tensor, list[dict]]:
        """Sample for ``hr``'s batch and size, then apply: returns ``(lr, records)``."""
        check_image(hr, "hr", channels=3)
        check_unit_range(hr, "hr")
        records = self.sample(hr.shape[0], generator, scale=scale, hr_size=tuple(hr.shape[-2:]))
        return self.apply(hr, records), records


def make_config(cls: type, values: dict) -> Any:
    """Build a config dataclass from a dict; unknown keys are a :class:`ConfigError` naming the valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s) {unknown}; valid options: {', '.join(names)}")
    return cls(**values)
