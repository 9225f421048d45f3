"""The cluster test's page from plain data: every user string escaped, a safe file name, the
parts a reader needs, and notes instead of empty charts when nothing was scored."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.cluster_page import ClusterPage, cluster_page_filename, render_cluster_page
from spray.verification.cluster_statistics import CONTRAST_COLUMNS, SUMMARY_COLUMNS

NASTY = '<script>alert("x")</script> & co'
SIDE = 16


def page_data(scored: bool = True) -> ClusterPage:
    mask = np.zeros((SIDE, SIDE), bool)
    mask[10:13, 2:9] = True
    rng = np.random.default_rng(0)
    summary = pd.DataFrame(
        [
            {
                "group": "members",
                "condition": c,
                "n": 5,
                "mean": m,
                "std": 0.5,
                "ci_low": m - 0.3,
                "ci_high": m + 0.3,
                "p_value": 0.06 if m else np.nan,
                "score_mean": 3.0 + m,
                "region_relevance_share": 0.4,
            }
            for c, m in (("original", 0.0), ("remove", -2.0), ("remove_control", -0.1))
        ],
        columns=SUMMARY_COLUMNS,
    )
    contrasts = pd.DataFrame(
        [
            {
                "group": "members",
                "intervention": "remove",
                "control": "remove_control",
                "n": 5,
                "intervention_mean": -2.0,
                "control_mean": -0.1,
                "difference": -1.9,
                "std": 0.6,
                "ci_low": -2.3,
                "ci_high": -1.5,
                "p_value": 0.06,
                "scale": 2.0,
                "effect": -0.95,
                "consistency": -3.2,
                "win_share": 1.0,
            }
        ],
        columns=CONTRAST_COLUMNS,
    )
    examples = {
        "sample_id": np.asarray([NASTY]),
        "group": np.asarray(["members"]),
        "donor": np.asarray([""]),
        "condition": np.asarray([["original", "remove", "remove_control"]]),
        "pixels": rng.integers(0, 256, (1, 3, SIDE, SIDE, 3), dtype=np.uint8),
        "relevance": rng.normal(size=(1, 3, SIDE, SIDE)).astype(np.float32),
        "score": np.asarray([[3.0, 1.0, 2.9]]),
    }
    return ClusterPage(
        class_name=NASTY,
        cluster=2,
        summary=summary if scored else summary.iloc[:0],
        contrasts=contrasts if scored else contrasts.iloc[:0],
        verdict={
            "conclusion": "partial",
            "headline": f"Partly supported for {NASTY}.",
            "findings": [f"about {NASTY}"],
            "margin": 0.5,
            "consistency": 1.5,
            "alpha": 0.05,
        },
        region={
            "mask": mask,
            "difference": rng.normal(size=(SIDE, SIDE)),
            "prototype": rng.normal(size=(4, 4)),
            "medoid_pixels": rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8),
        },
        region_text="21 pixels",
        reference=NASTY,
        examples=examples if scored else {},
        facts={"region rule": {"mass": 0.8, "sigma_cells": 0.5}, NASTY: NASTY},
    )


def test_every_user_string_is_escaped_and_the_name_is_safe(tmp_path):
    path = render_cluster_page(page_data(), tmp_path / cluster_page_filename(NASTY, 2))
    html = path.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in html
    assert path.parent == tmp_path and path.name.endswith("-cluster-2.html") and "<" not in path.name
    assert cluster_page_filename("horse", 1) == "class-horse-cluster-1.html"
    escaped = cluster_page_filename("../../etc", 1)
    assert escaped.startswith("class-") and "/" not in escaped
    for part in (
        "The region",
        "Change of the class score",
        "Intervention against control",
        "Before and after",
        "80%",
        "random region removed (control)",
        'href="class-',
    ):
        assert part in html


def test_nothing_scored_gives_notes_not_empty_charts(tmp_path):
    html = render_cluster_page(page_data(scored=False), tmp_path / "page.html").read_text()
    for note in ("No image was scored", "No image had both", "No statistics", "No example drawn"):
        assert note in html
