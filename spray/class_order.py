"""Is the class order right? A check of a model's output names against its own predictions.

A model's outputs are named in order (``--class-names``, or the data set's usual label order);
a wrong order points every class name at another output, silently: the maps then explain the
wrong class. A model that predicts the analysed class for no more of the class's images than
chance (1 / number of outputs) would, is either useless for that class or misnamed; either
way a person should hear about it before reading the clusters.
"""

from __future__ import annotations

import numpy as np


def predicted_share(predicted: np.ndarray, target: int) -> float:
    """Share of the samples whose top output is ``target`` (NaN for none)."""
    predicted = np.asarray(predicted)
    return float(np.mean(predicted == target)) if predicted.size else float("nan")


def class_order_warning(class_name: str, share: float, n_outputs: int) -> str | None:
    """A sentence when the model predicts ``class_name`` for no more of its images than chance, else None."""
    if not n_outputs or not np.isfinite(share) or share > 1.0 / n_outputs:
        return None
    return (
        f"The model predicts {class_name!r} for only {share:.0%} of its images, no more than chance "
        f"(1 in {n_outputs}): is the class order right? Pass --class-names FILE with one name per "
        "model output, in output order."
    )


__all__ = ["class_order_warning", "predicted_share"]
