"""The LRP engine: relevance maps as a modified gradient (thesis L870-L915, SPEC §3).

    relevance, logits = spray.lrp.attribute(model, x, target, composite="thesis")

Rules live in :mod:`spray.lrp.rules`, composites in :mod:`spray.lrp.composites`.
"""

from spray.lrp.attribute import attribute
from spray.lrp.composites import EPSILON, EPSILON_PLUS_FLAT, THESIS, Composite
from spray.lrp.rules import AlphaBeta, Basic, Epsilon, Flat, Rule, WSquare, ZPlus

__all__ = [
    "attribute",
    "Composite",
    "THESIS",
    "EPSILON_PLUS_FLAT",
    "EPSILON",
    "Rule",
    "Basic",
    "Epsilon",
    "AlphaBeta",
    "ZPlus",
    "Flat",
    "WSquare",
]
