"""Spectral Relevance Analysis of one class's relevance maps (thesis Ch. 6, App. E).

One module per idea: ``pooling`` (preprocessing), ``knn`` (neighbour search), ``affinity``
(W), ``laplacian``, ``spectrum`` (eigenpairs, eigengap, cluster count), ``null`` (structureless
twins: the chance reference), ``clustering`` (NJW and options), ``embedding`` (t-SNE, UMAP),
``descriptors`` (what each cluster is), ``suspicion`` (is a cluster a Clever Hans candidate,
against chance), ``stability`` (labels across parameters), ``ranking`` (across classes, Fig. 6.5,
and the cross-class score) and ``estimator`` (the public ``SpectralRelevanceAnalysis``).
"""

from __future__ import annotations

from spray.analysis.estimator import SpectralRelevanceAnalysis
from spray.analysis.ranking import rank_classes
from spray.analysis.validation import DegenerateMapsWarning

__all__ = ["DegenerateMapsWarning", "SpectralRelevanceAnalysis", "rank_classes"]
