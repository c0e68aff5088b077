"""Synthetic enhancement pairs: damage a good photo the way a photographer would have to fix, learn to undo it.

Two sample-then-apply tasks on ``(B, 3, H, W)`` RGB in [0, 1]: ``retouch`` (exposure, white balance, local
graduated and elliptical gains, tone) and ``lowlight`` (darkening plus Poisson-Gaussian noise)::

    records = get_task("retouch").sample(8, generator)    # plain JSON, no image size
    degraded = task.apply(clean, records)                  # deterministic; the target is clean

Equations, record layouts and default ranges: docs/methods/enhancement-tasks.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from anyres.checks import check_image, check_prob, check_range, check_unit_range
from anyres.degrade.base import Configured, Draw
from anyres.enhancement.filters import elliptical_map, graduated_map
from anyres.errors import ConfigError
from anyres.ops.augment import flip
from anyres.ops.color import quantize
from anyres.ops.color_lab import linear_to_srgb, srgb_to_linear
from anyres.ops.noise import gaussian_noise, poisson_noise
from anyres.registry import TASKS

__all__ = [
    "RECORD_FORMAT",
    "TASKS",
    "get_task",
    "EnhanceTask",
    "RetouchConfig",
    "RetouchTask",
    "LowLightConfig",
    "LowLightTask",
    "EnhancePairSampler",
]

# Version of the record layout, stored in every record.
RECORD_FORMAT = 1


# ---------------------------------------------------------------------------------------------------------
# Config validation and draws


def _uniform(draw: Draw, rng: tuple[float, float]) -> float:
    return draw.uniform(*rng)


def _log_uniform(draw: Draw, rng: tuple[float, float]) -> float:
    u = draw.unit()
    lo, hi = rng
    return lo if lo == hi else math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)


# ---------------------------------------------------------------------------------------------------------
# The task interface


class EnhanceTask(Configured):
    """Base class: a named synthetic-damage model with a frozen-dataclass config, ``sample`` and ``apply``.

    Subclasses set ``name`` and ``Config`` and implement ``_sample_one(draw) -> dict`` (the task's own keys)
    and ``_apply_one(clean, record)`` on a ``(1, 3, H, W)`` image.
    """

    def sample(self, batch: int, generator: torch.Generator) -> list[dict]:
        """Draw ``batch`` records (plain JSON dicts with ``task`` and ``format`` keys); the generator advances."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an int >= 1, got {batch!r}")
        draw = Draw(generator)
        return [{"task": self.name, "format": RECORD_FORMAT, **self._sample_one(draw)} for _ in range(batch)]

    def apply(self, clean: torch.Tensor, records: Sequence[dict]) -> torch.Tensor:
        """Damage ``clean`` ``(B, 3, H, W)`` in [0, 1] with ``B`` records; deterministic. Returns the degraded input
        ``(B, 3, H, W)`` in [0, 1] (``clean``'s device and dtype); the training target is ``clean`` itself."""
        check_image(clean, "clean", channels=3)
        check_unit_range(clean, "clean")
        if len(records) != clean.shape[0]:
            raise ValueError(f"got {len(records)} records for a batch of shape {tuple(clean.shape)}")
        for i, record in enumerate(records):
            if not isinstance(record, dict) or record.get("task") != self.name:
                got = record.get("task") if isinstance(record, dict) else type(record).__name__
                raise ValueError(f"record {i} is not a {self.name!r} record (task {got!r})")
            if record.get("format") != RECORD_FORMAT:
                raise ValueError(f"record {i} has format {record.get('format')!r}; this anyres reads {RECORD_FORMAT}")
        out = [self._apply_one(clean[i : i + 1], record) for i, record in enumerate(records)]
        return torch.cat(out, dim=0).clamp(0.0, 1.0)

    def __call__(self, clean: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, list[dict]]:
        """Sample for ``clean``'s batch, then apply: returns ``(degraded, records)``."""
        check_image(clean, "clean", channels=3)
        check_unit_range(clean, "clean")
        records = self.sample(clean.shape[0], generator)
        return self.apply(clean, records), records

    def _sample_one(self, draw: Draw) -> dict:
        raise NotImplementedError

    def _apply_one(self, clean: torch.Tensor, record: dict) -> torch.Tensor:
        raise NotImplementedError


def _finish(x: torch.Tensor, record: dict) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return quantize(x) if record["quantize"] else x


# ---------------------------------------------------------------------------------------------------------
# retouch


