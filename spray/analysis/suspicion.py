"""Suspicion: is a cluster a Clever Hans candidate, judged against chance in its own class [X].

The thesis finds its shortcut clusters by eye (the horse source tag, L2102; the aeroplane border,
L2130-L2141). spray scores each cluster on two pieces of evidence, each measured against what
chance gives in the same class, so that one threshold means the same in every class:

- ``separation`` = ln(phi_twin / phi): how many e-folds smaller the cluster's conductance phi
  (edges leaving it, ``descriptors.conductance``) is than the conductance of the clusters that the
  same analysis finds in the class's structureless twins (``null.twin_reference``: Gaussian
  samples with the class's mean and covariance, no groups). 0 = cut like chance; 1 = 2.7x
  fewer edges leave than chance allows; capped at ln(``MAX_SEPARATION_RATIO``) for clusters
  with no edge leaving at all. Twins, not random member sets, are the chance reference, because
  a spectral cluster is chosen to have a small cut and beats every random set of its size.
- ``distinctness`` = the share of the cluster's positive relevance that lies where the rest of
  the class does not put it: summed over grid cells, the cluster's mean share of relevance in a
  cell beyond the rest's mean plus ``DISTINCTNESS_SPREAD`` standard deviations of the rest's
  shares there, minus the same quantity for random member sets of the cluster's size (what a
  cluster of that size shows by chance; small sets scatter more). 0 = nothing outside the
  rest's usual placement; 0.3 = 30 % of the cluster's relevance sits where the rest (almost)
  never looks. Each map is scaled to sum 1 over its positive cells first (placement only).

``suspicion`` = min(separation / ``SEPARATION_THRESHOLD``, distinctness / ``DISTINCTNESS_THRESHOLD``):
the weaker of the two, in units of its threshold. A cluster is ``suspicious`` when suspicion
>= 1, i.e. it is both a group of its own in the graph and looks somewhere the rest of the class
does not. Both parts are ratios to chance, not z-scores: a z-score grows with the number of
samples for the same effect, so a large clean class would outscore a small planted one.

Measured false alarms (thresholds 1.0 and 0.15): structureless classes, 0 of 130 of isotropic
Gaussian noise maps and 0 of 130 of smooth object maps (n = 100, 300, 1000 with 40 seeds each,
3000 with 10); the demo's shortcut-free classes (bird, car, cat, dog) 0 of 4; Fashion-MNIST, 0 of
100 classes of 10 clean models and 3-5 of 513 clean classes of models with an artefact planted
elsewhere (two runs on two machines; ``benchmarks/README.md``, detection section).
Limitation: a legitimate sub-strategy that is as separated and looks at a place the rest of
the class never does is flagged too (all but one were the bag class, whose maps split into bags
explained by their handle and bags explained by their sides);
the prototypes and medoids tell a person which it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from spray.analysis.descriptors import conductance
from spray.analysis.null import TwinReference

SUSPICION_THRESHOLD = 1.0
"""A cluster is suspicious when its suspicion (both parts in units of their thresholds) is >= 1."""

SEPARATION_THRESHOLD = 1.0
"""ln units: suspicious clusters leave e = 2.7x fewer edges than the twins' clusters. Demo horse
watermark cluster 1.1-1.4, demo car/cat/dog/bird <= 0.7 (see ``benchmarks/README.md``)."""

DISTINCTNESS_THRESHOLD = 0.15
"""Share of a cluster's relevance outside the rest's usual placement. Demo horse watermark 0.35,
Fashion-MNIST bags with a handle vs without (a legitimate split) <= 0.15 (``benchmarks/README.md``)."""

DISTINCTNESS_SPREAD = 2.0
"""Standard deviations of the rest's share in a cell that count as its usual placement."""

MAX_SEPARATION_RATIO = 20.0
"""Separation is capped at ln(20) = 3.0: a cluster no edge leaves is not infinitely suspicious."""

N_CHANCE_SETS = 50
"""Random member sets per cluster for the chance level of distinctness."""


