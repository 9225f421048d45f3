"""The settings of one audit, read from an ``audit.toml`` file.

The file has two tables: ``[run]`` holds :class:`workflows.config.RunConfig` keys (what to
analyse, exactly as ``spray run --config`` takes them) and ``[audit]`` holds the keys below
(which model version this is, where the history lives, when a change counts as a finding).
Any other key or table is an error that names it, so a typo never silently disables a check.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from spray.matching import SAME_STRATEGY_SIMILARITY
from workflows.config import ConfigError, RunConfig, load_config


@dataclass(frozen=True)
class Thresholds:
    """When a difference between two audits of the same model name is reported as a finding.

    None of these values comes from the thesis, which compares classes by eye (L2117-L2130);
    they are product defaults [X], meant to be tuned per model in ``audit.toml``.
    """

    prototype_similarity: float = SAME_STRATEGY_SIMILARITY
    """Cosine similarity of two cluster prototypes (mean pooled maps) above which the clusters
    of two audits are the same strategy; pairs are matched one to one (Hungarian assignment)."""
    suspicion: float = 1.0
    """A cluster whose suspicion score (``spray.analysis.suspicion``: the weaker of its separation
    and distinctness against chance, in units of their thresholds; comparable across classes) is
    at least this is *suspicious*: it is reported when it appears (new) or disappears (resolved).
    The default is the analysis's own threshold (``SUSPICION_THRESHOLD`` = 1, where the class
    page marks a cluster suspicious; written out here so that ``spray audit --help`` stays
    light, a test keeps them equal); 0 reports every unmatched cluster."""
    lambda2: float = 0.05
    """Absolute change of lambda_2 of L_sym (the cross-class ranking key, L2124) that is reported."""
    eigengap: float = 0.05
    """Absolute change of the eigengap at the chosen cluster count (L2087) that is reported."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.prototype_similarity <= 1.0:
            raise ConfigError(
                f"prototype_similarity = {self.prototype_similarity} is outside [0, 1]; "
                "give a cosine similarity such as 0.8"
            )
        for name in ("lambda2", "eigengap"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} = {getattr(self, name)} is negative; give a non-negative tolerance")


@dataclass(frozen=True)
class AuditConfig:
    """One audit: the run to make, which model version it is, and what counts as a finding."""

    run: RunConfig
    model_name: str
    """Audits are compared with the previous audit of the same model name."""
    version: str | None = None
    """A label for this model version (default: the start of the model fingerprint)."""
    history: Path | None = None
    """The audit history table (default: ``<store>.audit-history/`` beside the Zarr store)."""
    on_findings: str | None = None
    """A shell command run with the summary JSON path appended when an audit has findings."""
    verify_suspicious: bool = False
    """Test every newly suspicious cluster by intervention (``spray verify cluster``) and say in
    its finding whether the shortcut is confirmed (slower: three LRP passes per image tested)."""
    verify_samples: int | None = 100
    """Images per group of those tests (seeded subsample; None: all)."""
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def history_path(self) -> Path:
        if self.history is not None:
            return self.history
        store = Path(self.run.store)
        return store.with_name(store.name.removesuffix(".zarr") + ".audit-history")

    @property
    def reports_path(self) -> Path:
        return Path(self.run.reports)

    @property
    def log_path(self) -> Path:
        """Where scheduled audits append their output (in the reports folder)."""
        return self.reports_path / "audit.log"


_AUDIT_KEYS = {"model_name", "version", "history", "on_findings"}
_AUDIT_FLAGS = {"verify_suspicious"}
_AUDIT_COUNTS = {"verify_samples"}
_THRESHOLD_KEYS = {f.name for f in fields(Thresholds)}


def load_audit_config(path: str | Path, **overrides: Any) -> AuditConfig:
    """Read ``audit.toml``; ``overrides`` (not None) replace ``[audit]`` keys, e.g. ``on_findings``.

    Raises :class:`ConfigError` naming the file and the key for anything unknown or mistyped.
    """
    path = Path(path)
    document = _read_toml(path)
    for table in document:
        if table not in ("run", "audit"):
            raise ConfigError(f"unknown table or key {table!r} in {path}; an audit file has only [run] and [audit]")
    audit_table = document.get("audit", {})
    if not isinstance(audit_table, dict) or not isinstance(document.get("run", {}), dict):
        raise ConfigError(f"[run] and [audit] in {path} must be tables; write them as [run] and [audit] sections")
    run = _run_config(path)
    values: dict[str, Any] = {}
    thresholds: dict[str, float] = {}
    for raw_key, value in audit_table.items():
        key = raw_key.replace("-", "_")
        if key in _THRESHOLD_KEYS:
            thresholds[key] = _number(path, raw_key, value)
        elif key in _AUDIT_FLAGS:
            if not isinstance(value, bool):
                raise ConfigError(f"[audit] {raw_key} in {path} must be true or false, not {value!r}")
            values[key] = value
        elif key in _AUDIT_COUNTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(f"[audit] {raw_key} in {path} must be a whole number >= 2, not {value!r}")
            values[key] = value
        elif key in _AUDIT_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"[audit] {raw_key} in {path} must be a string, not {value!r}")
            values[key] = value
        else:
            known = ", ".join(sorted(_AUDIT_KEYS | _AUDIT_FLAGS | _AUDIT_COUNTS | _THRESHOLD_KEYS))
            raise ConfigError(f"unknown key {raw_key!r} in [audit] of {str(path)!r}; known keys: {known}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "history" in values:  # relative to the config file's folder, as the [run] paths
        values["history"] = path.resolve().parent / Path(values["history"]).expanduser()
    values.setdefault("model_name", run.model or "demo")
    return AuditConfig(run=run, thresholds=Thresholds(**thresholds), **values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"audit config {path} does not exist; pass an existing TOML file to --config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"audit config {path} is not valid TOML ({error}); fix the file") from None


def _run_config(path: Path) -> RunConfig:
    values = load_config(path, section="run")
    try:
        return RunConfig().replace(**values)
    except ConfigError as error:
        raise ConfigError(f"[run] of {str(path)!r}: {error}") from None


def _number(path: Path, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"[audit] {key} in {path} must be a number, not {value!r}")
    return float(value)


__all__ = ["AuditConfig", "Thresholds", "load_audit_config"]
