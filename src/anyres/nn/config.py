"""Network configs: every network is built from a config dataclass that a weights folder's ``config.json`` holds."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

__all__ = ["config_from_dict", "resolve_config"]


def config_from_dict(cls: Any, d: dict[str, Any], label: str) -> Any:
    """Build the config dataclass ``cls`` from a dict; unknown keys raise ``ValueError`` naming them."""
    unknown = set(d) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {label} config keys: {sorted(unknown)}")
    return cls(**d)


def resolve_config(cls: Any, config: Any, kwargs: dict[str, Any]) -> Any:
    """A network's config from what its constructor got: ``None`` (``cls(**kwargs)``), a dict or a ``cls``
    instance, with ``kwargs`` overriding (dicts go through ``cls.from_dict``, so unknown keys raise)."""
    if config is None:
        return cls(**kwargs)
    if isinstance(config, dict):
        return cls.from_dict({**config, **kwargs})
    return cls.from_dict({**asdict(config), **kwargs}) if kwargs else config
