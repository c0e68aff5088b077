"""``anyres enhance``: photos (files or folders) enhanced at their own size."""

from __future__ import annotations

import json
from pathlib import Path

import click

from anyres.cli.batch import Batch, device_option, output_options, resolve_device
from anyres.cli.upscale import max_pixels_option, quality_option
from anyres.enhancement.api import DEFAULT_ENHANCER
from anyres.errors import AnyresError
from anyres.registry import ENHANCERS, RESAMPLERS

__all__ = ["enhance"]


@click.command()
@output_options(suffix_default="_enhanced")
@click.option(
    "--model",
    default=DEFAULT_ENHANCER,
    show_default=True,
    help=f"Enhancement model: {', '.join(ENHANCERS)} or a weights folder.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Also write NAME_filters.json (the predicted filter parameters) and NAME_filters.png (the "
    "graduated, elliptical and fused gain maps side by side, gain 0-2 shown as black-white) next "
    "to each output. DeepLPF models only.",
)
@device_option
@quality_option
@max_pixels_option
@click.option(
    "--working-size",
    type=int,
    default=None,
    help="Large-image path: downsample so the long side is this many pixels, enhance there, upsample "
    "back (bounded memory). Images already that small run at full size.",
)
@click.option(
    "--resampler",
    type=click.Choice(list(RESAMPLERS)),
    default="bicubic",
    show_default=True,
    help="Downsampler of --working-size: " + "; ".join(f"{e.name}: {e.description}" for e in RESAMPLERS.values()) + ".",
)
@click.option(
    "--resampler-model",
    type=click.Path(path_type=Path),
    default=None,
    help="Weights folder of an LMAR resampler trained for this enhancer (--resampler lmar).",
)
def enhance(outputs, model, explain, device, quality, max_pixels, working_size, resampler, resampler_model) -> None:
    """Enhance photos (files or folders) at their own size: exposure, colour, tone, low light.

    Outputs keep the input's format, bit depth, alpha and colour profile; a gray image is enhanced as RGB
    and written back as gray. Without -o/--out-dir each result is written beside its input as
    NAME_enhanced.EXT. The model runs at full resolution (memory grows with the pixel count) unless
    --working-size is given.
    """
    from anyres.enhancement.api import (
        downsample_for,
        enhance_rgb,
        explain_rgb,
        load_enhancer,
        load_resampler,
        upsample_from,
    )
    from anyres.enhancement.api import working_size as working_for
    from anyres.io import read_image, write_bytes_atomic, write_image
    from anyres.ops.color import to_rgb

    batch = Batch(outputs, suffix="_enhanced")
    overwrite = outputs.overwrite
    dev = resolve_device(device)
    net = load_enhancer(model, device=dev)
    if working_size is not None and working_size < 1:
        raise AnyresError(f"--working-size must be a positive number of pixels, got {working_size}")
    if working_size is None and (resampler != "bicubic" or resampler_model is not None):
        raise AnyresError("--resampler and --resampler-model apply to the large-image path: add --working-size")
    sampler = load_resampler(resampler, resampler_model, device=dev)
    if explain and not callable(getattr(net, "explain", None)):
        raise AnyresError(
            f"--explain needs a DeepLPF model (its filters are the explanation); {model} is a "
            f"{type(net).__name__}, which predicts no filters"
        )

    def notes(path: Path, target: Path) -> list[Path]:
        if not explain:
            return []
        return [target.with_name(f"{path.stem}_filters.json"), target.with_name(f"{path.stem}_filters.png")]

    def process(path: Path, target: Path, extras: list[Path]) -> str:
        img, meta = read_image(path, max_pixels=max_pixels)
        rgb = to_rgb(img).to(dev)
        work = None if working_size is None else working_for(*rgb.shape[-2:], long_side=working_size)
        if explain:
            out, filters, picture = explain_rgb(net, downsample_for(rgb, work, sampler))
            out = upsample_from(out, tuple(rgb.shape[-2:]), sampler)
            filters = {
                "input": str(path),
                "output": str(target),
                "model": str(model),
                **filters,
                "picture": {"file": extras[1].name, **filters["picture"]},
            }
        else:
            out = enhance_rgb(net, rgb, working=work, resampler=sampler)
        written = []
        try:
            written.append(write_image(target, out.cpu(), meta, quality=quality, overwrite=overwrite))
            if explain:
                written.append(
                    write_bytes_atomic(extras[0], (json.dumps(filters, indent=2) + "\n").encode(), overwrite=overwrite)
                )
                written.append(write_image(extras[1], picture.cpu(), overwrite=overwrite))
        except BaseException:
            for done in written:  # one image's files appear together or not at all
                done.unlink(missing_ok=True)
            raise
        return f" (+ {extras[0].name}, {extras[1].name})" if explain else ""

    if batch.run(process, extras=notes):
        raise SystemExit(1)
