"""``anyres export``: an upscaler's network -> one ONNX or TorchScript file (docs/export.md)."""

from __future__ import annotations

from pathlib import Path

import click

from anyres.errors import AnyresError
from anyres.io import check_output

__all__ = ["export_command"]


@click.command("export")
@click.argument("model")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "torchscript"]),
    default="onnx",
    show_default=True,
    help="File format.",
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option(
    "--bands",
    type=int,
    default=16,
    show_default=True,
    help="Output row bands of an arbitrary-scale graph: its peak memory when it runs is about 1/bands of one "
    "pass (ONNX export takes longer with more).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
def export_command(model: str, fmt: str, output: Path, bands: int, overwrite: bool) -> None:
    """Export MODEL (a name from `anyres models`, a weights folder or a foreign checkpoint file) for
    deployment. Arbitrary-scale models take (lr, size) and give the --mode exact output of that size, so one
    file serves every scale; fixed-scale ones (RRDBNet) take lr and give their native scale."""
    from anyres.sr.export import export
    from anyres.sr.pretrained import load_upscaler

    check_output(output, [], overwrite=overwrite)
    upscaler = load_upscaler(model, device="cpu")
    if not hasattr(upscaler, "net"):
        raise AnyresError(f"{model!r} is an interpolation baseline: there is no network to export")
    output.parent.mkdir(parents=True, exist_ok=True)
    export(upscaler, output, fmt, bands=bands)
    click.echo(f"{model} -> {output} ({fmt}, {output.stat().st_size / 2**20:.1f} MiB)")
