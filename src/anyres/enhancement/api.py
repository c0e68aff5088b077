"""Same-size enhancement of an image path or tensor: load an enhancer, run it at full or working size."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from anyres import hub
from anyres.enhancement.blocks import Blocking, enhance_image
from anyres.errors import AnyresError
from anyres.io import as_batch
from anyres.pictures import gain_picture
from anyres.registry import ENHANCERS, RESAMPLERS, load, weights_folders

__all__ = [
    "enhance",
    "load_enhancer",
    "DEFAULT_ENHANCER",
    "enhance_rgb",
    "explain_rgb",
    "FILTER_PANELS",
    "working_size",
    "load_resampler",
    "downsample_for",
    "upsample_from",
    "Blocking",
]


# ---------------------------------------------------------------------------------------------------------
# Enhancement (same-size restoration: retouching, low light)


def _load_folder_enhancer(
    folder: Path, device: str | None = None, options: Any = None, name: str | None = None
) -> torch.nn.Module:
    net, _config = hub.load_network(folder, device=device)
    return net


# What `anyres enhance` and :func:`enhance` use without a model.
DEFAULT_ENHANCER = "deeplpf-retouch"
ENHANCERS.from_folder = _load_folder_enhancer
ENHANCERS.instance = (torch.nn.Module,)
# Read at every lookup, so that a folder dropped into the weights folder (or a test's) is found.
ENHANCERS.discover(lambda: weights_folders(hub.WEIGHTS_DIR, ENHANCERS))


def load_enhancer(model: Any = DEFAULT_ENHANCER, device: str | None = None) -> torch.nn.Module:
    """An enhancement network in eval mode: ``net(x) -> out``, both ``(B, 3, H, W)`` RGB in [0, 1].

    ``model``: a weights folder (``config.json`` + ``model.safetensors`` of an enhancer architecture), the
    name of one shipped in ``anyres/weights/`` (``anyres models``), or an ``nn.Module`` (used as it is).
    Unknown names, missing weights and folders of another kind raise
    :class:`~anyres.errors.RegistryError` with a one-line message.
    """
    return load(model, device, kind=ENHANCERS)


# ---------------------------------------------------------------------------------------------------------
# The large-image path: resamplers


@RESAMPLERS.register("bicubic", "MATLAB bicubic down (antialiased) and bicubic up; no weights")
def _bicubic_resampler(model: Any = None, device: str | None = None) -> None:
    if model is not None:
        raise AnyresError("a resampler model only applies to --resampler lmar")
    return None


@RESAMPLERS.register(
    "lmar", "LMAR (Yu et al., CVPR 2024): learned model-aware down, Lanczos-3 up; needs its weights folder"
)
def _lmar_resampler(model: Any = None, device: str | None = None) -> torch.nn.Module:
    from anyres.errors import RegistryError
    from anyres.hub import CONFIG, load_network

    if isinstance(model, torch.nn.Module):
        return model.eval()
    if model is None:
        raise AnyresError(
            "--resampler lmar needs its weights: --resampler-model FOLDER (an LMAR trained for "
            "this enhancer; none is shipped yet)"
        )
    path = Path(model).expanduser()
    if not (path / CONFIG).is_file():
        raise RegistryError(f"{model}: not a model folder (expected config.json and model.safetensors inside)")
    net, config = load_network(path, device=device)
    if config.get("arch") != "lmar":
        raise RegistryError(f"{model}: a {config.get('arch')!r} model is not an LMAR resampler")
    return net.eval()


MIN_WORKING = 8  # the large-image path never shrinks an image below this many pixels per side


def working_size(
    height: int, width: int, *, long_side: int | None = None, scale: float | None = None
) -> tuple[int, int]:
    """The size the enhancer runs at on the large-image path: the long side brought to ``long_side`` pixels
    (never enlarged), or both sides divided by ``scale >= 1``; at least 1 pixel, aspect kept, halves up."""
    if (long_side is None) == (scale is None):
        raise AnyresError("give exactly one of a working size (long side) and a working scale")
    if long_side is not None:
        if isinstance(long_side, bool) or not isinstance(long_side, int) or long_side < 1:
            raise AnyresError(f"working size must be a positive number of pixels, got {long_side!r}")
        factor = max(height, width) / long_side
        if factor <= 1:
            return height, width
    else:
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 1):
            raise AnyresError(f"working scale must be a number >= 1, got {scale!r}")
        factor = float(scale)
    out = max(1, math.floor(height / factor + 0.5)), max(1, math.floor(width / factor + 0.5))
    if min(out) < MIN_WORKING <= min(height, width):  # an image already that small is left to its own size
        raise AnyresError(
            f"a working {'scale of ' + format(factor, 'g') if scale is not None else 'size of ' + str(long_side)} "
            f"leaves the {width}x{height} image {out[1]}x{out[0]} pixels; the enhancer needs at least "
            f"{MIN_WORKING} pixels per side"
        )
    return out


def load_resampler(resampler: str = "bicubic", model: Any = None, device: str | None = None) -> Any:
    """``None`` for ``bicubic``; for ``lmar`` the LMAR network of a weights folder (eval mode)."""
    return RESAMPLERS.build(resampler, model=model, device=device)


def enhance_rgb(
    net: torch.nn.Module,
    rgb: torch.Tensor,
    *,
    working: tuple[int, int] | None = None,
    resampler: Any = None,
    blocking: Blocking | None = None,
) -> torch.Tensor:
    """Run an enhancement network on ``(B, 3, H, W)`` RGB in [0, 1], without gradients.

    ``working=None`` (or the image's own size): at full resolution. Otherwise the large-image path:
    downsample to ``working = (h, w)``, enhance there, upsample back to ``(H, W)``. ``resampler=None`` is
    the plain path: MATLAB bicubic (antialiased) down and bicubic up. An LMAR network (:func:`load_resampler`)
    makes the downsampled input model-aware and the result comes back with Lanczos-3, as in LMAR.

    A single image above ``blocking.one_pass_pixels`` (1 MP by default, :class:`~anyres.enhancement.blocks.Blocking`)
    is computed a block at a time (:func:`~anyres.enhancement.blocks.enhance_image`), equal to the one-pass
    result to float rounding: DeepLPF and the U-Net enhancer in exact tiles at full size, the resizing in row
    bands; memory is then the input, the output and one tile (``anyres enhance`` also keeps the file's 8-bit
    samples rather than float copies). Returns ``(B, 3, H, W)`` in [0, 1] on ``rgb``'s device.
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) RGB tensor, got shape {tuple(rgb.shape)}")
    size = (rgb.shape[-2], rgb.shape[-1])
    blocking = blocking or Blocking()
    if rgb.shape[0] == 1 and blocking.splits(*size):
        return enhance_image(net, rgb, working=working, resampler=resampler, blocking=blocking)
    with torch.inference_mode():
        small = downsample_for(rgb.float(), working, resampler)
        out = net(small).clamp(0.0, 1.0)
        return upsample_from(out, size, resampler)


