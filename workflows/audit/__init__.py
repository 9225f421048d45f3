"""Nightly model audits: run the pipeline incrementally, record the result in a history table,
compare it with the previous audit of the same model name, and report what changed.

``run_audit(load_audit_config("audit.toml"))`` is what ``spray audit`` does; the scheduling
helpers (cron line, systemd units, in-process scheduler) are in ``workflows.audit.schedule``.
Names are imported on first use, so ``spray audit --help`` does not load pandas or scipy.
"""

from __future__ import annotations

import importlib

# name -> module
_EXPORTS = {
    "EXIT_FINDINGS": "workflows.audit.run",
    "EXIT_NO_FINDINGS": "workflows.audit.run",
    "AuditResult": "workflows.audit.run",
    "run_audit": "workflows.audit.run",
    "run_on_findings": "workflows.audit.run",
    "AuditConfig": "workflows.audit.settings",
    "Thresholds": "workflows.audit.settings",
    "load_audit_config": "workflows.audit.settings",
    "AuditHistory": "workflows.audit.history",
    "AuditRunningError": "workflows.audit.lock",
    "audit_lock": "workflows.audit.lock",
    "Finding": "workflows.audit.comparison",
    "compare_audits": "workflows.audit.comparison",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workflows.audit' has no attribute {name!r}")
