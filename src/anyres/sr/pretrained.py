"""The upscalers behind ``--model``: the interpolation baselines and the weights folders shipped in
``anyres/weights/<name>/`` (discovered by their ``config.json`` ``"arch"``), loaded with :class:`RenderOptions`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyres.sr  # noqa: F401  (networks and baselines first)
from anyres import hub
from anyres.registry import UPSCALERS, load, weights_folders
from anyres.sr.fixed import FixedScaleUpscaler
from anyres.sr.render import LIIFUpscaler, RenderOptions
from anyres.sr.upscaler import Upscaler

__all__ = ["load_upscaler", "load_folder_upscaler", "RenderOptions"]


def load_folder_upscaler(
    folder: str | Path, device: str | None = None, options: RenderOptions | None = None, name: str | None = None
) -> Upscaler:
    """A weights folder as an upscaler with ``options``: a :class:`~anyres.sr.render.LIIFUpscaler`, or a
    :class:`~anyres.sr.fixed.FixedScaleUpscaler` for a fixed-scale network (RRDBNet)."""
    net, config = hub.load_network(folder, device=device)
    cls = FixedScaleUpscaler if getattr(net, "fixed_scale", False) else LIIFUpscaler
    return cls(
        net,
        name=name or config.get("name", Path(folder).name),
        description=config.get("description", ""),
        options=options,
    )


UPSCALERS.from_folder = load_folder_upscaler
UPSCALERS.options = RenderOptions
UPSCALERS.instance = (Upscaler,)
# Read at every lookup, so that a folder dropped into the weights folder (or a test's) is found.
UPSCALERS.discover(lambda: weights_folders(hub.WEIGHTS_DIR, UPSCALERS))


def load_upscaler(
    model: Any = "bicubic", device: str | None = None, options: RenderOptions | None = None, **fields: Any
) -> Upscaler:
    """An :class:`~anyres.sr.upscaler.Upscaler` from a registered name, a weights folder or an instance.

    ``options`` or its fields as keywords (``mode``, ``tile``, ``chunk``, ``seed``, ``progress``); an
    unknown keyword raises :class:`~anyres.errors.ConfigError`. Baselines ignore the options.
    """
    if fields:
        options = RenderOptions.from_kwargs(options, **fields)
    return load(model, device, kind=UPSCALERS, options=options)
