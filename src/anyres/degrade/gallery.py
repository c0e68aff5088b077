"""A contact sheet of sampled degradations, to check by eye that a pipeline's ranges are sane.

:func:`make_gallery` draws ``n`` records per pipeline for one HR crop ``(1, 3, H, W)`` in [0, 1] and lays out
one row per pipeline: the HR, then each LR (nearest-upscaled to ``H x W``) with :func:`summarise` of its
record below; it can also return the exact records. Layout, geometry and legend: docs/evaluation.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw

from anyres import pictures
from anyres.degrade import get_pipeline
from anyres.degrade.base import Pipeline
from anyres.ops.resize import imresize

__all__ = ["make_gallery", "summarise", "sample_row", "display_tile", "LEGEND", "TEXT_LINES"]

# At most this many summary lines under a tile (summarise never returns more).
TEXT_LINES = 6

LEGEND = (
    "Kernels: iso = isotropic Gaussian sigma (px); an SxS@A = anisotropic sigmas at angle A (degrees); "
    "v VxV@A = BSRGAN covariance eigenvalues (px^2); gi/ga = generalized, pi/pa = plateau Gaussian "
    "(b = shape beta); sinc = cutoff (rad/px); kN = kernel side.",
    "Resize: mode then output height (HxW if not square); aa = antialiased; "
    "'pick sS' = BSRGAN's shifted-kernel nearest downsampling with a Gaussian of width S.",
    "Noise (0..255 scale): col / gray / corr = colour, gray, channel-correlated Gaussian of that sigma; "
    "pois S = Poisson noise of scale S (g = gray). JPEG: qN = quality N; '-' = step not drawn.",
    "bsrgan: first line = the effective shuffled order (H halve, B1 B2 blurs, D1 D2 downsamplings, N noise, "
    "J JPEG, C camera-sensor noise; steps not drawn are left out; the final JPEG always comes last); "
    "'jpeg A/F' = shuffled / final JPEG quality.",
    "realesrgan: '1' / '2' = first / second order (blur, then resize, noise and JPEG); "
    "F = final stage order (R resize, S sinc, J JPEG), its resize mode and JPEG quality.",
)

_MODES = {"bicubic": "bicub", "bilinear": "bilin", "area": "area", "nearest": "near", "lanczos": "lanc"}
_KERNELS = {
    "iso": "iso",
    "aniso": "an",
    "bsrgan_aniso": "v",
    "generalized_iso": "gi",
    "generalized_aniso": "ga",
    "plateau_iso": "pi",
    "plateau_aniso": "pa",
    "sinc": "sinc",
}
_BSRGAN_CODES = {"blur1": "B1", "blur2": "B2", "down1": "D1", "down2": "D2", "noise": "N", "jpeg": "J", "camera": "C"}
_FINAL_CODES = {"resize": "R", "sinc": "S", "jpeg": "J"}


# ---------------------------------------------------------------------------------------------------------
# Record summaries


def _num(v: float, digits: int = 1) -> str:
    """A short number: whole numbers without decimals, others with ``digits`` decimals."""
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.{digits}f}"


def _size(size: Sequence[int]) -> str:
    h, w = int(size[0]), int(size[1])
    return str(h) if h == w else f"{h}x{w}"


def _kernel(step: dict | None) -> str:
    if step is None:
        return "-"
    kind = step.get("kind", "?")
    name = _KERNELS.get(kind, kind)
    if kind == "sinc":
        body = f"{float(step['cutoff']):.2f}"
    elif kind == "bsrgan_aniso":
        v1, v2 = step["var"]
        body = f"{v1:.1f}x{v2:.1f}@{math.degrees(step['theta']) % 180:.0f}"
    elif isinstance(step.get("sigma"), (list, tuple)):
        sx, sy = step["sigma"]
        body = f"{sx:.1f}x{sy:.1f}@{math.degrees(step['theta']) % 180:.0f}"
    elif "sigma" in step:
        body = f"{float(step['sigma']):.2f}"
    else:
        body = ""
    if "beta" in step:
        body += f" b{float(step['beta']):.1f}"
    return f"{name} {body} k{step['size']}".replace("  ", " ")


def _resize(step: dict) -> str:
    mode = _MODES.get(step["mode"], step["mode"])
    aa = " aa" if step.get("antialias") and step["mode"] != "area" else ""  # area always averages
    return f"{mode}{aa} {_size(step['size'])}"


def _noise(step: dict | None) -> str:
    if step is None:
        return "-"
    kind = step["kind"]
    if kind == "poisson":
        return f"pois {float(step['scale']):.1f}" + ("g" if step.get("gray") else "")
    short = {"color": "col", "gray": "gray", "correlated": "corr"}.get(kind, kind)
    return f"{short} {_num(step['level'])}"


def _quality(step: dict | None) -> str:
    return "-" if step is None else str(int(step["quality"]))


def _summarise_classical(r: dict) -> list[str]:
    return [
        f"blur {_kernel(r['blur'])}",
        f"down {_resize(r['resize'])}",
        f"noise {_noise(r['noise'])}",
        f"jpeg {'-' if r['jpeg'] is None else 'q' + _quality(r['jpeg'])}",
    ]


def _summarise_bsrgan(r: dict) -> list[str]:
    drawn = [s for s in r["order"] if not (s in ("jpeg", "camera") and r.get(s) is None)]
    order = ("H " if r.get("halve") is not None else "") + " ".join(_BSRGAN_CODES.get(s, s) for s in drawn)
    down1 = r["down1"]
    if down1.get("kind") == "nearest":
        d1 = f"pick s{float(down1['sigma']):.2f}"
    else:
        d1 = f"{_MODES.get(down1['mode'], down1['mode'])} {_size(down1['size'])}"
    lines = [
        order,
        f"B1 {_kernel(r['blur1'])}",
        f"B2 {_kernel(r['blur2'])}",
        f"D1 {d1} D2 {_MODES.get(r['down2']['mode'], r['down2']['mode'])}",
        f"N {_noise(r['noise'])} jpeg {_quality(r['jpeg'])}/{_quality(r['final_jpeg'])}",
    ]
    if r.get("halve") is not None:
        lines.append(f"H {_resize(r['halve'])}")
    return lines


def _summarise_realesrgan(r: dict) -> list[str]:
    order = [s for s in r["final_order"] if not (s == "sinc" and r.get("final_sinc") is None)]
    final = ">".join(_FINAL_CODES.get(s, s) for s in order)
    sinc = r.get("final_sinc")
    return [
        f"1 {_kernel(r['blur1'])}",
        f"1 {_resize(r['resize1'])} {_noise(r['noise1'])} q{_quality(r['jpeg1'])}",
        f"2 {'no blur' if r['blur2'] is None else _kernel(r['blur2'])}",
        f"2 {_resize(r['resize2'])} {_noise(r['noise2'])}",
        f"F {final} {_MODES.get(r['final_resize']['mode'], r['final_resize']['mode'])} q{_quality(r['final_jpeg'])}",
        "F sinc -" if sinc is None else f"F {_kernel(sinc)}",
    ]


_SUMMARISERS = {"classical": _summarise_classical, "bsrgan": _summarise_bsrgan, "realesrgan": _summarise_realesrgan}


def summarise(record: dict) -> list[str]:
    """A few short lines (at most :data:`TEXT_LINES`) describing one record of any pipeline.

    The layout is chosen by ``record["pipeline"]``; abbreviations are explained in :data:`LEGEND`.
    Raises ``ValueError`` for a record of an unknown pipeline.
    """
    if not isinstance(record, dict) or record.get("pipeline") not in _SUMMARISERS:
        got = record.get("pipeline") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"cannot summarise a record of pipeline {got!r}; known: {', '.join(_SUMMARISERS)}")
    return _SUMMARISERS[record["pipeline"]](record)


# ---------------------------------------------------------------------------------------------------------
# Tiles


def display_tile(lr: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour upscale of an LR image to ``size = (H, W)``, for display."""
    return imresize(lr, size=(int(size[0]), int(size[1])), kernel="nearest", antialias=False)


