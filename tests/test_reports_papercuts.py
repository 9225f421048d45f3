"""The report papercuts of a first day (issue 17, section 3), each checked where a person sees it.

In headless Chromium (as in test_reports_browser): table headers shown whole, the eigengap
caption inside its plot, sample ids wrapped between words, the same percentage in the cluster
table and on the cluster card, the audit page in the class pages' layout with its prototypes
beside (not over) the findings. In the HTML: stability ARIs with two decimals, no all-zero rows
of square images in the padding table, a one-audit time axis of a day, class pages of `spray
report` linking the padding page, and index parameters that hold for every ranked class.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from reports import render_class_page
from reports.audit_page import _timeline, write_audit_page
from reports.class_plots import percent
from reports.synthetic import synthetic_class_data
from tests.test_reports_browser import OpenedPage, browser  # noqa: F401  (the browser fixture)
from tests.test_verify_page import page_html
from tests.test_verify_statistics import synthetic_table

SIZES = (97, 61, 42)  # of 200: 48.5%, 30.5% and 21% -- halves, which two rounding rules told apart

# Every header cell of every DataTable (inside Bokeh's shadow roots): title, text box right, cell right.
_HEADERS_JS = """() => {
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.classList.contains("slick-column-name")) {
        const cell = el.closest(".slick-header-column");
        found.push([el.textContent, el.getBoundingClientRect().right, cell.getBoundingClientRect().right]);
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}"""

# Rows of the cluster table as shown: the text of every cell.
_TABLE_ROWS_JS = """() => {
  const rows = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll(".slick-row")) {
      rows.push(Array.from(el.querySelectorAll(".slick-cell")).map((cell) => cell.textContent.trim()));
    }
    for (const el of root.querySelectorAll("*")) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return rows;
}"""

# For each medoid caption: its pieces between break opportunities, and how many lines each takes.
_CAPTION_LINES_JS = """() => Array.from(document.querySelectorAll(".card figure:not(.prototype) figcaption")).map(
  (caption) => Array.from(caption.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE).map((node) => {
    const range = document.createRange();
    range.selectNodeContents(node);
    const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
    return [node.textContent, tops.size];
  }))"""

# The eigengap caption's box and the plot frame's box, in canvas pixels.
_CAPTION_BOX_JS = """() => {
  const doc = Bokeh.documents[0];
  const caption = Bokeh.index.find_one(doc.get_model_by_name("eigengap_caption")).bbox;
  const frame = Bokeh.index.find_one(doc.get_model_by_name("spectrum")).frame.bbox;
  return [caption.x0, caption.x1, caption.y0, caption.y1, frame.x0, frame.x1, frame.y0, frame.y1];
}"""


def _with_sizes(data, sizes):
    """``data`` relabelled into clusters of ``sizes`` (cluster table, medoids and prototypes to match)."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    table = data.clusters.iloc[: len(sizes)].copy()
    table["cluster"] = np.arange(len(sizes))
    table["size"] = list(sizes)
    table["medoids"] = [list(np.flatnonzero(labels == c)[:5]) for c in range(len(sizes))]
    table["prototype"] = [data.relevance_thumbnails[labels == c].mean(axis=0) for c in range(len(sizes))]
    return dataclasses.replace(data, labels=labels, clusters=table.reset_index(drop=True), n_clusters=len(sizes))


@pytest.fixture(scope="module")
def class_page(tmp_path_factory):
    """A class page with every table column, halves to round, a late eigengap and word-like sample ids."""
    data = synthetic_class_data(sum(SIZES), 3, class_name="aeroplane", seed=5)
    data = _with_sizes(data, SIZES)
    eigenvalues = np.concatenate([np.linspace(0, 0.2, 9), np.linspace(0.5, 0.9, 11)])
    data = dataclasses.replace(
        data,
        eigenvalues=eigenvalues,
        eigengap=None,
        n_clusters=9,
        sample_ids=[f"test_aeroplane_{i:04d}" for i in range(sum(SIZES))],
        stability={"grid=10": 0.5160951234, "k=5": 0.9020091},
    )
    out = tmp_path_factory.mktemp("papercuts")
    return render_class_page(data, out), data


@pytest.mark.browser
def test_table_headers_are_shown_whole(browser, class_page):  # noqa: F811
    path, _ = class_page
    opened = OpenedPage(browser, path)
    headers = opened.page.evaluate(_HEADERS_JS)
    assert [title for title, _, _ in headers][:4] == ["cluster", "size", "of class", "true positives"]
    for title, text_right, cell_right in headers:  # force_fit had squeezed "cluster" to "cluste"
        assert text_right <= cell_right, f"header {title!r} is cut off"
    opened.screenshot("papercuts-class-page.png", full_page=True)
    opened.assert_clean()


