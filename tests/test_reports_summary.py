"""The plain-language summary is written from the descriptors, for any class name or data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reports.summary import COLUMN_EXPLANATIONS, border_sides, class_summary, column_explanations, hotspot
from reports.synthetic import synthetic_class_data
from spray.analysis.suspicion import SUSPICION_THRESHOLD


def _with_suspicion(data, values):
    """Clusters with only these suspicion scores (no parts of the evidence, as an older analysis)."""
    clusters = data.clusters.drop(columns=["separation", "distinctness", "suspicious"], errors="ignore")
    clusters["suspicion"] = values
    return dataclasses.replace(data, clusters=clusters)


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
    data = _with_suspicion(synthetic_class_data(300, 3, class_name="zebra-crossing"), [0.0, 0.2, 1.7])
    sentences = class_summary(data)
    assert sentences[0].startswith("3 prediction strategies among 300 images")
    suspect = data.clusters.iloc[2]
    assert sentences[1].startswith(f"Suspicious: cluster 2 ({suspect['size']} images) has suspicion 1.70")
    assert (
        f"{100 * suspect['border_share']:.0f}% of its positive relevance on the top and bottom border" in sentences[1]
    )
    assert "main cluster 0" in sentences[1]


def test_summary_names_no_cluster_below_the_threshold():
    data = _with_suspicion(synthetic_class_data(300, 3), [0.0, 0.2, 0.95])
    sentence = class_summary(data)[1]
    assert sentence.startswith("No cluster is suspicious")
    assert "highest suspicion 0.95" in sentence and "cluster 2" not in sentence
    assert SUSPICION_THRESHOLD == 1.0


def test_summary_states_both_parts_of_the_evidence():
    data = _with_suspicion(synthetic_class_data(300, 3), [0.0, 0.2, 1.4])
    clusters = data.clusters.assign(separation=[0.1, 0.3, np.log(4.0)], distinctness=[0.0, 0.02, 0.31])
    sentence = class_summary(dataclasses.replace(data, clusters=clusters))[1]
    assert "is a group of its own (4.0 times fewer graph edges leave it than chance allows)" in sentence
    assert "31% of its relevance lies where the rest of the class does not look" in sentence


def test_summary_follows_the_descriptors_not_the_demo():
    """Move the suspicion to another cluster: the summary must name that one instead."""
    data = _with_suspicion(synthetic_class_data(300, 3), [0.0, 1.9, 0.1])
    clusters = data.clusters
    sentence = class_summary(data)[1]
    assert sentence.startswith(f"Suspicious: cluster 1 ({clusters['size'][1]} images) has suspicion 1.90")
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
    clusters["suspicion"] = [0.0, 0.1, 1.9]
    sentence = class_summary(dataclasses.replace(data, clusters=clusters))[1]
    assert "in the bottom-left ninth of the image, where the main cluster 0" in sentence
    assert hotspot(centre + 3 * corner, centre)[0] == "bottom-left ninth"


def test_summary_names_the_sides_from_the_prototype():
    data = synthetic_class_data(300, 3)
    clusters = data.clusters.copy()
    clusters.at[2, "prototype"] = _band_map(left=True)
    clusters["suspicion"] = [0.0, 0.1, 1.9]
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


def _params(rule, n_clusters=None):
    return {"grid": 20, "n_clusters_rule": rule, "n_clusters": n_clusters}


def test_strategy_sentence_of_the_significant_gap_rule():
    data = synthetic_class_data(200, 2)
    values = np.concatenate([[0.0, 0.03], np.linspace(0.17, 0.5, 30)])
    two = dataclasses.replace(data, eigenvalues=values, eigengap=None, params=_params("significant-gap"))
    assert class_summary(two)[0] == (
        "2 prediction strategies among 200 images: the spectrum jumps after \u03bb2 "
        "(\u03bb3 is 5.7 times \u03bb2), more than in structureless twins of the class."
    )
    apart = dataclasses.replace(two, eigenvalues=np.concatenate([[0.0, 0.0], values[2:]]))
    assert (
        "the first 2 eigenvalues are 0, so the maps fall into 2 groups with no edge between them"
        in class_summary(apart)[0]
    )
    one = dataclasses.replace(synthetic_class_data(100, 1), params=_params("significant-gap"))
    assert class_summary(one)[0] == (
        "1 prediction strategy among 100 images: no gap in the spectrum is larger "
        "than in structureless twins of the class."
    )
    by_hand = dataclasses.replace(two, params=_params("significant-gap", n_clusters=2))
    assert class_summary(by_hand)[0] == "2 prediction strategies among 200 images (the number was set by hand)."


def test_every_cluster_table_column_has_one_plain_sentence():
    from spray.analysis import SpectralRelevanceAnalysis

    maps = np.random.default_rng(0).random((60, 20, 20))
    table = SpectralRelevanceAnalysis(grid=None, n_clusters=2, embeddings=()).fit(maps).clusters_
    shown = [c for c in table.columns if c not in ("medoids",)]
    assert list(column_explanations(shown)) == shown
    for sentence in COLUMN_EXPLANATIONS.values():
        assert sentence.endswith(".") and sentence[0].isupper() and "\n" not in sentence
    assert column_explanations(["stability", "unknown"]) == {"stability": COLUMN_EXPLANATIONS["stability"]}


def _summary(name, suspicion, lambda_2=0.1):
    from reports.model import ClassSummary
    from reports.safe import class_page_filename

    return ClassSummary(
        class_name=name,
        page_href=class_page_filename(name),
        eigenvalues=np.array([0, lambda_2, 0.3]),
        largest_gap=0.2,
        n_clusters=2,
        n_samples=100,
        top_suspicion=suspicion,
    )


def test_index_headline_names_a_class_only_when_it_is_suspicious():
    from reports.index_page import headline

    quiet = [_summary("car", 0.73, lambda_2=0.01), _summary("horse", 0.46), _summary("cat", 0.0)]
    lines = headline(quiet)
    assert lines == [
        "3 classes analysed.",
        "No suspicious cluster in any class (highest suspicion 0.73; 1 is the threshold).",
    ]
    alarm = [_summary("car", 0.73, lambda_2=0.01), _summary("horse", 1.14), _summary("aeroplane", 2.5)]
    lines = headline(alarm)
    assert lines[1] == "Most suspicious: aeroplane (suspicion 2.50; 1 is the threshold)."
    assert lines[2] == "Also suspicious: horse (1.14)." and "car" not in " ".join(lines)


def test_index_ranks_suspicious_classes_first_then_by_lambda_2(tmp_path):
    from reports.index_page import rank_by_suspicion, render_index_page
    from reports.model import IndexReportData

    classes = [
        _summary("a", 0.9, 0.2),
        _summary("b", 1.3, 0.3),
        _summary("c", 0.0, 0.05),
        _summary("d", None, 0.01),
        _summary("e", 2.0, 0.4),
    ]
    assert [c.class_name for c in rank_by_suspicion(classes)] == ["e", "b", "c", "a", "d"]
    classes = classes[:4]
    page = render_index_page(IndexReportData(classes=classes), tmp_path).read_text(encoding="utf-8")
    table = page.split('id="ranking"')[1]
    assert table.index(">b</a>") < table.index(">c</a>") < table.index(">a</a>") < table.index(">d</a>")
    assert '<td data-sort="1.3">1.30</td><td data-sort="1">yes</td>' in table
