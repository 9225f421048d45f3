"""The settings of each stage, one object per stage, carried whole from the CLI or TOML file to
the Dask task and into provenance.

- :class:`ComputeSettings`: how relevance maps are made and stored (LRP composite, sample
  selection, grids, device, batch size, ...). A chunk task carries it whole.
- :class:`AnalysisSettings`: the spectral analysis of a class (grid, k, cluster count, ...).

Every value is checked here, with the same rule whether it came from a flag or a TOML key, and
before any work starts; the message names the setting and the fix. A new compute option is
a field here, a flag in ``spray/cli/options.py`` and its use in the task
(``workflows/relevance_task.py``): three files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, overload

from spray.errors import SprayError


class ConfigError(SprayError):
    """A setting (flag, TOML key) that spray does not know or cannot use."""


def _label(name: str) -> str:
    return f"{name} (--{name.replace('_', '-')})"


@overload
def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, optional: Literal[False] = False
) -> int: ...
@overload
def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, optional: bool
) -> int | None: ...
def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, optional: bool = False
) -> int | None:
    """``value`` as an int within [low, high]; a bool or a string is refused (TOML ``"3"``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{_label(name)} = {value!r} is not an integer; write a whole number"
            + (" or leave it out" if optional else "")
        )
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{_label(name)} = {value} is out of range; it must be {bounds}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; ``"false"`` (a string) is refused rather than read as true."""
    if not isinstance(value, bool):
        raise ConfigError(
            f"{_label(name)} = {value!r} is not true or false; in TOML write {name} = true "
            f"or {name} = false, without quotes"
        )
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any], optional: bool = False) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if (value is None and optional) or value in choices:
        return value
    raise ConfigError(f"{_label(name)} = {value!r} is not one of {', '.join(map(str, choices))}")


@overload
def check_text(name: str, value: Any, optional: Literal[False] = False) -> str: ...
@overload
def check_text(name: str, value: Any, optional: bool) -> str | None: ...
def check_text(name: str, value: Any, optional: bool = False) -> str | None:
    """``value`` if it is a non-empty string without control characters."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{_label(name)} = {value!r} is not a plain text value; give a non-empty string")
    control = next((c for c in value if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if control is not None:
        raise ConfigError(f"{_label(name)} = {value!r} holds the control character {control!r}; remove it")
    return value


def as_tuple(name: str, value: Any) -> tuple:
    """A list given as a TOML array, a comma-separated string or a single value, as a tuple."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise ConfigError(f"{_label(name)} = {value!r} is not a list; write a TOML array or a comma-separated string")


LOCAL_CLUSTER_MIN_MAPS = 3000
"""Fewer maps than this to compute run in-process (when ``--workers`` is not given). Measured
with benchmarks/compute_throughput.py on the demo (2 cores, idle, same run): in-process
127 maps/s, 2 warm LocalCluster workers 213 maps/s, and 5-6 s of cluster start-up and model
loads, so 2 workers paid off above 1,700-3,100 maps (two runs)."""

SELECTIONS = ("true", "predicted")
"""Samples of a class: its true-label members (every test sample of the class, L2100) or
those the model predicts as the class."""
DEVICES = ("auto", "cpu", "cuda")
NClustersRule = Literal["significant-gap", "largest-gap"]
N_CLUSTERS_RULES: tuple[NClustersRule, ...] = ("significant-gap", "largest-gap")
MapNormalization = Literal["maxabs", "l2", "none"]
"""Per-map scaling before clustering (``AnalysisSettings.normalize``)."""
STABILITY_MODES = ("off", "quick", "full")
COMPOSITES = ("thesis", "epsilon_plus_flat", "epsilon")
"""The named LRP composites of ``spray.lrp.composites.NAMED`` (listed here so that checking a
setting does not import torch; a test keeps the two equal)."""
CPU_BATCH_SIZE, GPU_BATCH_SIZE = 16, 64
"""Images per LRP forward/backward pass: 16 keeps a CPU task's memory small (demo: ~1 s per
32-map chunk); a GPU needs larger batches to be busy (benchmarks/gpu_throughput.py)."""


@dataclass(frozen=True)
class ComputeSettings:
    """How relevance maps are made (and kept). ``composite`` and ``selection`` (with the model's
    preprocessing, class order and the split) decide the maps' values and are part of their
    store key; the rest only say where and how fast they are computed, and how they are stored."""

    composite: str = "thesis"
    """LRP composite: ``thesis`` = alpha2-beta1 on conv layers, epsilon 0.01 on dense layers,
    flat rule on the first layer (footnote L2106, SPEC §3.4); ``epsilon_plus_flat``, ``epsilon``."""
    selection: str = "true"
    """``true``: every sample labelled with the class (L2100); ``predicted``: those the model predicts as it."""
    grids: tuple[int, ...] = (20,)
    """Sum-pooling grids stored per map (20x20, L2100; others are pooled from the full maps later)."""
    full_maps: bool = True
    """Also keep the full-resolution maps (BitRound-compressed) for other grids and reports."""
    thumbnail_size: int | None = 48
    """Side of the stored input thumbnails (small enough for 2,000-point report pages)."""
    chunk_size: int = 32
    """Samples per store chunk = per task (about a second of CPU work on the demo)."""
    batch_size: int | None = None
    """Images per LRP pass; None: 16 on CPU, 64 on a GPU."""
    device: str = "auto"
    """``cpu``, ``cuda`` (``cuda:N``) or ``auto`` (a GPU when torch sees one). Float32 throughout."""
    layer: str | None = None
    """An inner layer (module path, ``spray layers`` lists them): also keep, per sample, the
    relevance arriving at its channels, summed over space, read in the same backward pass; the
    analysis then clusters those vectors (SpRAy in feature space, Anders et al. 2022)."""

    def __post_init__(self) -> None:
        check_choice("composite", self.composite, COMPOSITES)
        check_choice("selection", self.selection, SELECTIONS)
        grids = tuple(sorted({check_int("grid", g, low=1) for g in as_tuple("grids", self.grids)}))
        object.__setattr__(self, "grids", grids)
        check_bool("full_maps", self.full_maps)
        check_int("thumbnail_size", self.thumbnail_size, low=8, high=512, optional=True)
        check_int("chunk_size", self.chunk_size, low=1)
        check_int("batch_size", self.batch_size, low=1, optional=True)
        check_text("layer", self.layer, optional=True)
        device = check_text("device", self.device)
        if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
            raise ConfigError(f"{_label('device')} = {device!r} is not one of auto, cpu, cuda, cuda:N")

    def identity(self) -> dict[str, Any]:
        """The settings that decide the maps' values (with the model's pipeline and class order)."""
        return {"composite": self.composite, "selection": self.selection} | (
            {"layer": self.layer} if self.layer else {}
        )

    def batch_for(self, device: str) -> int:
        """Images per LRP pass on ``device``."""
        if self.batch_size is not None:
            return self.batch_size
        return GPU_BATCH_SIZE if device.startswith("cuda") else CPU_BATCH_SIZE

    def replace(self, **changes: Any) -> ComputeSettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class AnalysisSettings:
    """The spectral analysis of one class (every default: SPEC §1 and its thesis line)."""

    grid: int = 20
    """Sum-pooling grid, 20x20 (L2100); 5, 10 and 50 give the same results in the thesis."""
    k: int | None = None
    """kNN neighbours; None = max(2, ceil(ln n)) (L2100, SPEC §1.3)."""
    n_clusters: int | None = None
    """None: chosen from the spectrum by ``n_clusters_rule``; an int fixes the count."""
    n_clusters_rule: NClustersRule = "significant-gap"
    """``significant-gap``: a gap counts only when it is clearly larger than the same gap in
    structureless twins of the class (Gaussian samples with its mean and covariance), so a class
    without structure keeps one cluster (docs/method.md); ``largest-gap``: the thesis's reading, the
    largest of the first 10 eigengaps (SPEC §1.5; chosen by eye in the thesis, L2087)."""
    min_clusters: int = 1
    """Fewest clusters the automatic count may choose."""
    normalize: MapNormalization | None = None
    """Per-map scaling before clustering: "none" (raw maps, as the thesis, L2590), "maxabs" (L942) or
    "l2". None: raw for pixel maps, "l2" for an inner layer's channel vectors (cosine distance:
    which channels carry the relevance, not how much there is, which follows the logit)."""
    embeddings: tuple[str, ...] = ("tsne", "umap")
    """2-D embeddings drawn in the report: t-SNE (L2091) and UMAP."""
    seed: int = 0
    """Seed of every random step of the analysis."""
    stability: str = "quick"
    """Refits that check the clusters do not hang on the parameters (ARI, L2100, L2188): ``full``
    (the other grids 5/10/50 and k-2..k+2: 7 refits), ``quick`` (a 10x10 grid and k+1: 2 refits)
    or ``off``. Default quick, measured on the demo (200 maps, 64 px, same run): the fit with
    both embeddings ~0.9 CPU-s, quick 0.4-1.1 CPU-s, full 5.0-5.7 CPU-s, and quick's mean ARI
    matched full's (horse 0.83 vs 0.84, car 1.00 vs 1.00): full made the analysis of a class
    3-6 times as costly for the same verdict."""

    def __post_init__(self) -> None:
        check_int("grid", self.grid, low=1, high=MAX_GRID)
        check_choice("stability", self.stability, STABILITY_MODES)
        check_int("k", self.k, low=1, optional=True)
        check_int("n_clusters", self.n_clusters, low=1, high=32, optional=True)
        check_int("min_clusters", self.min_clusters, low=1, high=10)
        check_choice("n_clusters_rule", self.n_clusters_rule, N_CLUSTERS_RULES)
        check_choice("normalize", self.normalize, ("maxabs", "l2", "none"), optional=True)
        embeddings = as_tuple("embeddings", self.embeddings)
        for name in embeddings:
            check_choice("embeddings", name, ("tsne", "umap"))
        object.__setattr__(self, "embeddings", embeddings)
        check_int("seed", self.seed, low=0)

    def replace(self, **changes: Any) -> AnalysisSettings:
        return dataclasses.replace(self, **changes)


MAX_GRID = 256
"""Largest pooling grid accepted before the maps' size is known; the analysis also refuses a
grid finer than the maps themselves (a G x G grid needs maps of at least G x G pixels)."""

COMPUTE_FIELDS = frozenset(f.name for f in fields(ComputeSettings))
ANALYSIS_FIELDS = frozenset(f.name for f in fields(AnalysisSettings))


def split_values(values: Mapping[str, Any], names: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the entries of ``values`` named in ``names``, the rest)."""
    names = set(names)
    return ({k: v for k, v in values.items() if k in names}, {k: v for k, v in values.items() if k not in names})


__all__ = [
    "ANALYSIS_FIELDS",
    "COMPOSITES",
    "COMPUTE_FIELDS",
    "DEVICES",
    "LOCAL_CLUSTER_MIN_MAPS",
    "SELECTIONS",
    "AnalysisSettings",
    "ComputeSettings",
    "ConfigError",
    "as_tuple",
    "check_bool",
    "check_choice",
    "check_int",
    "check_text",
    "split_values",
]
