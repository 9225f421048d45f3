"""The HTML pages: standalone files, escaped user strings, safe file names, size at 2,000 samples."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from reports import ClassSummary, class_page_filename, render_class_page, render_index_page
from reports.synthetic import synthetic_class_data, synthetic_index_data
from spray.errors import ReportDataError

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_ID = '<img src=x onerror="alert(2)">'
VOC = ["aeroplane", "bicycle", "bird", "boat", "horse"]


class _ResourceLinks(HTMLParser):
    """Collects the src/href of every tag (script bodies are not parsed as markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]


def _external_references(page: str) -> list[str]:
    """Every tag's src/href that reaches the network (http, https or protocol-relative)."""
    parser = _ResourceLinks()
    parser.feed(page)
    return [link for link in parser.links if re.match(r"\s*(https?:)?//", link, flags=re.IGNORECASE)]


def _hostile_class_data():
    data = synthetic_class_data(60, 3, class_name=SCRIPT_NAME)
    sample_ids = list(data.sample_ids)
    medoid = int(data.clusters["medoids"][0][0])
    sample_ids[medoid] = IMG_ID
    return dataclasses.replace(
        data,
        sample_ids=sample_ids,
        model_name="<b>model</b>",
        dataset_name="data & <i>set</i>",
        params={"<u>grid</u>": "<svg onload=alert(3)>"},
        links={"<em>padding</em>": "padding-aeroplane.html"},
    )


def test_class_page_is_one_standalone_file(tmp_path):
    path = render_class_page(synthetic_class_data(120, 3), tmp_path)
    assert path == tmp_path / "class-aeroplane.html"
    page = path.read_text(encoding="utf-8")
    assert _external_references(page) == []
    assert "Bokeh.embed" in page  # the library is inlined, not fetched
    assert page.count("data:image/webp;base64,") >= 120  # one hover thumbnail per sample, inline


def test_index_page_is_one_standalone_file_linking_every_class(tmp_path):
    path = render_index_page(synthetic_index_data(VOC), tmp_path)
    assert path == tmp_path / "index.html"
    page = path.read_text(encoding="utf-8")
    assert _external_references(page) == []
    for name in VOC:
        assert f'href="{class_page_filename(name)}"' in page


def test_external_reference_finder_sees_cdn_scripts():
    """The standalone check above would catch a CDN page (guards the regex itself)."""
    assert _external_references('<script src="https://cdn.bokeh.org/bokeh.js"></script>')
    assert _external_references("<link href='//cdn.example/x.css'>")


def test_every_user_string_on_the_class_page_is_escaped(tmp_path):
    page = render_class_page(_hostile_class_data(), tmp_path).read_text(encoding="utf-8")
    for raw in (SCRIPT_NAME, IMG_ID, "<b>model</b>", "<i>set</i>", "<u>grid</u>", "<svg onload", "<em>padding"):
        assert raw not in page, raw
    assert "Class &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page  # the medoid caption
    assert "data &amp; &lt;i&gt;set&lt;/i&gt;" in page
    assert "<title>spray: class &lt;script&gt;" in page


def test_every_user_string_on_the_index_page_is_escaped(tmp_path):
    page = render_index_page(synthetic_index_data([*VOC, SCRIPT_NAME]), tmp_path).read_text(encoding="utf-8")
    assert SCRIPT_NAME not in page
    assert f'<a href="{class_page_filename(SCRIPT_NAME)}">&lt;script&gt;alert(1)&lt;/script&gt;</a>' in page


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "a/b", "..", ".hidden", "C:\\x", SCRIPT_NAME, "", "Ünïcødé", "x" * 300]
)
def test_class_page_filename_stays_in_the_folder(name, tmp_path):
    filename = class_page_filename(name)
    assert re.fullmatch(r"class-[a-z0-9_-]+\.html", filename), filename
    assert len(filename) <= 90
    assert (tmp_path / filename).resolve().parent == tmp_path.resolve()


def test_class_page_filenames_are_distinct_and_plain_names_stay_readable():
    names = ["Cat", "cat", "a/b", "a_b", "a b", "tv monitor", "tv_monitor"]
    assert len({class_page_filename(n) for n in names}) == len(names)
    assert class_page_filename("aeroplane") == "class-aeroplane.html"


def test_no_class_page_shares_a_file_with_another_class_s_derived_pages():
    from reports.cluster_page import cluster_page_filename
    from reports.padding_page import padding_page_filename

    assert class_page_filename("horse-cluster-1") != cluster_page_filename("horse", 1)
    assert class_page_filename("x-padding") != padding_page_filename("x")
    assert class_page_filename("x-pad") == "class-x-pad.html"  # only the derived endings get a hash


