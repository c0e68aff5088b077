"""Checks of a replayed degradation record (``anyres degrade --replay``) before any of it runs.

A record file may have been edited by hand or come from elsewhere, so every field a step reads is checked for
type and range, with one line naming the field: sizes are integers within reach of the image, blur widths and
variances positive, covariances positive definite, JPEG qualities 0-100, seeds 64-bit, every number finite,
the LR size the one the recorded scale gives. Layouts: docs/methods/<pipeline>.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from anyres.degrade.base import lr_size
from anyres.errors import ConfigError

__all__ = ["check_record", "MAX_DEPTH", "MAX_KERNEL"]

MAX_DEPTH = 6  # records nest step dicts inside the record; anything deeper is not a record
MAX_KERNEL = 255  # blur kernels anyres draws are at most 21 wide; a bigger one is a broken record
_POSITIVE = ("sigma", "var", "factor", "cutoff", "beta", "scale", "peak")
_FINITE = ("theta", "level")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fail(path: str, message: str, value: Any) -> None:
    shown = repr(value)
    raise ConfigError(f"{path}: {message}, got {shown if len(shown) < 60 else shown[:57] + '...'}")


def _check_field(path: str, key: str, v: Any, limit: int) -> None:
    if key in ("size", "kernel_size") and not isinstance(v, list):
        if not _int(v) or not 1 <= v <= MAX_KERNEL:
            _fail(path, f"a kernel size must be an integer from 1 to {MAX_KERNEL}", v)
    elif key in ("size", "hr_size", "lr_size"):
        if not (isinstance(v, list) and len(v) == 2 and all(_int(n) and 1 <= n <= limit for n in v)):
            _fail(path, f"an image size must be two integers from 1 to {limit}", v)
    elif key in _POSITIVE and v is not None:
        values = v if isinstance(v, list) else [v]
        if not values or not all(_number(n) and math.isfinite(n) and 0 < n <= 1e6 for n in values):
            _fail(path, "must be a positive finite number (or a list of them)", v)
    elif key in _FINITE and v is not None:
        if not (_number(v) and math.isfinite(v)) or (key == "level" and v < 0):
            _fail(path, "must be a finite number" + (" >= 0" if key == "level" else ""), v)
    elif key == "quality" and v is not None:
        if not _int(v) or not 0 <= v <= 100:
            _fail(path, "a JPEG quality must be an integer from 0 to 100", v)
    elif key == "seed" and v is not None:
        if not _int(v) or not 0 <= v < 2**64:
            _fail(path, "a seed must be an integer from 0 to 2**64 - 1", v)
    elif key in ("covariance", "ccm") and v is not None:
        _check_matrix(path, key, v)


def _check_matrix(path: str, key: str, v: Any) -> None:
    import torch

    n = len(v) if isinstance(v, list) else 0
    if not (n in (2, 3) and all(isinstance(r, list) and len(r) == n for r in v)):
        _fail(path, "must be a square 2x2 or 3x3 matrix", v)
    if not all(_number(x) and math.isfinite(x) for row in v for x in row):
        _fail(path, "must hold finite numbers", v)
    if key == "covariance":
        m = torch.tensor(v, dtype=torch.float64)
        if not torch.allclose(m, m.T) or torch.linalg.cholesky_ex(m).info.item() != 0:
            _fail(path, "a covariance must be symmetric positive definite", v)


def _walk(node: Any, path: str, depth: int, limit: int) -> None:
    if depth > MAX_DEPTH:
        raise ConfigError(f"{path}: nested deeper than a degradation record can be")
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}"
            _check_field(sub, str(key), value, limit)
            _walk(value, sub, depth + 1, limit)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{path}[{i}]", depth + 1, limit)
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{path}: must be a finite number, got {node!r}")


def check_record(record: Any, name: str, hr_size: Sequence[int]) -> None:
    """Raise a one-line :class:`ConfigError` naming the field if ``record`` (replayed for the image ``name`` of
    ``hr_size``) cannot be a record of the pipeline that wrote it."""
    where = f"record {name!r}"
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: must be a mapping of steps, got {type(record).__name__}")
    limit = 16 * max(int(n) for n in hr_size)  # intermediate resizes stay within a few times the HR size
    _walk(record, where, 0, limit)
    scale = record.get("scale")
    if _number(scale) and scale >= 1 and record.get("lr_size") != lr_size(hr_size, float(scale)):
        raise ConfigError(
            f"{where}.lr_size: {record.get('lr_size')} is not the LR size of a {hr_size[0]}x{hr_size[1]} (HxW) "
            f"image at x{scale:g} ({lr_size(hr_size, float(scale))})"
        )
