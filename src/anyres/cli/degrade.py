"""``anyres degrade``: LR images from HR images with a degradation pipeline (a record per image, drawn from
``derive_seed(seed, file name)``), or the replay of a ``--params-out`` record file, bit-identical."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import click
import torch

from anyres.checks import check_scale, check_seed
from anyres.cli.batch import Batch, output_options
from anyres.degrade import get_pipeline
from anyres.degrade.base import derive_seed
from anyres.degrade.records import check_record
from anyres.errors import AnyresError, ConfigError
from anyres.io import check_outputs, read_image, write_bytes_atomic, write_image
from anyres.ops.color import to_rgb
from anyres.ops.resize import imresize
from anyres.parallel import gather, is_main, world_size
from anyres.registry import DEGRADATIONS

__all__ = ["degrade_command", "load_params_file"]


def load_params_file(path: Path) -> dict:
    """Read and check a ``--params-out`` file: ``{"pipeline", "scale", "seed", "images": {name: record}}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"cannot read parameter file {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read parameter file {path}: {str(err).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"cannot read parameter file {path}: nested deeper than a parameter file can be") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise ConfigError(f'{path} is not an anyres degrade parameter file (no "images" mapping)')
    if data.get("pipeline") not in DEGRADATIONS:
        raise ConfigError(
            f"{path}: unknown pipeline {data.get('pipeline')!r}; expected one of {', '.join(DEGRADATIONS)}"
        )
    try:
        check_scale(data.get("scale"))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    return data