@dataclass(frozen=True)
class RetouchConfig:
    """Ranges of the ``retouch`` task (units and defaults: docs/methods/enhancement-tasks.md)."""

    exposure: Sequence[float] = (-1.0, 1.0)  # EV, uniform
    cast: Sequence[float] = (-0.3, 0.3)  # EV of the red and the blue gain, each uniform
    gamma: Sequence[float] = (0.7, 1.4)  # log-uniform
    contrast: Sequence[float] = (0.75, 1.25)  # uniform, about mid-grey
    graduated_count: Sequence[int] = (0, 2)  # whole numbers, both ends included
    graduated_angle: Sequence[float] = (-0.6, 0.6)  # radians of the central line from the horizontal
    graduated_height: Sequence[float] = (0.2, 0.8)  # y of the central line at mid-width
    graduated_offset: Sequence[float] = (0.05, 0.4)  # each band offset, image heights
    graduated_invert_prob: float = 0.5
    elliptical_count: Sequence[int] = (0, 2)
    elliptical_centre: Sequence[float] = (0.1, 0.9)  # each coordinate
    elliptical_axis: Sequence[float] = (0.15, 0.6)  # each semi-axis
    elliptical_angle: Sequence[float] = (0.0, math.pi)
    local_exposure: Sequence[float] = (-1.0, 1.0)  # EV of a local filter, shared by its channels
    local_tint: Sequence[float] = (-0.2, 0.2)  # EV added per channel of a local filter
    quantize: bool = True

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "exposure", check_range(self.exposure, "exposure"))
        s(self, "cast", check_range(self.cast, "cast"))
        s(self, "gamma", check_range(self.gamma, "gamma", positive=True))
        s(self, "contrast", check_range(self.contrast, "contrast", minimum=0.0))
        s(self, "graduated_count", check_range(self.graduated_count, "graduated_count", minimum=0, integer=True))
        s(
            self,
            "graduated_angle",
            check_range(
                self.graduated_angle, "graduated_angle", minimum=-math.pi / 2 + 1e-3, maximum=math.pi / 2 - 1e-3
            ),
        )
        s(self, "graduated_height", check_range(self.graduated_height, "graduated_height"))
        s(self, "graduated_offset", check_range(self.graduated_offset, "graduated_offset", positive=True))
        s(self, "graduated_invert_prob", check_prob(self.graduated_invert_prob, "graduated_invert_prob"))
        s(self, "elliptical_count", check_range(self.elliptical_count, "elliptical_count", minimum=0, integer=True))
        s(self, "elliptical_centre", check_range(self.elliptical_centre, "elliptical_centre"))
        s(self, "elliptical_axis", check_range(self.elliptical_axis, "elliptical_axis", positive=True))
        s(self, "elliptical_angle", check_range(self.elliptical_angle, "elliptical_angle"))
        s(self, "local_exposure", check_range(self.local_exposure, "local_exposure"))
        s(self, "local_tint", check_range(self.local_tint, "local_tint"))
        s(self, "quantize", bool(self.quantize))


class RetouchTask(EnhanceTask):
    """Global exposure, white balance, gamma and contrast damage plus local graduated and elliptical changes."""

    name = "retouch"
    Config = RetouchConfig

    def _local_scale(self, draw: Draw) -> list[float]:
        cfg = self.config
        shared = _uniform(draw, cfg.local_exposure)
        return [2.0 ** (shared + _uniform(draw, cfg.local_tint)) for _ in range(3)]

    def _sample_one(self, draw: Draw) -> dict:
        cfg = self.config
        exposure = _uniform(draw, cfg.exposure)
        cast = [2.0 ** _uniform(draw, cfg.cast), 1.0, 2.0 ** _uniform(draw, cfg.cast)]
        graduated = []
        for _ in range(draw.integer(*cfg.graduated_count)):
            slope = math.tan(_uniform(draw, cfg.graduated_angle))
            height = _uniform(draw, cfg.graduated_height)
            graduated.append(
                {
                    "slope": slope,
                    "intercept": height - 0.5 * slope,  # the line y = m x + c passes (0.5, height)
                    "offset1": _uniform(draw, cfg.graduated_offset),
                    "offset2": _uniform(draw, cfg.graduated_offset),
                    "invert": draw.coin(cfg.graduated_invert_prob),
                    "scale": self._local_scale(draw),
                }
            )
        elliptical = []
        for _ in range(draw.integer(*cfg.elliptical_count)):
            elliptical.append(
                {
                    "centre_x": _uniform(draw, cfg.elliptical_centre),
                    "centre_y": _uniform(draw, cfg.elliptical_centre),
                    "semi_a": _uniform(draw, cfg.elliptical_axis),
                    "semi_b": _uniform(draw, cfg.elliptical_axis),
                    "angle": _uniform(draw, cfg.elliptical_angle),
                    "scale": self._local_scale(draw),
                }
            )
        return {
            "exposure": exposure,
            "cast": cast,
            "graduated": graduated,
            "elliptical": elliptical,
            "gamma": _log_uniform(draw, cfg.gamma),
            "contrast": _uniform(draw, cfg.contrast),
            "quantize": cfg.quantize,
        }

    def _apply_one(self, clean: torch.Tensor, record: dict) -> torch.Tensor:
        x = clean
        h, w = x.shape[-2:]
        gain = [2.0 ** float(record["exposure"]) * float(c) for c in record["cast"]]
        if any(g != 1.0 for g in gain) or record["graduated"] or record["elliptical"]:
            linear = srgb_to_linear(x) * x.new_tensor(gain).view(1, 3, 1, 1)
            for step in record["graduated"]:
                linear = linear * graduated_map(h, w, **_graduated_args(step, x))[:, 0]
            for step in record["elliptical"]:
                linear = linear * elliptical_map(h, w, **_elliptical_args(step, x))[:, 0]
            x = linear_to_srgb(linear.clamp(0.0, 1.0))
        if float(record["gamma"]) != 1.0:
            x = x.clamp(0.0, 1.0) ** float(record["gamma"])
        if float(record["contrast"]) != 1.0:
            x = 0.5 + float(record["contrast"]) * (x - 0.5)
        return _finish(x, record)


