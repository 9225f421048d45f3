"""One audit: run the pipeline (incrementally), record it, compare it with the last one, alert.

The order of the steps is what makes an interrupted audit harmless: the pipeline resumes
from the store; the audit page is written first; the history rows are committed in one
atomic rename; the summary JSON (what hooks and people read first) comes last, so a summary
never names an audit that is not recorded or a page that does not exist. A crash before the
history commit leaves the history exactly as it was, so the rerun compares against the same
previous audit and raises the same findings; nothing that was recorded is ever rewritten.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spray.atomic import write_text_atomically
from spray.errors import ModelError, SprayError, StoreError
from workflows.audit.comparison import NEW_CLUSTER, Finding, audit_notices, compare_audits
from workflows.audit.history import AuditHistory, last_audit
from workflows.audit.lock import audit_lock
from workflows.audit.record import audit_frame
from workflows.audit.settings import AuditConfig
from workflows.config import RunConfig

EXIT_NO_FINDINGS = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3
"""Exit codes for cron and CI: findings are not an error, but a caller must be able to see them."""


@dataclass(frozen=True)
class AuditResult:
    """What an audit produced; ``exit_code`` is what ``spray audit`` exits with."""

    audit_id: str
    findings: list[Finding]
    summary_path: Path
    page_path: Path
    history_file: Path
    run_result: Any
    previous_audit_id: str | None
    notices: list[str] = field(default_factory=list)
    """Not findings: classes re-baselined after a settings change, tagged shortcuts still present."""

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.findings else EXIT_NO_FINDINGS


Pipeline = Callable[..., Any]
"""``workflows.pipeline.run(config: RunConfig, progress: bool) -> RunResult``."""


def run_audit(config: AuditConfig, *, pipeline: Pipeline | None = None, progress: bool = True) -> AuditResult:
    """Audit the model of ``config`` once; raises a ``SprayError`` for bad input or a busy store."""
    check_model_files(config.run)
    if pipeline is None:
        from workflows.pipeline import run

        pipeline = run
    with audit_lock(config.run.store):
        started = _now()
        audit_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        run_result = pipeline(config.run, progress=progress)
        frame = audit_frame(
            run_result,
            audit_id=audit_id,
            started_at=started,
            finished_at=_now(),
            model_name=config.model_name,
            model_version=config.version or run_result.model_fingerprint[:12],
            tags=cluster_tags(config.run.store, run_result, config.thresholds.prototype_similarity),
        )
        history = AuditHistory(config.history_path)
        earlier = history.read(config.model_name)
        previous = last_audit(earlier)
        findings = compare_audits(previous, frame, config.thresholds)
        if config.verify_suspicious:
            findings = [verify_finding(config, finding, progress) for finding in findings]
        notices = audit_notices(previous, frame, config.thresholds)
        previous_id = None if previous is None else str(previous["audit_id"].iloc[0])
        folder = config.reports_path / "audits"
        summary_path = folder / f"{audit_id}.json"
        page_path = folder / f"{audit_id}.html"
        summary = _summary(frame, findings, notices, run_result, previous_id, page_path)
        from reports.audit_page import write_audit_page

        timeline = frame if earlier.empty else pd.concat([earlier, frame], ignore_index=True)
        write_audit_page(page_path, timeline, summary)
        history_file = history.append(frame)
        write_text_atomically(summary_path, json.dumps(summary, indent=2, default=str))
    return AuditResult(audit_id, findings, summary_path, page_path, history_file, run_result, previous_id, notices)


def check_model_files(run: RunConfig) -> None:
    """Fail before any work when the model's weights or factory file named in the config is missing."""
    if run.weights is not None and not Path(run.weights).is_file():
        raise ModelError(
            f"weights file {run.weights} does not exist; fix 'weights' in the [run] table of the audit config"
        )
    if run.model is not None and ":" in run.model:
        module = run.model.rsplit(":", 1)[0]
        if module.endswith(".py") and not Path(module).is_file():
            raise ModelError(f"model file {module} does not exist; fix 'model' in the [run] table of the audit config")


