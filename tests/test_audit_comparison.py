"""The audit's record, history table and comparison, on hand-made pipeline results."""

from __future__ import annotations

import datetime
import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from spray.matching import match_clusters, prototype_similarity
from workflows.audit.comparison import (
    CLUSTER_COUNT_CHANGE,
    EIGENGAP_SHIFT,
    LAMBDA2_SHIFT,
    NEW_CLUSTER,
    RESOLVED_CLUSTER,
    audit_notices,
    compare_audits,
)
from workflows.audit.history import AuditHistory
from workflows.audit.record import audit_frame, eigengap_at
from workflows.audit.settings import Thresholds

GRID = 4
BODY = np.zeros((GRID, GRID))
BODY[1:3, 1:3] = 1.0  # relevance on the object in the middle
CORNER = np.zeros((GRID, GRID))
CORNER[0, 0] = 1.0  # relevance on a watermark in the corner
_clock = itertools.count()


def outcome(class_name, clusters, eigenvalues=(0.0, 0.2, 0.5, 0.6, 0.7, 0.8), settings_key="s"):
    """A ClassOutcome-shaped value: clusters are (size, suspicion, prototype) triples."""
    return SimpleNamespace(
        class_name=class_name,
        n_samples=sum(size for size, _, _ in clusters),
        n_computed=0,
        eigenvalues=np.asarray(eigenvalues),
        eigengap=None,
        n_clusters=len(clusters),
        clusters=pd.DataFrame(
            {
                "size": [c[0] for c in clusters],
                "suspicion": [c[1] for c in clusters],
                "prototype": [c[2] for c in clusters],
            }
        ),
        analysis_key="k",
        settings_key=settings_key,
        report_page=None,
        reused_analysis=True,
    )


def audit(*outcomes, model_name="demo", audit_id=None, tags=None):
    started = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC) + datetime.timedelta(days=next(_clock))
    result = SimpleNamespace(outcomes=list(outcomes), model_fingerprint="f" * 64, dataset_fingerprint="d" * 64)
    return audit_frame(
        result,
        audit_id=audit_id or f"a{started:%Y%m%d}",
        started_at=started,
        finished_at=started,
        model_name=model_name,
        model_version="v",
        tags=tags,
    )


def kinds(findings):
    return sorted(finding.kind for finding in findings)


def test_record_keeps_the_five_smallest_eigenvalues_and_the_gap_after_the_chosen_count():
    frame = audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER)], eigenvalues=[0, 0.01, 0.4, 0.5, 0.6, 0.7, 0.8]))
    assert len(frame) == 2  # one row per cluster
    first = frame.iloc[0]
    assert [first[f"lambda_{i}"] for i in range(1, 6)] == [0, 0.01, 0.4, 0.5, 0.6]
    assert first["eigengap"] == pytest.approx(0.4 - 0.01)  # lambda_3 - lambda_2 for K=2 (L2087)
    assert list(frame["cluster_size"]) == [30, 8]
    np.testing.assert_array_equal(frame.iloc[1]["prototype"], CORNER.ravel())
    assert np.isnan(eigengap_at(np.array([0.0, 0.1]), 2))


def test_identical_audits_have_no_findings():
    clusters = [(30, 0.1, BODY), (8, 1.4, CORNER)]
    assert compare_audits(audit(outcome("horse", clusters)), audit(outcome("horse", clusters)), Thresholds()) == []


def test_a_first_audit_has_no_findings():
    assert compare_audits(None, audit(outcome("horse", [(30, 0.1, BODY)])), Thresholds()) == []


def test_a_vanished_watermark_cluster_is_resolved_and_a_new_one_is_new():
    with_mark = audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER)]))
    without = audit(outcome("horse", [(38, 0.1, BODY * 1.3)]))  # same strategy, other scale: matched
    resolved = compare_audits(with_mark, without, Thresholds())
    assert kinds(resolved) == [CLUSTER_COUNT_CHANGE, RESOLVED_CLUSTER]
    gone = next(f for f in resolved if f.kind == RESOLVED_CLUSTER)
    assert gone.details["cluster"] == 1 and gone.details["suspicion"] == 1.4 and gone.class_name == "horse"
    assert gone.details["best_similarity"] == pytest.approx(0.0)
    assert kinds(compare_audits(without, with_mark, Thresholds())) == [CLUSTER_COUNT_CHANGE, NEW_CLUSTER]


def test_cluster_order_does_not_matter_and_unsuspicious_changes_are_not_cluster_findings():
    before = audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER)]))
    shuffled = audit(outcome("horse", [(8, 1.4, CORNER), (30, 0.1, BODY)]))
    assert compare_audits(before, shuffled, Thresholds()) == []
    edge = np.zeros((GRID, GRID))
    edge[:, -1] = 1.0
    with_edge = audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER), (5, 0.2, edge)]))
    assert kinds(compare_audits(before, with_edge, Thresholds(suspicion=0.5))) == [CLUSTER_COUNT_CHANGE]
    assert kinds(compare_audits(before, with_edge, Thresholds(suspicion=0.0))) == [CLUSTER_COUNT_CHANGE, NEW_CLUSTER]


def test_hungarian_matching_is_one_to_one_and_beats_greedy():
    # Greedy (take the best pair first: 0.9 at (0,0)) would leave (1,1) at 0.1; the assignment
    # maximising the sum pairs (0,1) and (1,0) at 0.8 + 0.85.
    similarity = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert match_clusters(similarity, 0.5) == [(0, 1, 0.8), (1, 0, 0.85)]
    assert match_clusters(similarity, 0.82) == [(1, 0, 0.85)]
    different_grids = prototype_similarity(np.ones((2, 16)), np.ones((3, 25)))
    assert different_grids.shape == (2, 3) and not different_grids.any()


