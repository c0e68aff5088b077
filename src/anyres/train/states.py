"""An anyres training state (a run's ``checkpoint.safetensors``) -> a weights folder, without the run's data.

The resume state holds the network's spec (its config's ``model``), every trained module under a prefix and,
where the run kept one, the average of the weights (``ema.``). :func:`state_to_folder` rebuilds the network
from the spec alone and writes the folder a finished run would have written (``model/``: the average where
there is one), so any state of a run can be scored or shipped, e.g. an earlier one kept in git.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anyres.errors import RegistryError
from anyres.registry import CHECKPOINTS

__all__ = ["WEIGHTS", "read_state", "state_to_folder", "load_state"]

# Which weights of a state to write: the average (the default where the run kept one) or the trained ones.
WEIGHTS = ("average", "trained")
# The prefix of the trained network in each recipe's state: SR and enhancement runs, LMAR runs.
_NETWORK_PREFIXES = ("model", "lmar")


def read_state(path: str | Path, *, tensors: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metadata, tensors)`` of a training state (``tensors=False``: the metadata alone, tensors ``{}``); a
    file that is not one gets a one-line error."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("anyres")
            if raw is None:
                raise RegistryError(
                    f"{path}: not an anyres training state (no 'anyres' metadata); a weights file loads "
                    "with its folder (config.json beside model.safetensors)"
                )
            weights = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise RegistryError(f"{path}: not a readable safetensors file ({first})") from None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise RegistryError(f"{path}: its 'anyres' metadata is not JSON") from None
    return meta, weights


def state_to_folder(path: str | Path, folder: str | Path, *, weights: str = "average", overwrite: bool = False) -> Path:
    """Write the network of the training state ``path`` as a float32 weights folder with a card.

    ``weights``: ``"average"`` writes the average of the weights where the run kept one (``ema``) and the
    trained weights otherwise; ``"trained"`` always the trained ones. A non-empty ``folder`` is refused
    unless ``overwrite``.
    """
    from anyres.hub import save_network, write_card
    from anyres.registry import NETWORKS
    from anyres.sr.checkpoints import check_output_folder, file_sha256

    path, folder = Path(path), Path(folder)
    if weights not in WEIGHTS:
        raise RegistryError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    check_output_folder(folder, overwrite)
    meta, tensors = read_state(path)
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    spec = config.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RegistryError(f"{path}: the run's config names no network (a state of this recipe has no weights folder)")
    base = next((p for p in _NETWORK_PREFIXES if any(k.startswith(p + ".") for k in tensors)), None)
    if base is None:
        raise RegistryError(f"{path}: no network weights in the state (expected one of {_NETWORK_PREFIXES})")
    average = weights == "average" and any(k.startswith("ema.") for k in tensors)
    prefix = "ema" if average else base
    arch = "lmar" if base == "lmar" else spec["name"]
    try:
        net = NETWORKS.build(arch, **(spec.get("args") or {}))
    except (TypeError, ValueError, KeyError) as err:
        raise RegistryError(f"{path}: cannot rebuild the network {arch!r} from the run's config ({err})") from None
    part = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    try:
        net.load_state_dict(part)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise RegistryError(f"{path}: the '{prefix}' tensors do not match the network ({first})") from None
    iteration = int(meta.get("iteration", 0))
    digest = file_sha256(path)
    extra: dict[str, Any] = {"name": config.get("name") or folder.name, "iterations": iteration}
    if average:
        extra["ema"] = config.get("ema")
    extra["source"] = {"file": path.name, "format": "anyres training state", "sha256": digest}
    save_network(net, folder, extra=extra)
    which = f"the average of the weights (ema {config.get('ema')})" if average else "the trained weights"
    card = (
        f"# {folder.name}\n\n"
        f"{which.capitalize()} of the anyres training state `{path.name}` (sha256 `{digest}`) at iteration "
        f"{iteration} of the run `{config.get('name', '?')}`; float32, values unchanged. Written by "
        "`anyres convert`; not measured: score it with `anyres evaluate`.\n"
    )
    write_card(folder, card)
    return folder


@CHECKPOINTS.register(
    "safetensors",
    "anyres training states (a run's checkpoint.safetensors): the average of the weights where the run kept one",
    role=".safetensors",
)
def load_state(path: Path) -> Path:
    """``--model STATE``: the state written once into a scratch folder removed at exit; a weights folder's own
    ``model.safetensors`` is that folder."""
    from anyres.sr.checkpoints import scratch_folder

    path = Path(path)
    if path.name == "model.safetensors" and (path.parent / "config.json").is_file():
        return path.parent
    return state_to_folder(path, scratch_folder(path))
