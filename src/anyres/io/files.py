"""Which files a command reads, and the rule that it never writes over one of them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from anyres.errors import ImageReadError, ImageWriteError
from anyres.io.reading import INPUT_EXTENSIONS, read_image

__all__ = ["check_not_input", "check_output", "check_outputs", "list_images", "expand_inputs", "as_batch"]

# ----------------------------------------------------------------------------------------------- paths


def check_not_input(out_path: str | os.PathLike, input_paths: str | os.PathLike | Iterable) -> None:
    """Raise :class:`ImageWriteError` if ``out_path`` is one of ``input_paths``: an input is never overwritten.

    Paths are compared after resolving symlinks and ``..``, and with ``os.path.samefile`` (hard links,
    case-insensitive file systems) when both exist.
    """
    if isinstance(input_paths, (str, os.PathLike)):
        input_paths = [input_paths]
    out = Path(out_path)
    for inp in input_paths:
        same = out.resolve() == Path(inp).resolve()
        if not same and out.exists() and Path(inp).exists():
            same = os.path.samefile(out, inp)
        if same:
            raise ImageWriteError(f"refusing to write {out}: it is the input {inp}, and an input is never overwritten")


_NAME_MAX = 255  # bytes per file or folder name on the file systems anyres writes to (ext4, APFS, NTFS)


def check_name_length(path: str | os.PathLike) -> None:
    """Refuse a path with a file or folder name longer than the file system allows (one line, no OSError)."""
    for part in Path(path).absolute().parts[1:]:
        if len(os.fsencode(part)) > _NAME_MAX:
            raise ImageWriteError(f"cannot write {path}: the name {part[:40]}... is longer than {_NAME_MAX} bytes")


def check_output(
    out_path: str | os.PathLike, input_paths: str | os.PathLike | Iterable, *, overwrite: bool = False
) -> Path:
    """Check, before anything is written, that ``out_path`` can be written: it is not one of ``input_paths``
    (:func:`check_not_input`), not a folder, not an existing file unless ``overwrite``, and its nearest
    existing parent is a writable folder. Raises :class:`ImageWriteError` with one line; returns the path."""
    out = Path(out_path)
    check_name_length(out)
    check_not_input(out, input_paths)
    if out.is_dir():
        raise ImageWriteError(f"cannot write {out}: it is a directory")
    if out.exists() and not overwrite:
        raise ImageWriteError(f"{out}: already exists; pass --overwrite to replace it")
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ImageWriteError(f"cannot write {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImageWriteError(f"cannot write {out}: the folder {parent} is not writable")
    return out


def check_outputs(
    out_paths: Iterable[str | os.PathLike], input_paths: str | os.PathLike | Iterable, *, overwrite: bool = False
) -> None:
    """:func:`check_output` for each of a job's outputs, which must also name different files."""
    inputs = [input_paths] if isinstance(input_paths, (str, os.PathLike)) else list(input_paths)
    seen: dict[Path, Path] = {}
    for out in map(Path, out_paths):
        check_output(out, inputs, overwrite=overwrite)
        if out.resolve() in seen:
            raise ImageWriteError(f"{seen[out.resolve()]} and {out} are the same file: each output needs its own name")
        seen[out.resolve()] = out


def list_images(path_or_dir: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """A file gives [file]; a directory gives its image files (by extension, any case), sorted; with
    ``recursive``, those of its subfolders too (sorted by path).

    Hidden files and folders are skipped: they are editor/OS clutter (e.g. macOS "._x.png") or our own temp
    files.
    """
    p = Path(path_or_dir)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise ImageReadError(f"cannot read images from {p}: no such file or directory")
    found = p.rglob("*") if recursive else p.iterdir()
    return sorted(
        q
        for q in found
        if q.suffix.lower() in INPUT_EXTENSIONS
        and not any(part.startswith(".") for part in q.relative_to(p).parts)
        and q.is_file()
    )


# ----------------------------------------------------------------------------------------------- channels


def expand_inputs(
    inputs: Iterable[str | os.PathLike], *, recursive: bool = False
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Command-line inputs to image files: files stay (a missing one fails when read), folders become
    their images (``recursive``: of every subfolder too). Returns ``([(file, subfolder)], error lines)``,
    ``subfolder`` being the file's folder relative to the input folder it came from (``.`` for a file given
    by name); an empty folder is an error line, not an exception."""
    files: list[tuple[Path, Path]] = []
    errors: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path, recursive=recursive)
            if not found:
                errors.append(f"{path}: no images in this folder")
            files.extend((f, f.parent.relative_to(path)) for f in found)
        else:
            files.append((path, Path(".")))
    return files, errors


def as_batch(image: Any) -> torch.Tensor:
    """A path (read with :func:`anyres.io.read_image`) or a ``(C, H, W)`` / ``(B, C, H, W)`` tensor -> 4-D tensor."""
    if isinstance(image, (str, Path)):
        image, _ = read_image(image)
    if not torch.is_tensor(image):
        raise TypeError(f"image must be a path or a tensor, got {type(image).__name__}")
    return image[None] if image.dim() == 3 else image
