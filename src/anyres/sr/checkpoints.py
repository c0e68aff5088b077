"""Foreign ``.pth`` / ``.ckpt`` checkpoints -> anyres weights folders (registered in :data:`~anyres.registry.CHECKPOINTS`).

A file is read with ``torch.load(weights_only=True)`` (a file that needs arbitrary unpickling is
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
from anyres.hub import save_network, write_card
from anyres.registry import CHECKPOINTS, NETWORKS

__all__ = ["convert_checkpoint", "read_checkpoint", "LAYOUTS", "file_sha256", "scratch_folder", "check_output_folder"]

Renames = list[tuple[str, str]]  # (regex on the foreign key, replacement giving the anyres key)


@dataclass(frozen=True)
class Converted:
    """A foreign checkpoint mapped onto anyres: the network's config, its state dict, and what it came from."""

    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    summary: str  # one line for the card: the architecture and its sizes
    arch: str = "liif"  # the anyres network it maps onto


@dataclass(frozen=True)
class Layout:
    name: str  # as the docs and messages call it
    shape: str  # the top-level structure, for the card and the "unknown layout" message
    matches: Callable[[Any], bool]
    convert: Callable[[Any], Converted]
    suffix: str = ".pth"  # the file type the project saves, for the card


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
    if name == "rdn":
        return _rdn_encoder(sd)
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
    raise RegistryError(f"LIIF encoder {name!r} is not supported; supported: edsr-baseline, rdn")


def _rdn_encoder(sd: Mapping[str, Any]) -> tuple[dict[str, Any], Renames, str]:
    """The RDN encoder (the LIIF and DIINN repositories share its key names): G0, blocks, layers and growth
    from the tensor shapes."""
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
    summary = f"RDN (G0 {g0}, {n_blocks} blocks x {n_layers} layers, G {growth})"
    return {"name": "rdn", "args": enc}, renames, summary


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


# -- robotic-vision-lab/Dual-Interactive-Implicit-Neural-Network: a PyTorch Lightning SRLitModule checkpoint ---
# {'state_dict': {'net.encoder.*', 'net.decoder.*', 'sub', 'div'}, 'hyper_parameters': {'arch', 'mode', 'init_q'}}
def _is_diinn(ckpt: Any) -> bool:
    sd = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
    return isinstance(sd, Mapping) and any(isinstance(k, str) and k.startswith("net.decoder.") for k in sd)


def _convert_diinn(ckpt: Any) -> Converted:
    hp = ckpt.get("hyper_parameters")
    hp = hp if isinstance(hp, Mapping) else {}
    arch, mode, init_q = hp.get("arch"), hp.get("mode"), hp.get("init_q")
    if arch != "diinn" or mode != 3 or init_q is not False:
        # Modes 1, 2 and 4 and init_q=True are the paper's ablations; mode 2 has mode 3's tensor shapes, so the
        # hyper-parameters, not the shapes, must say which it is.
        raise RegistryError(
            f"DIINN arch={arch!r} mode={mode!r} init_q={init_q!r} is not supported; supported: arch='diinn', "
            "mode=3, init_q=False (the final model (f); the ablation modes 1, 2, 4 and init_q=True are not)"
        )
    sd = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k not in ("sub", "div")}
    for name in ("sub", "div"):  # the input normalisation (x - sub) / div; anyres's DIINN uses 0.5 / 0.5
        value = ckpt["state_dict"].get(name)
        if value is not None and not torch.allclose(value.float(), torch.tensor(0.5)):
            raise RegistryError(f"DIINN normalisation buffer {name!r} is not 0.5; supported: sub = div = 0.5")
    if "encoder.SFENet1.weight" not in sd:
        raise RegistryError("DIINN encoder is not supported (no net.encoder.SFENet1); supported: rdn")
    encoder, renames, summary = _rdn_encoder(sd)
    hidden = [_shape(sd, f"decoder.K.{i}.0.weight")[0] for i in range(_count(sd, r"decoder\.K\.\d+\.0\.weight"))]
    feat = 9 * encoder["args"]["g0"]
    if not hidden or _shape(sd, "decoder.K.0.0.weight")[1] != feat or _shape(sd, "decoder.Q.0.0.weight")[1] != 3:
        raise RegistryError(f"DIINN decoder inputs are not the 3x3-unfolded feature ({feat}) and 3 coordinates")
    if _shape(sd, "decoder.last_layer.weight")[2:] != (1, 1):
        raise RegistryError("DIINN last layer is not a 1x1 conv (mode 4?); supported: mode 3")
    # 1x1 convs over the dense HR grid are linear layers per query; K.i takes [s_{i-1}; z] as anyres does.
    renames += [
        (r"decoder\.K\.(\d+)\.0\.(weight|bias)", r"modulation.\1.\2"),
        (r"decoder\.Q\.(\d+)\.0\.(weight|bias)", r"synthesis.\1.\2"),
        (r"decoder\.last_layer\.(weight|bias)", r"out.\1"),
    ]
    state = _rename(sd, renames)
    state = {
        k: v.flatten(1) if k.startswith(("modulation.", "synthesis.", "out.")) and v.dim() == 4 else v
        for k, v in state.items()
    }
    config = {"encoder": encoder, "hidden": hidden, "feat_unfold": True, "scale_input": "inv_scale_sq"}
    return Converted(config, state, f"DIINN mode 3, {summary} encoder, widths {hidden}", arch="diinn")


