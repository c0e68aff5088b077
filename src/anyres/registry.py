"""The one place where names resolve to things that can be built.

A :class:`Registry` maps a name to a builder plus a one-line description. Entries are added with the
:meth:`Registry.register` decorator in the module that defines them; duplicate names and unknown names
raise :class:`~anyres.errors.RegistryError`, the latter listing the valid names.

Two registries exist:

``MODELS``    user-facing upscalers (``--model NAME``): builders return an object with
              ``upscale(lr, size) -> sr`` (see :class:`anyres.sr.upscaler.Upscaler`).
``NETWORKS``  network building blocks referenced by configs (``{"name": ..., "args": {...}}``):
              encoders and implicit decoders; builders return ``nn.Module`` s.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from anyres.errors import RegistryError

__all__ = ["Registry", "MODELS", "NETWORKS", "Entry"]


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    description: str


class Registry:
    """A named collection of builders; ``kind`` is used in error messages ("unknown model 'x'")."""

    def __init__(self, kind: str, populate: tuple[str, ...] = ()):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        # Module whose import registers the built-in entries; imported on first lookup so that this
        # module stays free of imports from the layers that register into it.
        self._populate = populate
        self._populated = not populate

    def register(self, name: str, description: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, builder, description)
            return builder

        return deco

    def _ensure(self) -> None:
        if not self._populated:
            self._populated = True
            for module in self._populate:
                importlib.import_module(module)

    def __contains__(self, name: str) -> bool:
        self._ensure()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._ensure()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return [e.name for e in self]

    def get(self, name: str) -> Entry:
        self._ensure()
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._entries[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name).builder(**kwargs)


MODELS = Registry("model", populate=("anyres.sr.pretrained",))
NETWORKS = Registry("network", populate=("anyres.sr", "anyres.enhancement"))
