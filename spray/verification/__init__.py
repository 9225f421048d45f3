"""Verification experiments for a shortcut SpRAy suggests: the padding hypothesis (thesis §6.3.1).

The method part only: the six padding strategies, scoring and explaining images under each,
the statistics and the verdict. ``workflows.verify_padding`` runs it over a data set through
Dask and the store; ``reports.padding_page`` draws the page.
"""

from spray.verification.scoring import StrategyView, explain_strategies, strategy_rows
from spray.verification.statistics import bootstrap_mean_ci, summarise, wilcoxon_p
from spray.verification.strategies import (
    BASELINE,
    PaddingExperimentError,
    PaddingStrategy,
    orientation,
    parse_colour,
    reference_colour_from_images,
    strategies,
    strategy_preprocessings,
)
from spray.verification.verdict import Verdict, padding_verdict

__all__ = [
    "BASELINE",
    "PaddingExperimentError",
    "PaddingStrategy",
    "StrategyView",
    "Verdict",
    "bootstrap_mean_ci",
    "explain_strategies",
    "orientation",
    "padding_verdict",
    "parse_colour",
    "reference_colour_from_images",
    "strategies",
    "strategy_preprocessings",
    "strategy_rows",
    "summarise",
    "wilcoxon_p",
]
