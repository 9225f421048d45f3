"""``spray audit`` around a stand-in pipeline: exit codes, history, summary, page, lock,
config errors, missing model files, interruption, the notification hook and ``audit history``.

The stand-in returns hand-made results shaped as ``workflows.pipeline.RunResult``; the real
pipeline with two demo models is exercised in ``test_audit_demo.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from spray.cli import cli
from workflows.audit import AuditHistory, load_audit_config, run_audit
from workflows.audit.lock import audit_lock_path

GRID = 4
BODY = np.zeros((GRID, GRID))
BODY[1:3, 1:3] = 1.0
CORNER = np.zeros((GRID, GRID))
CORNER[3, 0] = 1.0  # the watermark's corner
EVIL = "<script>alert(1)</script>"

# The model "version" is told by the weights file's name: with the watermark cluster or without.
CLUSTERS = {
    "marked.pt": [(30, 0.05, BODY), (9, 1.3, CORNER)],
    "clean.pt": [(39, 0.05, BODY)],
}


def fake_run(config, progress=True):
    """A stand-in for ``workflows.pipeline.run`` (same signature, same result shape)."""
    clusters = CLUSTERS[Path(config.weights).name]
    outcome = SimpleNamespace(
        class_name=EVIL if "evil" in config.classes else "horse",
        n_samples=39,
        n_computed=0,
        eigenvalues=np.array([0.0, 0.01 * len(clusters), 0.4, 0.5, 0.6, 0.7]),
        eigengap=None,
        n_clusters=len(clusters),
        clusters=pd.DataFrame(
            {
                "size": [c[0] for c in clusters],
                "suspicion": [c[1] for c in clusters],
                "prototype": [c[2] for c in clusters],
            }
        ),
        analysis_key="key",
        settings_key="settings",
        report_page=Path(config.reports) / "class-horse.html",
        reused_analysis=True,
    )
    return SimpleNamespace(
        outcomes=[outcome],
        index_page=None,
        timings={},
        model_fingerprint="ab" * 32,
        dataset_fingerprint="cd" * 32,
        skipped={},
    )


@pytest.fixture(autouse=True)
def stand_in_pipeline(monkeypatch):
    module = types.ModuleType("workflows.pipeline")
    module.run = fake_run
    monkeypatch.setitem(sys.modules, "workflows.pipeline", module)


def write_config(
    folder: Path, weights: str, extra: str = "", classes: str = '["horse"]', model_name: str = "demo"
) -> Path:
    for name in CLUSTERS:
        (folder / name).write_bytes(b"weights")
    path = folder / "audit.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [run]
            classes = {classes}
            weights = "{folder / weights}"
            store = "{folder / "store.zarr"}"
            reports = "{folder / "reports"}"

            [audit]
            model_name = '{model_name}'
            {extra}
            """
        )
    )
    return path


def audit_cli(config: Path, *extra: str):
    return CliRunner().invoke(cli, ["audit", "--config", str(config), "--no-progress", *extra])


def test_exit_codes_follow_the_findings_and_the_history_keeps_every_audit(tmp_path):
    config = write_config(tmp_path, "marked.pt")
    first = audit_cli(config)
    assert first.exit_code == 0, first.output
    assert "first audit" in first.output
    again = audit_cli(config)
    assert again.exit_code == 0 and "0 findings" in again.output
    config = write_config(tmp_path, "clean.pt")
    fixed = audit_cli(config)
    assert fixed.exit_code == 3, fixed.output
    assert (
        "FINDING horse: cluster 1 of the previous audit (9 samples, suspicion 1.3) disappeared (resolved)"
        in fixed.output
    )
    history = AuditHistory(tmp_path / "store.audit-history").read()
    assert history["audit_id"].nunique() == 3 and len(history) == 2 + 2 + 1
    summaries = sorted((tmp_path / "reports/audits").glob("*.json"))
    assert len(summaries) == 3
    latest = json.loads(max(summaries, key=lambda p: p.stat().st_mtime).read_text())
    assert latest["exit_code"] == 3 and {f["kind"] for f in latest["findings"]} == {
        "resolved_cluster",
        "cluster_count_change",
    }
    assert latest["previous_audit_id"] == history["audit_id"].unique()[1]


