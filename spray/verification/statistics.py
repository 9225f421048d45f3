"""Summary statistics of the per-sample score changes: mean, std, bootstrap CI, Wilcoxon p.

The thesis reports only the mean change per strategy as bars (Figs. 6.8, 6.11; L2167); the
spread, a 95% percentile-bootstrap confidence interval of the mean and a paired Wilcoxon
signed-rank test against zero change are added here [X] so a user can tell an effect from noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from spray.verification.strategies import BASELINE

#: Bootstrap resamples for the confidence interval of the mean (percentile method).
N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
#: Orientation groups of the summary: "padded" = every non-square image (Fig. 6.8).
ORIENTATION_GROUPS = ("padded", "landscape", "portrait", "square")
SUMMARY_KEYS = ["member", "orientation", "strategy"]


def bootstrap_mean_ci(
    values: np.ndarray, seed: int = 0, n_resamples: int = N_BOOTSTRAP, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (seeded)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_resamples, values.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def wilcoxon_p(values: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``values`` against zero; NaN when all are zero."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not np.any(values != 0):
        return float("nan")
    return float(stats.wilcoxon(values).pvalue)


def change_statistics(part: pd.DataFrame, seed: int) -> dict[str, float | int]:
    """n, mean, standard deviation, seeded bootstrap 95% CI and Wilcoxon p of ``part["delta"]``:
    the statistics every row of a verification table reports."""
    deltas = part["delta"].to_numpy(dtype=np.float64)
    low, high = bootstrap_mean_ci(deltas, seed=seed)
    return {
        "n": int(deltas.size),
        "mean": float(deltas.mean()),
        "std": float(part["delta"].std()),
        "ci_low": low,
        "ci_high": high,
        "p_value": wilcoxon_p(deltas),
    }


def summarise(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per (member, orientation group, strategy) with n, mean, std, CI and p-value.

    ``table`` is the per-sample table (columns ``member``, ``orientation``, ``strategy``,
    ``delta``, ``padded_fraction``, ``padded_relevance_share``). The baseline's rows have zero change by
    definition and are kept for its relevance share. ``std`` is the sample standard
    deviation (ddof=1, pandas' default); ``score_std`` is the spread of the baseline class score
    over the group's images, the scale an effect is judged against (:mod:`.verdict`); the
    two ``padded_*`` columns are the group's means.
    """
    rows = []
    for group in ORIENTATION_GROUPS:
        subset = table[table["orientation"] != "square"] if group == "padded" else table[table["orientation"] == group]
        spread = subset[subset["strategy"] == BASELINE].groupby("member")["score"].std()
        for (member, strategy), part in subset.groupby(["member", "strategy"], sort=False):
            rows.append(
                {
                    "member": bool(member),
                    "orientation": group,
                    "strategy": strategy,
                    **change_statistics(part, seed),
                    "score_std": float(spread.get(member, np.nan)),
                    "padded_fraction": float(part["padded_fraction"].mean()),
                    "padded_relevance_share": float(part["padded_relevance_share"].mean()),
                }
            )
    columns = [
        *SUMMARY_KEYS,
        "n",
        "mean",
        "std",
        "ci_low",
        "ci_high",
        "p_value",
        "score_std",
        "padded_fraction",
        "padded_relevance_share",
    ]
    return pd.DataFrame(rows, columns=columns)
