"""spray: Spectral Relevance Analysis (SpRAy) of image classifiers at scale.

The method follows S. Lapuschkin's thesis (TU Berlin 2019), Chapter 6 and Appendix E;
see ``shared/SPEC.md`` for every default and its source line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "attribute", "SpectralRelevanceAnalysis"]


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