# -- XPixelGroup/BasicSR RRDBNet (ESRGAN, Real-ESRGAN): {'params_ema': sd} or {'params': sd} or a bare sd ------
# xinntao/ESRGAN's own release names the same tensors RRDB_trunk.N.RDBk.convj, trunk_conv, upconv1/2, HRconv.
_RRDB_RENAMES: Renames = [
    (r"conv_first\.(weight|bias)", r"head.\1"),
    (r"(?:body|RRDB_trunk)\.(\d+)\.(?:rdb|RDB)([123])\.conv([1-4])\.(weight|bias)", r"blocks.\1.dense.\2.convs.\3.\4"),
    (r"(?:body|RRDB_trunk)\.(\d+)\.(?:rdb|RDB)([123])\.conv5\.(weight|bias)", r"blocks.\1.dense.\2.fuse.\3"),
    (r"(?:conv_body|trunk_conv)\.(weight|bias)", r"body_out.\1"),
    (r"(?:conv_up1|upconv1)\.(weight|bias)", r"up1.\1"),
    (r"(?:conv_up2|upconv2)\.(weight|bias)", r"up2.\1"),
    (r"(?:conv_hr|HRconv)\.(weight|bias)", r"hr.\1"),
    (r"conv_last\.(weight|bias)", r"out.\1"),
]


def _rrdb_state(ckpt: Any) -> Mapping[str, Any] | None:
    if not isinstance(ckpt, Mapping):
        return None
    for key in ("params_ema", "params"):  # Real-ESRGAN's releases hold both; the EMA weights are the ones shipped
        if isinstance(ckpt.get(key), Mapping):
            return ckpt[key]
    return ckpt


def _is_rrdbnet(ckpt: Any) -> bool:
    sd = _rrdb_state(ckpt)
    return sd is not None and "conv_first.weight" in sd and ("conv_body.weight" in sd or "trunk_conv.weight" in sd)


