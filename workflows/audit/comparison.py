"""What changed between two audits of the same model name: the findings.

Clusters carry no identity across runs (labels are arbitrary, L2087), so a cluster of the
previous audit and one of this audit are *the same strategy* when their prototypes (mean
pooled relevance maps) point the same way: cosine similarity at least a threshold, matched
one to one by the Hungarian assignment (``scipy.optimize.linear_sum_assignment``) that
maximises total similarity. An unmatched suspicious cluster is new (this audit) or resolved
(previous audit). Class-level changes: the cluster count changing, lambda_2 (the ranking key
of Fig. 6.5, L2124) moving more than a tolerance, and, at an unchanged cluster count, the
eigengap after it (L2087) moving more than a tolerance. A class that
only one of the two audits analysed is not compared: there is nothing to compare it with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spray.matching import match_clusters, prototype_similarity
from workflows.audit.settings import Thresholds

NEW_CLUSTER = "new_cluster"
RESOLVED_CLUSTER = "resolved_cluster"
LAMBDA2_SHIFT = "lambda2_shift"
EIGENGAP_SHIFT = "eigengap_shift"
CLUSTER_COUNT_CHANGE = "cluster_count_change"
TAGGED = ("legitimate", "shortcut")
"""Clusters a person tagged (``spray tag``) raise no new/resolved finding, nor does the change of
the cluster count and spectrum they alone explain: legitimate ones never again, a shortcut one is
reported as still present (:func:`audit_notices`)."""


@dataclass(frozen=True)
class Finding:
    """One change worth telling a person about, as one sentence plus its numbers."""

    kind: str
    class_name: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_audits(previous: pd.DataFrame | None, current: pd.DataFrame, thresholds: Thresholds) -> list[Finding]:
    """The findings of ``current`` against ``previous`` (history rows, see ``record.SCHEMA``).

    A class analysed with other settings than last time (``settings_key``: the maps' settings
    and every analysis parameter) is not compared: its clusters and spectrum are other
    quantities, so this audit is its new baseline (see :func:`audit_notices`)."""
    if previous is None or previous.empty:
        return []
    findings: list[Finding] = []
    previous_classes = dict(tuple(previous.groupby("class_name", sort=True)))
    for class_name, now in current.groupby("class_name", sort=True):
        before = previous_classes.get(class_name)
        if before is not None and not _settings_changed(before, now):
            findings += _compare_class(str(class_name), before, now, thresholds)
    return findings


def audit_notices(previous: pd.DataFrame | None, current: pd.DataFrame, thresholds: Thresholds) -> list[str]:
    """What a person should know that is not a finding: classes re-baselined because their
    settings changed, and clusters tagged as shortcuts that are still there."""
    notices = []
    previous_classes = dict(tuple(previous.groupby("class_name", sort=True))) if previous is not None else {}
    for class_name, now in current.groupby("class_name", sort=True):
        before = previous_classes.get(class_name)
        if before is not None and _settings_changed(before, now):
            notices.append(
                f"{class_name}: analysed with other settings than the previous audit (maps settings or "
                "analysis parameters changed), so it is not compared; this audit is its new baseline"
            )
        for _, cluster in now[now["tag"] == "shortcut"].iterrows():
            notices.append(
                f"{class_name}: cluster {int(cluster['cluster'])} ({int(cluster['cluster_size'])} samples), "
                "tagged as a shortcut, is still present"
            )
    return notices


def _settings_changed(before: pd.DataFrame, now: pd.DataFrame) -> bool:
    """Whether two audits of a class used other settings (unknown in older history rows: assumed equal)."""
    old, new = before["settings_key"].iloc[0], now["settings_key"].iloc[0]
    return bool(old) and bool(new) and old != new


def _compare_class(class_name: str, before: pd.DataFrame, now: pd.DataFrame, thresholds: Thresholds) -> list[Finding]:
    similarity = prototype_similarity(_prototypes(before), _prototypes(now))
    pairs = match_clusters(similarity, thresholds.prototype_similarity)
    findings = _cluster_findings(class_name, before, now, similarity, pairs, thresholds)
    first_before, first_now = before.iloc[0], now.iloc[0]
    old_count, new_count = int(first_before["n_clusters"]), int(first_now["n_clusters"])
    if old_count != new_count and new_count - old_count == _tagged_unmatched(now, pairs, 1) - _tagged_unmatched(
        before, pairs, 0
    ):
        return findings  # the change is a tagged cluster coming or going: a person has already judged it
    checks = [(LAMBDA2_SHIFT, "lambda_2", thresholds.lambda2, "lambda_2")]
    if old_count == new_count:  # the eigengap after another cluster count is another quantity
        checks.append((EIGENGAP_SHIFT, "eigengap", thresholds.eigengap, f"the eigengap after lambda_{new_count}"))
    else:
        findings.append(
            Finding(
                CLUSTER_COUNT_CHANGE,
                class_name,
                f"{class_name}: {new_count} clusters, previously {old_count}",
                {"previous": old_count, "current": new_count},
            )
        )
    for kind, column, tolerance, label in checks:
        old, new = float(first_before[column]), float(first_now[column])
        if np.isfinite(old) and np.isfinite(new) and abs(new - old) > tolerance:
            findings.append(
                Finding(
                    kind,
                    class_name,
                    f"{class_name}: {label} moved from {old:.4g} to {new:.4g} (tolerance {tolerance:g})",
                    {"previous": old, "current": new, "change": new - old, "tolerance": tolerance},
                )
            )
    return findings


def _tagged_unmatched(clusters: pd.DataFrame, pairs: list[tuple[int, int, float]], side: int) -> int:
    """How many tagged clusters of one audit (side 0: previous, 1: this) have no match in the other."""
    matched = {pair[side] for pair in pairs}
    return sum(1 for position, tag in enumerate(clusters["tag"]) if tag in TAGGED and position not in matched)


def _cluster_findings(
    class_name: str,
    before: pd.DataFrame,
    now: pd.DataFrame,
    similarity: np.ndarray,
    pairs: list[tuple[int, int, float]],
    thresholds: Thresholds,
) -> list[Finding]:
    matched_old = {old for old, _, _ in pairs}
    matched_new = {new for _, new, _ in pairs}
    findings = []
    for kind, clusters, matched, axis, verb in (
        (NEW_CLUSTER, now, matched_new, 0, "appeared"),
        (RESOLVED_CLUSTER, before, matched_old, 1, "disappeared (resolved)"),
    ):
        for position, (_, cluster) in enumerate(clusters.iterrows()):
            if position in matched or cluster["suspicion"] < thresholds.suspicion or cluster["tag"] in TAGGED:
                continue
            best = float(similarity.max(axis=axis, initial=0.0)[position])
            when = "this audit" if kind == NEW_CLUSTER else "the previous audit"
            findings.append(
                Finding(
                    kind,
                    class_name,
                    f"{class_name}: cluster {int(cluster['cluster'])} of {when} ({int(cluster['cluster_size'])} samples, "
                    f"suspicion {float(cluster['suspicion']):.3g}) {verb}; its best prototype similarity "
                    f"across the two audits is {best:.2f}",
                    {
                        "audit_id": str(cluster["audit_id"]),
                        "cluster": int(cluster["cluster"]),
                        "size": int(cluster["cluster_size"]),
                        "suspicion": float(cluster["suspicion"]),
                        "best_similarity": best,
                    },
                )
            )
    return findings


def _prototypes(clusters: pd.DataFrame) -> np.ndarray:
    rows = [np.asarray(p, dtype=float) for p in clusters["prototype"]]
    if not rows or len({row.size for row in rows}) != 1:
        return np.zeros((len(rows), 0))
    return np.stack(rows)


__all__ = [
    "CLUSTER_COUNT_CHANGE",
    "EIGENGAP_SHIFT",
    "LAMBDA2_SHIFT",
    "NEW_CLUSTER",
    "RESOLVED_CLUSTER",
    "Finding",
    "audit_notices",
    "compare_audits",
]
