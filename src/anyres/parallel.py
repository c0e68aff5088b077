"""More than one process: torchrun's ranks (training's data parallelism, folder jobs split across ranks).

A folder job under ``torchrun --nproc_per_node M [--nnodes N] -m anyres.cli ...`` gives each rank every
``world``-th file (:func:`shard`); evaluation gathers every rank's per-image results (:func:`gather`) so
that rank 0 reports exactly what one process would. Without torchrun's environment everything is one rank.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["distributed", "shard", "gather", "is_main", "world_size"]

T = TypeVar("T")


def distributed() -> tuple[int, int]:
    """``(world_size, rank)`` from torchrun's environment; joins the gloo process group when ``world > 1``."""
    world, rank = world_size(), int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
    return world, rank


def world_size() -> int:
    """How many ranks this job has (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that prints summaries and writes reports."""
    return int(os.environ.get("RANK", "0")) == 0


def shard(items: Sequence[T]) -> list[T]:
    """This rank's share of ``items``: every ``world``-th item from position ``rank`` (all of them alone)."""
    world, rank = distributed()
    return list(items[rank::world])


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order, on every rank (``[obj]`` alone)."""
    world, _ = distributed()
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out
