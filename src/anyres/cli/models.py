"""``anyres models``: what ``--model`` accepts, read from the upscaler and enhancer registries."""

from __future__ import annotations

import click

from anyres.enhancement.api import DEFAULT_ENHANCER
from anyres.registry import ENHANCERS, UPSCALERS, Entry

__all__ = ["models"]

MISSING = " (weights not in this installation)"


@click.command()
def models() -> None:
    """List the models --model accepts: upscaling (upscale, evaluate), then enhancement (enhance)."""
    upscalers = list(UPSCALERS.values())
    # The default enhancer first: it is what `anyres enhance` runs without --model.
    enhancers = sorted(ENHANCERS.values(), key=lambda e: (e.name != DEFAULT_ENHANCER, e.name))
    width = max(len(e.name) for e in [*upscalers, *enhancers])

    def show(entries: list[Entry], path_line: str) -> None:
        for e in entries:
            click.echo(f"{e.name:<{width}}  {e.description}{'' if e.available else MISSING}")
        click.echo(f"{'PATH':<{width}}  {path_line}")

    show(upscalers, "any model folder (config.json + model.safetensors)")
    click.echo("\nEnhancement models (anyres enhance --model):")
    show(enhancers, "any enhancement model folder (config.json + model.safetensors)")
