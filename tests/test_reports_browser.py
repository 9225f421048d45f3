"""The reports in a real headless Chromium, opened from disk with the network cut off.

Checks what a person sees: the page loads without console errors or network requests, the
Bokeh plots have canvases, hovering a point shows its thumbnails and id, selecting a row of
the cluster table highlights that cluster, and hostile names stay text. Screenshots go to
``test-artifacts/`` (gitignored; CI keeps them as artefacts).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from reports import class_page_filename, render_class_page, render_index_page
from reports.synthetic import synthetic_class_data, synthetic_index_data

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
HOSTILE_CLASS = "<script>alert(1)</script>"
HOSTILE_ID = '<img src=x onerror="alert(2)">'

# Screen position of sample ``index`` in the embedding plot named ``plot`` (page coordinates).
_POINT_POSITION_JS = """([plot, index]) => {
  const doc = Bokeh.documents[0];
  const view = Bokeh.index.find_one(doc.get_model_by_name(plot));
  const data = doc.get_model_by_name("samples").data;
  const method = plot.replace("embedding-", "");
  view.canvas_view.el.scrollIntoView({block: "center"});  // a point below the window cannot be hovered
  const box = view.canvas_view.el.getBoundingClientRect();
  return [box.left + view.frame.x_scale.compute(data["x_" + method][index]),
          box.top + view.frame.y_scale.compute(data["y_" + method][index])];
}"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"headless Chromium is not installed at {CHROMIUM}; run `bash scripts/install-system-packages.sh` "
            "(CI does) to install the Debian chromium package the browser tests need."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed; run `pip install -e '.[test]'` to get the test extras.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class OpenedPage:
    """A page loaded from disk that records console errors, page errors, dialogs and network use."""

    def __init__(self, browser, path: Path) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.network: list[str] = []
        self.page = browser.new_page(viewport={"width": 1300, "height": 1000})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._offline)
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _offline(self, route) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.network.append(route.request.url)
            route.abort()

    def canvas_sizes(self) -> list[tuple[float, float]]:
        boxes = [c.bounding_box() for c in self.page.locator("canvas").all()]
        return [(b["width"], b["height"]) for b in boxes if b]

    def hover_sample(self, plot: str, index: int):
        self.page.wait_for_function(
            "(plot) => Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name(plot)) != null", arg=plot
        )
        x, y = self.page.evaluate(_POINT_POSITION_JS, [plot, index])
        self.page.mouse.move(x, y)
        tooltip = self.page.locator(".bk-tooltip-content").first
        tooltip.wait_for(state="visible", timeout=5000)
        return tooltip

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.dialogs == [], f"a script ran from user data: {self.dialogs}"
        assert self.network == [], f"the page reached the network: {self.network}"

    def screenshot(self, name: str, **options) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), **options)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """A folder with two class pages (one with hostile names) and the index linking them."""
    out = tmp_path_factory.mktemp("reports")
    data = synthetic_class_data(400, 3, class_name="aeroplane")
    render_class_page(data, out)
    hostile = synthetic_class_data(80, 3, class_name=HOSTILE_CLASS, seed=2)
    hostile_ids = list(hostile.sample_ids)
    hostile_ids[0] = HOSTILE_ID
    hostile = dataclasses.replace(hostile, sample_ids=hostile_ids, model_name=HOSTILE_CLASS)
    render_class_page(hostile, out)
    render_index_page(synthetic_index_data(["aeroplane", "horse", "boat", HOSTILE_CLASS]), out)
    return out, data, hostile


def test_class_page_renders_offline_with_plots_and_hover_data(browser, pages):
    out, data, _ = pages
    opened = OpenedPage(browser, out / class_page_filename("aeroplane"))
    sizes = opened.canvas_sizes()
    assert len([s for s in sizes if s[0] > 300 and s[1] > 200]) >= 3, sizes  # eigenvalues, t-SNE, UMAP
    columns = opened.page.evaluate(
        "() => { const d = Bokeh.documents[0].get_model_by_name('samples').data;"
        " return [d.sample_id.length, d.image.filter((u) => u.startsWith('data:image/webp;base64,')).length]; }"
    )
    assert columns == [len(data.sample_ids)] * 2
    opened.screenshot("class-page.png", full_page=True)
    opened.assert_clean()
    opened.page.close()


