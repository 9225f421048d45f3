"""A person's verdict on a cluster, kept in the store beside the analysis it was given on.

``spray tag --class horse --cluster 1 --as shortcut --note "copyright stamp"`` records, in the
class group's attrs, the analysis and cluster it was given on, the kind (shortcut, legitimate
or unsure), the note, who-when, and the cluster's prototype (its mean pooled map). The
prototype is what lets a tag follow its cluster into later analyses and model versions:
clusters are matched by prototype (``spray.matching``), so the class page, the index and the
audits show the tag wherever the same strategy shows up again.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from relevance_store.class_group import ClassGroup
from spray.errors import StoreError
from spray.matching import SAME_STRATEGY_SIMILARITY, match_clusters, prototype_similarity

if TYPE_CHECKING:
    from relevance_store.store import RelevanceStore

TAG_KINDS = ("shortcut", "legitimate", "unsure")
_ATTR = "tags"


@dataclass(frozen=True)
class Tag:
    """One person's verdict on one cluster of one analysis of a class."""

    class_name: str
    cluster: int
    kind: str
    note: str
    analysis: str
    prototype: tuple[float, ...]
    grid: int
    model_id: str
    maps_id: str
    tagged_by: str
    tagged_at: float

    def to_dict(self) -> dict:
        return asdict(self) | {"prototype": list(self.prototype)}


def read_tags(group: ClassGroup) -> list[Tag]:
    """The tags given on this class group's analyses, oldest first."""
    return [Tag(**record | {"prototype": tuple(record["prototype"])}) for record in group.provenance.get(_ATTR, [])]


def tag_cluster(group: ClassGroup, cluster: int, kind: str, note: str = "", analysis: str | None = None) -> Tag:
    """Tag ``cluster`` of ``analysis`` (default: the latest) of a writable class group; a new tag of
    the same analysis and cluster replaces the old one. Bad input raises one clear StoreError."""
    if kind not in TAG_KINDS:
        raise StoreError(f"unknown tag {kind!r}; tag a cluster --as {', '.join(TAG_KINDS)}")
    if analysis is not None and analysis not in group.analysis_hashes():
        raise StoreError(
            f"class {group.key.class_name!r} has no stored analysis {analysis!r} (it was replaced or "
            f"never made); stored: {', '.join(group.analysis_hashes()) or 'none'}"
        )
    result = group.read_analysis(analysis)
    clusters = [int(c) for c in result.tables["clusters"]["cluster"]]
    if int(cluster) not in clusters:
        raise StoreError(
            f"class {group.key.class_name!r} has no cluster {cluster} in analysis {result.params_hash}; "
            f"its clusters are {', '.join(map(str, clusters))}"
        )
    prototype = np.asarray(result.arrays["prototypes"][clusters.index(int(cluster))], dtype=float)
    tag = Tag(
        group.key.class_name,
        int(cluster),
        kind,
        note,
        result.params_hash,
        tuple(prototype.ravel().tolist()),
        int(prototype.shape[-1]),
        group.key.model_id,
        group.key.maps_id,
        _who(),
        time.time(),
    )
    kept = [t for t in read_tags(group) if (t.analysis, t.cluster) != (tag.analysis, tag.cluster)]
    group.update_attrs(**{_ATTR: [t.to_dict() for t in (*kept, tag)]})
    return tag


def remove_tag(group: ClassGroup, cluster: int, analysis: str | None = None) -> Tag:
    """Remove the tag of ``cluster`` of ``analysis`` (default: the latest) and return it."""
    analysis = analysis or group.read_analysis().params_hash
    tags = read_tags(group)
    gone = [t for t in tags if (t.analysis, t.cluster) == (analysis, int(cluster))]
    if not gone:
        raise StoreError(
            f"cluster {cluster} of class {group.key.class_name!r} (analysis {analysis}) has no tag; "
            "see `spray tag --list`"
        )
    group.update_attrs(**{_ATTR: [t.to_dict() for t in tags if t not in gone]})
    return gone[0]


def tags_for_clusters(
    tags: Sequence[Tag], prototypes: np.ndarray, min_similarity: float = SAME_STRATEGY_SIMILARITY
) -> list[Tag | None]:
    """The tag of each cluster (prototypes (K, G, G)) among ``tags`` of its class: matched one to
    one by prototype, the newest tag of a strategy first; None where no tag matches."""
    matched: list[Tag | None] = [None] * len(prototypes)
    newest_first = sorted(tags, key=lambda t: -t.tagged_at)
    for tag in newest_first:
        free = [i for i, m in enumerate(matched) if m is None]
        if not free:
            break
        similarity = prototype_similarity(np.asarray([tag.prototype]), np.asarray(prototypes)[free])
        pairs = match_clusters(similarity, min_similarity)
        if pairs:
            matched[free[pairs[0][1]]] = tag
    return matched


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def class_tags(store: RelevanceStore, class_name: str) -> list[Tag]:
    """Every tag given on any analysis of ``class_name`` in the store (any model version or settings)."""
    return tags_by_class(store, [class_name]).get(class_name, [])


def tags_by_class(store: RelevanceStore, class_names: Sequence[str] | None = None) -> dict[str, list[Tag]]:
    """Every tag in the store (of ``class_names`` only, when given) by class name, in one pass."""
    wanted = None if class_names is None else set(class_names)
    found: dict[str, list[Tag]] = {}
    for key in store.class_keys():
        if wanted is None or key.class_name in wanted:
            found.setdefault(key.class_name, []).extend(read_tags(store.class_group(key)))
    return found


__all__ = [
    "TAG_KINDS",
    "Tag",
    "class_tags",
    "read_tags",
    "remove_tag",
    "tag_cluster",
    "tags_by_class",
    "tags_for_clusters",
]