def test_the_audit_page_puts_the_findings_first_and_escapes_user_strings(tmp_path):
    config = write_config(tmp_path, "marked.pt", classes='["evil"]')
    assert audit_cli(config).exit_code == 0
    config = write_config(tmp_path, "clean.pt", classes='["evil"]')
    result = run_audit(load_audit_config(config), progress=False)
    page = result.page_path.read_text()
    assert "https://cdn.bokeh.org" not in page and "Bokeh" in page  # resources inline: opens offline
    main = page[page.index('<main class="spray-report">') :]  # the class pages' layout and style
    findings, classes = main[: main.index("<h2>Classes</h2>")], main[main.index("<h2>Classes</h2>") :]
    assert re.search(r"\d+ findings? since audit", findings) and "resolved" in findings
    assert findings.count('alt="cluster prototype (mean map)"') == 1  # the vanished watermark cluster
    assert EVIL not in findings + classes and "&lt;script&gt;alert(1)&lt;/script&gt;" in findings
    assert '<a href="../class-horse.html">&lt;script&gt;' in classes
    assert page.index(json.dumps("findings")[1:-1]) < page.index("lambda_2 of L_sym per class")


def test_an_unknown_key_is_named(tmp_path):
    config = write_config(tmp_path, "marked.pt", extra="lambda_two = 0.1")
    result = audit_cli(config)
    assert result.exit_code == 1
    assert "unknown key 'lambda_two' in [audit]" in result.output and "lambda2" in result.output
    config.write_text(config.read_text().replace("[run]", "[run]\nworkerz = 2"))
    result = audit_cli(config)
    assert result.exit_code == 1 and "unknown key 'workerz'" in result.output
    config.write_text("[run\n")
    result = audit_cli(config)
    assert result.exit_code == 1 and "not valid TOML" in result.output
    (tmp_path / "t.toml").write_text('[audit]\nmodel_name = "x"\n[schedule]\nat = "02:00"\n')
    result = audit_cli(tmp_path / "t.toml")
    assert result.exit_code == 1 and "'schedule'" in result.output


def test_wrongly_typed_thresholds_are_named(tmp_path):
    config = write_config(tmp_path, "marked.pt", extra='prototype_similarity = "high"')
    result = audit_cli(config)
    assert result.exit_code == 1 and "prototype_similarity" in result.output and "number" in result.output
    config = write_config(tmp_path, "marked.pt", extra="prototype_similarity = 1.5")
    assert "outside [0, 1]" in audit_cli(config).output


def test_a_missing_model_file_is_a_clear_error_before_any_work(tmp_path):
    config = write_config(tmp_path, "marked.pt")
    (tmp_path / "marked.pt").unlink()
    result = audit_cli(config)
    assert result.exit_code == 1
    assert f"weights file {tmp_path / 'marked.pt'} does not exist" in result.output
    assert not (tmp_path / "store.audit-history").exists()
    (tmp_path / "marked.pt").write_bytes(b"weights")
    config.write_text(config.read_text().replace("[run]", f'[run]\nmodel = "{tmp_path}/net.py:build"'))
    assert f"model file {tmp_path}/net.py does not exist" in audit_cli(config).output


def test_usage_errors_exit_2(tmp_path):
    assert CliRunner().invoke(cli, ["audit"]).exit_code == 2
    assert CliRunner().invoke(cli, ["audit", "--bogus"]).exit_code == 2
    assert CliRunner().invoke(cli, ["audit", "history"]).exit_code == 2


def test_the_on_findings_hook_gets_the_summary_path(tmp_path):
    write_config(tmp_path, "marked.pt")
    assert audit_cli(tmp_path / "audit.toml").exit_code == 0
    received = tmp_path / "received.txt"
    config = write_config(tmp_path, "clean.pt", extra=f'on_findings = "echo never >> {tmp_path / "unused.txt"}; echo"')
    result = audit_cli(config, "--on-findings", f"sh -c 'echo \"$0 $SPRAY_AUDIT_SUMMARY\" > {received}'")
    assert result.exit_code == 3
    argument, environment = received.read_text().split()
    assert argument == environment and json.loads(Path(argument).read_text())["exit_code"] == 3
    assert not (tmp_path / "unused.txt").exists()  # the flag overrides the config


def test_no_hook_runs_without_findings(tmp_path):
    config = write_config(tmp_path, "marked.pt", extra=f'on_findings = "touch {tmp_path / "ran"}"')
    assert audit_cli(config).exit_code == 0
    assert not (tmp_path / "ran").exists()


SLOW_AUDIT = """
import sys, time, types
def slow_run(config, progress=True):
    open({started!r}, "w").close()
    time.sleep(120)
module = types.ModuleType("workflows.pipeline")
module.run = slow_run
sys.modules["workflows.pipeline"] = module
from spray.cli import main
main(["audit", "--config", {config!r}, "--no-progress"])
"""


