"""``anyres compare``: the same crop of nearest, bicubic and each model side by side in one PNG."""

from __future__ import annotations

from pathlib import Path

import click

from anyres.cli.batch import device_option, resolve_device
from anyres.errors import AnyresError

__all__ = ["compare_command"]


@click.command("compare")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scale", "scale", required=True, type=float, help="Scale factor (> 0; >= 1 with --as-hr).")
@click.option(
    "--models",
    "models",
    default="liif",
    show_default=True,
    help="Comma-separated models (names or folders) shown after the nearest and bicubic panels.",
)
@click.option(
    "--as-hr",
    is_flag=True,
    help="IMAGE is ground truth: downscale it (benchmark protocol), show PSNRs and an HR panel.",
)
@click.option(
    "--crop", "crop", default=None, metavar="X,Y,W,H", help="Crop in output pixels (default: centred, at most 256x256)."
)
@click.option(
    "--degradation",
    default=None,
    metavar="NAME",
    help="With --as-hr: make the LR with this pipeline (realesrgan, bsrgan, classical), as "
    "`anyres evaluate --degradation NAME --seed N` does for this image.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the --degradation draw.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output PNG file.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@device_option
def compare_command(
    image: Path,
    scale: float,
    models: str,
    as_hr: bool,
    crop: str | None,
    degradation: str | None,
    seed: int,
    output: Path,
    overwrite: bool,
    device: str | None,
) -> None:
    """Compose the same crop of nearest, bicubic and each model side by side into one PNG."""
    from anyres import pictures
    from anyres.evaluation.compare import check_scale, make_comparison, parse_crop
    from anyres.io import check_output, write_image

    s = check_scale(scale)
    if as_hr and s < 1:
        raise AnyresError(f"--as-hr needs --scale >= 1, got {s:g}")
    if output.suffix.lower() != ".png":
        raise AnyresError(f"-o/--output must be a .png file, got {output}")
    check_output(output, [image], overwrite=overwrite)
    names = [m.strip() for m in models.split(",") if m.strip()]
    box = parse_crop(crop) if crop is not None else None
    composed, records = make_comparison(
        image, s, names, as_hr=as_hr, crop=box, device=resolve_device(device), degradation=degradation, seed=seed
    )
    write_image(output, pictures.from_pil(composed), overwrite=overwrite)
    width = max(len(r["label"]) for r in records)
    for r in records:
        value = f"{r['psnr']:.2f} dB" if r["psnr"] is not None else "-"
        click.echo(f"{r['label']:<{width}}  {value}")
    click.echo(f"wrote {output} ({composed.width}x{composed.height})", err=True)
