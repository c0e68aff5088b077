"""Whether bfloat16 arithmetic pays on a device, so that the ``fast`` paths use it only where it does.

On a CPU without bf16 instructions (AVX2 only, e.g. many AMD EPYC and older Intel parts) PyTorch's bf16
matmul runs a slow fallback, ~80x slower than float32 where it was measured; there the ``fast`` mode
computes in float32 instead. ``ANYRES_BF16=1`` or ``=0`` overrides the detection. Details: docs/training.md,
"Precision".
"""

from __future__ import annotations

import functools
import os
import platform

import torch

ENV = "ANYRES_BF16"
# CPU features (Linux /proc/cpuinfo) with native bf16 arithmetic: x86 AVX512-BF16 and AMX, Arm BF16.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(text: str) -> set[str]:
    """The feature words of a ``/proc/cpuinfo`` text (x86 ``flags``, Arm ``Features``)."""
    words: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            words.update(value.split())
    return words


@functools.cache
def cpu_has_bf16() -> bool:
    if platform.system() != "Linux":
        return False  # not detected: float32 is always correct, only sometimes slower
    try:
        with open("/proc/cpuinfo") as f:
            return bool(cpu_flags(f.read()) & BF16_FLAGS)
    except OSError:
        return False


def bf16_fast(device: torch.device | str) -> bool:
    """True when bfloat16 matmuls and convolutions on ``device`` are native (worth using for speed)."""
    env = os.environ.get(ENV, "").strip()
    if env in ("0", "1"):
        return env == "1"
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return cpu_has_bf16()
    return False


def resolve_mode(mode: str, device: torch.device | str) -> str:
    """``fast`` becomes ``exact`` (float32) on a device where bf16 does not pay; other modes are kept."""
    return "exact" if mode == "fast" and not bf16_fast(device) else mode