def _convert_rrdbnet(ckpt: Any) -> Converted:
    sd = _rrdb_state(ckpt)
    assert sd is not None
    # The originals count rdb1-3 and conv1-4 from 1; anyres's module lists count from 0.
    state = _rename(sd, _RRDB_RENAMES)
    state = {re.sub(r"dense\.([123])\.", lambda m: f"dense.{int(m[1]) - 1}.", k): v for k, v in state.items()}
    state = {re.sub(r"convs\.([1-4])\.", lambda m: f"convs.{int(m[1]) - 1}.", k): v for k, v in state.items()}
    in_ch = _shape(state, "head.weight")[1]
    unshuffle = {3: 1, 12: 2, 48: 4}.get(in_ch)
    if unshuffle is None or _shape(state, "out.weight")[0] != 3:
        raise RegistryError(
            f"RRDBNet with {in_ch} input / {_shape(state, 'out.weight')[0]} output channels is not supported; "
            "supported: RGB x4 (3 inputs), x2 (12, pixel-unshuffled) and x1 (48)"
        )
    n_feats = _shape(state, "head.weight")[0]
    n_blocks = _count(state, r"blocks\.\d+\.dense\.0\.convs\.0\.weight")
    growth = _shape(state, "blocks.0.dense.0.convs.0.weight")[0]
    config = {"n_feats": n_feats, "n_blocks": n_blocks, "growth": growth, "unshuffle": unshuffle}
    scale = 4 // unshuffle
    summary = f"RRDBNet x{scale} ({n_blocks} blocks, {n_feats} features, growth {growth})"
    return Converted(config, state, summary, arch="rrdbnet")


LAYOUTS = (
    Layout("yinboc/liif", "{'model': {'name': 'liif', 'args', 'sd'}, 'optimizer', 'epoch'}", _is_liif, _convert_liif),
    Layout(
        "robotic-vision-lab/DIINN",
        "{'state_dict': {'net.encoder.*', 'net.decoder.*', 'sub', 'div'}, 'hyper_parameters'}",
        _is_diinn,
        _convert_diinn,
        suffix=".ckpt",
    ),
    Layout(
        "BasicSR / Real-ESRGAN / ESRGAN RRDBNet",
        "{'params_ema': state_dict} or {'params': state_dict} or a bare state_dict with conv_first, body/RRDB_trunk",
        _is_rrdbnet,
        _convert_rrdbnet,
    ),
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


def check_output_folder(folder: Path, overwrite: bool) -> None:
    """Refuse a non-empty (or non-folder) ``folder`` unless ``overwrite``: one-line error, nothing touched."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not overwrite:
        raise RegistryError(f"{folder} exists and is not empty; pass --overwrite to replace it")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_checkpoint(path: str | Path, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write the checkpoint at ``path`` as an anyres weights folder (float32, values unchanged) with a card
    naming the source file and its format. A non-empty ``folder`` is refused unless ``overwrite``."""
    path, folder = Path(path), Path(folder)
    check_output_folder(folder, overwrite)
    layout, converted = read_checkpoint(path)
    net = NETWORKS.build(converted.arch, **converted.config)
    try:
        net.load_state_dict(converted.state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise RegistryError(f"{path}: the tensors do not match {converted.summary} ({first})") from None
    sha = file_sha256(path)
    description = f"{converted.summary}; converted from {path.name} ({layout.name} {layout.suffix})"
    source = {"file": path.name, "format": f"{layout.name} {layout.suffix}", "sha256": sha}
    save_network(net, folder, extra={"name": folder.name, "description": description, "source": source})
    card = (
        f"# {folder.name}\n\n{converted.summary}.\n\n"
        f"Converted by anyres from `{path.name}` (sha256 `{sha}`), a {layout.name} {layout.suffix} checkpoint "
        f"(`{layout.shape}`). Weights float32, values unchanged; not trained or measured by anyres.\n"
    )
    write_card(folder, card, license="unknown")  # the original project's license applies, not anyres's
    return folder


def scratch_folder(path: Path) -> Path:
    """A fresh folder for a checkpoint loaded by path, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="anyres-converted-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder / path.stem


@CHECKPOINTS.register(
    "pth",
    "PyTorch .pth checkpoints: yinboc/liif (EDSR-baseline or RDN encoder), ESRGAN / Real-ESRGAN RRDBNet",
    role=".pth",
)
def load_pth(path: Path) -> Path:
    return convert_checkpoint(path, scratch_folder(Path(path)))


@CHECKPOINTS.register("ckpt", "PyTorch Lightning .ckpt checkpoints: DIINN (RDN encoder, mode 3)", role=".ckpt")
def load_ckpt(path: Path) -> Path:
    return convert_checkpoint(path, scratch_folder(Path(path)))
