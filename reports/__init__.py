"""Bokeh HTML reports rendered from what is in the store (never recomputes analysis).

The renderer takes plain data (``reports.model``) so it does not depend on how the store or
the analysis are laid out; ``reports.from_store`` maps those onto it. Pages open offline from
disk (BokehJS written once into the reports folder, ``reports.page``) and escape every user
string.

    render_class_page(ClassReportData, out_dir) -> Path   # out_dir/class-<slug>.html
    render_index_page(IndexReportData, out_dir) -> Path   # out_dir/index.html
"""

from __future__ import annotations

import importlib

__all__ = [
    "ClassReportData",
    "ClassSummary",
    "IndexReportData",
    "class_page_filename",
    "render_class_page",
    "render_index_page",
]

# name -> module; imported on first use so that ``import reports`` stays cheap (no bokeh).
_EXPORTS = {
    "ClassReportData": "reports.model",
    "ClassSummary": "reports.model",
    "IndexReportData": "reports.model",
    "class_page_filename": "reports.safe",
    "render_class_page": "reports.class_page",
    "render_index_page": "reports.index_page",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