@pytest.mark.browser
def test_the_eigengap_caption_stays_inside_the_plot(browser, class_page):  # noqa: F811
    opened = OpenedPage(browser, class_page[0])
    x0, x1, y0, y1, frame_x0, frame_x1, frame_y0, frame_y1 = opened.page.evaluate(_CAPTION_BOX_JS)
    assert frame_x0 <= x0 < x1 <= frame_x1 and frame_y0 <= y0 < y1 <= frame_y1  # a gap after lambda_9 of 20


@pytest.mark.browser
def test_sample_ids_wrap_between_words(browser, class_page):  # noqa: F811
    opened = OpenedPage(browser, class_page[0])
    captions = opened.page.evaluate(_CAPTION_LINES_JS)
    assert captions and all(pieces for pieces in captions)
    for pieces in captions:
        assert "".join(text for text, _ in pieces).startswith("test_aeroplane_")
        assert all(lines == 1 for _, lines in pieces), pieces  # "test_aeropl" / "ane_0010" before


@pytest.mark.browser
def test_the_table_and_the_cards_show_the_same_percentages(browser, class_page):  # noqa: F811
    path, _data = class_page
    opened = OpenedPage(browser, path)
    shown = {int(row[0]): row[2] for row in opened.page.evaluate(_TABLE_ROWS_JS) if row and row[0].isdigit()}
    cards = {
        int(m[0]): f"{m[1]}%"
        for m in re.findall(r"Cluster (\d+): \d+ images \((\d+)% of the class", opened.page.content())
    }
    assert shown == cards == {c: f"{percent(size / sum(SIZES))}%" for c, size in enumerate(SIZES)}
    assert shown[0] == "49%"  # 97 of 200, rounded half up on both


def test_percent_rounds_halves_up_once():
    assert [percent(x) for x in (97 / 200, 61 / 200, 0.42, 0.004999, 0.005, 1.0)] == [49, 31, 42, 0, 1, 100]


def test_stability_shows_two_decimals(class_page):
    html = class_page[0].read_text()
    section = html[html.index("<h2>Stability</h2>") : html.index("<h2>Parameters</h2>")]
    assert re.findall(r"<td>([^<]*)</td>", section) == ["0.52", "0.90"]


def test_square_images_are_one_note_not_all_zero_rows(tmp_path):
    table = synthetic_table(1.0, -1.0)
    html = page_html(tmp_path, "aeroplane", table)
    statistics = html[html.index("<h2>Statistics</h2>") : html.index("<h2>Relevance under each strategy")]
    assert "<td>square</td>" not in statistics
    squares = table[(table["orientation"] == "square") & (table["strategy"] == "copy_border")]
    members, others = int(squares["member"].sum()), int((~squares["member"]).sum())
    assert statistics.count("Square images") == 1
    assert f"Square images ({members} of the class, {others} not of the class) need no padding" in statistics


def test_square_images_that_do_change_keep_their_rows(tmp_path):
    table = synthetic_table(1.0, -1.0)
    changed = (table["orientation"] == "square") & (table["strategy"] == "noise")
    table.loc[changed, "delta"] = 0.5  # not what padding does, but then the rows say something
    html = page_html(tmp_path, "aeroplane", table)
    assert "<td>square</td>" in html


def _audit_rows(times: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "audit_id": f"a{i}",
                "started_at": pd.Timestamp(t, tz="UTC"),
                "model_version": f"v{i}",
                "class_name": "horse",
                "lambda_2": 0.1 + i / 100,
                "suspicion": 0.3,
                "n_clusters": 2,
                "cluster": 1,
                "prototype": np.linspace(-1, 1, 400).astype(np.float32),
            }
            for i, t in enumerate(times)
        ]
    )


def test_one_audit_gets_a_day_long_time_axis():
    rows = _audit_rows(["2026-12-01T02:00:00.123456"])
    plot = _timeline(rows, "lambda_2", "lambda_2")
    span = pd.Timestamp(plot.x_range.end) - pd.Timestamp(plot.x_range.start)
    assert span >= pd.Timedelta(days=1)  # microsecond ticks around a zero-width range before
    several = _timeline(_audit_rows(["2026-11-01", "2026-12-01"]), "lambda_2", "lambda_2")
    assert (
        pd.Timestamp(several.x_range.start)
        < pd.Timestamp("2026-11-01")
        < pd.Timestamp("2026-12-01")
        < pd.Timestamp(several.x_range.end)
    )


