"""Nightly model audits: run the pipeline incrementally, record the result in a history table,
compare it with the previous audit of the same model name, and report what changed.

``run_audit(load_audit_config("audit.toml"))`` is what ``spray audit`` does; the scheduling
helpers (cron line, systemd units, in-process scheduler) are in ``workflows.audit.schedule``.
"""

from workflows.audit.comparison import Finding, compare_audits
from workflows.audit.history import AuditHistory
from workflows.audit.lock import AuditRunningError, audit_lock
from workflows.audit.run import EXIT_FINDINGS, EXIT_NO_FINDINGS, AuditResult, run_audit, run_on_findings
from workflows.audit.settings import AuditConfig, Thresholds, load_audit_config

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_NO_FINDINGS",
    "AuditConfig",
    "AuditHistory",
    "AuditResult",
    "AuditRunningError",
    "Finding",
    "Thresholds",
    "audit_lock",
    "compare_audits",
    "load_audit_config",
    "run_audit",
    "run_on_findings",
]
