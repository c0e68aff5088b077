"""Registries: one per kind of named thing, each mapping a name to a builder and a one-line description.

Entries are added with :meth:`Registry.register` in the module that defines them, or discovered (shipped
weights folders, :func:`weights_folders`); duplicate and unknown names raise
:class:`~anyres.errors.RegistryError`, the latter listing the valid names. :func:`load` turns a name or a
weights folder into a ready model of the right kind. Every CLI choice is read from these registries.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from anyres.errors import ConfigError, RegistryError

__all__ = [
    "Registry",
    "ModelRegistry",
    "Entry",
    "NETWORKS",
    "UPSCALERS",
    "ENHANCERS",
    "DEGRADATIONS",
    "TASKS",
    "METRICS",
    "RESAMPLERS",
    "CHECKPOINTS",
    "load",
    "weights_folders",
    "options_from",
]


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    description: str
    role: str = ""  # a finer kind inside a registry: a network's model role, a learned pipeline
    folder: Path | None = None  # the weights folder of a discovered model
    available: bool = True  # False: the folder has its card (config.json) but not its weights
    example: Mapping[str, Any] | None = None  # a tiny config of a network: its contract tests build it


class Registry(Mapping[str, Entry]):
    """A read-only mapping name -> :class:`Entry`; iteration gives the names.

    ``kind`` names the entries in messages ("unknown {kind} 'x'"). ``ordered``: names in registration order
    (where the order means something: metrics are reported in it) instead of alphabetical. ``populate``:
    modules whose import registers the built-in entries, imported on first use so that this module stays
    free of imports from the layers that register into it.
    """

    def __init__(self, kind: str, populate: tuple[str, ...] = (), *, ordered: bool = False):
        self.kind = kind
        self.ordered = ordered
        self._entries: dict[str, Entry] = {}
        self._sources: list[Callable[[], Iterable[Entry]]] = []
        self._populate = populate
        self._populated = not populate

    # One object per kind: compared and hashed by identity, not as mappings.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def register(
        self, name: str, description: str, *, role: str = "", example: Mapping[str, Any] | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
            self.add(Entry(name, builder, description, role, example=example))
            return builder

        return deco

    def add_class(self, cls: Any, *, role: str = "") -> Any:
        """Register a class under its ``name`` attribute, described by its docstring's first line."""
        self.add(Entry(cls.name, cls, (cls.__doc__ or "").strip().splitlines()[0], role))
        return cls

    def add(self, entry: Entry) -> None:
        if entry.name in self._entries:
            raise RegistryError(f"{self.kind} {entry.name!r} is already registered")
        self._entries[entry.name] = entry

    def discover(self, source: Callable[[], Iterable[Entry]]) -> None:
        """Add a source of entries listed afresh on every lookup (weights folders come and go)."""
        self._sources.append(source)

    def ensure(self) -> None:
        """Import the modules that register the built-in entries (once)."""
        if not self._populated:
            self._populated = True
            for module in self._populate:
                importlib.import_module(module)

    def _all(self) -> dict[str, Entry]:
        self.ensure()
        found = dict(self._entries)
        for source in self._sources:
            for entry in source():
                found.setdefault(entry.name, entry)  # a registered name wins over a folder of that name
        return found if self.ordered else dict(sorted(found.items()))

    def __getitem__(self, name: str) -> Entry:
        return self._all()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def names(self, role: str | None = None) -> list[str]:
        """The names, or those of one ``role``."""
        return [e.name for e in self._all().values() if role is None or e.role == role]

    def get(self, name: str) -> Entry:  # type: ignore[override]
        entries = self._all()
        if name not in entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; available: {', '.join(entries)}")
        return entries[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name).builder(**kwargs)


class ModelRegistry(Registry):
    """Ready-to-run models of one kind (upscalers, enhancers): named entries plus weights folders.

    ``role``: the :data:`NETWORKS` role of the architectures whose folders this kind loads. The package that
    owns the kind sets :attr:`from_folder` (``(folder, device, options, name) -> model``), :attr:`options`
    (the typed options dataclass, or None) and :attr:`instance` (the type of a model passed as it is).
    """

    def __init__(self, kind: str, populate: tuple[str, ...], *, role: str, task: str):
        super().__init__(kind, populate)
        self.role = role
        self.task = task  # what the kind does, for messages ("upscaling")
        self.from_folder: Callable[..., Any] | None = None
        self.options: type | None = None
        self.instance: tuple[type, ...] = ()

    def load_folder(self, folder: Path, **kwargs: Any) -> Any:
        """The model in a weights folder, built by :attr:`from_folder` (set by the package that owns the kind)."""
        if self.from_folder is None:
            raise RegistryError(f"no loader is set for {self.kind} folders")
        return self.from_folder(folder, **kwargs)

    def check_options(self, options: Any) -> Any:
        if self.options is None:
            if options is not None:
                raise ConfigError(f"{self.task} models take no options, got {options!r}")
            return None
        if options is None:
            return self.options()
        if isinstance(options, Mapping):
            return options_from(self.options, options, what=f"{self.task} option")
        if not isinstance(options, self.options):
            raise ConfigError(f"{self.task} options must be a {self.options.__name__}, got {type(options).__name__}")
        return options


def options_from(cls: type, values: Mapping[str, Any], what: str = "option") -> Any:
    """Build the options dataclass ``cls`` from keyword values; unknown keys raise one clear line."""
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {what}{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(known)}"
        )
    return cls(**values)


CONFIG_FILE = "config.json"  # hub.CONFIG; repeated because the hub is above this module
WEIGHTS_FILE = "model.safetensors"


