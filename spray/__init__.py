"""spray: Spectral Relevance Analysis (SpRAy) of image classifiers at scale.

The method follows S. Lapuschkin's thesis (TU Berlin 2019), Chapter 6 and Appendix E;
see ``shared/SPEC.md`` for every default and its source line.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

# OpenMP threads that wait passively (sleep) instead of spinning between parallel regions.
# torch's CPU build spins by default; with another busy process on the machine (a Dask worker,
# the analysis, a second run) two spinning threads made LRP of a small CNN 5-10x slower than
# one thread (320 maps of 28x28: 7.2-9.7 s spinning, 0.85-1.7 s passive; 2 cores, loaded,
# same run). Set before torch is imported (OpenMP reads it once); a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["SpectralRelevanceAnalysis", "__version__", "attribute"]


def __getattr__(name: str):
    # Lazy re-exports: importing ``spray`` must stay cheap for the CLI (torch and the
    # analysis stack are imported only when used).
    if name == "attribute":
        from spray.lrp import attribute

        return attribute
    if name == "SpectralRelevanceAnalysis":
        from spray.analysis import SpectralRelevanceAnalysis

        return SpectralRelevanceAnalysis
    raise AttributeError(f"module 'spray' has no attribute {name!r}")
