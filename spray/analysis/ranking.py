"""Cross-class ranking of spectra (Fig. 6.5, L2117-L2124) and of suspicion [X].

For every class the smallest 5 eigenvalues of L_sym are compared (L2117). Classes are ordered
by lambda_2 ascending, so the class whose samples split most clearly into groups comes first
(L2124); the ranking by the largest eigengap among those eigenvalues is added [X, SPEC §1.8].
Bars in the thesis are coloured by the class's alphabetical index (L2124), kept here as a column.

The cross-class order [X] puts first the classes with a suspicious cluster, by the suspicion of
their most suspicious cluster (``spray.analysis.suspicion``; it is measured against chance
within each class, so it compares across classes of any size), and then every other class in
the thesis's lambda_2 order (Fig. 6.5). Below the threshold the suspicion is not evidence
beyond chance, so it does not reorder the thesis's ranking; measured on the detection benchmark
(``benchmarks/README.md``), ordering those classes by their sub-threshold suspicion instead
ranked the planted class first less often. lambda_2 alone is a poor alarm: it is small for any
class that splits in two, a legitimate split included (Fashion-MNIST bags with and without a
handle), and a suspicious class can have a larger lambda_2 than a clean one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from spray.analysis.suspicion import SUSPICION_THRESHOLD

RANKING_EIGENVALUES = 5
"""The smallest 5 eigenvalues are compared across classes (L2117, L2124)."""


def suspicion_order_key(top_suspicion: float | None, lambda_2: float, name: str) -> tuple:
    """Sort key of the cross-class order: suspicious classes first by suspicion (descending), then
    the others by lambda_2 (ascending, L2124), classes without a score last; then by name."""
    if top_suspicion is not None and top_suspicion >= SUSPICION_THRESHOLD:
        return (0, -top_suspicion, name)
    return (1 if top_suspicion is not None else 2, lambda_2, name)


def rank_classes(
    spectra: Mapping[str, np.ndarray],
    suspicions: Mapping[str, float] | None = None,
    n_eigenvalues: int = RANKING_EIGENVALUES,
) -> pd.DataFrame:
    """One row per class: lambda_2, the largest gap among the first ``n_eigenvalues`` and both ranks.

    ``rank_by_lambda2`` 1 = smallest lambda_2 (most clustered, L2124); ``rank_by_gap`` 1 =
    largest gap; ``largest_gap_after`` is the i whose gap |lambda_{i+1} - lambda_i| is largest.
    With ``suspicions`` (class -> its top cluster's suspicion, ``clusters_["suspicion"].max()``):
    ``top_suspicion``, ``suspicious`` (>= ``SUSPICION_THRESHOLD``, the same in every class) and
    ``rank_by_suspicion`` (the cross-class order: suspicious classes by suspicion, then the rest by
    lambda_2); rows are then in that order.
    """
    names = sorted(spectra)
    rows = []
    for alphabetical_index, name in enumerate(names):
        values = np.asarray(spectra[name], dtype=np.float64)[:n_eigenvalues]
        gaps = np.abs(np.diff(values))
        rows.append(
            {
                "class": name,
                "alphabetical_index": alphabetical_index,
                "lambda_2": float(values[1]) if len(values) > 1 else np.nan,
                "largest_gap": float(gaps.max()) if len(gaps) else np.nan,
                "largest_gap_after": int(np.argmax(gaps)) + 1 if len(gaps) else 0,
            }
        )
    table = pd.DataFrame(rows)
    table["rank_by_lambda2"] = table["lambda_2"].rank(method="first").astype(int)
    table["rank_by_gap"] = table["largest_gap"].rank(ascending=False, method="first").astype(int)
    if suspicions is None:
        return table.sort_values("rank_by_lambda2").reset_index(drop=True)
    table["top_suspicion"] = [float(suspicions[name]) if name in suspicions else np.nan for name in names]
    table["suspicious"] = table["top_suspicion"] >= SUSPICION_THRESHOLD
    order = sorted(
        range(len(table)),
        key=lambda i: suspicion_order_key(
            None if np.isnan(table["top_suspicion"][i]) else table["top_suspicion"][i], table["lambda_2"][i], names[i]
        ),
    )
    table["rank_by_suspicion"] = 0
    table.loc[order, "rank_by_suspicion"] = np.arange(1, len(table) + 1)
    return table.sort_values("rank_by_suspicion").reset_index(drop=True)
