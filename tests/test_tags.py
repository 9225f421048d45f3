"""Cluster tags: given once with `spray tag`, kept beside the analysis, and following their
cluster into later analyses by prototype."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from store_helpers import fill_chunk, make_group

from relevance_store import StoreError, open_store
from relevance_store.tags import class_tags, read_tags, tag_cluster, tags_for_clusters
from spray.cli import cli

GRID = 4


def prototypes(seed: int = 0) -> np.ndarray:
    """Three clearly different placements: a corner, the centre, the bottom row."""
    rng = np.random.default_rng(seed)
    maps = np.zeros((3, GRID, GRID))
    maps[0, 0, 0] = maps[1, 1:3, 1:3] = maps[2, -1, :] = 1.0
    return maps + 0.02 * rng.random(maps.shape)


def add_analysis(group, protos: np.ndarray, seed: int) -> str:
    clusters = pd.DataFrame({"cluster": range(len(protos)), "size": [5, 3, 2], "medoids": [[0], [1], [2]]})
    return group.write_analysis(
        {"grid": GRID, "seed": seed},
        {
            "labels": np.repeat([0, 1, 2], [5, 3, 2]),
            "eigenvalues": np.zeros(3),
            "rows": np.arange(10),
            "prototypes": protos,
        },
        {"clusters": clusters},
    )


@pytest.fixture
def store(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    group = make_group(store, "horse")
    for chunk in range(group.n_chunks):
        fill_chunk(group, chunk)
    add_analysis(group, prototypes(), seed=0)
    return store


def test_a_tag_is_kept_beside_its_analysis_and_replaced_by_a_new_one(store):
    group = store.find_class("horse")
    first = tag_cluster(group, 0, "shortcut", "stamp")
    assert [(t.cluster, t.kind, t.note) for t in read_tags(group)] == [(0, "shortcut", "stamp")]
    assert first.analysis == group.read_analysis().params_hash and first.grid == GRID
    tag_cluster(group, 0, "unsure")
    tag_cluster(group, 2, "legitimate", "the ground")
    assert sorted((t.cluster, t.kind) for t in read_tags(group)) == [(0, "unsure"), (2, "legitimate")]


def test_a_tag_follows_its_cluster_into_a_later_analysis_by_prototype(store):
    group = store.find_class("horse")
    tag_cluster(group, 0, "shortcut", "stamp")
    tag_cluster(group, 2, "legitimate")
    later = prototypes(seed=1)[[2, 0, 1]]  # relabelled and a little different
    found = tags_for_clusters(class_tags(store, "horse"), later)
    assert [t.kind if t else None for t in found] == ["legitimate", "shortcut", None]
    elsewhere = np.zeros((1, GRID, GRID))
    elsewhere[0, 0, -1] = 1.0  # a corner nobody tagged
    assert tags_for_clusters(class_tags(store, "horse"), elsewhere) == [None]


def test_bad_tags_get_one_clear_line(store):
    group = store.find_class("horse")
    with pytest.raises(StoreError, match=r"has no cluster 7 in analysis .*; its clusters are 0, 1, 2"):
        tag_cluster(group, 7, "shortcut")
    with pytest.raises(StoreError, match="has no stored analysis 'deadbeef'"):
        tag_cluster(group, 0, "shortcut", analysis="deadbeef")
    with pytest.raises(StoreError, match="unknown tag 'bad'"):
        tag_cluster(group, 0, "bad")


def test_the_cli_tags_lists_and_removes(store, tmp_path):
    location = str(tmp_path / "s.zarr")
    runner = CliRunner()
    result = runner.invoke(
        cli, ["tag", "--store", location, "--class", "horse", "--cluster", "1", "--as", "shortcut", "--note", "a stamp"]
    )
    assert result.exit_code == 0 and "tagged cluster 1 of 'horse'" in result.output
    listed = runner.invoke(cli, ["tag", "--list", "--store", location])
    assert "horse: cluster 1 of analysis" in listed.output and "shortcut - a stamp" in listed.output
    unknown = runner.invoke(cli, ["tag", "--store", location, "--class", "zebra", "--cluster", "1", "--as", "unsure"])
    assert unknown.exit_code == 1 and "has no class 'zebra'" in unknown.output and "Traceback" not in unknown.output
    removed = runner.invoke(cli, ["tag", "--store", location, "--class", "horse", "--cluster", "1", "--remove"])
    assert removed.exit_code == 0 and read_tags(open_store(location).find_class("horse")) == []
    usage = runner.invoke(cli, ["tag", "--store", location, "--class", "horse"])
    assert usage.exit_code == 2


def test_the_class_page_shows_each_cluster_s_tag_and_the_command_that_tags_it(store, tmp_path):
    from reports.from_store import write_reports

    group = store.find_class("horse")
    tag_cluster(group, 0, "shortcut", "corner <stamp>")
    page, _ = write_reports([group], tmp_path / "reports")
    html = page.read_text()
    assert "tagged shortcut" in html and 'title="corner &lt;stamp&gt;"' in html
    assert html.count("spray tag --class horse --cluster ") == 3  # one command per card
    assert "--cluster 2 --as shortcut|legitimate|unsure" in html
