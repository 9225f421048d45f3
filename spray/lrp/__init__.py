"""The LRP engine: relevance maps as a modified gradient (thesis L870-L915, SPEC §3).

    relevance, logits = spray.lrp.attribute(model, x, target, composite="thesis")
    relevance, logits, layers, activations = spray.lrp.attribute_layers(model, x, target, ["features.28"])
    relevance, logits = spray.lrp.conditional_relevance(model, x, target, "features.28", [7, 42])
    spray.lrp.explainable_layers(model, (3, 224, 224))  # [(module path, output shape), ...]

Rules live in :mod:`spray.lrp.rules`, composites in :mod:`spray.lrp.composites`, the
handling of each other operation in :mod:`spray.lrp.explanation`.
"""

from spray.lrp.attribute import LayerAttribution, attribute, attribute_layers, conditional_relevance
from spray.lrp.composites import EPSILON, EPSILON_PLUS_FLAT, THESIS, Composite
from spray.lrp.inner import explainable_layers
from spray.lrp.rules import AlphaBeta, Basic, Epsilon, Flat, Rule, WSquare, ZPlus

__all__ = [
    "EPSILON",
    "EPSILON_PLUS_FLAT",
    "THESIS",
    "AlphaBeta",
    "Basic",
    "Composite",
    "Epsilon",
    "Flat",
    "LayerAttribution",
    "Rule",
    "WSquare",
    "ZPlus",
    "attribute",
    "attribute_layers",
    "conditional_relevance",
    "explainable_layers",
]
