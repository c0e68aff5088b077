"""``anyres serve``: the local web app (upscale, enhance, compare) on FastAPI + uvicorn (the ``serve`` extra)."""

from __future__ import annotations

import ipaddress
import threading
import webbrowser

import click

from anyres.errors import AnyresError

__all__ = ["serve_command", "is_local"]


def is_local(host: str) -> bool:
    """True for a loopback address or ``localhost``: reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other than this machine's loopback: anyone who can reach it may upload images and "
    "use this machine's CPU (there is no login).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=50.0,
    show_default=True,
    help="Largest upload accepted (larger ones get HTTP 413).",
)
@click.option(
    "--keep-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Minutes a finished job's result waits to be downloaded before its files are removed.",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    host: str,
    port: int,
    open_browser: bool,
    allow_remote: bool,
    max_upload_mb: float,
    keep_minutes: float,
) -> None:
    """A local web app: drop images, upscale or enhance them, compare before and after, download.

    Jobs run one at a time, each as `anyres upscale` or `anyres enhance` on the upload, so a result is the
    file that command writes for the same arguments. The JSON API is described in the README ("Web app").
    """
    if not is_local(host) and not allow_remote:
        raise AnyresError(
            f"--host {host} would serve beyond this machine; add --allow-remote to do it on purpose "
            "(there is no login: anyone who reaches it can run jobs)"
        )
    try:
        import uvicorn

        from anyres.serve.app import create_app
    except ImportError as err:
        raise AnyresError(
            f'anyres serve needs the serve extra ({err.name} is missing): pip install -e ".[serve]"'
        ) from None
    if not is_local(host):
        click.echo(
            f"anyres: warning: serving on {host}:{port}, beyond this machine, with no login: anyone who can "
            "reach it can upload images and run jobs",
            err=True,
        )
    threads = ctx.meta.get("anyres.threads")
    app = create_app(max_upload_mb=max_upload_mb, threads=threads, ttl=keep_minutes * 60)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/"
    click.echo(f"anyres serve: {url} (Ctrl-C to stop)", err=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
