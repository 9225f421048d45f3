"""`spray serve` as a real server on 127.0.0.1: only regular files inside the reports folder, no
listings, no dotfiles, only requests for this host, and one line (not a traceback) on errors."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from spray.cli import cli


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Files outside the reports folder that no request may reach."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "secret.html").write_text("SECRET outside the reports")
    (folder / "passwd").write_text("root:x:0:0 SECRET")
    return folder


@pytest.fixture(scope="module")
def reports(tmp_path_factory, outside):
    folder = tmp_path_factory.mktemp("reports")
    (folder / "index.html").write_text("<p>the index</p>")
    (folder / "horse.html").write_text("<p>horse page</p>")
    (folder / ".hidden.html").write_text("SECRET dotfile")
    (folder / "assets").mkdir()
    (folder / "assets" / "app.js").write_text("var ok = 1;")
    (folder / "assets" / ".env").write_text("SECRET=1")
    (folder / "passwd.html").symlink_to(outside / "passwd")  # a file symlink leading out
    (folder / "linked").symlink_to(outside, target_is_directory=True)  # a directory symlink leading out
    (folder / "alias.html").symlink_to(folder / "horse.html")  # a symlink that stays inside: fine
    (folder / "shown.html").symlink_to(folder / ".hidden.html")  # a symlink to a dotfile: not fine
    return folder


@pytest.fixture(scope="module")
def server(reports, tmp_path_factory):
    """`spray serve` in its own process on a free port; yields (port, stderr file)."""
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "spray", "serve", "--reports", str(reports), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
    yield port, log
    process.terminate()
    process.wait(timeout=10)


def get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_index_and_the_pages_are_served(server):
    port, _ = server
    assert get(port, "/") == (200, b"<p>the index</p>")
    assert get(port, "/horse.html") == (200, b"<p>horse page</p>")
    assert get(port, "/assets/app.js") == (200, b"var ok = 1;")
    assert get(port, "/alias.html") == (200, b"<p>horse page</p>")


@pytest.mark.parametrize(
    "path",
    [
        "/passwd.html",
        "/linked/secret.html",
        "/linked/passwd",
        "/linked/",
        "/%2e%2e/secret.html",
        "/assets/..%2f..%2fsecret.html",
    ],
)
def test_no_symlink_or_dot_dot_leads_out_of_the_reports_folder(server, path):
    status, body = get(server[0], path)
    assert status == 404 and b"SECRET" not in body


@pytest.mark.parametrize("path", ["/assets/", "/assets", "/linked"])
def test_directories_are_not_listed(server, path):
    status, body = get(server[0], path)
    assert status == 404 and b"app.js" not in body and b"secret" not in body


@pytest.mark.parametrize("path", ["/.hidden.html", "/assets/.env", "/%2ehidden.html", "/shown.html"])
def test_dotfiles_are_not_served(server, path):
    status, body = get(server[0], path)
    assert status == 404 and b"SECRET" not in body


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_requests_for_this_host_or_localhost_are_answered(server, host):
    port = server[0]
    assert get(port, "/", host=f"{host}:{port}")[0] == 200
    assert get(port, "/", host=host)[0] == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil"])
def test_a_request_for_another_host_is_refused_as_dns_rebinding_would_send(server, host):
    status, body = get(server[0], "/horse.html", host=host)
    assert status in (403, 421) and b"horse page" not in body


def test_a_nul_byte_in_the_path_is_a_bad_request_and_no_traceback(server):
    port, log = server
    status, _ = get(port, "/%00")
    assert status == 400
    assert get(port, "/")[0] == 200  # still serving
    assert "Traceback" not in log.read_text()


def test_a_busy_port_is_one_line_that_suggests_another_port(tmp_path):
    (tmp_path / "index.html").write_text("<p>x</p>")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--reports", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and f"port {port}" in result.output and "--port" in result.output


def test_an_unresolvable_host_is_one_line(tmp_path):
    (tmp_path / "index.html").write_text("<p>x</p>")
    result = CliRunner().invoke(
        cli, ["serve", "--reports", str(tmp_path), "--host", "no-such-host.invalid", "--port", "0"]
    )
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "--host" in result.output
