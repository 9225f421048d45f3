"""Report data read back from a real store holding maps and a real SpectralRelevanceAnalysis."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relevance_store import ClassKey, open_store
from reports.from_store import class_report_data, index_entry, write_reports
from reports.synthetic import synthetic_class_data
from spray.analysis import SpectralRelevanceAnalysis
from spray.errors import ReportDataError

N, CHUNK, FAILED_ROW = 80, 32, 5


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store with class "horse" (one failed sample) and one analysis of its valid maps."""
    planted = synthetic_class_data(N, 3, class_name="horse", seed=4)
    store = open_store(tmp_path_factory.mktemp("store") / "s.zarr", mode="a")
    labels = (np.arange(N) % 7 != 0).astype(int)  # a few non-members, as with --select predicted
    group = store.create_class(
        ClassKey("m" * 16, "d" * 16, "v" * 16, "horse"),
        list(planted.sample_ids),
        labels,
        grids=(20,),
        thumbnail_size=48,
        chunk_size=CHUNK,
        attrs={"config": {"selection": "predicted", "split": "test"}, "dataset": {"name": "demo"}},
    )
    maps, scores = planted.relevance_thumbnails.astype(np.float32), np.asarray(planted.scores, dtype=np.float32)
    errors = np.where(np.arange(N) == FAILED_ROW, "unreadable image", "")
    maps[FAILED_ROW], scores[FAILED_ROW] = np.nan, np.nan
    for chunk in range(group.n_chunks):
        rows = group.chunk_rows(chunk)
        group.write_chunk(
            chunk,
            scores=scores[rows],
            pooled={20: maps[rows]},
            thumbnails=planted.image_thumbnails[rows],
            errors=list(errors[rows]),
        )
    valid = np.flatnonzero(group.valid)
    analysis = SpectralRelevanceAnalysis(embeddings=()).fit(group.pooled(20)[valid])
    stability = pd.DataFrame({"parameter": ["grid", "k"], "value": [10, 5], "ari": [0.9, 0.7]})
    group.write_analysis(
        analysis.params_,
        {
            "eigenvalues": analysis.eigenvalues_,
            "eigengap": analysis.eigengap_,
            "labels": analysis.labels_,
            "rows": valid,
            "prototypes": analysis.prototypes_,
            "tsne": analysis.eigenvectors_[:, 1:3],
        },
        {"clusters": analysis.clusters_, "stability": stability},
        {"n_clusters": analysis.n_clusters_},
    )
    return group, analysis, valid, planted


def test_class_report_data_is_the_stored_analysis_of_the_valid_rows(stored):
    group, analysis, valid, planted = stored
    data = class_report_data(group)
    assert FAILED_ROW not in valid and len(data.sample_ids) == N - 1
    assert data.sample_ids == [planted.sample_ids[i] for i in valid]
    np.testing.assert_array_equal(data.labels, analysis.labels_)
    np.testing.assert_allclose(data.eigenvalues, analysis.eigenvalues_)
    np.testing.assert_allclose(data.relevance_thumbnails, planted.relevance_thumbnails[valid], rtol=1e-6)
    np.testing.assert_array_equal(data.image_thumbnails, planted.image_thumbnails[valid])
    np.testing.assert_array_equal(data.is_true_positive, (np.arange(N) % 7 != 0)[valid])
    np.testing.assert_allclose(data.embeddings["tsne"], analysis.eigenvectors_[:, 1:3])
    assert data.n_clusters == analysis.n_clusters_
    assert data.stability == {"grid=10": 0.9, "k=5": 0.7}
    assert data.model_name and data.dataset_name == "demo"


def test_medoids_and_prototypes_point_at_the_right_samples(stored):
    group, analysis, valid, planted = stored
    data = class_report_data(group)
    for (_, row), expected in zip(data.clusters.iterrows(), analysis.clusters_["medoids"], strict=True):
        assert [data.sample_ids[i] for i in row["medoids"]] == [planted.sample_ids[valid[i]] for i in expected]
    for prototype, expected in zip(data.clusters["prototype"], analysis.prototypes_, strict=True):
        np.testing.assert_allclose(prototype, expected)


def test_index_entry_ranks_by_the_stored_spectrum(stored):
    group, analysis, _, _ = stored
    entry = index_entry(class_report_data(group))
    assert entry.lambda_2 == pytest.approx(analysis.eigenvalues_[1])
    assert entry.top_suspicion == pytest.approx(analysis.clusters_["suspicion"].max())
    assert entry.page_href == "class-horse.html"


def test_write_reports_links_index_and_class_pages(stored, tmp_path):
    group, _, _, _ = stored
    class_page, index_page = write_reports([group], tmp_path, links={"horse": {"padding check": "padding-horse.html"}})
    assert class_page.name == "class-horse.html" and index_page.name == "index.html"
    page = class_page.read_text(encoding="utf-8")
    assert 'href="index.html"' in page and 'href="padding-horse.html"' in page
    assert 'href="class-horse.html"' in index_page.read_text(encoding="utf-8")


