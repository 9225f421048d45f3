"""Categorical colours: one per cluster on a class page, one per class on the index page."""

from __future__ import annotations

from collections.abc import Iterable

from bokeh.palettes import Category10_10, Category20_20, Turbo256

from reports.model import NOISE_LABEL

#: Colour of points without a cluster (label -1, e.g. DBSCAN noise).
NOISE_COLOUR = "#9e9e9e"


def categorical(count: int) -> list[str]:
    """``count`` distinct colours: Category10 up to 10, Category20 up to 20, then spread over Turbo."""
    if count <= 10:
        return list(Category10_10[:count])
    if count <= 20:
        return list(Category20_20[:count])
    return [Turbo256[round(i * 255 / (count - 1))] for i in range(count)]


def cluster_colours(clusters: Iterable[int]) -> dict[int, str]:
    """A colour per cluster label, assigned in ascending label order; label -1 is grey."""
    labels = sorted({int(c) for c in clusters})
    real = [c for c in labels if c != NOISE_LABEL]
    colours = dict(zip(real, categorical(len(real)), strict=True))
    if NOISE_LABEL in labels:
        colours[NOISE_LABEL] = NOISE_COLOUR
    return colours
