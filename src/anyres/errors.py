"""Exceptions for user mistakes.

Everything a user can cause (a bad path, a corrupt file, an unknown model name, a bad scale) raises a
subclass of :class:`AnyresError` whose message is one complete line. The CLI prints that line and exits
non-zero; a traceback means a bug in anyres, never a user mistake.
"""

from __future__ import annotations


class AnyresError(Exception):
    """Base class of all errors caused by user input; ``str(err)`` is one line meant for the user."""


class ImageReadError(AnyresError):
    """An input image is missing, unreadable, corrupt, too large or of an unsupported kind."""


class ImageWriteError(AnyresError):
    """An output image cannot be written (exists, unsupported extension, failed encode)."""


class ConfigError(AnyresError):
    """A configuration file or option is invalid."""


class RegistryError(AnyresError):
    """An unknown or duplicated name in the registry."""
