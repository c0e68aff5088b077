"""``anyres estimate-kernel``: estimate an image's own x2 or x4 downscaling kernel with KernelGAN.

Writes the kernel as a ``.npy`` array (``(k, k)`` float32, summing to 1; by default beside the image as
``NAME_kernel_xS.npy``), and optionally a picture of it (``--png``) and a JSON record (``--json``) of exactly
``{"scale": s, "kernel": [[...]], "seconds": t, "iters": n}``. Every file is written atomically; the input
is never overwritten, and existing outputs only with ``--overwrite``. User mistakes (a missing or
unreadable image, an image smaller than KernelGAN's crops, a bad scale) give one error line and exit 1.

Memory: KernelGAN trains on 64-pixel crops, but choosing them builds float64 maps of the whole image (about
300 bytes a pixel, 19 GB for a 64 MP photo). Above ``--working-pixels`` (4.2 MP, 2048 x 2048) the image's
8-bit samples are read, its central crop of that many pixels (same aspect, even offsets so G's stride-2
grid keeps its phase) is converted, and KernelGAN learns from that; a line on stderr says so. Smaller images
are estimated whole, exactly as before.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import click
import numpy as np
import torch

from anyres.checks import check_seed
from anyres.degrade.learned.kernelgan import DEFAULT_ITERS, SCALES, estimate_kernel
from anyres.errors import AnyresError, ConfigError
from anyres.io import Pixels, check_outputs, read_pixels, write_bytes_atomic, write_image
from anyres.pictures import kernel_picture

__all__ = ["estimate_kernel_command"]

# Each tap of the --png picture is drawn as a block of this many pixels per side.
PICTURE_BLOCK = 16
# Larger images are estimated on their central crop of this many pixels (module docstring): 2048 x 2048.
WORKING_PIXELS = 1 << 22


@click.command("estimate-kernel")
@click.argument("image", type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "--scale",
    default="2",
    show_default=True,
    metavar="2|4",
    help="2 or 4: the x2 kernel, or the x4 kernel derived from it analytically.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Kernel file (.npy); default: NAME_kernel_xSCALE.npy beside the image.",
)
@click.option(
    "--png",
    "png",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a picture of the kernel (taps scaled to the largest, 16 px per tap).",
)
@click.option(
    "--iters",
    type=int,
    default=DEFAULT_ITERS,
    show_default=True,
    help="Training iterations (the paper's 3000; the schedule is written for 3000, so far fewer give "
    "an unfinished kernel).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help='Write {"scale", "kernel", "seconds", "iters"} to this JSON file.',
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (the input is never replaced).")
@click.option(
    "--working-pixels",
    type=int,
    default=WORKING_PIXELS,
    show_default=True,
    help="Larger images are estimated on their central crop of this many pixels (choosing KernelGAN's crops "
    "costs about 300 bytes per pixel of the image); 0: the whole image.",
)
def estimate_kernel_command(
    image: Path,
    scale: str,
    output: Path | None,
    png: Path | None,
    iters: int,
    seed: int,
    json_path: Path | None,
    overwrite: bool,
    working_pixels: int,
) -> None:
    """Estimate the blur kernel that downscaled IMAGE (KernelGAN, Bell-Kligler et al. 2019)."""
    try:
        _run(image, _parse_scale(scale), output, png, iters, seed, json_path, overwrite, working_pixels)
    except AnyresError as err:
        click.echo(f"anyres: error: {err}", err=True)
        raise SystemExit(1) from None


def _parse_scale(text: str) -> int:
    # Parsed here rather than by click so that "--scale 3" and "--scale x" both give one error line.
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value not in SCALES:
        raise ConfigError(
            f"--scale must be 2 or 4, got {text!r} (KernelGAN learns a x2 kernel and derives x4 "
            f"from it; other scales are not supported)"
        )
    return int(value)


def working_copy(pixels: Pixels, limit: int) -> tuple[torch.Tensor, str | None]:
    """The image KernelGAN learns from: the whole image (as :func:`~anyres.io.read_image` reads it) up to
    ``limit`` pixels (0: no limit), else its central crop of at most ``limit`` pixels with the image's aspect,
    even sides and even offsets, converted alone. Returns the ``(1, C, h, w)`` tensor and a note (None when
    whole)."""
    h, w = pixels.size
    if limit == 0 or h * w <= limit:
        return pixels.to_tensor()[0], None
    ch = max(2, min(h, math.isqrt(limit * h // w)))
    cw = max(2, min(w, limit // ch))
    ch, cw = ch - ch % 2, cw - cw % 2
    top, left = (h - ch) // 2, (w - cw) // 2
    top, left = top - top % 2, left - left % 2
    note = (
        f"{w}x{h} is {h * w / 1e6:.1f} MP: KernelGAN learns from its central {cw}x{ch} crop "
        f"(--working-pixels {limit}; 0 takes the whole image)"
    )
    return pixels.window(top, top + ch, left, left + cw), note


def _run(
    image: Path,
    scale: int,
    output: Path | None,
    png: Path | None,
    iters: int,
    seed: int,
    json_path: Path | None,
    overwrite: bool,
    working_pixels: int = WORKING_PIXELS,
) -> None:
    if iters < 1:
        raise ConfigError(f"--iters must be >= 1, got {iters}")
    check_seed(seed)
    if output is None:
        output = image.with_name(f"{image.stem}_kernel_x{scale}.npy")
    if output.suffix.lower() != ".npy":
        raise ConfigError(f"-o/--output must end in .npy, got {output}")
    if json_path is not None and json_path.suffix.lower() != ".json":
        raise ConfigError(f"--json must end in .json, got {json_path}")
    if png is not None and png.suffix.lower() != ".png":
        raise ConfigError(f"--png must end in .png, got {png}")
    if working_pixels < 0:
        raise ConfigError(f"--working-pixels must be >= 0 (0: the whole image), got {working_pixels}")
    # One-line ImageReadError for a missing, unreadable or corrupt file; the samples stay 8-bit until cropped.
    img, note = working_copy(read_pixels(image), working_pixels)
    targets = [p for p in (output, png, json_path) if p is not None]
    if len({p.resolve() for p in targets}) != len(targets):
        raise ConfigError("-o, --png and --json must name different files")
    check_outputs(targets, [image], overwrite=overwrite)  # all before the first file is written

    if note:
        click.echo(f"{image}: {note}", err=True)
    start = time.perf_counter()
    kernel = estimate_kernel(img, scale=scale, iters=iters, seed=seed, progress=True).cpu()
    seconds = time.perf_counter() - start

    buf = io.BytesIO()
    np.save(buf, kernel.numpy().astype(np.float32))
    write_bytes_atomic(output, buf.getvalue(), overwrite=overwrite)
    if png is not None:
        write_image(png, kernel_picture(kernel, PICTURE_BLOCK), overwrite=overwrite)
    if json_path is not None:
        record = {"scale": scale, "kernel": kernel.double().tolist(), "seconds": round(seconds, 3), "iters": iters}
        write_bytes_atomic(json_path, (json.dumps(record) + "\n").encode("utf-8"), overwrite=overwrite)
    size = kernel.shape[-1]
    click.echo(f"{image} -> {output} ({size}x{size} x{scale} kernel, {iters} iterations, {seconds:.1f} s)", err=True)
