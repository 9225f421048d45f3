"""``spray serve``: browse the reports folder over HTTP on this machine only.

What is served, and to whom (issue 14: symlinks escaped the folder, directories were listed,
dotfiles served, and any ``Host`` answered, so a DNS-rebinding page could read the reports):

- only regular files whose resolved path (every symlink followed) lies inside the reports
  folder; ``/`` is ``index.html``; no directory listing, no name starting with ``.``;
- only requests whose ``Host`` is the address bound (as given to ``--host`` or as bound) or
  ``localhost`` (421 Misdirected Request otherwise); with a wildcard ``--host`` (0.0.0.0)
  this machine's host names count too.

A port in use, an address that does not resolve and a broken request each give one line,
never a traceback.
"""

from __future__ import annotations

import errno
import http.server
import os
import socket
import sys
import urllib.parse
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO

import click

from spray.cli.errors import one_line_errors
from spray.errors import SprayError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


class ReportsHandler(http.server.SimpleHTTPRequestHandler):
    """Answers GET and HEAD with the files of ``server.reports`` under the rules above."""

    server: ReportsServer

    def send_head(self) -> BinaryIO | None:  # the base class's hook for GET and HEAD
        if not self._host_allowed():
            self.send_error(
                HTTPStatus.MISDIRECTED_REQUEST,
                "this server answers only requests for " + ", ".join(sorted(self.server.allowed_hosts)),
            )
            return None
        path = self._file()
        if path is None:
            return None
        try:
            file = open(path, "rb")  # noqa: SIM115 (the base class closes it after copying)
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        size = os.fstat(file.fileno()).st_size
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Length", str(size))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        return file

    def list_directory(self, path):  # never reached through send_head; refused if it ever is
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def _host_allowed(self) -> bool:
        host = self.headers.get("Host")
        if not host:
            return False
        try:
            name = urllib.parse.urlsplit(f"//{host}").hostname
        except ValueError:
            return False
        return name is not None and name.lower() in self.server.allowed_hosts

    def _file(self) -> Path | None:
        """The file the request names, or None after answering with an error."""
        raw = urllib.parse.urlsplit(self.path).path
        try:
            relative = urllib.parse.unquote(raw, errors="strict")
        except UnicodeDecodeError:
            self.send_error(HTTPStatus.BAD_REQUEST, "the path is not UTF-8")
            return None
        if "\x00" in relative or "\\" in relative:
            self.send_error(HTTPStatus.BAD_REQUEST, "the path holds a NUL byte or a backslash")
            return None
        if relative == "/":
            relative = "/index.html"
        parts = relative.split("/")[1:]
        if relative.endswith("/") or any(part.startswith(".") or not part for part in parts):
            self.send_error(HTTPStatus.NOT_FOUND)  # a directory, a dotfile, "..", or "//"
            return None
        root = self.server.reports
        try:
            path = root.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        if (
            not path.is_relative_to(root)
            or not path.is_file()
            or any(part.startswith(".") for part in path.relative_to(root).parts)
        ):
            self.send_error(HTTPStatus.NOT_FOUND)  # led out or to a dotfile by a symlink, or not a regular file
            return None
        return path


class ReportsServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server for one reports folder that logs a failed request in one line."""

    daemon_threads = True

    def __init__(self, reports: Path, host: str, port: int) -> None:
        self.reports = reports.resolve()
        super().__init__((host, port), ReportsHandler)
        bound = self.server_address[0]
        names = {host.lower(), str(bound).lower(), *LOOPBACK_NAMES}
        if host in WILDCARDS:
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.allowed_hosts = frozenset(name for name in names if name not in WILDCARDS)

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        print(
            f"spray serve: request from {client_address[0]} failed ({type(error).__name__}: {error})", file=sys.stderr
        )


def make_server(reports: Path, host: str, port: int) -> ReportsServer:
    """Bind the server, or raise a one-line :class:`SprayError` (port in use, unknown host, ...)."""
    try:
        return ReportsServer(reports, host, port)
    except socket.gaierror:
        raise SprayError(
            f"--host {host!r} is not an address or a name this machine can resolve; give an address such as 127.0.0.1"
        ) from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SprayError(
                f"port {port} on {host} is in use (another `spray serve`?); pass another --port, "
                "or --port 0 to take a free one"
            ) from None
        raise SprayError(
            f"cannot serve on {host}:{port} ({error.strerror or error}); pass another --host or --port"
        ) from None


@click.command()
@click.option(
    "--reports",
    default="spray-reports",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder written by `spray run` / `spray report`.",
)
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="TCP port; 0 takes a free one."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. The default serves this machine only; bind another address "
    "only on a network you trust (the reports show your data). Requests must name "
    "this address or localhost as their Host.",
)
@one_line_errors
def serve(reports: str, port: int, host: str) -> None:
    """Serve the HTML reports for browsing (they also open straight from disk, offline).

    Only regular files inside the reports folder are served (no symlink leads out, no
    directory listing, no dotfile).
    """
    folder = Path(reports)
    if not (folder / "index.html").is_file() and not any(folder.glob("*.html")):
        raise SprayError(f"no reports in {folder}; run `spray run --class NAME` first or pass --reports")
    with make_server(folder, host, port) as server:
        bound_host, bound_port = server.server_address[:2]
        if isinstance(bound_host, bytes | bytearray):
            bound_host = bound_host.decode()
        click.echo(f"serving {folder} at http://{bound_host}:{bound_port}/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped")