@click.command("degrade")
@output_options(
    out_dir_help="Folder for the LR images (written as NAME.png).",
    overwrite_help="Replace existing outputs (inputs are never replaced).",
    suffix_default="_PIPELINE_xSCALE",
)
@click.option(
    "--pipeline",
    default=None,
    help=f"Degradation model: {', '.join(DEGRADATIONS.names('synthetic'))}, or a learned one with "
    f"--weights: {', '.join(DEGRADATIONS.names('learned'))} (not with --replay).",
)
@click.option(
    "--scale",
    type=float,
    default=None,
    help="Scale factor >= 1, any value (e.g. 2, 3, 2.5); the LR size is round(H / s) x round(W / s).",
)
@click.option(
    "--seed", type=int, default=None, help="Run seed (default 0); each image draws from the seed and its file name."
)
@click.option(
    "--params-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every image's parameters to this JSON file.",
)
@click.option(
    "--replay",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Apply the parameters recorded in this JSON file (from --params-out) instead of drawing new ones.",
)
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Weights folder of a learned pipeline (hllhgan: the h2l folder written by `anyres hllhgan`).",
)
def degrade_command(outputs, pipeline, scale, seed, params_out, replay, weights) -> None:
    """Make LR images from HR images (files or folders) with a random degradation pipeline.

    Without -o/--out-dir each result is written beside its input as NAME_PIPELINE_xSCALE.png.
    """
    recorded: dict | None = None
    config = None
    if replay is not None:
        data = load_params_file(replay)
        if pipeline is not None and pipeline != data["pipeline"]:
            raise ConfigError(f"--pipeline {pipeline} disagrees with {replay} (pipeline {data['pipeline']})")
        if scale is not None and scale != data["scale"]:
            raise ConfigError(f"--scale {scale:g} disagrees with {replay} (scale {data['scale']:g})")
        if seed is not None and seed != data.get("seed"):
            raise ConfigError(
                f"--seed {seed} disagrees with {replay} (seed {data.get('seed')}); "
                f"replay reuses the recorded parameters"
            )
        pipeline, scale, seed = data["pipeline"], float(data["scale"]), data.get("seed")
        recorded, config = data["images"], data.get("config")
    else:
        if pipeline is None:
            raise ConfigError(
                f"--pipeline is required ({', '.join(DEGRADATIONS.names('synthetic'))}) unless --replay is given"
            )
        if scale is None:
            raise ConfigError("--scale is required unless --replay is given")
        seed = 0 if seed is None else seed
    if seed is not None:
        check_seed(seed)
    if not (isinstance(scale, float) and math.isfinite(scale) and scale >= 1):
        raise ConfigError(f"--scale must be a number >= 1, got {scale:g}")
    learned = DEGRADATIONS.names("learned")
    if weights is not None:
        if pipeline not in learned:
            raise ConfigError(f"--weights is for learned pipelines ({', '.join(learned)}), not {pipeline}")
        config = {**(config or {}), "weights": str(weights)}
    pipe = get_pipeline(pipeline, config if pipeline in learned else None)
    if config is None:
        config = dataclasses.asdict(pipe.config)

    # LR images are written losslessly unless -o names another format: a JPEG would add a compression
    # pass that is not in the record.
    overwrite = outputs.overwrite
    batch = Batch(outputs, suffix=f"_{pipeline}_x{scale:g}", ext=".png")
    names = [batch.key(f) for f in batch.files]
    twins = sorted({n for n in names if names.count(n) > 1})
    if twins:  # seeds and records are keyed by file name: refused before anything is written
        raise AnyresError(
            f"{len(twins)} file name(s) occur in more than one input folder (e.g. {twins[0]!r}); parameters are "
            "drawn and recorded by file name (the path under the input folder with --recursive), so give each "
            "image its own name"
        )
    if params_out is not None:  # checked before any LR image is written
        check_outputs([params_out], batch.files, overwrite=overwrite)
        if any(params_out.resolve() == batch.target(f).resolve() for f in batch.files):
            raise AnyresError(f"--params-out {params_out} is also the name of an LR image; give it its own name")
    records: dict[str, dict] = {}

    def process(path: Path, target: Path, _extras: list[Path]) -> str:
        name = batch.key(path)
        img, meta = read_image(path)
        hr = to_rgb(img)
        hr_size = tuple(hr.shape[-2:])
        if min(round(n / scale) for n in hr_size) < 1:
            raise AnyresError(
                f"{path}: --scale {scale:g} would make the {hr_size[1]}x{hr_size[0]} image an LR of "
                f"{round(hr_size[1] / scale)}x{round(hr_size[0] / scale)} pixels; the LR needs at least 1 per side"
            )
        if recorded is not None:
            record = recorded.get(name)
            if record is None:
                raise AnyresError(f"{path}: no record for {name!r} in {replay}")
            if not isinstance(record, dict) or list(record.get("hr_size", [])) != list(hr_size):
                got = record.get("hr_size") if isinstance(record, dict) else record
                raise AnyresError(
                    f"{path}: the image is {hr_size[1]}x{hr_size[0]} (WxH) but its record in "
                    f"{replay} was drawn for HR size {got} (HxW)"
                )
            try:
                check_record(record, name, hr_size)
            except ConfigError as err:
                raise AnyresError(f"{path}: invalid record in {replay}: {err}") from None
        else:
            generator = torch.Generator().manual_seed(derive_seed(seed, name))
            record = pipe.sample(1, generator, scale=scale, hr_size=hr_size)[0]
        try:
            with torch.inference_mode():
                lr = pipe.apply(hr, [record])
        except (KeyError, TypeError, ValueError, IndexError, AssertionError, RuntimeError, OverflowError) as err:
            if recorded is None:
                raise
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise AnyresError(f"{path}: invalid record in {replay}: {type(err).__name__}: {first}") from None
        alpha = None
        if meta.alpha is not None:
            alpha = imresize(meta.alpha, size=tuple(lr.shape[-2:])).clamp(0.0, 1.0)
        write_image(target, lr, meta, alpha=alpha, overwrite=overwrite)
        records[name] = record
        return f" ({lr.shape[-1]}x{lr.shape[-2]})"

    failed = batch.run(process)
    if world_size() > 1:  # torchrun: rank 0 writes every rank's records, in input order
        every: dict[str, dict] = {}
        for part in gather(records):
            every.update(part)
        records = {n: every[n] for n in names if n in every}
        failed = sum(gather(failed))
    if params_out is not None and is_main() and (records or not failed):
        report = {"pipeline": pipeline, "scale": scale, "seed": seed, "images": records, "config": config}
        write_bytes_atomic(params_out, (json.dumps(report, indent=1) + "\n").encode("utf-8"), overwrite=True)
        click.echo(f"parameters of {len(records)} image(s) -> {params_out}", err=True)
    if failed:
        raise SystemExit(1)
