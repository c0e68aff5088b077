"""Foreign ``.pth`` checkpoints -> anyres weights folders (registered in :data:`~anyres.registry.CHECKPOINTS`).

A ``.pth`` file is read with ``torch.load(weights_only=True)`` (a file that needs arbitrary unpickling is
refused), its layout is detected, and its tensors are renamed onto the matching anyres network, values
unchanged. Supported layouts: docs/foreign-checkpoints.md.
"""

from __future__ import annotations

import atexit
import hashlib
import pickle
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from anyres.errors import RegistryError
from anyres.hub import CARD, save_network
from anyres.io import write_bytes_atomic
from anyres.registry import CHECKPOINTS, NETWORKS

__all__ = ["convert_checkpoint", "read_checkpoint", "LAYOUTS"]

Renames = list[tuple[str, str]]  # (regex on the foreign key, replacement giving the anyres key)


@dataclass(frozen=True)
class Converted:
    """A foreign checkpoint mapped onto anyres: the network's config, its state dict, and what it came from."""

    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    summary: str  # one line for the card: the architecture and its sizes


@dataclass(frozen=True)
class Layout:
    name: str  # as the docs and messages call it
    shape: str  # the top-level structure, for the card and the "unknown layout" message
    matches: Callable[[Any], bool]
    convert: Callable[[Any], Converted]


