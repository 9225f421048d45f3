"""Report and audit pages are replaced atomically: a write that fails midway (here: the file
size limit, as a full disk would) leaves the old page whole and no temporary file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

FAIL_MIDWAY = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    import numpy as np, pandas as pd
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    page = Path(sys.argv[1])
    if sys.argv[2] == "class":
        from bokeh.models import Div
        from reports.page import Block, write_page
        roots = [Div(text="new", name="div")]
        write = lambda: write_page(page, "spray: class horse", roots, [Block(root="div"), Block(html="<p>new</p>")],
                                   assets_root=page.parent.parent)  # BokehJS outside the folder listed below
    else:
        from reports.audit_page import write_audit_page
        row = {"audit_id": "a1", "started_at": pd.Timestamp("2026-12-01", tz="UTC"), "model_version": "v2",
               "class_name": "horse", "lambda_2": 0.1, "suspicion": 0.3, "n_clusters": 2, "cluster": 0,
               "prototype": np.zeros(400, np.float32)}
        summary = {"audit_id": "a1", "model_name": "demo", "model_version": "v2", "previous_audit_id": None,
                   "findings": [], "classes": []}
        write = lambda: write_audit_page(page, pd.DataFrame([row]), summary)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        write()
    except OSError as error:
        print("failed:", error.strerror)
    else:
        print("written")
""")


@pytest.mark.parametrize("kind", ["class", "audit"])
def test_a_page_write_that_fails_midway_leaves_the_old_page_whole_and_no_temporary_file(tmp_path, kind):
    page = tmp_path / "reports" / "page.html"
    page.parent.mkdir()
    old = "<html>the old page, complete</html>"
    page.write_text(old)
    done = subprocess.run(
        [sys.executable, "-c", FAIL_MIDWAY, str(page), kind], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "failed: File too large", done.stdout + done.stderr
    assert page.read_text() == old
    assert [p.name for p in page.parent.iterdir()] == ["page.html"]


def test_an_atomic_write_replaces_the_page_and_keeps_its_mode(tmp_path):
    from spray.atomic import write_text_atomically

    page = tmp_path / "page.html"
    page.write_text("old")
    page.chmod(0o640)
    write_text_atomically(page, "new ü")
    assert page.read_text(encoding="utf-8") == "new ü" and (page.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]
