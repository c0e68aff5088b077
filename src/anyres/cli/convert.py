"""``anyres convert``: a foreign checkpoint file -> an anyres weights folder (float32, with a card)."""

from __future__ import annotations

from pathlib import Path

import click

from anyres.errors import AnyresError
from anyres.registry import CHECKPOINTS

__all__ = ["convert_command"]


@click.command("convert")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="Weights folder to write."
)
@click.option("--overwrite", is_flag=True, help="Replace the files of an existing, non-empty folder.")
@click.option(
    "--weights",
    type=click.Choice(["average", "trained"]),
    default=None,
    help="For an anyres training state: the average of the weights (default, where the run kept one) or the "
    "trained weights.",
)
def convert_command(checkpoint: Path, output: Path, overwrite: bool, weights: str | None) -> None:
    """Convert CHECKPOINT (a yinboc/liif .pth, a DIINN Lightning .ckpt, an ESRGAN RRDBNet .pth or an anyres
    training state .safetensors; see docs/foreign-checkpoints.md) into a weights folder that --model accepts."""
    from anyres.sr.checkpoints import convert_checkpoint
    from anyres.train.states import state_to_folder

    suffixes = sorted({entry.role for entry in CHECKPOINTS.values()})
    if checkpoint.suffix.lower() not in suffixes:
        raise AnyresError(f"{checkpoint}: unsupported checkpoint file; known suffixes: {', '.join(suffixes)}")
    if checkpoint.suffix.lower() == ".safetensors":
        folder = state_to_folder(checkpoint, output, weights=weights or "average", overwrite=overwrite)
    elif weights is not None:
        raise AnyresError(f"{checkpoint}: --weights applies to anyres training states (.safetensors) only")
    else:
        folder = convert_checkpoint(checkpoint, output, overwrite=overwrite)
    click.echo(f"{checkpoint} -> {folder}")
