"""BokehJS is written once beside the pages and loaded by a relative path (1000 class pages
must not carry 1.27 MB each), and the pages still render offline from disk."""

from __future__ import annotations

import re

from bokeh.plotting import figure

from reports.page import BOKEH_ASSETS, Block, write_page


def test_pages_load_bokehjs_from_one_shared_folder_by_relative_path(tmp_path):
    plot = figure(name="p")
    plot.line([0, 1], [0, 1])
    first = write_page(tmp_path / "class-a.html", "a", [plot], [Block(root="p")])
    nested = write_page(
        tmp_path / "audits" / "x.html", "x", [figure(name="q")], [Block(root="q")], assets_root=tmp_path
    )
    bundle = tmp_path / BOKEH_ASSETS / "static" / "js" / "bokeh.min.js"
    assert bundle.is_file() and bundle.stat().st_size > 500_000
    assert first.stat().st_size < 100_000  # the page itself: no inlined BokehJS
    assert re.search(rf'src="{BOKEH_ASSETS}/static/js/bokeh\.min\.js"', first.read_text())
    assert re.search(rf'src="\.\./{BOKEH_ASSETS}/static/js/bokeh\.min\.js"', nested.read_text())
    before = bundle.stat().st_mtime_ns
    write_page(tmp_path / "class-b.html", "b", [figure(name="r")], [Block(root="r")])
    assert bundle.stat().st_mtime_ns == before  # written once, not per page


def test_a_page_without_plots_is_written(tmp_path):
    page = write_page(tmp_path / "plain.html", "plain", [], [Block(html="<p>only text</p>")])
    assert "only text" in page.read_text()
