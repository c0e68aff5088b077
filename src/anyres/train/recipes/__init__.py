"""One recipe per training task; importing this package registers them with :mod:`anyres.train.config`.

A recipe file holds the task's config model (YAML tasks) and a :class:`~anyres.train.engine.Recipe`
subclass (networks, optimisers, batches, one step, outputs); adding a task is one new file imported here.
"""

from anyres.train.recipes import enhance, hllhgan, lmar, sr  # noqa: F401

__all__ = ["enhance", "hllhgan", "lmar", "sr"]