@pytest.mark.browser
def test_the_audit_page_looks_like_the_class_pages(browser, tmp_path):  # noqa: F811
    rows = _audit_rows(["2026-12-01T02:00:00.123456"])
    summary = {
        "audit_id": "a0",
        "model_name": "demo",
        "model_version": "v0",
        "previous_audit_id": "earlier",
        "started_at": "2026-12-01T02:00:00.123456+00:00",
        "model_fingerprint": "f" * 16,
        "findings": [
            {
                "kind": "new_suspicious_cluster",
                "class_name": "horse",
                "message": "cluster 1 (9 samples, suspicion 0.8) is new " * 4,
                "details": {"audit_id": "a0", "cluster": 1},
            }
        ],
        "notices": ["a tagged shortcut is still present"],
        "classes": [],
    }
    path = write_audit_page(tmp_path / "reports" / "audits" / "a0.html", rows, summary)
    opened = OpenedPage(browser, path)
    heading = opened.page.locator("main.spray-report h1").bounding_box()
    assert heading and heading["x"] >= 16  # inside the page's margin, not at the window's edge
    picture, words = opened.page.locator("ul.findings li img"), opened.page.locator("ul.findings li span")
    assert picture.count() == 1 and words.count() == 1
    assert picture.bounding_box()["x"] + picture.bounding_box()["width"] <= words.bounding_box()["x"]
    marker = opened.page.evaluate("() => getComputedStyle(document.querySelector('ul.findings li')).display")
    assert marker == "flex"  # no bullet for the picture to cover
    assert (
        "2026-12-01 02:00:00 UTC" in opened.page.content()
        and "a tagged shortcut is still present" in opened.page.content()
    )
    opened.screenshot("papercuts-audit-page.png", full_page=True)
    opened.assert_clean()


def _stored_classes(root, ks: dict[str, int]):
    """A store with one analysed class per entry of ``ks`` (its kNN k), as the analyse step writes them."""
    from relevance_store import ClassKey, open_store
    from spray.analysis import SpectralRelevanceAnalysis

    store = open_store(root / "store.zarr", mode="a")
    groups = []
    for seed, (name, k) in enumerate(ks.items()):
        planted = synthetic_class_data(60, 3, class_name=name, seed=seed)
        group = store.create_class(
            ClassKey("m" * 16, "d" * 16, "v" * 16, name),
            list(planted.sample_ids),
            [1] * 60,
            grids=(20,),
            map_shape=None,
            thumbnail_size=48,
            chunk_size=32,
            attrs={"config": {"selection": "true"}, "dataset": {"name": "demo"}},
        )
        for chunk in range(group.n_chunks):
            rows = group.chunk_rows(chunk)
            group.write_chunk(
                chunk,
                scores=np.asarray(planted.scores)[rows],
                pooled={20: planted.relevance_thumbnails[rows]},
                thumbnails=planted.image_thumbnails[rows],
            )
        analysis = SpectralRelevanceAnalysis(k=k, embeddings=()).fit(group.pooled(20))
        group.write_analysis(
            {**analysis.get_params(), "rows": f"rows-of-{name}"},
            {"eigenvalues": analysis.eigenvalues_, "labels": analysis.labels_},
            {"clusters": analysis.clusters_},
            {"n_clusters": analysis.n_clusters_},
        )
        groups.append(group)
    return groups


def test_spray_report_links_the_padding_page_it_finds(tmp_path):
    from reports.from_store import write_reports
    from reports.padding_page import padding_page_filename

    groups = _stored_classes(tmp_path, {"aeroplane": 5, "horse": 5})
    out = tmp_path / "reports"
    out.mkdir()
    (out / padding_page_filename("aeroplane")).write_text("<p>the padding experiment</p>")
    write_reports(groups, out)  # what `spray report` calls: no links passed
    assert (
        f'<a href="{padding_page_filename("aeroplane")}">padding verification</a>'
        in (out / "class-aeroplane.html").read_text()
    )
    assert "padding verification" not in (out / "class-horse.html").read_text()  # no page, no link


def test_the_index_states_only_parameters_every_ranked_class_shares(tmp_path):
    from reports.from_store import write_reports

    groups = _stored_classes(tmp_path, {"aeroplane": 5, "horse": 7, "boat": 5})
    *_, index = write_reports(groups, tmp_path / "reports")
    section = index.read_text().split("<h2>Parameters</h2>")[1].split("<h2>")[0]
    cells = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", section))
    assert cells["analyses of"] == "the 3 classes ranked above"
    assert cells["differ between classes"] == "k" and "k" not in cells and "rows" not in cells
    assert cells["grid"] == "20" and cells["laplacian"] == "sym"