def read_arch(folder: Path) -> str | None:
    """The ``"arch"`` of a weights folder's config.json, or None if it has none or is unreadable."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    return config.get("arch") if isinstance(config, dict) else None


def weights_folders(root: Path, kind: ModelRegistry) -> list[Entry]:
    """The folders under ``root`` holding a model of ``kind``: their name, description and availability.

    A folder counts when its ``config.json`` names an architecture of the kind's role; one without
    ``model.safetensors`` is listed as unavailable (its card shipped, its weights did not).
    """
    entries = []
    for folder in sorted(Path(root).glob(f"*/{CONFIG_FILE}")):
        folder = folder.parent
        arch = read_arch(folder)
        if arch is None or arch not in NETWORKS or NETWORKS[arch].role != kind.role:
            continue
        config = json.loads((folder / CONFIG_FILE).read_text())

        def build(device: str | None = None, options: Any = None, _folder: Path = folder) -> Any:
            if not (_folder / WEIGHTS_FILE).is_file():
                raise RegistryError(f"model {_folder.name!r}: its weights are not in this installation ({_folder})")
            return kind.load_folder(_folder, device=device, options=options, name=_folder.name)

        entries.append(
            Entry(
                folder.name, build, config.get("description", ""), kind.role, folder, (folder / WEIGHTS_FILE).is_file()
            )
        )
    return entries


NETWORKS = Registry("network", populate=("anyres.sr", "anyres.enhancement"))
UPSCALERS = ModelRegistry("model", populate=("anyres.sr.pretrained",), role="upscaler", task="upscaling")
ENHANCERS = ModelRegistry("enhancement model", populate=("anyres.enhancement",), role="enhancer", task="enhancement")
MODEL_KINDS = (UPSCALERS, ENHANCERS)
DEGRADATIONS = Registry("degradation pipeline", populate=("anyres.degrade",), ordered=True)
TASKS = Registry("enhancement task", populate=("anyres.enhancement.tasks",), ordered=True)
METRICS = Registry("metric", populate=("anyres.evaluation",), ordered=True)
RESAMPLERS = Registry("resampler", populate=("anyres.enhancement",), ordered=True)
# Foreign checkpoint formats (a file that is not a weights folder), one entry per file suffix (its ``role``):
# the builder takes the file's path and returns a weights folder it wrote (see :func:`_convert`).
CHECKPOINTS = Registry("checkpoint format", populate=("anyres.sr.checkpoints", "anyres.train.states"))


def _task(kind: ModelRegistry | None) -> str:
    return kind.task if kind is not None else "any"


def _kind_of(folder: Path, text: str) -> ModelRegistry:
    arch = read_arch(folder)
    role = NETWORKS[arch].role if isinstance(arch, str) and arch in NETWORKS else None
    for kind in MODEL_KINDS:
        if kind.role == role:
            return kind
    raise RegistryError(f"{text}: a {arch!r} model is neither an upscaling nor an enhancement model")


def _convert(path: Path) -> Path:
    """The hook for foreign checkpoints: a :data:`CHECKPOINTS` converter for ``path``'s suffix (its entry's
    ``role``, e.g. ``".pth"``) turns the file into a weights folder, which then loads like any other."""
    for entry in CHECKPOINTS.values():
        if path.suffix.lower() == entry.role:
            return Path(entry.builder(path))
    raise RegistryError(f"{path}: not a model folder (expected config.json and model.safetensors inside)")


def load(
    model: Any = "bicubic",
    device: str | None = None,
    *,
    kind: ModelRegistry | None = None,
    options: Any = None,
    **fields: Any,
) -> Any:
    """A ready model from a name, a weights folder, a foreign checkpoint file or a model instance.

    ``kind``: :data:`UPSCALERS` or :data:`ENHANCERS`, or None for whichever kind the name or folder is
    (a folder's kind is its ``config.json`` ``"arch"``'s network role). ``options``: the kind's options
    dataclass (:class:`~anyres.sr.render.RenderOptions` for upscalers), a mapping of its fields, or None for
    its defaults; ``fields`` replace single fields (``mode="exact"``). Unknown names, unknown options,
    folders of another kind and missing weights raise a one-line :class:`~anyres.errors.AnyresError`.
    """
    if fields:
        options = {
            **(asdict(options) if options is not None and not isinstance(options, Mapping) else dict(options or {})),
            **fields,
        }
    kinds = (kind,) if kind is not None else MODEL_KINDS
    for k in kinds:
        k.ensure()
    if kind is not None:
        options = kind.check_options(options)  # a bad option fails before anything loads
        if isinstance(model, k.instance):
            ready: Any = model
            return ready.to(device) if device else ready
    if not isinstance(model, (str, Path)):
        wanted = " or ".join(t.__name__ for k in kinds for t in k.instance)
        raise TypeError(f"model must be a name, a path or an {wanted}, got {type(model).__name__}")
    text = str(model)
    for k in kinds:
        if text in k:
            return k.get(text).builder(device=device, options=k.check_options(options))
    path = Path(text).expanduser()
    if path.is_file():
        path = _convert(path)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        found = _kind_of(path, text)
        if all(found is not k for k in kinds):
            raise RegistryError(f"{text}: a {read_arch(path)!r} model is not an {_task(kind)} model")
        return found.load_folder(path, device=device, options=found.check_options(options), name=None)
    if path.exists():
        raise RegistryError(f"{text}: not a model folder (expected config.json and model.safetensors inside)")
    valid = f"{', '.join(n for k in kinds for n in k)} or a model folder path"
    for other in MODEL_KINDS:
        if all(other is not k for k in kinds) and text in other:
            raise RegistryError(f"{text!r} is an {other.task} model; {_task(kind)} needs one of {valid}")
    raise RegistryError(f"unknown {kind.kind if kind is not None else 'model'} {text!r}; available: {valid}")