def test_lambda2_and_eigengap_moves_beyond_their_tolerance_are_findings():
    clusters = [(30, 0.1, BODY), (8, 1.4, CORNER)]
    before = audit(outcome("boat", clusters, eigenvalues=[0, 0.10, 0.50, 0.6, 0.7, 0.8]))
    small = audit(outcome("boat", clusters, eigenvalues=[0, 0.12, 0.52, 0.6, 0.7, 0.8]))
    assert compare_audits(before, small, Thresholds(lambda2=0.05, eigengap=0.05)) == []
    moved = audit(outcome("boat", clusters, eigenvalues=[0, 0.30, 0.50, 0.6, 0.7, 0.8]))
    findings = compare_audits(before, moved, Thresholds(lambda2=0.05, eigengap=0.05))
    assert kinds(findings) == [EIGENGAP_SHIFT, LAMBDA2_SHIFT]
    shift = next(f for f in findings if f.kind == LAMBDA2_SHIFT)
    assert shift.details["previous"] == pytest.approx(0.10) and shift.details["current"] == pytest.approx(0.30)


def test_classes_only_one_audit_analysed_are_not_compared():
    before = audit(outcome("horse", [(30, 0.1, BODY)]))
    after = audit(outcome("horse", [(30, 0.1, BODY)]), outcome("boat", [(5, 1.4, CORNER), (9, 0.1, BODY)]))
    assert compare_audits(before, after, Thresholds()) == []


def test_history_appends_whole_audits_and_reads_back_with_plain_pandas(tmp_path):
    history = AuditHistory(tmp_path / "store.audit-history")
    assert history.latest("demo") is None and history.read().empty
    first = audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER)]), audit_id="first")
    second = audit(outcome("horse", [(38, 0.1, BODY)]), audit_id="second")
    other = audit(outcome("horse", [(38, 0.1, BODY)]), model_name="other", audit_id="third")
    for frame in (first, second, other):
        history.append(frame)
    assert list(history.read("demo")["audit_id"]) == ["first", "first", "second"]
    assert list(history.latest("demo")["audit_id"]) == ["second"]
    assert list(history.latest("other")["audit_id"]) == ["third"]
    plain = pd.read_parquet(history.path)  # the documented way to query it
    assert len(plain) == 4 and set(plain["model_name"]) == {"demo", "other"}
    np.testing.assert_allclose(np.asarray(history.read("demo")["prototype"].iloc[1]), CORNER.ravel())


def test_an_interrupted_append_leaves_every_earlier_row(tmp_path, monkeypatch):
    history = AuditHistory(tmp_path / "h")
    history.append(audit(outcome("horse", [(30, 0.1, BODY)]), audit_id="kept"))
    import workflows.audit.history as module

    real_write = module.pq.write_table

    def write_half_then_die(table, where):
        real_write(table.slice(0, 1), where)
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(module.pq, "write_table", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        history.append(audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER)]), audit_id="lost"))
    monkeypatch.undo()
    assert list(history.read()["audit_id"]) == ["kept"]
    assert list(pd.read_parquet(history.path)["audit_id"]) == ["kept"]  # the temp file is invisible
    history.append(audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER)]), audit_id="rerun"))
    assert list(history.read()["audit_id"]) == ["kept", "rerun", "rerun"]


def test_a_class_analysed_with_other_settings_is_re_baselined_not_compared():
    before = audit(outcome("horse", [(30, 0.1, BODY), (8, 1.4, CORNER)], settings_key="grid20"))
    after = audit(outcome("horse", [(38, 0.1, BODY)], eigenvalues=(0, 0.5, 0.6, 0.7, 0.8, 0.9), settings_key="grid10"))
    assert compare_audits(before, after, Thresholds()) == []
    (notice,) = audit_notices(before, after, Thresholds())
    assert "other settings than the previous audit" in notice and "new baseline" in notice


def test_a_cluster_tagged_legitimate_raises_no_finding_and_a_tagged_shortcut_is_still_present():
    before = audit(outcome("horse", [(30, 0.1, BODY)]))
    marked = [(30, 0.1, BODY), (8, 1.4, CORNER)]
    legitimate = audit(outcome("horse", marked), tags={"horse": ["", "legitimate"]})
    assert kinds(compare_audits(before, legitimate, Thresholds())) == []  # the new count is the tagged cluster
    other = np.zeros_like(BODY)
    other[0, :] = 1.0
    unexplained = audit(outcome("horse", [*marked, (5, 0.2, other)]), tags={"horse": ["", "legitimate", ""]})
    assert kinds(compare_audits(before, unexplained, Thresholds())) == [CLUSTER_COUNT_CHANGE]
    shortcut = audit(outcome("horse", marked), tags={"horse": ["", "shortcut"]})
    assert NEW_CLUSTER not in kinds(compare_audits(before, shortcut, Thresholds()))
    assert audit_notices(before, shortcut, Thresholds()) == [
        "horse: cluster 1 (8 samples), tagged as a shortcut, is still present"
    ]


def test_audits_flag_clusters_at_the_analysis_s_own_suspicion_threshold():
    from spray.analysis.suspicion import SUSPICION_THRESHOLD

    assert Thresholds().suspicion == SUSPICION_THRESHOLD
