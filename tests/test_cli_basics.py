"""The command line's front matter: help, version, exit codes, serve binding."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request

from click.testing import CliRunner

import spray
from spray.cli import cli


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and spray.__version__ in result.output
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0 and "Spectral Relevance Analysis" in result.output


def test_unknown_command_is_a_usage_error_with_exit_code_2():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_help_does_not_import_torch():
    """`spray --help` must stay fast: the heavy stack is imported only when a command runs."""
    code = "import sys; from spray.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_serve_binds_loopback_by_default(tmp_path, monkeypatch):
    from spray.cli import serve as serve_module

    (tmp_path / "index.html").write_text("<p>hello</p>")
    captured = {}
    original = serve_module.make_server

    def recording(reports, host, port):  # the default host, on a free port
        captured["host"] = host
        captured["server"] = original(reports, host, 0)
        return captured["server"]

    monkeypatch.setattr(serve_module, "make_server", recording)
    thread = threading.Thread(
        target=lambda: CliRunner().invoke(serve_module.serve, ["--reports", str(tmp_path)]), daemon=True
    )
    thread.start()
    for _ in range(100):
        if "server" in captured:
            break
        threading.Event().wait(0.05)
    server = captured["server"]
    port = server.server_address[1]
    assert captured["host"] == "127.0.0.1" and server.server_address[0] == "127.0.0.1"
    assert b"hello" in urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read()
    server.shutdown()
