"""The padding-experiment page: standalone (inline Bokeh), escaped, charts or a clear message."""

from __future__ import annotations

import numpy as np

from reports.padding_page import PaddingPage, padding_page_filename, render_padding_page
from spray.verification import padding_verdict, strategies, summarise
from tests.test_verify_statistics import synthetic_table

LABELS = {s.name: s.label for s in strategies()}


def examples(n: int = 2, side: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "sample_id": np.asarray([f"img-{i}" for i in range(n)]),
        "member": np.asarray([True, False][:n]),
        "strategy": np.asarray(list(LABELS)),
        "pixels": rng.integers(0, 256, (n, len(LABELS), side, side, 3), dtype=np.uint8),
        "relevance": rng.normal(size=(n, len(LABELS), side, side)).astype(np.float32),
        "score": rng.normal(size=(n, len(LABELS))),
    }


def page_html(tmp_path, class_name: str, table) -> str:
    summary = summarise(table)
    page = PaddingPage(
        class_name, summary, padding_verdict(summary, class_name).to_dict(), LABELS, examples(), {"seed": 0}
    )
    path = render_padding_page(page, tmp_path / padding_page_filename(class_name))
    assert path.name == padding_page_filename(class_name)
    return path.read_text()


def test_page_is_standalone_with_charts_verdict_and_examples(tmp_path):
    html = page_html(tmp_path, "aeroplane", synthetic_table(1.0, -1.0))
    assert padding_page_filename("aeroplane") == "class-aeroplane-padding.html"
    assert "cdn.bokeh.org" not in html and "Bokeh" in html  # resources inline: opens offline
    assert html.count('<img src="data:image/png;base64,') == 2 * 2 * len(LABELS)  # picture + map per cell
    assert "The border shortcut is confirmed" in html and 'href="class-aeroplane.html"' in html
    for root in ("comparison", "others_orientation", "members_orientation"):
        assert f'"name":"{root}"' in html.replace(" ", "")


def test_user_strings_are_escaped(tmp_path):
    html = page_html(tmp_path, "<script>alert(1)</script>", synthetic_table(1.0, -1.0))
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "/" not in padding_page_filename("../../etc/passwd")


def test_groups_without_padded_images_get_a_message_not_an_empty_chart(tmp_path):
    table = synthetic_table(1.0, -1.0)
    table = table[~table["member"] | (table["orientation"] == "square")]  # the class: square images only
    html = page_html(tmp_path, "cat", table)
    assert "No landscape cat image was sampled" in html
    assert '"name":"members_orientation"' not in html.replace(" ", "")
    assert "nothing to compare here" in html
