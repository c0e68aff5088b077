"""``anyres enhance``: photos (files or folders) enhanced at their own size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from anyres.cli.batch import Batch, device_option, output_options, resolve_device
from anyres.cli.upscale import max_pixels_option, quality_option
from anyres.enhancement.api import DEFAULT_ENHANCER
from anyres.errors import AnyresError
from anyres.registry import ENHANCERS, RESAMPLERS

__all__ = ["enhance", "EXPLAIN_MAX_PIXELS"]

# --explain computes every filter map of the image at once (DeepLPF in one pass, about 1.2 KB a pixel): at
# full size it is refused above this many pixels, with a line naming --working-size.
EXPLAIN_MAX_PIXELS = 4_000_000


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
    NAME_enhanced.EXT. The model runs at full resolution unless --working-size is given; above 1 MP it runs
    in exact tiles (the shipped models), so memory stays bounded: about 1.2 GB plus 6 bytes per pixel for an
    8-bit photo of any size (DeepLPF runs its backbone twice over the tiles: once for the filter
    parameters, once for the image).
    """
    import torch

    from anyres.enhancement.api import explain_rgb, load_enhancer, load_resampler
    from anyres.enhancement.api import working_size as working_for
    from anyres.enhancement.blocks import Blocking, downsample_source, enhance_blocks, one_pass_bytes, upsample_blocks
    from anyres.io import Canvas, read_pixels, write_bytes_atomic, write_image
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
    blocking = Blocking()

    def notes(path: Path, target: Path) -> list[Path]:
        if not explain:
            return []
        return [target.with_name(f"{path.stem}_filters.json"), target.with_name(f"{path.stem}_filters.png")]

    def render(path: Path, target: Path, extras: list[Path]) -> tuple[Any, Any, Any]:
        """The result in a canvas (and the explanation); the input's samples are freed on return."""
        pixels = read_pixels(path, max_pixels=max_pixels)  # the file's samples; float windows on demand
        size = pixels.size
        work = None if working_size is None else working_for(*size, long_side=working_size)
        if work == size:
            work = None

        def source(top: int, bottom: int, left: int, right: int) -> torch.Tensor:
            return to_rgb(pixels.window(top, bottom, left, right))

        canvas = Canvas(target, size, pixels.meta, alpha=pixels.has_alpha, overwrite=overwrite)
        filters = picture = None
        if explain:
            if work is None and size[0] * size[1] > EXPLAIN_MAX_PIXELS:
                gb = one_pass_bytes(net, size[0] * size[1]) / 1e9
                raise AnyresError(
                    f"{path}: --explain runs the whole {size[1]}x{size[0]} image at once (about {gb:.0f} GB "
                    f"above {EXPLAIN_MAX_PIXELS / 1e6:.0f} MP); add --working-size (e.g. 1024)"
                )
            if work is None:
                small = source(0, size[0], 0, size[1]).to(dev)
            else:
                small = downsample_source(source, size, work, sampler, blocking, dev)
            out, filters, picture = explain_rgb(net, small)
            del small
            filters = {
                "input": str(path),
                "output": str(target),
                "model": str(model),
                **filters,
                "picture": {"file": extras[1].name, **filters["picture"]},
            }
            blocks = iter([(0, 0, out)]) if work is None else upsample_blocks(out, size, sampler, blocking)
        else:
            blocks = enhance_blocks(net, source, size, working=work, resampler=sampler, blocking=blocking)
        for top, left, block in blocks:
            bottom, right = top + block.shape[-2], left + block.shape[-1]
            alpha = pixels.alpha(top, bottom, left, right) if pixels.has_alpha else None
            canvas.put(top, left, block.cpu(), alpha=alpha)
        return canvas, filters, picture

    def process(path: Path, target: Path, extras: list[Path]) -> str:
        canvas, filters, picture = render(path, target, extras)
        written = []
        try:
            written.append(canvas.write(quality=quality))
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
