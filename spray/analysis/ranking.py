"""Cross-class ranking of spectra (Fig. 6.5, L2117-L2124).

For every class the smallest 5 eigenvalues of L_sym are compared (L2117). Classes are ordered
by lambda_2 ascending, so the class whose samples split most clearly into groups comes first
(L2124); the ranking by the largest eigengap among those eigenvalues is added [X, SPEC §1.8].
Bars in the thesis are coloured by the class's alphabetical index (L2124), kept here as a column.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

RANKING_EIGENVALUES = 5
"""The smallest 5 eigenvalues are compared across classes (L2117, L2124)."""


def rank_classes(spectra: Mapping[str, np.ndarray], n_eigenvalues: int = RANKING_EIGENVALUES) -> pd.DataFrame:
    """One row per class: lambda_2, the largest gap among the first ``n_eigenvalues`` and both ranks.

    ``rank_by_lambda2`` 1 = smallest lambda_2 (most suspicious, L2124); ``rank_by_gap`` 1 =
    largest gap; ``largest_gap_after`` is the i whose gap |lambda_{i+1} - lambda_i| is largest.
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
    return table.sort_values("rank_by_lambda2").reset_index(drop=True)
