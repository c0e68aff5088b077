"""``anyres hllhgan``: train HLLHGAN's High-to-Low (and optionally Low-to-High) GAN from two unpaired folders.

The result is a run folder with ``checkpoint.safetensors`` (resumable: run the same command again, or
raise ``--iters``) and an ``h2l`` weights folder that the ``hllhgan`` degradation pipeline loads, e.g. in a
training config: ``degradation: {name: hllhgan, args: {weights: RUN/h2l}}`` with ``scale_min = scale_max
= 4``, or ``anyres degrade IMAGE --pipeline hllhgan --weights RUN/h2l --scale 4``.
"""

from __future__ import annotations

from pathlib import Path

import click

from anyres.errors import ConfigError

__all__ = ["hllhgan_command"]


@click.command("hllhgan")
@click.option(
    "--hr",
    "hr_dirs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder (or image) of HR images; repeat for several.",
)
@click.option(
    "--lr",
    "lr_dirs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder (or image) of real LR images, unpaired with the HR ones; repeat for several.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder (checkpoint, h2l/ and l2h/ weights).",
)
@click.option("--iters", type=int, default=2000, show_default=True, help="Total training iterations.")
@click.option("--batch", type=int, default=32, show_default=True, help="Crops per iteration (the paper's 32).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights, crops and noise.")
@click.option("--l2h", is_flag=True, help="Also train the Low-to-High GAN on the generated pairs (slow on a CPU).")
@click.option("--restart", is_flag=True, help="Ignore an existing checkpoint in --out and start over.")
def hllhgan_command(hr_dirs, lr_dirs, out_dir, iters, batch, seed, l2h, restart) -> None:
    """Learn a degradation from unpaired HR and real LR images (HLLHGAN, Bulat et al. 2018; x4)."""
    from anyres.sr.data import load_hr_folders
    from anyres.train.recipes.hllhgan import HLLHGANConfig, train_hllhgan

    threads = click.get_current_context().meta.get("anyres.threads")  # the shared --threads option
    cfg = HLLHGANConfig(iterations=iters, batch=batch, seed=seed, l2h=l2h, threads=threads)
    for paths, what in ((hr_dirs, "--hr"), (lr_dirs, "--lr")):
        for p in paths:
            if not p.exists():
                raise ConfigError(f"{what} {p}: no such file or folder")
    hr = load_hr_folders(hr_dirs)
    lr = load_hr_folders(lr_dirs)
    summary = train_hllhgan(hr, lr, out_dir, cfg, resume=not restart)
    click.echo(
        f"trained {summary['iterations']} iterations ({summary['seconds']:.0f} s of steps); "
        f"degradation weights in {summary['h2l']}"
    )