def test_hovering_a_point_shows_its_thumbnails_id_score_and_tp(browser, pages):
    out, data, _ = pages
    opened = OpenedPage(browser, out / class_page_filename("aeroplane"))
    index = int(np.flatnonzero(data.labels == 2)[3])
    tooltip = opened.hover_sample("embedding-tsne", index)
    assert data.sample_ids[index] in tooltip.inner_text()
    sources = [img.get_attribute("src") for img in tooltip.locator("img").all()]
    assert any(s.startswith("data:image/webp;base64,") for s in sources)  # the image thumbnail
    assert any(s.startswith("data:image/png;base64,") for s in sources)  # the map, drawn on hover
    assert "true positive:" in tooltip.inner_text()
    box = tooltip.bounding_box()
    opened.screenshot(
        "class-hover.png", clip={"x": max(0, box["x"] - 250), "y": max(0, box["y"] - 150), "width": 700, "height": 450}
    )
    opened.assert_clean()
    opened.page.close()


def test_selecting_a_table_row_highlights_that_clusters_points(browser, pages):
    out, data, _ = pages
    opened = OpenedPage(browser, out / class_page_filename("aeroplane"))
    row = opened.page.locator(".slick-row").nth(2)  # cluster 2, the planted border artefact
    row.locator(".slick-cell").first.click()
    selected = opened.page.evaluate("() => Bokeh.documents[0].get_model_by_name('samples').selected.indices")
    assert sorted(selected) == np.flatnonzero(data.labels == 2).tolist()
    opened.screenshot("class-selected-cluster.png", full_page=True)
    opened.assert_clean()
    opened.page.close()


def test_hostile_names_show_as_text_even_in_tooltips(browser, pages):
    out, _, _hostile = pages
    opened = OpenedPage(browser, out / class_page_filename(HOSTILE_CLASS))
    assert opened.page.locator("h1").inner_text() == f"Class {HOSTILE_CLASS}"
    assert HOSTILE_CLASS in opened.page.locator(".subtitle").inner_text()
    assert opened.page.title() == f"spray: class {HOSTILE_CLASS}"
    tooltip = opened.hover_sample("embedding-umap", 0)
    assert HOSTILE_ID in tooltip.inner_text()
    assert tooltip.locator('img[src="x"]').count() == 0
    opened.screenshot("class-hostile-hover.png")
    opened.assert_clean()
    opened.page.close()


def test_index_page_renders_and_links_to_class_pages(browser, pages):
    out, _, _ = pages
    opened = OpenedPage(browser, out / "index.html")
    assert any(w > 300 and h > 200 for w, h in opened.canvas_sizes())
    assert opened.page.get_by_role("link", name=HOSTILE_CLASS).count() == 1  # in the ranking table, as text
    opened.screenshot("index-page.png", full_page=True)
    opened.page.get_by_role("link", name="aeroplane").first.click()
    opened.page.wait_for_url("**/" + class_page_filename("aeroplane"))
    opened.page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
    opened.assert_clean()
    opened.page.close()


def test_an_index_of_1000_classes_loads_fast_and_filters_and_sorts(browser, tmp_path):
    import time

    from reports.index_page import render_index_page
    from reports.synthetic import synthetic_index_data

    names = [f"class_{i:04d}" for i in range(1000)]
    path = render_index_page(synthetic_index_data(names, seed=5), tmp_path)
    started = time.perf_counter()
    opened = OpenedPage(browser, path)  # waits for the page and its plots
    loaded = time.perf_counter() - started
    assert loaded < 3.0, f"the index of 1000 classes took {loaded:.1f} s to load"
    rows = opened.page.locator("#ranking tbody tr")
    assert rows.count() == 1000
    opened.page.fill("#class-filter", "class_099")
    assert opened.page.locator("#ranking tbody tr:not([hidden])").count() == 10
    assert opened.page.locator("#class-count").inner_text() == "10 of 1000 classes"
    opened.page.fill("#class-filter", "")
    opened.page.locator('#ranking th[data-column="6"]').click()  # clusters, ascending
    counts = [int(t) for t in opened.page.locator("#ranking tbody tr td:nth-child(7)").all_inner_texts()]
    assert counts == sorted(counts)
    opened.assert_clean()
    opened.page.close()
