"""The loop shared by every file-in, file-out command (upscale, enhance, degrade).

Inputs are files or folders (:func:`anyres.io.expand_inputs`). Each result goes to ``-o`` (one input only),
into ``--out-dir``, or beside its input; an input is never overwritten, an existing output only with
``--overwrite``, and no run writes one output twice. A bad input costs one error line while the others
finish; :meth:`Batch.run` returns how many failed, and the command exits 1 if any did.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from anyres.errors import AnyresError

__all__ = ["Batch", "output_options", "device_option", "resolve_device"]


def output_options(
    out_dir_help: str = "Folder for the outputs.",
    overwrite_help: str = "Replace existing output files (inputs are never replaced).",
) -> Callable:
    """``INPUTS...``, ``-o/--output``, ``--out-dir`` and ``--overwrite``, as every batch command takes them."""

    def deco(command: Callable) -> Callable:
        for option in reversed(
            (
                click.argument("inputs", nargs=-1, required=True),
                click.option(
                    "-o",
                    "--output",
                    type=click.Path(dir_okay=False, path_type=Path),
                    help="Output file (one input only).",
                ),
                click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), help=out_dir_help),
                click.option("--overwrite", is_flag=True, help=overwrite_help),
            )
        ):
            command = option(command)
        return command

    return deco


device_option = click.option("--device", default=None, help="cpu or cuda (default: cuda if available, else cpu).")


def resolve_device(device: str | None) -> str:
    """``--device``: cpu, cuda or cuda:N; the default is cuda when available."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise AnyresError(f"unknown device {device!r}; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AnyresError("--device cuda requested but CUDA is not available")
    return device


@dataclass
class Batch:
    """One command's inputs and where their results go.

    ``beside`` and ``in_dir`` name an output from its input (``{stem}``, ``{suffix}``, ``{name}``): beside the
    input without ``-o``/``--out-dir``, or inside ``--out-dir``.
    """

    inputs: Sequence[str]
    output: Path | None
    out_dir: Path | None
    overwrite: bool
    beside: str
    in_dir: str = "{name}"
    files: list[Path] = field(init=False)
    errors: list[str] = field(init=False)

    def __post_init__(self) -> None:
        from anyres.io import expand_inputs

        self.files, self.errors = expand_inputs(self.inputs)
        if self.output is not None and (len(self.files) != 1 or self.out_dir is not None):
            raise AnyresError("-o/--output takes exactly one input image and no --out-dir; use --out-dir for several")

    def target(self, path: Path) -> Path:
        if self.output is not None:
            return self.output
        names = {"stem": path.stem, "suffix": path.suffix, "name": path.name}
        if self.out_dir is not None:
            return self.out_dir / self.in_dir.format(**names)
        return path.with_name(self.beside.format(**names))

    def run(
        self,
        process: Callable[[Path, Path, list[Path]], str],
        extras: Callable[[Path, Path], list[Path]] = lambda path, target: [],
        check: Callable[[Path], None] = lambda path: None,
    ) -> int:
        """Call ``process(path, target, extra_targets) -> note`` for each input, after checking every output
        it will write (``extras``: files written beside the target); ``check(path)`` runs first. Prints
        ``PATH -> TARGET`` plus the note per success and one error line per failure; returns the failures."""
        from tqdm import tqdm

        from anyres.io import check_outputs

        for message in self.errors:
            click.echo(f"anyres: error: {message}", err=True)
        failed = len(self.errors)
        written: set[Path] = set()
        bar = tqdm(self.files, unit="img", disable=None if len(self.files) > 1 else True)
        for path in bar:
            try:
                check(path)
                target = self.target(path)
                more = extras(path, target)
                for t in (target, *more):  # all checked before any work, so a refusal leaves nothing behind
                    if t.resolve() in written:
                        raise AnyresError(f"{path}: its output {t} was already written by another input of this run")
                check_outputs((target, *more), self.files, overwrite=self.overwrite)
                note = process(path, target, more)
                written.update(t.resolve() for t in (target, *more))
                line = f"{path} -> {target}{note}"
                bar.write(line, file=sys.stderr) if not bar.disable else click.echo(line, err=True)
            except AnyresError as err:
                failed += 1
                click.echo(f"anyres: error: {err}", err=True)
        return failed
