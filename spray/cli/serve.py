"""``spray serve``: browse the reports folder over HTTP on this machine only."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

import click

from spray.cli.errors import one_line_errors
from spray.errors import SprayError


@click.command()
@click.option("--reports", default="spray-reports", show_default=True, type=click.Path(file_okay=False),
              help="Folder written by `spray run` / `spray report`.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. The default serves this machine only; bind another address "
                   "only on a network you trust (the reports show your data).")
@one_line_errors
def serve(reports: str, port: int, host: str) -> None:
    """Serve the HTML reports for browsing (they also open straight from disk, offline)."""
    folder = Path(reports)
    if not (folder / "index.html").is_file() and not any(folder.glob("*.html")):
        raise SprayError(f"no reports in {folder}; run `spray run --class NAME` first or pass --reports")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        bound_host, bound_port = server.server_address[:2]
        click.echo(f"serving {folder} at http://{bound_host}:{bound_port}/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped")
