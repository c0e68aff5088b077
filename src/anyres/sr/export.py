"""Export an upscaler's network as one file that runs without anyres: ONNX or TorchScript.

An arbitrary-scale network (LIIF, DIINN) becomes ``(lr, size) -> sr``: ``lr`` a ``(1, 3, h, w)`` float32
image in [0, 1], ``size`` an int64 ``(2,)`` tensor holding the output height and width, ``sr`` the
``(1, 3, H, W)`` output of ``--mode exact`` in one pass (not clamped), so one file serves every scale. A
fixed-scale network (RRDBNet) becomes ``lr -> sr`` at its native scale. Both take any ``h`` and ``w``.
See docs/export.md.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from anyres.errors import ConfigError
from anyres.ops.coords import centres

__all__ = ["export", "export_module", "FORMATS"]

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
_EXAMPLE_LR = (20, 24)  # the traced example; every size is dynamic in the file
_EXAMPLE_SIZE = (50, 61)


DEFAULT_BANDS = 16  # output row bands of an arbitrary-scale graph: its peak memory is about 1/bands of one pass


class _ArbitraryScale(nn.Module):
    def __init__(self, net: nn.Module, bands: int = DEFAULT_BANDS):
        super().__init__()
        self.net = net
        self.bands = bands

    def forward(self, lr: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            out_h, out_w = size[0], size[1]  # traced as graph values
        else:  # torch.export (ONNX): unbacked sizes, declared positive
            out_h, out_w = size[0].item(), size[1].item()
            torch._check(out_h >= 1)
            torch._check(out_w >= 1)
        proj = self.net.project(self.net.encode(lr)).contiguous()
        cell = 2.0 / size.to(torch.float32)
        rows, cols = centres(out_h), centres(out_w)
        # The decoder runs band by band (a fixed number of row bands, each a sequence of nodes in the graph),
        # so a runtime frees each band's activations before the next: the same values, ~1/bands the memory.
        parts = []
        for k in range(self.bands):
            a, b = (k * out_h) // self.bands, ((k + 1) * out_h) // self.bands
            parts.append(self.net.query_grid(proj, rows[a:b], cols, cell, mode="exact")[0])
        return torch.cat(parts).t().reshape(1, 3, out_h, out_w)


class _FixedScale(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        # anyres.sr.fixed.native's rule: reflect-pad to a multiple of the unshuffle factor, crop the output.
        u, s = self.net.config.unshuffle, self.net.scale
        h, w = lr.shape[-2], lr.shape[-1]
        x = F.pad(lr, (0, (-w) % u, 0, (-h) % u), mode="reflect") if u > 1 else lr
        return self.net(x)[..., : h * s, : w * s]


def export_module(net: nn.Module, bands: int = DEFAULT_BANDS) -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str]]:
    """The module to export for ``net`` (``bands``: output row bands of an arbitrary-scale graph), an example
    input and the input names."""
    net = net.eval().to(memory_format=torch.contiguous_format)
    if hasattr(net, "lr_prior"):
        raise ConfigError(
            f"{type(net).__name__} draws a random prior at render time; only deterministic networks export "
            "(liif, diinn, rrdbnet)"
        )
    lr = torch.rand(1, 3, *_EXAMPLE_LR)
    if getattr(net, "fixed_scale", False):
        return _FixedScale(net), (lr,), ["lr"]
    if not hasattr(net, "query_grid"):
        raise ConfigError(f"{type(net).__name__} is not an upscaler network")
    return _ArbitraryScale(net, bands), (lr, torch.tensor(_EXAMPLE_SIZE)), ["lr", "size"]


def _write(module: nn.Module, example: tuple[torch.Tensor, ...], names: list[str], fmt: str, path: Path) -> None:
    if fmt == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"ONNX export needs the {' and '.join(missing)} package(s): pip install 'anyres[export]'")
    dynamic = ({2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC},) + (None,) * (len(example) - 1)
    with warnings.catch_warnings(), open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
        if fmt == "onnx":
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=True,
                input_names=names,
                output_names=["sr"],
                dynamic_shapes=dynamic,
                external_data=False,
                optimize=True,
            )
        else:  # traced: the sizes stay graph values (tests/sr/test_export.py runs other sizes)
            torch.jit.save(torch.jit.trace(module, example, check_trace=False), str(path))


@torch.no_grad()
def export(model: Any, output: str | Path, fmt: str = "onnx", *, bands: int = DEFAULT_BANDS) -> Path:
    """Write ``model`` (an upscaler from :func:`anyres.load`, or its network) to ``output`` in ``fmt``
    (:data:`FORMATS`). ``bands``: output row bands of an arbitrary-scale graph (more: less memory when it runs,
    a longer export). The file appears only when complete."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(bands, bool) or not isinstance(bands, int) or not 1 <= bands <= 256:
        raise ConfigError(f"bands must be an integer from 1 to 256, got {bands!r}")
    net = getattr(model, "net", model)
    module, example, names = export_module(net, bands)
    output = Path(output)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    try:
        _write(module, example, names, fmt, Path(tmp))
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output
