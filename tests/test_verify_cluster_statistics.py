"""Statistics and verdict of the cluster test on synthetic tables: per-condition and paired numbers
against numpy/scipy, and the verdict's three conditions (real, large, consistent) one at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spray.verification.cluster_statistics import GROUP_CONDITIONS, contrast, paired_differences, summarise_changes
from spray.verification.cluster_verdict import CONSISTENCY, MARGIN, cluster_verdict
from spray.verification.verdict import CONFIRMED, NOT_SUPPORTED, PARTIAL, UNTESTABLE

SCALE = 2.0  # the class score's spread


def table(effects: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Per-image rows: untouched, intervention and control changes for each group."""
    conditions = {
        "members": ("remove", "remove_control"),
        "other_classes": ("transplant", "transplant_control"),
        "non_members": ("transplant", "transplant_control"),
    }
    rows = []
    for group, (intervention, control) in effects.items():
        for i, (a, b) in enumerate(zip(intervention, control, strict=True)):
            sid = f"{group}-{i}"
            base = 1.0 + 0.1 * i
            for condition, delta in (("original", 0.0), *tuple(zip(conditions[group], (a, b), strict=True))):
                rows.append(
                    {
                        "sample_id": sid,
                        "group": group,
                        "condition": condition,
                        "score": base + delta,
                        "delta": delta,
                        "region_relevance_share": 0.3,
                    }
                )
    return pd.DataFrame(rows)


def noisy(mean: float, sd: float, n: int = 40, seed: int = 0) -> np.ndarray:
    return mean + sd * np.random.default_rng(seed).standard_normal(n)


@pytest.fixture()
def shortcut():
    return table(
        {
            "members": (noisy(-3.0, 0.5), noisy(-0.2, 0.5, seed=1)),
            "other_classes": (noisy(3.0, 0.8, seed=2), noisy(0.1, 0.3, seed=3)),
            "non_members": (noisy(2.0, 0.8, seed=4), noisy(0.0, 0.3, seed=5)),
        }
    )


def test_summary_agrees_with_numpy_and_scipy(shortcut):
    summary = summarise_changes(shortcut, seed=0)
    assert len(summary) == 9
    for row in summary.itertuples():
        part = shortcut[(shortcut["group"] == row.group) & (shortcut["condition"] == row.condition)]
        assert row.n == len(part) and row.mean == pytest.approx(part["delta"].mean())
        assert row.std == pytest.approx(part["delta"].std(ddof=1))
        assert row.score_mean == pytest.approx(part["score"].mean())
        if row.condition == "original":
            assert np.isnan(row.p_value) and row.mean == 0
        else:
            assert row.p_value == pytest.approx(stats.wilcoxon(part["delta"]).pvalue)
            assert row.ci_low < row.mean < row.ci_high


def test_contrast_is_paired_per_image_and_standardised(shortcut):
    contrasts = contrast(shortcut, SCALE, seed=0).set_index("group")
    for group, sign in (("members", -1), ("other_classes", 1), ("non_members", 1)):
        paired = paired_differences(shortcut, group)
        wide = shortcut[shortcut["group"] == group].pivot(index="sample_id", columns="condition", values="delta")
        intervention, control = GROUP_CONDITIONS[group]
        difference = (wide[intervention] - wide[control]).to_numpy()
        np.testing.assert_allclose(np.sort(paired["difference"]), np.sort(difference))
        row = contrasts.loc[group]
        assert row["difference"] == pytest.approx(difference.mean())
        assert row["p_value"] == pytest.approx(stats.wilcoxon(difference).pvalue)
        assert row["effect"] == pytest.approx(difference.mean() / SCALE)
        assert row["consistency"] == pytest.approx(difference.mean() / difference.std(ddof=1))
        assert row["win_share"] == pytest.approx(np.mean(sign * difference > 0))
        # the seeded percentile bootstrap, redone by hand
        draws = np.random.default_rng(0).integers(0, difference.size, size=(2000, difference.size))
        low, high = np.quantile(difference[draws].mean(axis=1), [0.025, 0.975])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))


def test_a_clear_shortcut_is_confirmed(shortcut):
    verdict = cluster_verdict(contrast(shortcut, SCALE), "horse", 3)
    assert verdict.conclusion == CONFIRMED and verdict.confirmed and verdict.removal and verdict.transplant
    assert "drops by -" in verdict.findings[0] and "rises by +" in verdict.findings[1]
    record = verdict.to_dict()
    assert record["confirmed"] is True and record["margin"] == MARGIN and record["consistency"] == CONSISTENCY


def test_each_condition_alone_decides(shortcut):
    """Too small (below the margin), too uneven (d_z below 1) or a control as strong: not confirmed."""
    members = shortcut[shortcut["group"] == "members"]
    others = shortcut[shortcut["group"] != "members"]
    small = table({"members": (noisy(-0.4 * SCALE, 0.1), noisy(0.0, 0.1, seed=1))})  # consistent but 0.4 spreads
    uneven = table({"members": (np.r_[np.full(20, -8.0), np.zeros(20)] + noisy(0, 0.1), noisy(0.0, 0.1, seed=1))})
    as_control = table({"members": (noisy(-3.0, 0.5), noisy(-3.0, 0.5, seed=1))})
    for case in (small, uneven, as_control):
        verdict = cluster_verdict(contrast(pd.concat([case, others]), SCALE), "horse", 3)
        assert verdict.conclusion == PARTIAL and not verdict.confirmed
        assert verdict.removal is False and verdict.transplant is True
    uneven_row = contrast(uneven, SCALE).iloc[0]
    assert uneven_row["effect"] <= -MARGIN and abs(uneven_row["consistency"]) < CONSISTENCY  # large, yet uneven
    no_transplant = table({"other_classes": (noisy(0.0, 1.0, seed=2), noisy(0.0, 1.0, seed=3))})
    verdict = cluster_verdict(contrast(pd.concat([members, no_transplant]), SCALE), "horse", 3)
    assert verdict.conclusion == PARTIAL and verdict.removal is True and verdict.transplant is False


def test_nothing_works_and_nothing_scored():
    flat = table(
        {
            "members": (noisy(0.0, 1.0), noisy(0.0, 1.0, seed=1)),
            "other_classes": (noisy(0.0, 1.0, seed=2), noisy(0.0, 1.0, seed=3)),
        }
    )
    assert cluster_verdict(contrast(flat, SCALE), "horse", 0).conclusion == NOT_SUPPORTED
    empty = contrast(flat.iloc[:0], SCALE)
    assert empty.empty and cluster_verdict(empty, "horse", 0).conclusion == UNTESTABLE
