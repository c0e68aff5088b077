"""The loop shared by every file-in, file-out command (upscale, enhance, degrade).

Inputs are files or folders (:func:`anyres.io.expand_inputs`; ``--recursive`` walks subfolders and keeps
their tree under ``--out-dir``). Each result goes to ``-o`` (one input only), into ``--out-dir``, or beside
its input (``NAME{suffix}.EXT``); an input is never overwritten, an existing output only with
``--overwrite`` (``--skip-existing`` leaves it and counts the input as skipped), and every output name of
the job is checked before the first is written. A bad input costs one error line while the others finish;
:meth:`Batch.run` prints a summary (done / skipped / failed) and returns the failures, and the command exits
1 if any. Under ``torchrun`` each rank takes every ``world``-th input (:func:`anyres.parallel.shard`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from anyres.errors import AnyresError

__all__ = ["Batch", "Outputs", "output_options", "device_option", "resolve_device"]


@dataclass(frozen=True)
class Outputs:
    """What the user said about a batch command's inputs and outputs (:func:`output_options`)."""

    inputs: tuple[str, ...]
    output: Path | None = None
    out_dir: Path | None = None
    overwrite: bool = False
    skip_existing: bool = False
    suffix: str | None = None
    ext: str | None = None
    recursive: bool = False


_OUTPUT_KEYS = ("inputs", "output", "out_dir", "overwrite", "skip_existing", "suffix", "ext", "recursive")


def output_options(
    out_dir_help: str = "Folder for the outputs.",
    overwrite_help: str = "Replace existing output files (inputs are never replaced).",
    suffix_default: str = "_anyres",
) -> Callable:
    """``INPUTS...``, ``-o/--output``, ``--out-dir``, ``--overwrite``, ``--skip-existing``, ``--suffix``, ``--ext``
    and ``-r/--recursive``, as every batch command takes them, passed to the command as one ``outputs``."""

    def deco(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            outputs = Outputs(**{k: kwargs.pop(k) for k in _OUTPUT_KEYS})
            return command(outputs=outputs, **kwargs)

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
                click.option(
                    "--skip-existing",
                    is_flag=True,
                    help="Leave inputs whose output already exists (re-running a half-finished job finishes it).",
                ),
                click.option(
                    "--suffix",
                    default=None,
                    help=f"Added to the output file names (default {suffix_default!r} beside the input, none "
                    "under --out-dir).",
                ),
                click.option(
                    "--ext",
                    default=None,
                    help="Output format by extension, e.g. png or .tif (default: the input's; PNG for inputs "
                    "anyres reads but does not write: GIF, PPM, PGM, ICO, TGA).",
                ),
                click.option(
                    "-r", "--recursive", is_flag=True, help="Also take images in subfolders (the tree is kept)."
                ),
            )
        ):
            wrapper = option(wrapper)
        return wrapper

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


def _extension(ext: str | None) -> str | None:
    from anyres.io import IMAGE_EXTENSIONS

    if ext is None:
        return None
    ext = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if ext not in IMAGE_EXTENSIONS:
        raise AnyresError(f"--ext {ext}: anyres writes {', '.join(IMAGE_EXTENSIONS)}")
    return ext


@dataclass
class Batch:
    """One command's inputs and where their results go.

    ``suffix``: the command's name suffix beside the input (``_anyres``); ``ext``: the command's own output
    format (degrade writes ``.png``), or None for the input's.
    """

    outputs: Outputs
    suffix: str
    ext: str | None = None
    files: list[Path] = field(init=False)
    errors: list[str] = field(init=False)

    def __post_init__(self) -> None:
        from anyres.io import expand_inputs

        o = self.outputs
        self.user_ext = _extension(o.ext)
        if o.suffix is not None and ("/" in o.suffix or "\\" in o.suffix):
            raise AnyresError(f"--suffix {o.suffix!r} must not contain a path separator")
        if o.overwrite and o.skip_existing:
            raise AnyresError("--overwrite and --skip-existing contradict each other; give one")
        pairs, self.errors = expand_inputs(o.inputs, recursive=o.recursive)
        self.files = [f for f, _ in pairs]
        self._subfolder = dict(pairs)
        if o.output is not None and (len(self.files) != 1 or o.out_dir is not None):
            raise AnyresError("-o/--output takes exactly one input image and no --out-dir; use --out-dir for several")

    def key(self, path: Path) -> str:
        """The input's name relative to the folder it came from (``sub/a.png`` under --recursive, else ``a.png``)."""
        return (self._subfolder.get(path, Path(".")) / path.name).as_posix()

    def target(self, path: Path) -> Path:
        from anyres.io import IMAGE_EXTENSIONS

        o = self.outputs
        if o.output is not None:
            return o.output
        ext = self.user_ext or self.ext or (path.suffix if path.suffix.lower() in IMAGE_EXTENSIONS else ".png")
        if o.out_dir is not None:
            return o.out_dir / self._subfolder.get(path, Path(".")) / f"{path.stem}{o.suffix or ''}{ext}"
        return path.with_name(f"{path.stem}{self.suffix if o.suffix is None else o.suffix}{ext}")

    def _check_names(self, extras: Callable[[Path, Path], list[Path]]) -> None:
        """Every output name of the whole job (all ranks) is distinct, checked before anything is written."""
        from anyres.io.files import check_name_length

        seen: dict[Path, Path] = {}
        for path in self.files:
            target = self.target(path)
            for t in (target, *extras(path, target)):
                check_name_length(t)
                key = t.resolve()
                if key in seen and seen[key] != path:
                    raise AnyresError(
                        f"{seen[key]} and {path} would both write {t}; rename one, or use --out-dir with "
                        "--recursive to keep their folders apart"
                    )
                seen[key] = path

    def run(
        self,
        process: Callable[[Path, Path, list[Path]], str],
        extras: Callable[[Path, Path], list[Path]] = lambda path, target: [],
        check: Callable[[Path], None] = lambda path: None,
    ) -> int:
        """Call ``process(path, target, extra_targets) -> note`` for each of this rank's inputs, after checking
        every output it will write (``extras``: files written beside the target); ``check(path)`` runs first.
        Prints ``PATH -> TARGET`` plus the note per success, one error line per failure and a summary;
        returns the failures."""
        from anyres.io import check_outputs
        from anyres.parallel import distributed, shard
        from anyres.progress import Progress

        world, rank = distributed()
        self._check_names(extras)
        failed = 0
        if rank == 0:
            for message in self.errors:
                click.echo(f"anyres: error: {message}", err=True)
            failed = len(self.errors)
        files = shard(self.files)
        done = skipped = 0
        tag = f"[rank {rank}/{world}] " if world > 1 else ""
        with Progress(len(files), unit="img", label="images", hide_single=True) as bar:
            for path in files:
                try:
                    check(path)
                    target = self.target(path)
                    more = extras(path, target)
                    if self.outputs.skip_existing and all(t.exists() for t in (target, *more)):
                        skipped += 1
                        bar.write(f"{tag}{path}: skipped, {target} exists")
                        continue
                    check_outputs((target, *more), self.files, overwrite=self.outputs.overwrite)
                    note = process(path, target, more)
                    done += 1
                    bar.write(f"{tag}{path} -> {target}{note}")
                except AnyresError as err:
                    failed += 1
                    bar.write(f"anyres: error: {tag}{err}")
                finally:
                    bar.update(1)
        if len(self.files) + len(self.errors) > 1 or skipped:  # one input: its own line says it all
            click.echo(f"{tag}{done} done, {skipped} skipped, {failed} failed", err=True)
        return failed
