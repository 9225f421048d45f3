"""Statistics of the cluster test: score changes per intervention and their paired contrast with the control.

As on the padding page (:mod:`spray.verification.statistics`): n, mean, std, a seeded 95%
percentile-bootstrap interval of the mean and a two-sided Wilcoxon signed-rank test, once
per (target group, condition) on the change of the class score against the untouched image,
and once per group on the *paired* difference intervention - control (each image gets both,
so the image's own score level cancels). Two standardised sizes of that difference [X]:
``effect``, its mean in units of ``scale`` (the spread of the class score over the class's
images: how large the change is), and ``consistency``, its mean over its own standard
deviation across images (Cohen's d_z for paired data: how uniformly the images respond);
``win_share`` is the share of images whose difference points the expected way
(:data:`DIRECTION`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spray.verification.statistics import bootstrap_mean_ci, change_statistics, wilcoxon_p

ORIGINAL = "original"
#: Target groups and their (intervention, control) conditions, in page order.
GROUP_CONDITIONS = {
    "members": ("remove", "remove_control"),
    "other_classes": ("transplant", "transplant_control"),
    "non_members": ("transplant", "transplant_control"),
}
#: The direction each group's intervention is expected to move the class score: a drop when the
#: region is removed, a rise when it is pasted in.
DIRECTION = {"members": -1, "other_classes": +1, "non_members": +1}
CONDITIONS = (ORIGINAL, "remove", "remove_control", "transplant", "transplant_control")
SUMMARY_COLUMNS = [
    "group",
    "condition",
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "p_value",
    "score_mean",
    "region_relevance_share",
]
CONTRAST_COLUMNS = [
    "group",
    "intervention",
    "control",
    "n",
    "intervention_mean",
    "control_mean",
    "difference",
    "std",
    "ci_low",
    "ci_high",
    "p_value",
    "scale",
    "effect",
    "consistency",
    "win_share",
]


def summarise_changes(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per (group, condition) of the error-free rows of the per-image ``table``.

    ``table`` has columns ``group``, ``condition``, ``delta`` (score minus the untouched
    image's score; 0 for ``original``), ``score`` and ``region_relevance_share``.
    """
    rows = []
    for group in GROUP_CONDITIONS:
        for condition in (ORIGINAL, *GROUP_CONDITIONS[group]):
            part = table[(table["group"] == group) & (table["condition"] == condition)]
            if part.empty:
                continue
            rows.append(
                {
                    "group": group,
                    "condition": condition,
                    **change_statistics(part, seed),
                    "score_mean": float(part["score"].mean()),
                    "region_relevance_share": float(part["region_relevance_share"].mean()),
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def paired_differences(table: pd.DataFrame, group: str) -> pd.DataFrame:
    """Per image of ``group`` with both conditions: intervention delta, control delta and their difference."""
    intervention, control = GROUP_CONDITIONS[group]
    part = table[table["group"] == group]
    wide = part.pivot_table(index="sample_id", columns="condition", values="delta", aggfunc="first")
    if intervention not in wide or control not in wide:
        return pd.DataFrame(columns=["intervention", "control", "difference"])
    wide = wide[[intervention, control]].dropna().rename(columns={intervention: "intervention", control: "control"})
    return wide.assign(difference=wide["intervention"] - wide["control"])


def contrast(table: pd.DataFrame, scale: float, seed: int = 0) -> pd.DataFrame:
    """One row per group: the paired difference intervention - control, its CI, test and standardised effect."""
    rows = []
    for group, (intervention, control) in GROUP_CONDITIONS.items():
        paired = paired_differences(table, group)
        if paired.empty:
            continue
        differences = paired["difference"].to_numpy(dtype=np.float64)
        low, high = bootstrap_mean_ci(differences, seed=seed)
        mean, spread = float(differences.mean()), float(paired["difference"].std())
        rows.append(
            {
                "group": group,
                "intervention": intervention,
                "control": control,
                "n": int(differences.size),
                "intervention_mean": float(paired["intervention"].mean()),
                "control_mean": float(paired["control"].mean()),
                "difference": mean,
                "std": spread,
                "ci_low": low,
                "ci_high": high,
                "p_value": wilcoxon_p(differences),
                "scale": float(scale),
                "effect": mean / scale if scale > 0 else float("nan"),
                "consistency": _ratio(mean, spread),
                "win_share": float(np.mean(DIRECTION[group] * differences > 0)),
            }
        )
    return pd.DataFrame(rows, columns=CONTRAST_COLUMNS)


def _ratio(mean: float, spread: float) -> float:
    """mean / spread; +-inf when every difference is the same nonzero value, NaN for one image or no change."""
    if spread > 0:
        return mean / spread
    return float(np.copysign(np.inf, mean)) if spread == 0 and mean != 0 else float("nan")