def placement(spatial: np.ndarray) -> np.ndarray:
    """(N, D) share of each map's positive relevance per cell (rows sum to 1; all-negative rows 0)."""
    positive = np.clip(np.asarray(spatial, dtype=np.float64).reshape(len(spatial), -1), 0.0, None)
    totals = positive.sum(axis=1, keepdims=True)
    return np.divide(positive, totals, out=np.zeros_like(positive), where=totals > 0)


def separation(phi: float, twin_conductance: float) -> float:
    """ln(twin conductance / phi), capped at ln(MAX_SEPARATION_RATIO); 0 when the twins' graphs fall apart."""
    if twin_conductance <= 0:
        return 0.0
    return float(np.log(twin_conductance / max(phi, twin_conductance / MAX_SEPARATION_RATIO)))


def distinctness(
    shares: np.ndarray,
    inside: np.ndarray,
    rng: np.random.Generator,
    n_sets: int = N_CHANCE_SETS,
    spread: float = DISTINCTNESS_SPREAD,
) -> float:
    """Share of the members' relevance beyond the rest's usual placement, minus its chance level.

    ``shares``: (N, D) from ``placement``; ``inside``: (N,) bool members. The chance level is
    the mean over ``n_sets`` random member sets of the same size.
    """
    n, m = len(shares), int(inside.sum())
    if m == 0 or m == n:
        return 0.0
    total, total_squares = shares.sum(axis=0), np.square(shares).sum(axis=0)

    def beyond(members: np.ndarray) -> float:
        chosen = shares[members]
        member_sum = chosen.sum(axis=0)
        rest_mean = (total - member_sum) / (n - m)
        rest_variance = (total_squares - np.square(chosen).sum(axis=0)) / (n - m) - np.square(rest_mean)
        rest_sd = np.sqrt(np.clip(rest_variance, 0.0, None))
        return float(np.clip(member_sum / m - rest_mean - spread * rest_sd, 0.0, None).sum())

    observed = beyond(np.flatnonzero(inside))
    chance = np.mean([beyond(rng.choice(n, size=m, replace=False)) for _ in range(n_sets)])
    return max(0.0, observed - float(chance))


def score_clusters(
    clusters: pd.DataFrame,
    labels: np.ndarray,
    spatial: np.ndarray,
    affinity: sp.spmatrix,
    twins: TwinReference | None,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """``clusters`` (one row per cluster, column ``cluster``) with separation, distinctness,
    suspicion, suspicious and suspicion_rank (1 = most suspicious; ties: the more distinct first) added.

    ``spatial``: (N, G, G) pooled maps or (N, D) features (their positive parts are the
    placement); ``twins`` None (a single cluster, or identical maps): every score is 0.
    """
    table = clusters.copy()
    shares = placement(spatial)
    rng = np.random.default_rng([0 if random_state is None else random_state, 13])
    reference = twins if len(table) > 1 else None  # None: every score is 0
    rows = []
    for c in table["cluster"]:
        inside = labels == c
        part_separation = (
            separation(conductance(affinity, labels, c), reference.conductance) if reference is not None else 0.0
        )
        part_distinct = distinctness(shares, inside, rng) if reference is not None else 0.0
        rows.append((part_separation, part_distinct))
    table["separation"] = [r[0] for r in rows]
    table["distinctness"] = [r[1] for r in rows]
    table["suspicion"] = np.minimum(
        table["separation"] / SEPARATION_THRESHOLD, table["distinctness"] / DISTINCTNESS_THRESHOLD
    ).clip(lower=0.0)
    table["suspicious"] = table["suspicion"] >= SUSPICION_THRESHOLD
    table["suspicion_rank"] = suspicion_ranks(table["suspicion"].to_numpy(), table["distinctness"].to_numpy())
    return table


def suspicion_ranks(suspicion: np.ndarray, distinctness: np.ndarray) -> np.ndarray:
    """1 for the most suspicious; ties (both sides of a two-way cut share their separation, which
    often binds) go to the more distinct cluster, then to the lower position."""
    order = np.lexsort((np.arange(len(suspicion)), -np.asarray(distinctness), -np.asarray(suspicion)))
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks
