"""Defaults of the compute workflow, importable without torch or Zarr (for ``spray compute --help``)."""

from __future__ import annotations

SELECTIONS = ("true", "predicted")
"""Samples of a class: its true-label members (every test sample of the class, L2100) or
those the model predicts as the class."""
CHUNK_SIZE = 32
"""Samples per store chunk (= per task): about a second of work per task on the demo, many tasks per class."""
BATCH_SIZE = 16
"""Images per LRP forward/backward pass inside a task."""
THUMBNAIL_SIZE = 48
"""Side of the stored input thumbnails: small enough for 2,000-point report pages (issue 6)."""