def _as_pipeline(p: str | Pipeline) -> Pipeline:
    return get_pipeline(p) if isinstance(p, str) else p


def sample_row(
    pipeline: str | Pipeline, hr: torch.Tensor, n: int, scale: float, seed: int
) -> tuple[list[dict], list[torch.Tensor]]:
    """``n`` records drawn from ``torch.Generator().manual_seed(seed)`` for ``hr``, and their LR images."""
    pipe = _as_pipeline(pipeline)
    records = pipe.sample(
        n, torch.Generator().manual_seed(int(seed)), scale=scale, hr_size=[int(hr.shape[-2]), int(hr.shape[-1])]
    )
    return records, [pipe.apply(hr, [record]) for record in records]


# ---------------------------------------------------------------------------------------------------------
# Layout


def make_gallery(
    hr: torch.Tensor,
    pipelines: Sequence[str | Pipeline] = ("classical", "bsrgan", "realesrgan"),
    n: int = 12,
    scale: float = 4.0,
    seed: int = 0,
    *,
    return_records: bool = False,
    text_width: int = 140,
    text_height: int | None = None,
    label_width: int = 96,
    pad: int = 6,
    legend: bool = True,
    font_size: int = 11,
):
    """A grid of degraded versions of one HR crop: one row per pipeline, the HR first, then ``n`` samples.

    Args:
        hr: ``(1, 3, H, W)`` float RGB in [0, 1].
        pipelines: pipeline names (``get_pipeline``) or built pipelines (e.g. with config overrides).
        n: samples per pipeline; each row's records come from ``torch.Generator().manual_seed(seed)``.
        scale: the SR factor passed to ``sample``.
        return_records: also return ``{row name: records}`` (row names are the pipeline names, with
            ``#2``, ``#3``... appended when a name repeats).
        text_width: minimum column width, so that the summaries fit under small crops.
        text_height: height of the text band under each tile; default :data:`TEXT_LINES` lines of the font.
        label_width, pad: the label column's width and the gap around cells (docs/evaluation.md).
        legend: append the abbreviations (:data:`LEGEND`) below the grid.
        font_size: size of Pillow's built-in font for the summaries (labels are 3 px larger).
    Returns:
        an RGB ``PIL.Image.Image``, or ``(image, records)`` with ``return_records=True``.
    """
    if not isinstance(hr, torch.Tensor) or hr.dim() != 4 or hr.shape[0] != 1 or hr.shape[1] != 3:
        shape = tuple(hr.shape) if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise ValueError(f"hr must be one RGB crop of shape (1, 3, H, W), got {shape}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not pipelines:
        raise ValueError("pipelines must name at least one pipeline")
    hr = hr.detach().to("cpu", torch.float32)
    H, W = int(hr.shape[-2]), int(hr.shape[-1])

    font, label_font = pictures.font(font_size), pictures.font(font_size + 3)
    line_h = pictures.line_height(font) - 1
    text_h = text_height if text_height is not None else TEXT_LINES * line_h + 4
    col_w, row_h = max(W, text_width), H + text_h
    width = pad + label_width + (n + 1) * (col_w + pad)
    grid_h = pad + len(pipelines) * (row_h + pad)

    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    legend_lines = []
    if legend:
        for paragraph in LEGEND:
            legend_lines += pictures.wrap_words(scratch, paragraph, font, width - 2 * pad)
    legend_h = len(legend_lines) * line_h + pad if legend_lines else 0

    canvas = Image.new("RGB", (width, grid_h + legend_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    hr_tile = pictures.to_uint8(hr)
    all_records: dict[str, list[dict]] = {}

    for r, spec in enumerate(pipelines):
        pipe = _as_pipeline(spec)
        records, lrs = sample_row(pipe, hr, n, scale, seed)
        key, k = pipe.name, 2
        while key in all_records:
            key, k = f"{pipe.name}#{k}", k + 1
        all_records[key] = records

        y = pad + r * (row_h + pad)
        if r:  # a thin rule between rows, in the middle of the gap
            draw.line([(pad, y - (pad + 1) // 2), (width - pad - 1, y - (pad + 1) // 2)], fill=(200, 200, 200))
        label_lines = [(key, label_font), (f"x{_num(scale, 2)} seed {seed}", font)]
        ty = y
        for text, f in label_lines:
            pictures.put_words(draw, (pad, ty), pictures.fit_words(draw, text, f, label_width - pad), f, (0, 0, 0))
            ty += pictures.line_height(f) - 1 + 2

        lr_h, lr_w = records[0]["lr_size"]
        tiles = [(hr_tile, [f"HR {H}x{W}", f"LR {lr_h}x{lr_w}", "LR tiles: nearest", f"upscaled to {H}x{W}"])]
        tiles += [(pictures.to_uint8(display_tile(lr, (H, W))), summarise(record)) for lr, record in zip(lrs, records)]
        for c, (tile, lines) in enumerate(tiles):
            x_col = pad + label_width + c * (col_w + pad)
            canvas.paste(Image.fromarray(tile, "RGB"), (x_col + (col_w - W) // 2, y))
            for i, line in enumerate(lines[:TEXT_LINES]):
                ty = y + H + 1 + i * line_h
                if ty + line_h > y + row_h:
                    break
                pictures.put_words(draw, (x_col, ty), pictures.fit_words(draw, line, font, col_w), font, (0, 0, 0))

    for i, line in enumerate(legend_lines):
        pictures.put_words(draw, (pad, grid_h + i * line_h), line, font, (60, 60, 60))

    return (canvas, all_records) if return_records else canvas
