"""Errors a user can act on.

Every error spray raises on bad input is a :class:`SprayError` whose message is one
sentence naming the input and the fix; the CLI prints it as one line and exits 1.
"""

from __future__ import annotations


class SprayError(Exception):
    """Base class of all errors caused by bad input or state, with an actionable message."""


class UnknownClassError(SprayError, KeyError):
    """A class name that the dataset or model does not have."""

    def __init__(self, name: str, known: list[str], where: str = "the dataset") -> None:
        self.name, self.known = name, list(known)
        shown = ", ".join(self.known[:50]) + (" ..." if len(self.known) > 50 else "")
        super().__init__(f"unknown class {name!r} in {where}; known classes: {shown}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class UnreadableImageError(SprayError):
    """An image file that cannot be decoded; workflows skip, count and record it."""


class StoreError(SprayError):
    """A store that cannot be used as asked (schema version, lock, missing data)."""


class ModelError(SprayError):
    """A model factory, checkpoint or output width that does not fit."""


class AnalysisInputError(SprayError, ValueError):
    """Relevance maps that the spectral analysis cannot use (too few, non-finite, ...)."""


class ReportDataError(SprayError, ValueError):
    """Data handed to the HTML report renderer that is inconsistent (lengths, shapes, links)."""


class UnsupportedLayerError(SprayError):
    """A layer or operation the LRP engine has no rule for."""

    def __init__(self, path: str, kind: str) -> None:
        self.path, self.kind = path, kind
        super().__init__(
            f"layer {path!r} ({kind}) is not supported by the LRP engine; replace it with a supported "
            "layer (conv and dense layers, BatchNorm, LayerNorm, element-wise activations, pooling, "
            "gates x * sigmoid(...), residual + and concatenation, reshapes, chunk/split; see the "
            "README's 'Your own model')."
        )