def downsample_for(x: torch.Tensor, working: tuple[int, int] | None, resampler: Any = None) -> torch.Tensor:
    """The enhancer's input on the large-image path (see :func:`enhance_rgb`); ``x`` itself at full size."""
    from anyres.ops.resize import imresize

    if working is None or tuple(working) == tuple(x.shape[-2:]):
        return x
    with torch.inference_mode():
        small = imresize(x, size=tuple(working)) if resampler is None else resampler(x, tuple(working))
    return small.clamp(0.0, 1.0)


def upsample_from(y: torch.Tensor, size: tuple[int, int], resampler: Any = None) -> torch.Tensor:
    """Back to ``size`` after :func:`downsample_for`: bicubic for the plain path, Lanczos-3 after LMAR."""
    from anyres.ops.resize import imresize

    if tuple(y.shape[-2:]) == tuple(size):
        return y
    with torch.inference_mode():
        return imresize(y, size=tuple(size), kernel="cubic" if resampler is None else "lanczos3").clamp(0.0, 1.0)


# Left-to-right order of the panels of the filter picture made by :func:`explain_rgb`.
FILTER_PANELS = ("graduated", "elliptical", "fused")


def explain_rgb(net: torch.nn.Module, rgb: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any], torch.Tensor]:
    """Enhance one ``(1, 3, H, W)`` RGB image in [0, 1] with a DeepLPF network and expose its filters.

    Returns ``(output, filters, picture)``:

    * ``output``: ``(1, 3, H, W)`` in [0, 1], equal to ``net(rgb)`` in eval mode;
    * ``filters``: plain JSON, ``{"fusion", "cubic_terms", "parameters", "picture"}`` where ``parameters`` is
      the image's entry of ``net.explain(rgb)["parameters"]`` (graduated and elliptical filters in normalised
      coordinates, cubic coefficients; see :meth:`anyres.enhancement.deeplpf.DeepLPF.explain`) and ``picture``
      describes the encoding below;
    * ``picture``: ``(1, 3, H, 3 W)`` in [0, 1], the panels :data:`FILTER_PANELS` side by side: the graduated
      map ``s_g``, the elliptical map ``s_e`` and the fused scale map ``S`` that multiplies the image. Each
      panel shows the per-channel gain divided by 2, so black is gain 0, mid-grey (128) gain 1 and white
      gain 2; a colour means the channels get different gains. Under ``"sum"`` fusion ``S`` is neutral at 2
      (white), under ``"deviation"`` at 1 (grey).

    Networks without ``explain`` (the U-Net baseline) raise :class:`~anyres.errors.AnyresError`.
    """
    if not callable(getattr(net, "explain", None)):
        raise AnyresError(
            f"--explain needs a DeepLPF model (its filters are the explanation); this model is "
            f"{type(net).__name__}, which predicts no filters"
        )
    if rgb.dim() != 4 or rgb.shape[0] != 1 or rgb.shape[1] != 3:
        raise ValueError(f"expected a (1, 3, H, W) RGB tensor, got shape {tuple(rgb.shape)}")
    explain: Any = net.explain  # DeepLPF.explain (checked above)
    with torch.inference_mode():
        info = explain(rgb.float())
    picture = gain_picture([info["maps"][name] for name in FILTER_PANELS])
    filters = {
        "fusion": info["fusion"],
        "cubic_terms": info["cubic_terms"],
        "parameters": info["parameters"][0],
        "picture": {
            "panels": list(FILTER_PANELS),
            "encoding": "gain = 2 * value / 255 per channel (8-bit PNG); panels of the image's width, left to right",
        },
    }
    return info["images"]["output"].clamp(0.0, 1.0), filters, picture.clamp(0.0, 1.0)


def enhance(image: Any, model: Any = DEFAULT_ENHANCER, *, device: str | None = None) -> torch.Tensor:
    """Enhance an image file path or a ``(1, C, H, W)`` / ``(C, H, W)`` tensor in [0, 1], C = 1 or 3.

    ``model``: see :func:`load_enhancer`. Returns ``(1, C, H, W)`` in [0, 1] with the input's channel count: a
    gray image is repeated to RGB, enhanced, and turned back to gray (BT.601 luma). Alpha and file metadata
    are handled by ``anyres enhance``; use :mod:`anyres.io` for files.
    """
    from anyres.ops.color import from_rgb_gray, to_rgb

    image = as_batch(image)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
        raise ValueError(f"image must be (1, C, H, W) or (C, H, W) with C = 1 or 3, got shape {tuple(image.shape)}")
    net = load_enhancer(model, device=device)
    dev = next(net.parameters()).device
    out = enhance_rgb(net, to_rgb(image.float()).to(dev))
    return from_rgb_gray(out) if image.shape[1] == 1 else out
