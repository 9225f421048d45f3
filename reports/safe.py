"""Keeping user strings inert: HTML escaping and file names derived from class names.

Class names, sample ids, model and file names come from users' data sets; any of them can
contain markup or path separators. Every one goes through ``text`` before it reaches HTML,
and page file names come from ``class_page_filename``, never from the raw name.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any

_UNSAFE_FILENAME_CHARS = re.compile(r"[^a-z0-9_-]+")
_MAX_SLUG = 60
_DERIVED_SUFFIX = re.compile(r"-(padding|cluster-\d+)$")
"""Endings of the pages derived from a class page (``-padding``, ``-cluster-K``): a class whose
slug ends so gets the hash too, so that class ``horse-cluster-1`` never shares a file with
cluster 1 of class ``horse``."""


def text(value: Any) -> str:
    """Any value as HTML text: ``<``, ``>``, ``&`` and both quotes escaped, so it never becomes markup."""
    return html.escape(value if isinstance(value, str) else display(value), quote=True)


def display(value: Any) -> str:
    """A readable one-line form of a parameter or provenance value (numbers compact, rest JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def class_page_filename(class_name: str) -> str:
    """The class page's file name: ``class-<slug>.html``, safe on every file system.

    The slug keeps lower-case letters, digits, ``_`` and ``-``; when that changes the name
    (case, spaces, ``/``, ``..``, markup), or the name ends like a derived page's name
    (``-padding``, ``-cluster-K``), a short hash of the original is appended, so two different
    names or pages never share a file and no name can leave the reports folder.
    """
    slug = _UNSAFE_FILENAME_CHARS.sub("_", class_name.lower()).strip("_")[:_MAX_SLUG] or "class"
    if slug != class_name or _DERIVED_SUFFIX.search(slug):
        slug += "-" + hashlib.sha256(class_name.encode("utf-8")).hexdigest()[:8]
    return f"class-{slug}.html"
