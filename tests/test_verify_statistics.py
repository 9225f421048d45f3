"""Statistics and verdict of the padding experiment, checked against scipy and pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spray.verification import bootstrap_mean_ci, padding_verdict, summarise, wilcoxon_p
from spray.verification.verdict import CONFIRMED, NOT_SUPPORTED, PARTIAL, UNTESTABLE

STRATEGIES = ["copy_border", "mirror", "crop", "noise", "random_colour", "reference_colour"]


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap():
    values = np.random.default_rng(1).normal(0.5, 2.0, size=60)
    low, high = bootstrap_mean_ci(values, seed=3)
    reference = stats.bootstrap(
        (values,), np.mean, method="percentile", n_resamples=20000, random_state=0
    ).confidence_interval
    width = reference.high - reference.low
    assert abs(low - reference.low) < 0.08 * width and abs(high - reference.high) < 0.08 * width
    assert bootstrap_mean_ci(values, seed=3) == (low, high)  # seeded: the same interval again
    assert bootstrap_mean_ci(values, seed=4) != (low, high)


def test_wilcoxon_matches_scipy_and_is_undefined_without_change():
    values = np.random.default_rng(2).normal(0.3, 1.0, size=40)
    assert wilcoxon_p(values) == pytest.approx(stats.wilcoxon(values).pvalue)
    assert np.isnan(wilcoxon_p(np.zeros(5))) and np.isnan(wilcoxon_p(np.array([])))


def synthetic_table(shift_others: float, shift_members: float, seed: int = 0, n: int = 40) -> pd.DataFrame:
    """Per-sample rows: constant-colour strategies move non-members by ``shift_others``, noise moves members."""
    rng = np.random.default_rng(seed)
    rows = []
    for member in (True, False):
        for i in range(n):
            shape = ("landscape", 30, 40) if i % 4 else ("portrait", 40, 30)
            if i % 10 == 0:
                shape = ("square", 30, 30)
            for strategy in STRATEGIES:
                delta = 0.0 if strategy == "copy_border" or shape[0] == "square" else rng.normal(0, 0.5)
                if not member and strategy in ("random_colour", "reference_colour") and shape[0] != "square":
                    delta += shift_others * (2.0 if shape[0] == "landscape" else 0.5)
                if member and strategy == "noise" and shape[0] != "square":
                    delta += shift_members
                rows.append(
                    {
                        "sample_id": f"{member}-{i}",
                        "member": member,
                        "orientation": shape[0],
                        "height": shape[1],
                        "width": shape[2],
                        "strategy": strategy,
                        "score": 1.0 + delta,
                        "delta": delta,
                        "padded_fraction": 0.0 if shape[0] == "square" else 0.25,
                        "padded_relevance_share": 0.5,
                        "error": "",
                    }
                )
    return pd.DataFrame(rows)


def test_summary_agrees_with_pandas_and_scipy_on_the_table():
    table = synthetic_table(1.0, -1.0)
    summary = summarise(table, seed=0)
    assert set(summary["orientation"]) == {"padded", "landscape", "portrait", "square"}
    for row in summary.itertuples():
        chosen = table[(table["member"] == row.member) & (table["strategy"] == row.strategy)]
        chosen = (
            chosen[chosen["orientation"] != "square"]
            if row.orientation == "padded"
            else chosen[chosen["orientation"] == row.orientation]
        )
        assert row.n == len(chosen)
        assert row.mean == pytest.approx(chosen["delta"].mean())
        assert row.std == pytest.approx(chosen["delta"].std(ddof=1))
        assert row.ci_low <= row.mean <= row.ci_high
        if (chosen["delta"] != 0).any():
            assert row.p_value == pytest.approx(stats.wilcoxon(chosen["delta"]).pvalue)
        else:
            assert np.isnan(row.p_value)


def test_verdict_confirms_a_shortcut_and_names_the_class_generically():
    verdict = padding_verdict(summarise(synthetic_table(1.0, -1.0)), "dog<b>")
    assert verdict.conclusion == CONFIRMED
    assert "dog<b>" in verdict.headline and "aeroplane" not in " ".join([verdict.headline, *verdict.findings])
    text = " ".join(verdict.findings)
    assert "random noise lowers" in text and "raise the dog<b> score" in text
    assert "stronger effect when the padding is vertical" in text  # landscape shift is 4x the portrait one


def test_verdict_without_effects_says_no_evidence():
    assert padding_verdict(summarise(synthetic_table(0.0, 0.0)), "cat").conclusion == NOT_SUPPORTED
    assert padding_verdict(summarise(synthetic_table(0.0, -1.0)), "cat").conclusion == PARTIAL


def test_verdict_for_square_images_only_is_untestable_with_a_clear_message():
    table = synthetic_table(1.0, -1.0)
    verdict = padding_verdict(summarise(table[table["orientation"] == "square"]), "cat")
    assert verdict.conclusion == UNTESTABLE
    assert any("No landscape cat image was sampled" in sentence for sentence in verdict.findings)


def test_a_significant_but_tiny_change_is_not_called_an_effect():
    table = synthetic_table(1.0, -1.0)
    spread = table["strategy"] == "copy_border"
    table.loc[spread, "score"] = np.random.default_rng(5).normal(0, 50.0, spread.sum())  # scores vary by ~50
    summary = summarise(table)
    assert (summary.loc[summary["strategy"] == "noise", "score_std"] > 25).all()
    verdict = padding_verdict(summary, "cat")
    text = " ".join(verdict.findings)
    assert verdict.conclusion == NOT_SUPPORTED
    rise = summary[
        (~summary["member"]) & (summary["orientation"] == "landscape") & (summary["strategy"] == "random_colour")
    ].iloc[0]
    assert rise["p_value"] < 0.05  # significant ...
    assert (
        f"significant, but below the effect-size threshold of 0.2 x score spread = {0.2 * rise['score_std']:.2f}"
        in text
    )


def test_the_verdict_is_judged_on_landscape_images_whatever_the_portraits_do():
    table = synthetic_table(1.0, -1.0)
    portrait = (table["orientation"] == "portrait") & (~table["member"])
    table.loc[portrait, "delta"] = -3.0  # portraits (padded left and right) go the other way
    assert padding_verdict(summarise(table), "cat").conclusion == CONFIRMED


@pytest.mark.parametrize("n", [20, 40, 80, 160])
def test_the_verdict_does_not_depend_on_the_sample_size(n):
    for seed in range(3):
        assert (
            padding_verdict(summarise(synthetic_table(1.0, -1.0, seed=seed, n=n), seed=seed), "cat").conclusion
            == CONFIRMED
        )
        assert (
            padding_verdict(summarise(synthetic_table(0.0, 0.0, seed=seed, n=n), seed=seed), "cat").conclusion
            == NOT_SUPPORTED
        )
