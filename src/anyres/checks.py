"""The one vocabulary of input checks: image tensors, per-sample parameters, integers, ranges, choices.

Each check raises ``ValueError`` (``TypeError`` for a value of the wrong kind) with one line that names the
argument and prints what it got (the actual shape, value or dtype), and returns the checked value. The
config-value checks at the end (``check_scale``, ``check_prob``, ``check_probs``, ``check_range``,
``check_choices``) validate what a user wrote in a config or on the command line, so they raise
:class:`~anyres.errors.ConfigError` instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from anyres.errors import ConfigError

__all__ = [
    "describe",
    "check_image",
    "check_int",
    "check_positive",
    "check_unit_range",
    "check_choice",
    "check_same_shape",
    "check_shape",
    "is_finite_number",
    "check_scale",
    "check_prob",
    "check_probs",
    "check_range",
    "check_choices",
    "check_seed",
]

# The scales at which a scale-dependent range is checked (a ``c + k s`` bound could cross another only at some).
_RANGE_SCALES = (1.0, 2.0, 4.0, 8.0)


def describe(x: Any) -> str:
    """``(B, C, H, W)``-style shape of a tensor, else the type name (for error messages)."""
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def check_image(
    x: Any, name: str = "image", *, channels: int | tuple[int, ...] | None = None, nonempty: bool = False
) -> tuple[int, int, int, int]:
    """``x`` must be a float ``(B, C, H, W)`` tensor with ``C`` in ``channels`` (any if ``None``).

    Returns the shape. ``nonempty``: also refuse a tensor with no elements.
    """
    allowed = (channels,) if isinstance(channels, int) else channels
    want = "C" if allowed is None else "|".join(str(c) for c in allowed)
    if (
        not isinstance(x, torch.Tensor)
        or not x.is_floating_point()
        or x.dim() != 4
        or (allowed is not None and x.shape[1] not in allowed)
    ):
        dtype = f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) and not x.is_floating_point() else ""
        raise ValueError(f"{name} must be a float (B, {want}, H, W) tensor, got shape {describe(x)}{dtype}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {describe(x)}")
    return x.shape[0], x.shape[1], x.shape[2], x.shape[3]


def check_unit_range(x: torch.Tensor, name: str = "image", *, tolerance: float = 0.0) -> torch.Tensor:
    """Every value of ``x`` lies in ``[0, 1]`` (widened by ``tolerance``); NaN fails."""
    if x.numel():
        lo, hi = (float(v) for v in torch.aminmax(x.detach()))
        if not (-tolerance <= lo and hi <= 1.0 + tolerance):  # also catches NaN
            raise ValueError(f"{name} values must be in [0, 1], got min {lo:.4g} and max {hi:.4g}")
    return x


def check_int(value: Any, name: str, *, minimum: int | None = None, odd: bool = False) -> int:
    """``value`` is an int (not a bool), ``>= minimum`` if given, odd if ``odd``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
        or (odd and value % 2 == 0)
    ):
        what = " ".join(
            w for w in ("an odd" if odd else "an", "int", f">= {minimum}" if minimum is not None else "") if w
        )
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_positive(value: torch.Tensor | float, name: str, *, strict: bool = True) -> Any:
    """Finite and ``> 0`` (``>= 0`` when not ``strict``) everywhere; a tensor or a number."""
    values = value if isinstance(value, torch.Tensor) else torch.tensor(float(value))
    bad = (values <= 0) if strict else (values < 0)
    if not bool(torch.isfinite(values).all()) or bool(bad.any()):
        shown = value.tolist() if isinstance(value, torch.Tensor) else value
        raise ValueError(f"{name} must be finite and {'>' if strict else '>='} 0, got {shown}")
    return value


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` is one of ``choices``; the message lists them."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(str, options))}; got {value!r}")
    return value


def check_same_shape(x: Any, name: str, other: torch.Tensor, other_name: str) -> torch.Tensor:
    """``x`` is a float tensor with ``other``'s shape."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.shape != other.shape:
        raise ValueError(
            f"{name} must be a float tensor of {other_name}'s shape {tuple(other.shape)}, got shape {describe(x)}"
        )
    return x


def check_shape(x: Any, name: str, dims: tuple[int | str, ...]) -> tuple[int, ...]:
    """``x`` is a float tensor with one axis per entry of ``dims``: an int is the required size, a str
    (``"B"``) only labels an axis of any size. Returns the shape."""
    if (
        not isinstance(x, torch.Tensor)
        or not x.is_floating_point()
        or x.dim() != len(dims)
        or any(isinstance(d, int) and n != d for n, d in zip(x.shape, dims))
    ):
        want = ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "")
        dtype = f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) and not x.is_floating_point() else ""
        raise ValueError(f"{name} must be a float ({want}) tensor, got shape {describe(x)}{dtype}")
    return tuple(x.shape)


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------------------
# Config values (raise ConfigError)


def check_scale(value: Any, name: str = "scale") -> float:
    """An upscaling factor: a finite number ``>= 1``, returned as a float."""
    if not is_finite_number(value) or value < 1:
        raise ConfigError(f"{name} must be a number >= 1, got {value!r}")
    return float(value)


def check_prob(value: Any, name: str) -> float:
    """A probability: a finite number in ``[0, 1]``, returned as a float."""
    if not is_finite_number(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_probs(value: Any, name: str, n: int) -> tuple[float, ...]:
    """``n`` probabilities (numbers ``>= 0``) that sum to 1 (within 1e-6), returned as a tuple of floats."""
    if (
        not isinstance(value, (list, tuple))
        or len(value) != n
        or not all(is_finite_number(v) and v >= 0 for v in value)
    ):
        raise ConfigError(f"{name} must be {n} probabilities >= 0, got {value!r}")
    if abs(sum(value) - 1.0) > 1e-6:
        raise ConfigError(f"{name} must sum to 1, got {value!r} (sum {sum(value):g})")
    return tuple(float(v) for v in value)


def _range_bound(bound: Any, name: str, value: Any, scaled: bool) -> float | tuple[float, float]:
    if is_finite_number(bound):
        return bound
    if scaled:
        if isinstance(bound, (list, tuple)) and len(bound) == 2 and all(is_finite_number(v) for v in bound):
            return (bound[0], bound[1])
        raise ConfigError(f"{name}: each bound must be a number or a [c, k] pair (c + k * scale), got {bound!r}")
    raise ConfigError(f"{name} must be a [low, high] range of numbers, got {value!r}")


def _at_scale(bound: float | tuple[float, float], scale: float) -> float:
    return float(bound) if isinstance(bound, (int, float)) else float(bound[0]) + float(bound[1]) * scale


def check_range(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    integer: bool = False,
    scaled: bool = False,
) -> tuple:
    """A ``[low, high]`` range (a list from YAML/JSON or a tuple) with ``low <= high``, both within
    ``[minimum, maximum]`` (and ``> 0`` if ``positive``); ``integer`` ranges hold whole numbers only.

    Plain ranges hold two numbers and come back as floats (ints if ``integer``). With ``scaled``, each bound
    may also be a ``[c, k]`` pair meaning ``c + k * scale`` (the degradation pipelines' syntax); the range is
    checked at scales 1, 2, 4 and 8 and comes back as written, pairs as tuples (ints if ``integer``).
    """
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{name} must be a [low, high] range, got {value!r}")
    rng = tuple(_range_bound(b, name, value, scaled) for b in value)
    if integer and not all(isinstance(b, int) or (isinstance(b, float) and b.is_integer()) for b in rng):
        raise ConfigError(f"{name} must hold whole numbers, got {value!r}")
    for s in _RANGE_SCALES if scaled else (1.0,):
        lo, hi = _at_scale(rng[0], s), _at_scale(rng[1], s)
        if lo > hi:
            at = f" (at scale {s:g}: {lo:g} > {hi:g})" if scaled else ""
            raise ConfigError(f"{name}: low must be <= high, got {value!r}{at}")
        if minimum is not None and lo < minimum:
            raise ConfigError(f"{name} must be >= {minimum:g}, got {value!r}")
        if positive and lo <= 0:
            raise ConfigError(f"{name} must be > 0, got {value!r}")
        if maximum is not None and hi > maximum:
            raise ConfigError(f"{name} must be <= {maximum:g}, got {value!r}")
    if integer:
        return tuple(int(b) for b in rng)  # type: ignore[arg-type]
    return rng if scaled else tuple(float(b) for b in rng)  # type: ignore[arg-type]


def check_choices(value: Any, name: str, allowed: Iterable[str]) -> tuple[str, ...]:
    """A non-empty list (or tuple) of values drawn from ``allowed``, returned as a tuple."""
    options = list(allowed)
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{name} must be a non-empty list drawn from {options}, got {value!r}")
    bad = [v for v in value if v not in options]
    if bad:
        raise ConfigError(f"{name}: unknown value(s) {bad}; expected some of {options}")
    return tuple(value)


def check_seed(value: Any, name: str = "--seed") -> int:
    """A random seed: an int that ``torch.manual_seed`` takes, in ``[-2**63, 2**64)``."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**64:
        raise ConfigError(f"{name} must be an integer from -2**63 to 2**64 - 1, got {value!r}")
    return value
