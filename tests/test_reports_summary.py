"""The plain-language summary is written from the descriptors, for any class name or data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reports.summary import border_sides, class_summary, hotspot
from reports.synthetic import synthetic_class_data


def _band_map(grid: int = 20, **sides: bool) -> np.ndarray:
    prototype = np.zeros((grid, grid))
    if sides.get("top"):
        prototype[:2] = 1
    if sides.get("bottom"):
        prototype[-2:] = 1
    if sides.get("left"):
        prototype[:, :2] = 1
    if sides.get("right"):
        prototype[:, -2:] = 1
    return prototype


@pytest.mark.parametrize(
    ("sides", "expected"),
    [
        ({"top": True, "bottom": True}, "top and bottom"),
        ({"left": True, "right": True}, "left and right"),
        ({"top": True}, "top"),
        ({"right": True}, "right"),
        ({"top": True, "bottom": True, "left": True, "right": True}, ""),
    ],
)
def test_border_sides_names_where_positive_relevance_sits(sides, expected):
    assert border_sides(_band_map(**sides)) == expected


def test_border_sides_ignores_negative_relevance():
    prototype = -_band_map(left=True, right=True) + 0.5 * _band_map(top=True)
    assert border_sides(prototype) == "top"
    assert border_sides(-np.ones((20, 20))) == ""


def test_summary_names_strategies_and_the_planted_border_cluster():
    data = synthetic_class_data(300, 3, class_name="zebra-crossing")
    sentences = class_summary(data)
    assert sentences[0].startswith("3 prediction strategies among 300 images")
    suspect = data.clusters.loc[data.clusters["suspicion"].idxmax()]
    assert f"cluster {suspect['cluster']} ({suspect['size']} images)" in sentences[1]
    assert f"{100 * suspect['border_share']:.0f}% of its positive relevance on the top and bottom border" in sentences[1]
    assert "main cluster 0" in sentences[1]


def test_summary_follows_the_descriptors_not_the_demo():
    """Move the suspicion to another cluster: the summary must name that one instead."""
    data = synthetic_class_data(300, 3)
    clusters = data.clusters.copy()
    clusters["suspicion"] = [0.0, 0.9, 0.1]
    sentence = class_summary(dataclasses.replace(data, clusters=clusters))[1]
    assert sentence.startswith(f"Most suspicious: cluster 1 ({clusters['size'][1]} images) puts ")
    region, share, _ = hotspot(clusters["prototype"][1], clusters["prototype"][0])
    assert f"{100 * share:.0f}% of its positive relevance in the {region} of the image" in sentence


def test_summary_names_the_region_where_a_cluster_looks_and_the_main_one_does_not():
    data = synthetic_class_data(300, 3)
    clusters = data.clusters.copy()
    centre, corner = np.zeros((20, 20)), np.zeros((20, 20))
    centre[7:13, 7:13] = 1.0
    corner[15:19, 1:6] = 1.0  # a watermark-like blob, off the outer border ring
    clusters["prototype"] = [centre, centre, centre + 3 * corner]
    clusters["border_share"] = [0.0, 0.0, 0.05]
    clusters["suspicion"] = [0.0, 0.1, 0.9]
    sentence = class_summary(dataclasses.replace(data, clusters=clusters))[1]
    assert "in the bottom-left corner of the image, where the main cluster 0" in sentence
    assert hotspot(centre + 3 * corner, centre)[0] == "bottom-left corner"


def test_summary_names_the_sides_from_the_prototype():
    data = synthetic_class_data(300, 3)
    clusters = data.clusters.copy()
    clusters.at[2, "prototype"] = _band_map(left=True)
    sentence = class_summary(dataclasses.replace(data, clusters=clusters))[1]
    assert "positive relevance on the left border" in sentence


def test_summary_of_a_single_strategy_and_unstable_clusters():
    data = synthetic_class_data(100, 1)
    single = dataclasses.replace(data, stability={"grid=10": 0.2, "k+1": 0.4})
    sentences = class_summary(single)
    assert sentences[0] == "1 prediction strategy among 100 images."
    assert sentences[-1].startswith("Caution: the clusters change with the parameters (mean ARI 0.30")


def test_summary_says_when_the_chosen_count_is_not_the_largest_gap():
    data = synthetic_class_data(200, 3)
    overridden = dataclasses.replace(data, n_clusters=2, labels=np.minimum(data.labels, 1), clusters=data.clusters[:2])
    assert "would suggest 3" in class_summary(overridden)[0]
