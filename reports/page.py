"""Writing one HTML page: escaped static HTML blocks interleaved with Bokeh roots.

BokehJS is written once into the reports folder (``bokeh-<version>/static/js/``) and every page
loads it by a relative path, so pages open offline from disk (CDN resources render a blank
page offline, ARCHITECTURE.md) without each carrying 1.27 MB of inlined BokehJS: 1000 class
pages would have been ~2 GB. Copy the whole reports folder to move the pages.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bokeh
from bokeh.embed import file_html
from bokeh.model import Model
from bokeh.models.widgets import Div
from bokeh.resources import Resources
from bokeh.util.paths import bokehjs_path

from reports.safe import text
from spray.atomic import write_text_atomically

_TEMPLATE = """
{% block postamble %}<style>{{ css }}</style>{% endblock %}
{% block contents %}
<main class="spray-report">
{% for block in blocks %}
{% if block.root %}{{ embed(roots[block.root]) }}{% else %}{{ block.html }}{% endif %}
{% endfor %}
</main>
{% endblock %}
"""

_CSS = """
html, body { height: auto; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fff; }
.spray-report { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
.spray-report h1 { font-size: 1.6em; margin: 0.2em 0; word-break: break-word; }
.spray-report h2 { font-size: 1.25em; margin: 1.4em 0 0.4em; border-bottom: 1px solid #ddd; }
.spray-report h3 { font-size: 1.05em; margin: 0.2em 0; }
.spray-report .subtitle { color: #555; margin: 0 0 0.8em; word-break: break-word; }
.spray-report .summary { background: #f4f6fa; border-left: 4px solid #3b6fb6; padding: 10px 14px; font-size: 1.05em; }
.spray-report .summary p { margin: 0.25em 0; }
.spray-report .summary p.warning { color: #8a1c1c; font-weight: 600; }
.spray-report .tag { font-size: 0.8em; padding: 1px 6px; border-radius: 8px; margin-left: 6px; background: #eee; }
.spray-report .tag-shortcut { background: #f6d5d5; color: #7a1010; }
.spray-report .tag-legitimate { background: #d8efd8; color: #155515; }
.spray-report .tag-command code { word-break: break-all; }
.spray-report table.sortable th { cursor: pointer; user-select: none; }
.spray-report #class-filter { padding: 4px 8px; width: 280px; }
.spray-report dl.columns dt { font-weight: 600; margin-top: 0.4em; }
.spray-report dl.columns dd { margin-left: 1.5em; }
.spray-report .note { color: #555; font-size: 0.9em; }
.spray-report table.plain { border-collapse: collapse; font-size: 0.9em; }
.spray-report table.plain th, .spray-report table.plain td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px; text-align: left; vertical-align: top; word-break: break-word; }
.spray-report .cards { display: flex; flex-wrap: wrap; gap: 14px; }
.spray-report .card { border: 1px solid #ddd; border-radius: 6px; padding: 10px; flex: 1 1 560px; max-width: 620px; box-sizing: border-box; }
.spray-report .card .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; }
.spray-report .strip { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 6px; }
.spray-report figure { margin: 0; text-align: center; font-size: 0.75em; color: #555; width: 72px; overflow-wrap: anywhere; }
.spray-report figure.prototype { width: 136px; }
.spray-report .side-by-side { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
.spray-report ul.findings { list-style: none; padding: 0; }
.spray-report ul.findings li { display: flex; gap: 10px; align-items: center; margin: 6px 0; }
.spray-report ul.findings li img { flex: none; border: 1px solid #ccc; }
.spray-report img.pixelated { image-rendering: pixelated; }
.spray-report .legend-bar { display: inline-block; width: 160px; height: 10px; vertical-align: middle;
  background: linear-gradient(to right, #000080, #0000ff, #ffffff, #ff0000, #800000); border: 1px solid #ccc; }
"""


@dataclass(frozen=True)
class Block:
    """One piece of the page: escaped static ``html``, or the name of a Bokeh ``root`` to embed."""

    html: str = ""
    root: str = ""


def definition_table(items: dict, empty: str) -> str:
    """A two-column table of keys and values (both escaped), or ``empty`` as a note."""
    if not items:
        return f'<p class="note">{text(empty)}</p>'
    rows = "".join(f"<tr><th>{text(key)}</th><td>{text(value)}</td></tr>" for key, value in items.items())
    return f'<table class="plain">{rows}</table>'


BOKEH_ASSETS = f"bokeh-{bokeh.__version__}"
"""Folder of BokehJS inside the reports folder; versioned, so an upgrade never mixes files."""


def bokeh_resources(page: Path, assets_root: Path | None = None) -> Resources:
    """Resources that load BokehJS from ``<assets_root>/bokeh-<version>/`` by a path relative to
    ``page`` (written there once; ``assets_root`` defaults to the page's folder)."""
    root = Path(assets_root) if assets_root is not None else Path(page).parent
    _write_bokeh_assets(root / BOKEH_ASSETS)
    relative = Path(os.path.relpath(root / BOKEH_ASSETS, Path(page).parent)).as_posix()
    return Resources(mode="server", root_url=f"{relative}/")


def _write_bokeh_assets(folder: Path) -> None:
    """Copy BokehJS's minified bundles into ``folder/static/js`` unless they are there (each file
    lands whole: copied to a temporary name, then renamed)."""
    target = folder / "static" / "js"
    source = Path(bokehjs_path()) / "js"
    for bundle in sorted(source.glob("bokeh*.min.js")):
        destination = target / bundle.name
        if destination.is_file() and destination.stat().st_size == bundle.stat().st_size:
            continue
        target.mkdir(parents=True, exist_ok=True)
        temporary = target / f".{bundle.name}.{uuid.uuid4().hex[:8]}.tmp"
        shutil.copyfile(bundle, temporary)
        os.replace(temporary, destination)


def write_page(
    path: Path, title: str, roots: Sequence[Model], blocks: Sequence[Block], assets_root: Path | None = None
) -> Path:
    """Render ``blocks`` (with ``roots`` embedded where named) into the page at ``path``, replaced
    atomically (:func:`spray.atomic.write_text_atomically`); BokehJS comes from ``assets_root``
    (default: the page's folder, see :func:`bokeh_resources`). A page without plots gets an empty
    placeholder root (Bokeh embeds at least one)."""
    page = file_html(
        list(roots) or [Div(text="", name="spray_no_plots")],
        resources=bokeh_resources(path, assets_root),
        title=title,
        template=_TEMPLATE,
        template_variables={"css": _CSS, "blocks": blocks},
    )
    return write_text_atomically(path, page)  # never a half page under the page's name