def test_class_page_with_2000_samples_stays_under_20_mb(tmp_path):
    data = synthetic_class_data(2000, 4, seed=1)
    size = render_class_page(data, tmp_path).stat().st_size
    print(f"class page with 2,000 samples: {size / 1e6:.1f} MB")
    assert size < 20e6


def test_page_without_images_or_embeddings_still_renders(tmp_path):
    data = dataclasses.replace(synthetic_class_data(50, 2), image_thumbnails=None, embeddings={})
    page = render_class_page(data, tmp_path).read_text(encoding="utf-8")
    assert "data:image/webp" not in page
    assert "Class aeroplane" in page


def test_unknown_true_positives_are_not_claimed(tmp_path):
    data = dataclasses.replace(synthetic_class_data(50, 2), is_true_positive=None)
    page = render_class_page(data, tmp_path).read_text(encoding="utf-8")
    static_html = page.split('<main class="spray-report">', 1)[1].split("</main>", 1)[0]
    document = page.split('type="application/json"', 1)[1]
    assert "true positives are not marked" in static_html
    assert "true positive" not in static_html.replace("true positives are not marked", "")
    assert "true positive" not in document and '"triangle"' not in document  # no tooltip line, no marker


def test_single_cluster_and_noise_points_render(tmp_path):
    single = synthetic_class_data(40, 1)
    assert "1 prediction strategy" in render_class_page(single, tmp_path / "one").read_text(encoding="utf-8")
    data = synthetic_class_data(60, 3)
    noisy = dataclasses.replace(data, labels=np.where(np.arange(60) % 10 == 9, -1, data.labels))
    page = render_class_page(noisy, tmp_path / "noise").read_text(encoding="utf-8")
    assert '"noise"' in page  # its legend entry


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scores": np.zeros(3)}, "scores has 3 entries but there are 50 samples"),
        ({"embeddings": {"tsne": np.zeros((50, 3))}}, "embedding 'tsne' has shape"),
        ({"links": {"x": "javascript:alert(1)"}}, "is not a relative link"),
        ({"links": {"x": "https://example.com/p.html"}}, "is not a relative link"),
        ({"labels": np.full(50, 7)}, "cluster label(s) [7] have no row"),
        ({"relevance_thumbnails": np.zeros((50, 400))}, "relevance_thumbnails must be (N, g, g)"),
    ],
)
def test_inconsistent_data_is_refused_with_one_clear_sentence(change, message):
    with pytest.raises(ReportDataError, match=re.escape(message)):
        dataclasses.replace(synthetic_class_data(50, 2), **change)


def test_index_refuses_a_script_link():
    with pytest.raises(ReportDataError, match="not a relative link"):
        ClassSummary(
            class_name="x",
            page_href="javascript:alert(1)",
            eigenvalues=np.zeros(5),
            largest_gap=0,
            n_clusters=1,
            n_samples=3,
        )


def test_the_index_chart_ranks_by_lambda_2_ascending_and_the_table_in_the_cross_class_order(tmp_path):
    """The chart follows lambda_2 ascending (Fig. 6.5, L2124); the table, suspicious classes first."""
    from reports.index_page import rank_by_suspicion, spectra_chart

    data = synthetic_index_data(VOC, seed=3)
    charted = [factor[0] for factor in spectra_chart(data.classes).x_range.factors][::5]
    assert charted == [c.class_name for c in sorted(data.classes, key=lambda c: c.eigenvalues[1])]
    table = render_index_page(data, tmp_path).read_text(encoding="utf-8").split('id="ranking"')[1]
    positions = [table.index(f">{c.class_name}</a>") for c in rank_by_suspicion(data.classes)]
    assert positions == sorted(positions)


def test_lambda_2_ties_are_broken_by_the_next_eigenvalues():
    from reports.index_page import rank_by_lambda_2

    def summary(name, *values):
        return ClassSummary(
            class_name=name,
            page_href=class_page_filename(name),
            eigenvalues=np.array([0, *values]),
            largest_gap=0.1,
            n_clusters=2,
            n_samples=9,
        )

    ranked = rank_by_lambda_2(
        [summary("a", 0.0, 0.3, 0.4, 0.5), summary("b", 0.0, 0.0, 0.4, 0.5), summary("c", 0.1, 0.2, 0.3, 0.4)]
    )
    assert [c.class_name for c in ranked] == ["b", "a", "c"]


def test_rendering_writes_into_the_given_folder_only(tmp_path: Path):
    out = tmp_path / "reports"
    render_class_page(synthetic_class_data(40, 2, class_name="../escape"), out)
    assert [p.parent for p in tmp_path.rglob("*.html")] == [out]