def run_on_findings(command: str, summary_path: Path) -> int:
    """Run the notification hook: ``command`` with the summary path appended (also in
    ``$SPRAY_AUDIT_SUMMARY``), through the shell; returns its exit status."""
    environment = {**os.environ, "SPRAY_AUDIT_SUMMARY": str(summary_path)}
    return subprocess.run(f"{command} {shlex.quote(str(summary_path))}", shell=True, env=environment).returncode


def verify_finding(config: AuditConfig, finding: Finding, progress: bool) -> Finding:
    """A new suspicious cluster, tested by intervention (``spray verify cluster``): its message says
    whether the shortcut is confirmed and its details carry the test's outcome."""
    if finding.kind != NEW_CLUSTER:
        return finding
    from workflows.verify_cluster import ClusterSettings, verify_cluster

    settings = ClusterSettings(finding.class_name, int(finding.details["cluster"]), samples=config.verify_samples)
    try:
        tested = verify_cluster(config.run, settings, progress=progress).to_dict()
    except SprayError as error:  # e.g. a cluster of one image: say so, keep the finding
        tested = {"confirmed": None, "headline": f"not tested: {error}"}
    verdict = {True: "confirmed shortcut by intervention", False: "not confirmed by intervention"}.get(
        tested["confirmed"], "not tested"
    )
    return dataclasses.replace(
        finding, message=f"{finding.message}; {verdict}", details={**finding.details, "verification": tested}
    )


def cluster_tags(store: str, run_result: Any, min_similarity: float) -> dict[str, list[str]]:
    """Each analysed class's clusters' tag kinds ("" for none), matched from every tag given on the
    class in the store (``relevance_store.tags``), in cluster-table order."""
    from relevance_store import open_store
    from relevance_store.tags import class_tags, tags_for_clusters

    try:
        opened = open_store(store, "r")
    except StoreError:  # nothing stored, nothing tagged
        return {}
    kinds = {}
    for outcome in run_result.outcomes:
        prototypes = np.stack([np.asarray(p, dtype=float) for p in outcome.clusters["prototype"]])
        found = tags_for_clusters(class_tags(opened, outcome.class_name), prototypes, min_similarity)
        kinds[outcome.class_name] = [tag.kind if tag else "" for tag in found]
    return kinds


def _summary(
    frame: pd.DataFrame,
    findings: list[Finding],
    notices: list[str],
    run_result: Any,
    previous_id: str | None,
    page: Path,
) -> dict:
    first = frame.iloc[0] if len(frame) else None
    classes = [
        {
            "class_name": outcome.class_name,
            "n_samples": int(outcome.n_samples),
            "n_computed": int(outcome.n_computed),
            "reused_analysis": bool(outcome.reused_analysis),
            "n_clusters": int(outcome.n_clusters),
            "report_page": str(outcome.report_page) if outcome.report_page else None,
        }
        for outcome in run_result.outcomes
    ]
    return {
        "audit_id": None if first is None else first["audit_id"],
        "started_at": None if first is None else first["started_at"].isoformat(),
        "finished_at": None if first is None else first["finished_at"].isoformat(),
        "model_name": None if first is None else first["model_name"],
        "model_version": None if first is None else first["model_version"],
        "model_fingerprint": run_result.model_fingerprint,
        "dataset_fingerprint": run_result.dataset_fingerprint,
        "previous_audit_id": previous_id,
        "exit_code": EXIT_FINDINGS if findings else EXIT_NO_FINDINGS,
        "findings": [finding.to_dict() for finding in findings],
        "notices": notices,
        "classes": classes,
        "skipped_classes": dict(run_result.skipped),
        "page": str(page),
    }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_NO_FINDINGS",
    "EXIT_USAGE",
    "AuditResult",
    "check_model_files",
    "run_audit",
    "run_on_findings",
]
