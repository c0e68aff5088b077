"""``anyres upscale``: images (files or folders) to any scale or size."""

from __future__ import annotations

import math
import os
from pathlib import Path

import click

from anyres.checks import check_seed
from anyres.cli.batch import Batch, device_option, output_options, resolve_device
from anyres.errors import AnyresError
from anyres.registry import UPSCALERS
from anyres.sr.render import DEFAULT_TILE, RENDER_MODES, RenderOptions

__all__ = ["upscale", "parse_size", "quality_option", "max_pixels_option", "MAX_OUTPUT_PIXELS"]

quality_option = click.option(
    "--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG/WebP quality."
)
max_pixels_option = click.option(
    "--max-pixels", type=int, default=None, help="Refuse inputs larger than this many pixels."
)

# The largest output `upscale` makes unless --max-output-pixels says otherwise: 400 MP (20000 x 20000),
# about 4.8 GB as float32 RGB, checked before anything is allocated.
MAX_OUTPUT_PIXELS = 400_000_000
# Peak bytes per output pixel: the float32 RGB result (12), its clamped copy (12), the integer pixels (6) and
# the encoder's buffer (6). Outputs whose estimate passes MEMORY_FRACTION of the RAM are refused up front.
BYTES_PER_OUTPUT_PIXEL = 36
MEMORY_FRACTION = 0.5


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` (width x height) -> ``(1080, 1920)`` as (H, W)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise AnyresError(f"invalid --size {text!r}: expected WIDTHxHEIGHT such as 1920x1080") from None
    if w < 1 or h < 1:
        raise AnyresError(f"invalid --size {text!r}: width and height must be positive")
    return h, w


@click.command()
@output_options()
@click.option("--scale", type=float, help="Scale factor, e.g. 2, 3.7 or 0.5.")
@click.option("--size", "size", help="Exact output size WIDTHxHEIGHT, e.g. 1920x1080.")
@click.option("--width", type=int, help="Output width; the height keeps the aspect ratio.")
@click.option("--height", type=int, help="Output height; the width keeps the aspect ratio.")
@click.option(
    "--model",
    default="liif",
    show_default=True,
    help=f"Model: {', '.join(UPSCALERS)} (see `anyres models`) or a weights folder.",
)
@click.option("--tile", type=int, default=None, help="LR tile side in pixels (bounded memory; output is identical).")
@click.option(
    "--mode",
    type=click.Choice(RENDER_MODES),
    default="fast",
    show_default=True,
    help="fast: bf16 MLP where the CPU/GPU has native bf16, else float32; exact: float32; reference: the "
    "paper's plain path (slow).",
)
@device_option
@quality_option
@max_pixels_option
@click.option(
    "--max-output-pixels",
    type=int,
    default=MAX_OUTPUT_PIXELS,
    show_default=True,
    help="Refuse outputs larger than this many pixels (checked before any work).",
)
@click.option(
    "--blind",
    is_flag=True,
    help="Blind SR: estimate the image's own kernel (KernelGAN), adapt a copy of the model to it on "
    "pairs made from the image (--blind-iters steps of 4 x 48x48 crops), then upscale. Minutes per "
    "image on a CPU.",
)
@click.option(
    "--blind-iters", type=click.IntRange(0, 100000), default=None, help="Adaptation steps of --blind (default 100)."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of a model that samples (liifusion's 4-step prior sampler); the same seed, the same image.",
)
def upscale(
    outputs,
    scale,
    size,
    width,
    height,
    model,
    tile,
    mode,
    device,
    quality,
    max_pixels,
    max_output_pixels,
    blind,
    blind_iters,
    seed,
) -> None:
    """Upscale images (files or folders) to any scale or size.

    Outputs keep the input's format, bit depth, alpha and colour profile. Without -o/--out-dir each result
    is written beside its input as NAME_anyres.EXT.
    """
    import torch

    from anyres.io import read_image, write_image
    from anyres.ops.resize import imresize
    from anyres.sr.api import target_size
    from anyres.sr.pretrained import load_upscaler

    size_hw = parse_size(size) if size else None
    if sum(v is not None for v in (scale, size_hw, width, height)) != 1:
        raise AnyresError("give exactly one of --scale, --size, --width or --height")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise AnyresError(f"--scale must be a positive finite number, got {scale}")
    if max_output_pixels < 1:
        raise AnyresError(f"--max-output-pixels must be a positive number of pixels, got {max_output_pixels}")
    check_seed(seed)
    asked = _asked(scale, size, width, height)
    if size_hw is not None:
        _check_output_size(size_hw, max_output_pixels, asked)
    if tile is not None and tile < 8:
        raise AnyresError(f"--tile must be at least 8 pixels, got {tile}")
    batch = Batch(outputs, suffix="_anyres")
    baseline = model in UPSCALERS and UPSCALERS[model].role == "baseline"
    if blind_iters is not None and not blind:
        raise AnyresError("--blind-iters needs --blind")
    if blind and baseline:
        raise AnyresError(f"--blind adapts a learned model; {model!r} is an interpolation baseline")
    dev = resolve_device(device)
    options = RenderOptions(mode=mode, tile=tile or DEFAULT_TILE, progress=True, seed=seed)
    upscaler = load_upscaler(model, device=dev, options=options)

    def process(path: Path, target: Path, _extras: list[Path]) -> str:
        img, meta = read_image(path, max_pixels=max_pixels)
        in_h, in_w = img.shape[-2:]
        if scale is not None and min(round(in_h * scale), round(in_w * scale)) < 1:
            raise AnyresError(
                f"{path}: {asked} would make the {in_w}x{in_h} image {round(in_w * scale)}x{round(in_h * scale)} "
                f"pixels; an output needs at least 1 pixel per side"
            )
        out_size = target_size(in_h, in_w, scale=scale, size=size_hw, width=width, height=height)
        _check_output_size(out_size, max_output_pixels, f"{path}: {asked}")
        if blind:
            from anyres.sr.blind import DEFAULT_ITERS, blind_upscale

            sr, info = blind_upscale(
                upscaler,
                img.to(dev),
                out_size,
                progress=True,
                iters=DEFAULT_ITERS if blind_iters is None else blind_iters,
            )
            sr = sr.clamp_(0, 1).cpu()
            click.echo(
                f"{path}: kernel estimated in {info['kernel_seconds']:.0f} s, model adapted in "
                f"{info['adapt_seconds']:.0f} s (L1 {info['loss_first'] or 0:.4f} -> "
                f"{info['loss_last'] or 0:.4f})",
                err=True,
            )
        with torch.inference_mode():
            if not blind:
                sr = upscaler.upscale(img.to(dev), out_size).clamp_(0, 1).cpu()
            alpha = None if meta.alpha is None else imresize(meta.alpha, size=out_size).clamp(0, 1)
        write_image(target, sr, meta, alpha=alpha, quality=quality, overwrite=outputs.overwrite)
        return f" ({out_size[1]}x{out_size[0]})"

    if batch.run(process):
        raise SystemExit(1)


def _asked(scale: float | None, size: str | None, width: int | None, height: int | None) -> str:
    """The size flag as the user gave it, for error messages."""
    if scale is not None:
        return f"--scale {scale:g}"
    if size is not None:
        return f"--size {size}"
    return f"--width {width}" if width is not None else f"--height {height}"


def _check_output_size(out_hw: tuple[int, int], limit: int, asked: str) -> None:
    h, w = out_hw
    if h * w > limit:
        raise AnyresError(
            f"{asked} asks for a {w}x{h} output ({h * w / 1e6:.4g} MP), over the limit of "
            f"{limit / 1e6:g} MP; pass --max-output-pixels to allow it"
        )
    need, ram = h * w * BYTES_PER_OUTPUT_PIXEL, _physical_memory()
    if ram and need > MEMORY_FRACTION * ram:
        raise AnyresError(
            f"{asked} asks for a {w}x{h} output, which needs about {need / 2**30:.1f} GiB (the float32 result and "
            f"its 8/16-bit copy are held whole), over {MEMORY_FRACTION:.0%} of this machine's "
            f"{ram / 2**30:.1f} GiB; ask for a smaller output"
        )


def _physical_memory() -> int:
    """Bytes of RAM (0 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0
