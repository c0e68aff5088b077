"""The ``anyres`` command: the group, its error handling and its subcommands (one module each).

A user mistake (:class:`~anyres.errors.AnyresError`) becomes one line on stderr and exit status 1; a bad flag
or value (click's usage errors) one line and exit status 2; Ctrl-C exit status 130.
"""

from __future__ import annotations

import os
import sys

# OpenMP threads that wait sleep instead of spinning: on a machine busy with other work, torch's two threads
# then no longer fight a competing process for the cores (benchmarks/RESULTS.md, "Threads"). Read when torch
# loads, so it is set before anything imports torch; a value in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click

from anyres.errors import AnyresError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AnyresError as err:
            click.echo(f"anyres: error: {err}", err=True)
            sys.exit(1)
        except click.UsageError as err:  # a bad flag or value: one line too, exit 2 as click does
            name = err.ctx.command_path if err.ctx is not None else "anyres"
            message = " ".join(err.format_message().split())
            click.echo(f"anyres: error: {message} (see {name} --help)", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("anyres: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anyres")
def main() -> None:
    """anyres: image restoration at any resolution."""


def _threads(ctx: click.Context, _param: click.Parameter, value: int | None) -> None:
    """``--threads N``: torch's CPU thread count for this command (training: the config's ``threads``)."""
    if value is None:
        return
    if value < 1:
        raise click.BadParameter(f"must be a positive number of threads, got {value}")
    import torch

    torch.set_num_threads(value)
    ctx.meta["anyres.threads"] = value


def threads_option() -> click.Option:
    return click.Option(
        ["--threads"],
        type=int,
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_threads,
        help="CPU threads for torch (default: what torch picks). On a machine busy with other work, 1 is "
        "often fastest (benchmarks/RESULTS.md).",
    )


def _register_subcommands() -> None:
    from anyres.cli.compare import compare_command
    from anyres.cli.convert import convert_command
    from anyres.cli.degrade import degrade_command
    from anyres.cli.enhance import enhance
    from anyres.cli.estimate_kernel import estimate_kernel_command
    from anyres.cli.evaluate import evaluate
    from anyres.cli.export import export_command
    from anyres.cli.hllhgan import hllhgan_command
    from anyres.cli.models import models
    from anyres.cli.serve import serve_command
    from anyres.cli.train import train
    from anyres.cli.upscale import upscale

    for command in (
        train,
        models,
        evaluate,
        upscale,
        enhance,
        compare_command,
        convert_command,
        export_command,
        degrade_command,
        estimate_kernel_command,
        hllhgan_command,
        serve_command,
    ):
        command.params.append(threads_option())
        main.add_command(command)


_register_subcommands()

if __name__ == "__main__":
    main()
