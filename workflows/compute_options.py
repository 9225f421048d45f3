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
LOCAL_CLUSTER_MIN_MAPS = 3000
"""Fewer maps than this to compute run in-process (when ``--workers`` is not given). Measured
with benchmarks/compute_throughput.py on the demo (2 cores, idle, same run): in-process
127 maps/s, 2 warm LocalCluster workers 213 maps/s, and 5-6 s of cluster start-up and model
loads, so 2 workers paid off above 1,700-3,100 maps (two runs)."""
