"""The one vocabulary of input checks: image tensors, per-sample parameters, integers, ranges, choices.

Each check raises ``ValueError`` (``TypeError`` for a value of the wrong kind) with one line that names the
argument and prints what it got (the actual shape, value or dtype), and returns the checked value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "describe",
    "check_image",
    "check_int",
    "check_positive",
    "check_unit_range",
    "check_choice",
    "check_same_shape",
]


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


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