def test_write_reports_shows_the_analysis_it_is_given(stored, tmp_path):
    group, _, _, _ = stored
    first = group.read_analysis()
    later = group.write_analysis({**first.params, "k": 9}, first.arrays, first.tables, first.attrs)
    assert group.read_analysis().params_hash == later
    (page, _) = write_reports([group], tmp_path, analyses={"horse": first})
    assert first.params_hash in page.read_text(encoding="utf-8") and later not in page.read_text(encoding="utf-8")


def test_true_positives_need_known_predictions(stored):
    """Chosen by true label only and no stored predictions: unknown, not guessed."""
    group, _, _, _ = stored
    analysis = group.read_analysis()
    by_true_label = type(group)(group.group, group.key)
    by_true_label.group.attrs.update(config={"selection": "true", "split": "test"})
    try:
        assert class_report_data(by_true_label, analysis).is_true_positive is None
        predicted = np.arange(len(analysis.arrays["rows"])) % 2 == 0
        analysis.arrays = {**analysis.arrays, "predicted": predicted}
        true_member = np.asarray(group.labels)[analysis.arrays["rows"]] == 1
        np.testing.assert_array_equal(
            class_report_data(by_true_label, analysis).is_true_positive, true_member & predicted
        )
    finally:
        by_true_label.group.attrs.update(config={"selection": "predicted", "split": "test"})


def test_an_analysis_of_other_rows_is_refused(stored):
    group, _, _, _ = stored
    analysis = group.read_analysis()
    analysis.arrays = {**analysis.arrays, "rows": analysis.arrays["rows"][:-3]}
    with pytest.raises(ReportDataError, match="labels for 76 analysed rows"):
        class_report_data(group, analysis)


def test_a_rerun_renders_only_the_pages_whose_inputs_changed(stored, tmp_path):
    group = stored[0]
    first = write_reports([group], tmp_path)
    page, index = first
    stamps = (page.stat().st_mtime_ns, index.stat().st_mtime_ns)
    again = write_reports([group], tmp_path)
    assert again == first and page.stat().st_mtime_ns == stamps[0]  # the class page was kept as it was
    assert index.stat().st_mtime_ns != stamps[1]  # the index is always written
    group.update_attrs(tags=[])  # anything in the group's attrs (settings, tags) changes: rendered again
    write_reports([group], tmp_path)
    assert page.stat().st_mtime_ns != stamps[0]
    page.unlink()
    write_reports([group], tmp_path)
    assert page.is_file()  # a deleted page is written again


def _pid_square_and_blas_threads(value: int) -> tuple[int, int, int]:
    import numpy  # noqa: F401  (loads OpenBLAS, as a page's pandas work does)
    from threadpoolctl import threadpool_info

    blas = max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)
    return os.getpid(), value * value, blas


def test_pages_rendered_by_a_pool_come_back_in_order_from_other_processes_with_one_blas_thread():
    from reports.page_pool import POOL_MIN_PAGES, pool_size, render_all

    results = list(render_all(_pid_square_and_blas_threads, list(range(10)), processes=2))
    assert [square for _, square, _ in results] == [value * value for value in range(10)]
    assert os.getpid() not in {pid for pid, _, _ in results}
    assert {blas for _, _, blas in results} == {1}
    assert pool_size(POOL_MIN_PAGES - 1) == 0 and pool_size(5, processes=1) == 0 and pool_size(5, processes=2) == 2
    assert pool_size(0, processes=2) == 0


def test_no_progress_bar_when_no_page_is_rendered(capsys):
    from reports.page_pool import render_all

    assert list(render_all(_pid_square_and_blas_threads, [], progress=True, desc="class pages")) == []
    assert "class pages" not in capsys.readouterr().err
    assert [square for _, square, _ in render_all(_pid_square_and_blas_threads, [3], progress=True)] == [9]
    assert "1/1" in capsys.readouterr().err


def test_a_page_rendered_by_a_pool_process_equals_the_one_rendered_here(stored, tmp_path):
    from reports.page_pool import pool_size

    group = stored[0]
    assert pool_size(1, processes=2) == 1  # one page, still rendered by a pool process
    (here, _) = write_reports([group], tmp_path / "here", processes=1)
    (pooled, _) = write_reports([group], tmp_path / "pool", analyses={"horse": group.read_analysis()}, processes=2)

    def without_ids(page: Path) -> str:  # Bokeh numbers its models per process
        return re.sub(r'"p\d+"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', "ID", page.read_text())

    assert without_ids(pooled) == without_ids(here)