def test_overlap_lock_then_a_killed_audit_is_taken_over_without_losing_history(tmp_path):
    config = write_config(tmp_path, "marked.pt")
    assert audit_cli(config).exit_code == 0
    started = tmp_path / "started"
    script = SLOW_AUDIT.format(started=str(started), config=str(config))
    slow = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the background audit did not start"
        second = audit_cli(config)
        assert second.exit_code == 1
        assert f"another audit of store {tmp_path / 'store.zarr'} is running (pid {slow.pid}" in second.output
    finally:
        os.kill(slow.pid, signal.SIGKILL)  # interrupted mid-audit: its lock file stays behind
        slow.wait()
    assert audit_lock_path(tmp_path / "store.zarr").exists()
    rerun = audit_cli(config)
    assert rerun.exit_code == 0, rerun.output  # the dead audit's lock is stale and taken over
    history = AuditHistory(tmp_path / "store.audit-history").read()
    assert history["audit_id"].nunique() == 2 and len(history) == 4


def test_an_audit_interrupted_inside_the_pipeline_changes_no_history(tmp_path, monkeypatch):
    config = write_config(tmp_path, "marked.pt")
    assert audit_cli(config).exit_code == 0

    def interrupted(config, progress=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["workflows.pipeline"], "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_audit(load_audit_config(config), progress=False)
    assert not audit_lock_path(tmp_path / "store.zarr").exists()  # released on the way out
    monkeypatch.setattr(sys.modules["workflows.pipeline"], "run", fake_run)
    assert run_audit(load_audit_config(write_config(tmp_path, "clean.pt")), progress=False).exit_code == 3
    history = AuditHistory(tmp_path / "store.audit-history").read()
    assert history["audit_id"].nunique() == 2


def test_history_command_prints_one_row_per_audit_and_class(tmp_path):
    config = write_config(tmp_path, "marked.pt")
    audit_cli(config)
    audit_cli(write_config(tmp_path, "clean.pt"))
    result = CliRunner().invoke(cli, ["audit", "history", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "lambda_2" in lines[0] and "max_suspicion" in lines[0] and len(lines) == 3
    assert "1.3" in lines[1] and "0.05" in lines[2]  # the watermark cluster's suspicion, then without it
    per_cluster = CliRunner().invoke(
        cli, ["audit", "history", "--history", str(tmp_path / "store.audit-history"), "--clusters"]
    )
    assert len(per_cluster.output.splitlines()) == 1 + 3
    empty = CliRunner().invoke(cli, ["audit", "history", "--history", str(tmp_path / "nothing")])
    assert empty.exit_code == 0 and "no audits recorded" in empty.output


HOSTILE_MODEL = '<img src=x onerror="alert(2)">'


@pytest.mark.browser
def test_the_audit_page_renders_offline_in_chromium(tmp_path):
    """The page in real headless Chromium from disk, network cut off: plots drawn, no errors,
    hostile class and model names stay text; a screenshot goes to test-artifacts/."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail("headless Chromium is missing; run `bash scripts/install-system-packages.sh` (CI does)")
    for weights, expected_exit in (("marked.pt", 0), ("clean.pt", 3), ("clean.pt", 0)):  # three timeline points
        config = write_config(tmp_path, weights, classes='["evil"]', model_name=HOSTILE_MODEL)
        result = run_audit(load_audit_config(config), progress=False)
        assert result.exit_code == expected_exit
    errors, dialogs, network = [], [], []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("file:", "data:"))
                else (network.append(route.request.url), route.abort())
            ),
        )
        page.goto(result.page_path.resolve().as_uri())
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle")
        page.wait_for_timeout(500)
        canvases = [
            box for box in (c.bounding_box() for c in page.locator("canvas").all()) if box and box["width"] > 100
        ]
        shown = " ".join(page.locator("h1, a").all_inner_texts())  # CSS locators pierce Bokeh's shadow DOM
        (Path(__file__).resolve().parents[1] / "test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(Path(__file__).resolve().parents[1] / "test-artifacts/audit-page.png"), full_page=True)
        browser.close()
    assert errors == [] and dialogs == [] and network == []
    assert len(canvases) >= 2  # the lambda_2 and suspicion timelines
    assert EVIL in shown and HOSTILE_MODEL in shown  # shown as text, not run


def test_relative_paths_in_a_config_are_read_from_the_config_s_folder(tmp_path, monkeypatch):
    folder = tmp_path / "audits"
    folder.mkdir()
    (folder / "audit.toml").write_text(
        textwrap.dedent(
            """
        [run]
        classes = ["horse"]
        model = "nets/net.py:build"
        weights = "w/v7.pt"
        store = "store.zarr"
        reports = "reports"
        data = "demo"
        [audit]
        history = "history"
        """
        )
    )
    monkeypatch.chdir(tmp_path)  # started elsewhere, as cron or a CI job may
    config = load_audit_config("audits/audit.toml")
    assert config.run.store == str(folder / "store.zarr") and config.run.reports == str(folder / "reports")
    assert config.run.model == f"{folder / 'nets/net.py'}:build" and config.run.weights == str(folder / "w/v7.pt")
    assert config.run.data == "demo" and config.history_path == folder / "history"


def test_the_summary_is_written_last_so_a_crash_leaves_no_orphan_summary(tmp_path, monkeypatch):
    config = write_config(tmp_path, "marked.pt")

    def crash(self, frame):
        raise OSError("disk full")

    monkeypatch.setattr(AuditHistory, "append", crash)
    with pytest.raises(OSError):
        run_audit(load_audit_config(config), progress=False)
    assert not list((tmp_path / "reports" / "audits").glob("*.json"))


def test_skipped_classes_are_listed_in_the_summary_and_the_output(tmp_path, monkeypatch):
    def with_a_skipped_class(config, progress=True):
        result = fake_run(config, progress)
        result.skipped = {"zebra": "class 'zebra' has 2 usable relevance maps of 2"}
        return result

    monkeypatch.setattr(sys.modules["workflows.pipeline"], "run", with_a_skipped_class)
    result = audit_cli(write_config(tmp_path, "marked.pt"))
    assert result.exit_code == 0 and "zebra: skipped, class 'zebra' has 2 usable" in result.output
    (summary,) = (tmp_path / "reports" / "audits").glob("*.json")
    assert json.loads(summary.read_text())["skipped_classes"] == {
        "zebra": "class 'zebra' has 2 usable relevance maps of 2"
    }


def test_verify_suspicious_tests_each_new_suspicious_cluster_and_says_if_it_is_confirmed(tmp_path, monkeypatch):
    import workflows.verify_cluster as verify_module

    tested = []

    def fake_verify(config, settings, progress=True):
        tested.append((settings.class_name, settings.cluster, settings.samples))
        return SimpleNamespace(to_dict=lambda: {"confirmed": True, "headline": "remove and paste beat their controls"})

    monkeypatch.setattr(verify_module, "verify_cluster", fake_verify)
    extra = "verify_suspicious = true\nverify_samples = 40"
    assert audit_cli(write_config(tmp_path, "clean.pt", extra=extra)).exit_code == 0
    result = audit_cli(write_config(tmp_path, "marked.pt", extra=extra))
    assert result.exit_code == 3 and "confirmed shortcut by intervention" in result.output
    assert tested == [("horse", 1, 40)]
    summaries = [json.loads(path.read_text()) for path in (tmp_path / "reports" / "audits").glob("*.json")]
    (finding,) = [f for summary in summaries for f in summary["findings"] if f["kind"] == "new_cluster"]
    assert finding["details"]["verification"]["confirmed"] is True


def tag_stored_cluster(store_path: Path, prototype: np.ndarray, kind: str) -> None:
    """Store an analysis of "horse" whose cluster 1 has ``prototype`` and tag it, as `spray tag` does."""
    from store_helpers import make_group

    from relevance_store import open_store
    from relevance_store.tags import tag_cluster

    store = open_store(store_path, "a")
    key = next((k for k in store.class_keys() if k.class_name == "horse"), None)
    group = store.class_group(key) if key else make_group(store, "horse", grids=(GRID,))
    clusters = pd.DataFrame({"cluster": [0, 1], "size": [30, 9], "suspicion": [0.05, 1.3]})
    analysis = group.write_analysis({"kind": kind}, {"prototypes": np.stack([BODY, CORNER])}, {"clusters": clusters})
    tag_cluster(group, 1, kind, analysis=analysis)


def test_tags_follow_their_cluster_through_audits(tmp_path):
    """A cluster tagged legitimate raises no finding when it appears; one tagged as a shortcut is
    reported as still present in every audit that finds it (issue 17 item 2)."""
    config = write_config(tmp_path, "clean.pt")
    assert audit_cli(config).exit_code == 0  # baseline: no watermark cluster
    tag_stored_cluster(tmp_path / "store.zarr", CORNER, "legitimate")
    config = write_config(tmp_path, "marked.pt")
    accepted = audit_cli(config)
    assert accepted.exit_code == 0 and "0 findings" in accepted.output, accepted.output
    assert "still present" not in accepted.output

    untagged = tmp_path / "untagged"
    untagged.mkdir()
    assert audit_cli(write_config(untagged, "clean.pt")).exit_code == 0
    flagged = audit_cli(write_config(untagged, "marked.pt"))  # the same change without the tag is a finding
    assert flagged.exit_code == 3 and "appeared" in flagged.output, flagged.output

    tag_stored_cluster(tmp_path / "store.zarr", CORNER, "shortcut")  # the newest tag of a strategy wins
    again = audit_cli(config)
    assert "horse: cluster 1 (9 samples), tagged as a shortcut, is still present" in again.output, again.output
    latest = json.loads(max((tmp_path / "reports/audits").glob("*.json"), key=lambda p: p.stat().st_mtime).read_text())
    assert any("tagged as a shortcut" in notice for notice in latest["notices"])
