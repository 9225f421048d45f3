"""The one interface every image source implements (docs/interfaces.md, ``spray.data``)."""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spray.errors import SprayError, UnknownClassError


@dataclass(frozen=True)
class Sample:
    """One image at its original size and aspect ratio, with its labels and annotations.

    ``image`` is (H, W, 3) uint8 RGB. ``annotations`` may hold ``boxes`` (list of
    ``(name, xmin, ymin, xmax, ymax)``), ``shortcut`` (bool) and ``shortcut_mask``
    ((H, W) bool), the ground truth of a planted or known artefact.
    """

    sample_id: str
    image: np.ndarray
    labels: frozenset[str]
    annotations: dict[str, Any] = field(default_factory=dict)


class ImageSource(abc.ABC):
    """A labelled image collection with stable sample ids, split into named splits.

    Subclasses set ``name``, ``classes`` (sorted) and ``splits`` (and may override
    :attr:`class_order`, the order of a model's outputs) and implement
    :meth:`_ids`, :meth:`labels`, :meth:`load`, :meth:`fingerprint` and :meth:`spec`.
    A source with the single split ``"all"`` answers a request for any split with all
    its samples, so the default analysis split ("test", L2100) works on a plain folder.
    """

    name: str
    classes: list[str]
    splits: list[str]

    def ids(self, split: str | None = "test", class_name: str | None = None) -> list[str]:
        """Sample ids of ``split`` (None: every split), optionally only members of a class."""
        if class_name is not None:
            self.check_class(class_name)
        if split is not None and split not in self.splits:
            if self.splits != ["all"]:
                raise SprayError(
                    f"split {split!r} does not exist in {self.name}; choose one of {', '.join(self.splits)}"
                )
            split = None
        return self._ids(split, class_name)

    @property
    def class_order(self) -> list[str]:
        """The usual order of this data set's labels: output i of a model trained on it is
        ``class_order[i]``. Default: the sorted class names (torchvision's ImageFolder
        convention); data sets with an official label order override it."""
        return list(self.classes)

    def check_class(self, class_name: str) -> None:
        """Raise :class:`UnknownClassError` (listing the classes) for a name not in the source."""
        if class_name not in self.classes:
            raise UnknownClassError(class_name, self.classes, where=self.name)

    @abc.abstractmethod
    def _ids(self, split: str | None, class_name: str | None) -> list[str]:
        """Ids of a known split (None: all), filtered by true-label membership of a known class."""

    @abc.abstractmethod
    def labels(self, sample_id: str) -> frozenset[str]:
        """The true labels of one sample."""

    @abc.abstractmethod
    def load(self, sample_id: str) -> Sample:
        """The sample; a corrupt file raises :class:`spray.errors.UnreadableImageError`."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A stable hex digest of the data (ids, labels, content) for the store and provenance."""

    @abc.abstractmethod
    def spec(self) -> dict[str, Any]:
        """JSON that :func:`spray.data.open_source` turns back into this source (on a worker)."""


def hex_digest(*parts: object) -> str:
    """A short stable sha256 hex digest of the ``repr`` of ``parts``."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