def _scalar(value: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([[float(value)]], dtype=like.dtype, device=like.device)


def _scale(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([[[float(v) for v in values]]], dtype=like.dtype, device=like.device)


def _graduated_args(step: dict, like: torch.Tensor) -> dict[str, torch.Tensor]:
    args = {k: _scalar(step[k], like) for k in ("slope", "intercept", "offset1", "offset2")}
    return {**args, "invert": _scalar(1.0 if step["invert"] else 0.0, like), "scale": _scale(step["scale"], like)}


def _elliptical_args(step: dict, like: torch.Tensor) -> dict[str, torch.Tensor]:
    args = {k: _scalar(step[k], like) for k in ("centre_x", "centre_y", "semi_a", "semi_b", "angle")}
    return {**args, "scale": _scale(step["scale"], like)}


# ---------------------------------------------------------------------------------------------------------
# lowlight


@dataclass(frozen=True)
class LowLightConfig:
    """Ranges of the ``lowlight`` task (units and defaults: docs/methods/enhancement-tasks.md)."""

    exposure: Sequence[float] = (-3.0, -1.0)  # EV, uniform
    gamma: Sequence[float] = (1.0, 1.6)  # log-uniform
    photons: Sequence[float] = (100.0, 1000.0)  # counts per unit intensity, log-uniform
    read: Sequence[float] = (0.002, 0.01)  # read-noise standard deviation, [0, 1] units, uniform
    noise_prob: float = 1.0
    quantize: bool = True

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "exposure", check_range(self.exposure, "exposure"))
        s(self, "gamma", check_range(self.gamma, "gamma", positive=True))
        s(self, "photons", check_range(self.photons, "photons", positive=True))
        s(self, "read", check_range(self.read, "read", minimum=0.0))
        s(self, "noise_prob", check_prob(self.noise_prob, "noise_prob"))
        s(self, "quantize", bool(self.quantize))


class LowLightTask(EnhanceTask):
    """Darkening (gamma and exposure) plus Poisson-Gaussian noise, rounded to 8 bits."""

    name = "lowlight"
    Config = LowLightConfig

    def _sample_one(self, draw: Draw) -> dict:
        cfg = self.config
        exposure = _uniform(draw, cfg.exposure)
        gamma = _log_uniform(draw, cfg.gamma)
        noise = None
        if draw.coin(cfg.noise_prob):
            noise = {"photons": _log_uniform(draw, cfg.photons), "read": _uniform(draw, cfg.read), "seed": draw.seed()}
        return {"exposure": exposure, "gamma": gamma, "noise": noise, "quantize": cfg.quantize}

    def _apply_one(self, clean: torch.Tensor, record: dict) -> torch.Tensor:
        x = clean
        if float(record["gamma"]) != 1.0:
            x = x ** float(record["gamma"])
        if float(record["exposure"]) != 0.0:
            x = x * 2.0 ** float(record["exposure"])
        noise = record["noise"]
        if noise is not None:
            generator = torch.Generator(device="cpu").manual_seed(int(noise["seed"]))
            one = x.new_tensor([1.0])
            x = poisson_noise(x, one, generator=generator, peak=x.new_tensor([float(noise["photons"])]), clip=False)
            x = gaussian_noise(x, x.new_tensor([float(noise["read"])]), generator=generator, clip=False)
        return _finish(x, record)


# ---------------------------------------------------------------------------------------------------------
# Registry of tasks


TASKS.add_class(RetouchTask)
TASKS.add_class(LowLightTask)


def get_task(name: str, config: Any = None, **overrides: Any) -> EnhanceTask:
    """Build the task called ``name`` from an optional config (dataclass or dict) plus field overrides.

    Raises :class:`~anyres.errors.RegistryError` for an unknown name and :class:`~anyres.errors.ConfigError`
    for an unknown or invalid option.
    """
    return TASKS.get(name).builder(config, **overrides)


# ---------------------------------------------------------------------------------------------------------
# Training pairs


class EnhancePairSampler:
    """Random ``(degraded, target)`` training batches from photos, replayable from the generator's state.

    ``images``: ``(3, H, W)`` uint8 tensors (the targets' source). ``task``: a task name, a ``{"name", "args"}``
    spec or an :class:`EnhanceTask`. ``patch``: side of the square crops (``None``: whole images, as
    DeepLPF's batch-1 full-resolution recipe; a batch then needs images of one size). ``flip``: independent
    50 % horizontal and vertical flips.

    Per sample, from the one generator and in this order: the image (uniform over those that hold a crop),
    the crop's top and left, the two flip coins, then the task's record for the crop.
    """

    def __init__(
        self,
        images: Sequence[torch.Tensor],
        task: str | dict | EnhanceTask = "retouch",
        patch: int | None = 256,
        flip: bool = True,
    ):
        self.images = list(images)
        if not self.images:
            raise ConfigError("EnhancePairSampler needs at least one image")
        for i, img in enumerate(self.images):
            if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.dim() != 3 or img.shape[0] != 3:
                shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
                dtype = getattr(img, "dtype", None)
                raise ValueError(f"image {i} must be a (3, H, W) uint8 tensor, got shape {shape} and dtype {dtype}")
        if isinstance(task, str):
            task = get_task(task)
        elif isinstance(task, dict):
            if "name" not in task or set(task) - {"name", "args"}:
                raise ConfigError(f"task must be a name, {{name, args}} or an EnhanceTask, got {task!r}")
            task = get_task(task["name"], task.get("args") or None)
        elif not isinstance(task, EnhanceTask):
            raise ConfigError(f"task must be a name, {{name, args}} or an EnhanceTask, got {type(task).__name__}")
        self.task = task
        if patch is not None and (isinstance(patch, bool) or not isinstance(patch, int) or patch < 1):
            raise ConfigError(f"patch must be an int >= 1 or None, got {patch!r}")
        self.patch = patch
        self.flip = bool(flip)
        if patch is None:
            self.eligible = list(range(len(self.images)))
        else:
            self.eligible = [i for i, img in enumerate(self.images) if min(img.shape[-2:]) >= patch]
            if not self.eligible:
                raise ConfigError(f"no training image holds a {patch}x{patch} crop")

    def draw(self, batch: int, generator: torch.Generator) -> list[dict]:
        """Draw ``batch`` sample descriptions: ``{"image", "top", "left", "hflip", "vflip", "record"}`` (JSON)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an int >= 1, got {batch!r}")
        draw = Draw(generator)
        samples = []
        for _ in range(batch):
            index = self.eligible[draw.integer(0, len(self.eligible) - 1)]
            h, w = self.images[index].shape[-2:]
            top = draw.integer(0, h - self.patch) if self.patch is not None else 0
            left = draw.integer(0, w - self.patch) if self.patch is not None else 0
            hflip = draw.coin(0.5) if self.flip else False
            vflip = draw.coin(0.5) if self.flip else False
            samples.append(
                {
                    "image": index,
                    "top": top,
                    "left": left,
                    "hflip": hflip,
                    "vflip": vflip,
                    "record": self.task.sample(1, generator)[0],
                }
            )
        return samples

    def replay(self, samples: Sequence[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(degraded, target)``, each ``(B, 3, p, p)`` float32 in [0, 1], from descriptions made by :meth:`draw`."""
        degraded, targets = [], []
        for s in samples:
            img = self.images[int(s["image"])]
            if self.patch is not None:
                top, left = int(s["top"]), int(s["left"])
                img = img[:, top : top + self.patch, left : left + self.patch]
            target = flip(img.to(torch.float32) / 255.0, bool(s["hflip"]), bool(s["vflip"]))
            target = target.unsqueeze(0).contiguous()
            degraded.append(self.task.apply(target, [s["record"]]))
            targets.append(target)
        sizes = {tuple(t.shape[-2:]) for t in targets}
        if len(sizes) > 1:
            raise ValueError(
                f"whole-image batches need images of one size, got {sorted(sizes)}; use batch 1 or a patch"
            )
        return torch.cat(degraded), torch.cat(targets)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(degraded, target)`` batches, each ``(B, 3, p, p)`` float32 in [0, 1]; the generator advances."""
        return self.replay(self.draw(batch, generator))