def _rename(state: Mapping[str, torch.Tensor], renames: Renames, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        if key.startswith(drop):
            continue
        for pattern, replacement in renames:
            new, n = re.subn(f"^{pattern}$", replacement, key)
            if n:
                out[new] = value
                break
        else:
            raise RegistryError(f"unexpected tensor {key!r} in the checkpoint's state dict")
    return out


def _count(state: Mapping[str, Any], pattern: str) -> int:
    return sum(1 for key in state if re.fullmatch(pattern, key))


def _shape(state: Mapping[str, Any], key: str) -> tuple[int, ...]:
    if key not in state:
        raise RegistryError(f"the checkpoint's state dict has no {key!r}")
    return tuple(state[key].shape)


# -- yinboc/liif: {'model': {'name': 'liif', 'args': {...}, 'sd': state_dict}, 'optimizer', 'epoch'} ----------
def _liif_encoder(spec: Mapping[str, Any], sd: Mapping[str, Any]) -> tuple[dict[str, Any], Renames, str]:
    """anyres encoder spec, key renames and a summary for the original ``encoder_spec``; sizes from shapes."""
    name, args = spec.get("name"), dict(spec.get("args") or {})
    if not args.get("no_upsampling", False):
        raise RegistryError(f"LIIF encoder {name!r} must be built with no_upsampling=True (it has an upsampler)")
    if name == "edsr-baseline":
        n_resblocks = _count(sd, r"encoder\.body\.\d+\.body\.0\.weight")
        n_feats = _shape(sd, "encoder.head.0.weight")[0]
        res_scale = float(args.get("res_scale", 1.0))
        renames = [
            (r"encoder\.head\.0\.(weight|bias)", r"encoder.head.\1"),
            (r"encoder\.body\.(\d+)\.body\.0\.(weight|bias)", r"encoder.body.\1.conv1.\2"),
            (r"encoder\.body\.(\d+)\.body\.2\.(weight|bias)", r"encoder.body.\1.conv2.\2"),
            (r"encoder\.body\.(\d+)\.(weight|bias)", r"encoder.body.\1.\2"),
        ]
        enc = {"n_resblocks": n_resblocks, "n_feats": n_feats, "res_scale": res_scale}
        return {"name": "edsr-baseline", "args": enc}, renames, f"EDSR-baseline ({n_resblocks} x {n_feats})"
    if name == "rdn":
        g0 = _shape(sd, "encoder.SFENet1.weight")[0]
        n_blocks = _count(sd, r"encoder\.RDBs\.\d+\.LFF\.weight")
        n_layers = _count(sd, r"encoder\.RDBs\.0\.convs\.\d+\.conv\.0\.weight")
        growth = _shape(sd, "encoder.RDBs.0.convs.0.conv.0.weight")[0]
        renames = [
            (r"encoder\.SFENet([12])\.(weight|bias)", r"encoder.sfe\1.\2"),
            (r"encoder\.RDBs\.(\d+)\.convs\.(\d+)\.conv\.0\.(weight|bias)", r"encoder.blocks.\1.layers.\2.conv.\3"),
            (r"encoder\.RDBs\.(\d+)\.LFF\.(weight|bias)", r"encoder.blocks.\1.fuse.\2"),
            (r"encoder\.GFF\.([01])\.(weight|bias)", r"encoder.gff.\1.\2"),
        ]
        enc = {"g0": g0, "n_blocks": n_blocks, "n_layers": n_layers, "growth": growth}
        return (
            {"name": "rdn", "args": enc},
            renames,
            f"RDN (G0 {g0}, {n_blocks} blocks x {n_layers} layers, G {growth})",
        )
    raise RegistryError(f"LIIF encoder {name!r} is not supported; supported: edsr-baseline, rdn")


def _is_liif(ckpt: Any) -> bool:
    model = ckpt.get("model") if isinstance(ckpt, Mapping) else None
    return isinstance(model, Mapping) and {"name", "args", "sd"} <= set(model)


def _convert_liif(ckpt: Any) -> Converted:
    model = ckpt["model"]
    if model["name"] != "liif":
        raise RegistryError(f"yinboc/liif model {model['name']!r} is not supported; supported: liif")
    args, sd = model["args"], model["sd"]
    imnet = args.get("imnet_spec") or {}
    hidden = list((imnet.get("args") or {}).get("hidden_list", []))
    if imnet.get("name") != "mlp" or (imnet.get("args") or {}).get("out_dim", 3) != 3 or not hidden:
        raise RegistryError(f"LIIF imnet {imnet!r} is not supported; supported: an MLP with out_dim 3")
    encoder, renames, summary = _liif_encoder(args.get("encoder_spec") or {}, sd)
    n = len(hidden)
    renames += [(rf"imnet\.layers\.{2 * i}\.(weight|bias)", rf"imnet.hidden.{i}.\1") for i in range(n)]
    renames.append((rf"imnet\.layers\.{2 * n}\.(weight|bias)", r"imnet.out.\1"))
    flags = {k: bool(args.get(k, True)) for k in ("local_ensemble", "feat_unfold", "cell_decode")}
    config = {"encoder": encoder, "hidden": hidden, **flags}
    # MeanShift convs EDSR builds but LIIF's encoder never applies (no_upsampling skips them).
    state = _rename(sd, renames, drop=("encoder.sub_mean.", "encoder.add_mean."))
    return Converted(config, state, f"LIIF, {summary} encoder, MLP {hidden}")


LAYOUTS = (
    Layout("yinboc/liif", "{'model': {'name': 'liif', 'args', 'sd'}, 'optimizer', 'epoch'}", _is_liif, _convert_liif),
)


def read_checkpoint(path: str | Path) -> tuple[Layout, Converted]:
    """Load ``path`` without arbitrary unpickling, detect its layout and map it; one-line errors."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "GLOBAL" in str(err):
            raise RegistryError(
                f"{path}: the file needs arbitrary unpickling (it holds Python objects besides tensors); "
                "refused, as unpickling can run code"
            ) from None
        raise RegistryError(f"{path}: not a readable PyTorch checkpoint") from None
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise RegistryError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    for layout in LAYOUTS:
        if layout.matches(ckpt):
            try:
                return layout, layout.convert(ckpt)
            except RegistryError as err:
                raise RegistryError(f"{path} ({layout.name} layout): {err}") from None
    known = "; ".join(f"{layout.name} {layout.shape}" for layout in LAYOUTS)
    raise RegistryError(f"{path}: unknown checkpoint layout; known: {known}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_checkpoint(path: str | Path, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write the checkpoint at ``path`` as an anyres weights folder (float32, values unchanged) with a card
    naming the source file and its format. A non-empty ``folder`` is refused unless ``overwrite``."""
    path, folder = Path(path), Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not overwrite:
        raise RegistryError(f"{folder} exists and is not empty; pass --overwrite to replace it")
    layout, converted = read_checkpoint(path)
    arch = "liif"
    net = NETWORKS.build(arch, **converted.config)
    try:
        net.load_state_dict(converted.state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise RegistryError(f"{path}: the tensors do not match {converted.summary} ({first})") from None
    sha = _sha256(path)
    description = f"{converted.summary}; converted from {path.name} ({layout.name} .pth)"
    source = {"file": path.name, "format": f"{layout.name} .pth", "sha256": sha}
    save_network(net, folder, extra={"name": folder.name, "description": description, "source": source})
    card = (
        f"# {folder.name}\n\n{converted.summary}.\n\n"
        f"Converted by anyres from `{path.name}` (sha256 `{sha}`), a {layout.name} .pth checkpoint "
        f"(`{layout.shape}`). Weights float32, values unchanged; not trained or measured by anyres.\n"
    )
    write_bytes_atomic(folder / CARD, card.encode())
    return folder


def _scratch_folder(path: Path) -> Path:
    """A fresh folder for a checkpoint loaded by path, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="anyres-converted-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder / path.stem


@CHECKPOINTS.register("pth", "PyTorch .pth checkpoints: yinboc/liif (EDSR-baseline or RDN encoder)", role=".pth")
def load_pth(path: Path) -> Path:
    return convert_checkpoint(path, _scratch_folder(Path(path)))
