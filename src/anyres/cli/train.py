"""``anyres train``: a model from a YAML config, resumed from its run folder (also under ``torchrun``)."""

from __future__ import annotations

from pathlib import Path

import click

from anyres.errors import AnyresError

__all__ = ["train"]


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--restart", is_flag=True, help="Ignore an existing checkpoint in the run folder and start over.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set iterations=500 --set optim.lr=1e-4 (YAML values).",
)
@click.option(
    "--budget-minutes",
    type=float,
    default=None,
    help="Stop cleanly after this much wall-clock time (resume state and weights folder saved; the same "
    "command resumes), e.g. to use a short slot on a GPU machine fully.",
)
@click.option(
    "--device",
    default=None,
    help="auto (CUDA when there is a GPU, else the CPU), cpu, cuda or cuda:N; the config's device otherwise.",
)
def train(
    config: Path, restart: bool, overrides: tuple[str, ...], budget_minutes: float | None, device: str | None
) -> None:
    """Train a model from a YAML CONFIG (resumes from the run folder's checkpoint).

    A config with `task: enhance` at its top level trains an enhancement network, one with `task: lmar` an
    LMAR resampler for a frozen enhancer; any other config trains arbitrary-scale SR (anyres.train.recipes).
    """
    import yaml

    from anyres.train.config import load_config
    from anyres.train.engine import train as run_training

    parsed = {}
    for item in overrides:
        if "=" not in item:
            raise AnyresError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        parsed[key] = yaml.safe_load(value)
    threads = click.get_current_context().meta.get("anyres.threads")
    if threads is not None:  # --threads N is the config's threads (a --set threads=... still wins)
        parsed.setdefault("threads", threads)
    if device is not None:  # --device is the config's device (a --set device=... still wins)
        parsed.setdefault("device", device)
    engine = run_training(load_config(config, parsed), resume=not restart, budget_minutes=budget_minutes)
    if engine.stop_requested:  # Ctrl-C / SIGTERM: the checkpoint is saved; exit as an interrupted command does
        raise SystemExit(130)
