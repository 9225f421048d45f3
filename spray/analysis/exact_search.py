"""Exact Euclidean k-nearest-neighbour search: a float32 matrix product selects, float64 decides.

Every query block is scored against all rows with one float32 matrix product of augmented,
centred matrices, s_ij = |y_j|^2 - 2 x_i.y_j (|x_i - y_j|^2 less the query's own |x_i|^2).
float32 ranks near-ties wrongly, so it only *selects*: the rounding error of every score is
bounded (``score_error``), and each row keeps the rows whose score lies within twice that
bound of its k-th smallest score. That set provably holds every row at or below the k-th
smallest true distance, ties included; those few candidates (about k per row on the benchmark
mixtures) are measured again in float64 from the differences (``squared_distances``), and the
k nearest are taken, ties to the lower row index. The result equals a full stable sort of the
float64 distances, at the price of a float32 product (SGEMM runs at twice the DGEMM rate, and
the old float64 re-measure of the k kept pairs is this measure).

Centring and a power-of-two scale (neither changes the ranking) keep the float32 values in
range and the norms, hence the bound, as small as the data's spread allows. Duplicated maps
(all-zero maps, repeated images) tie at distance 0 with every copy; when that floods the
candidates, the search runs once per distinct row and hands the copies out by index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from spray.thread_pools import limit, pool_info

UNIT_ROUNDOFF_32 = 2.0**-24
"""u of IEEE single precision: every float32 operation is exact up to a factor (1 + delta), |delta| <= u."""

PRODUCT_ELEMENTS = 2**24
"""Scores held at once (64 MB of float32): query blocks shrink when there are many rows."""

GATHER_ELEMENTS = 2**17
"""Differences measured at once in float64 (1 MB, cache-sized: 2x faster than 8 MB) by ``squared_distances``."""

MAX_CANDIDATES_PER_K = 16
"""A block with more than 16 k candidates a row is drowning in ties (duplicates): search distinct rows."""


class _TooManyTies(Exception):
    """Raised inside the search when ties would make the float64 re-measure quadratic."""


def squared_distances(features: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """sum_l (x_rl - x_cl)^2 in float64 for each pair (rows[i], cols[i]), from the differences.

    The reference metric of the exact search: duplicates measure exactly 0 and integer-valued
    features exactly, so ties are real ties. Works in chunks of ``GATHER_ELEMENTS`` values.
    """
    out = np.empty(len(rows), dtype=np.float64)
    step = max(1, GATHER_ELEMENTS // max(1, features.shape[1]))
    for start in range(0, len(rows), step):
        diff = features[cols[start : start + step]].astype(np.float64)
        diff -= features[rows[start : start + step]]
        out[start : start + step] = np.einsum("ij,ij->i", diff, diff)
    return out


def score_error(query_norms: np.ndarray, max_norm: float, n_terms: int) -> np.ndarray:
    """Bound on |computed - exact| of the float32 scores of each query, in squared-distance units.

    With m = ``n_terms`` products per score, any summation order of a float32 dot product errs
    by at most gamma_m sum_l |a_l b_l|, gamma_m = m u / (1 - m u) (Higham, Accuracy and Stability
    of Numerical Algorithms, 2nd ed., Sec. 3.1; FMA only tightens it). Here sum_l |a_l b_l| <=
    2 |x||y| + |y|^2 <= (|x| + |y|)^2 by Cauchy-Schwarz, with the query norm |x| and the largest
    row norm |y|. Rounding the centred features and |y|^2 to float32 adds at most ~9 u (|x| + |y|)^2,
    the float64 steps far less; 10 u and a factor 1.01 cover them.
    """
    gamma = n_terms * UNIT_ROUNDOFF_32 / (1.0 - n_terms * UNIT_ROUNDOFF_32)
    return 1.01 * (gamma + 10.0 * UNIT_ROUNDOFF_32) * (query_norms + max_norm) ** 2


def exact_neighbors(
    features: np.ndarray, k: int, rows: np.ndarray | None = None, block_rows: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (len(rows), k) and float64 Euclidean distances of the k nearest rows, self excluded.

    Nearest first; equal distances in ascending row index (a stable sort). ``rows`` (default
    all) are the queries; every row of ``features`` is a candidate. Memory: one float32 copy of
    the features plus a block of scores (``PRODUCT_ELEMENTS``) per thread, never N x N.
    """
    x = np.asarray(features)
    queries = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
    scorer = _Scorer(x, k, strict=rows is None)
    try:
        blocks = _map_blocks(scorer.candidates, queries, min(block_rows, scorer.block_rows))
    except _TooManyTies:
        return _neighbors_of_duplicated_rows(x, k, block_rows)
    indices = np.empty((len(queries), k), dtype=np.int64)
    squared = np.empty((len(queries), k), dtype=np.float64)
    for (start, stop), (row, col, measured) in blocks:
        chosen = _first_per_row(row, col, measured, stop - start, k)
        indices[start:stop], squared[start:stop] = col[chosen], measured[chosen]
    return indices, np.sqrt(squared)


def _first_per_row(row: np.ndarray, col: np.ndarray, measured: np.ndarray, n_rows: int, k: int) -> np.ndarray:
    """Positions of the k smallest (distance, column) of each row 0..n_rows-1, in that order."""
    order = np.lexsort((col, measured, row))
    first = np.searchsorted(row[order], np.arange(n_rows))
    return order[first[:, None] + np.arange(k)]


def _map_blocks(
    work: Callable[[np.ndarray], tuple[np.ndarray, ...]], queries: np.ndarray, block_rows: int
) -> list[tuple[tuple[int, int], tuple[np.ndarray, ...]]]:
    """``work`` on blocks of ``block_rows`` queries: ((start, stop), result) in order.

    Blocks run on as many Python threads as BLAS may use here (the caller's setting, e.g. one per
    Dask task), each block's product on one BLAS thread: threads that share cores with other
    processes then wait in a queue instead of spinning inside BLAS (issue 16: 4.7-11.5 CPU-s
    instead of 0.7 for the same work under load).
    """
    spans = [(start, min(start + block_rows, len(queries))) for start in range(0, len(queries), block_rows)]
    blas = [info["num_threads"] for info in pool_info() if info["user_api"] == "blas"]
    workers = max(1, min(len(spans), min(blas, default=1)))
    with limit(1, user_api="blas"):
        if workers == 1:
            return [(span, work(queries[span[0] : span[1]])) for span in spans]
        with ThreadPoolExecutor(workers) as pool:
            return list(zip(spans, pool.map(lambda span: work(queries[span[0] : span[1]]), spans), strict=True))


class _Scorer:
    """The float32 targets of the search (centred, scaled, augmented) and the rounding slack of each row.

    ``candidates(query)``: (row in block, candidate column, float64 squared distance) of a query
    block, where every column at or below a row's k-th smallest distance is a candidate (ties
    included, self excluded) and each row has at least k. ``strict``: raise ``_TooManyTies``
    when a block averages more than ``MAX_CANDIDATES_PER_K`` k candidates a row.
    """

    def __init__(self, x: np.ndarray, k: int, strict: bool = False) -> None:
        n, d = x.shape
        self.x, self.k, self.strict = x, k, strict
        self.mean = x.mean(axis=0, dtype=np.float64)
        spread = float(max((x.max(axis=0) - self.mean).max(), (self.mean - x.min(axis=0)).max()))
        self.scale = 2.0 ** -math.frexp(spread)[1] if spread > 0 else 1.0  # a power of two: exact; |values| < 1
        self.groups = max(k, math.isqrt(n))  # columns are cut into this many segments
        self.segment = -(-n // self.groups)
        width = self.groups * self.segment  # padded columns score +inf
        self.targets = np.zeros((d + 1, width), dtype=np.float32)
        norms = np.empty(n, dtype=np.float64)
        chunk = max(1, PRODUCT_ELEMENTS // max(1, d))
        for start in range(0, n, chunk):
            centred = ((x[start : start + chunk] - self.mean) * self.scale).astype(np.float32)
            norms[start : start + chunk] = np.einsum("ij,ij->i", centred, centred, dtype=np.float64)
            self.targets[:d, start : start + len(centred)] = -2.0 * centred.T
        self.targets[d, :n] = norms
        self.targets[d, n:] = np.inf
        self.norms, self.max_norm = norms, math.sqrt(norms.max())
        self.block_rows = max(1, PRODUCT_ELEMENTS // width)  # queries whose scores fit in PRODUCT_ELEMENTS

    def candidates(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.x.shape[1]
        augmented = np.ones((len(query), d + 1), dtype=np.float32)
        augmented[:, :d] = (self.x[query] - self.mean) * self.scale
        scores = augmented @ self.targets
        scores[np.arange(len(query)), query] = np.inf  # a sample is not its own neighbour (Eq. 6.1)
        slack = 2.0 * score_error(np.sqrt(self.norms[query]), self.max_norm, d + 1)
        row, col = _candidates(scores, self.k, slack, self.groups, self.segment)
        if self.strict and len(row) > MAX_CANDIDATES_PER_K * self.k * len(query):
            raise _TooManyTies
        return row, col, squared_distances(self.x, query[row], col)


def _candidates(
    scores: np.ndarray, k: int, slack: np.ndarray, groups: int, segment: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every finite score within ``slack`` of its row's k-th smallest score.

    Sorting whole rows costs ~26 ns a score. Instead the k-th smallest of the minima of the
    ``groups`` column segments bounds each row's k-th smallest score from above (k segments
    hold a value at or below it); only segments whose minimum lies under that bound plus the
    slack are read again, and the exact k-th smallest score is found among their values.
    """
    n_rows = len(scores)
    segments = scores.reshape(n_rows, groups, segment)
    minima = segments.min(axis=2)
    bound = np.partition(minima, k - 1, axis=1)[:, k - 1] + slack
    pair_row, pair_segment = np.nonzero(minima <= bound[:, None])
    values = segments[pair_row, pair_segment]
    hit, offset = np.nonzero((values <= bound[pair_row, None]) & (values < np.inf))
    row, col, value = pair_row[hit], pair_segment[hit] * segment + offset, values[hit, offset]
    order = np.lexsort((value, row))
    first = np.searchsorted(row[order], np.arange(n_rows))
    kth = value[order[first + k - 1]]
    keep = value <= kth[row] + slack[row]
    return row[keep], col[keep]


def _neighbors_of_duplicated_rows(x: np.ndarray, k: int, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``exact_neighbors`` of all rows when many rows are exact copies: one search per distinct row.

    A row's neighbours are its copies (distance 0) and the copies of the distinct rows found
    for it, merged by (distance, index). A distinct row contributes at most its k lowest
    indices, and the search over distinct rows returns every distinct row at or below its
    k-th distance with ties, so the merge equals the stable sort over all rows.
    """
    n = len(x)
    _, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    by_first = np.argsort(first)  # distinct rows in order of first appearance
    group = np.empty(len(first), dtype=np.int64)
    group[by_first] = np.arange(len(first))
    group = group[inverse]  # group of every row
    members = np.argsort(group, kind="stable")  # rows of group g, ascending: members[starts[g]:starts[g+1]]
    starts = np.searchsorted(group[members], np.arange(len(first) + 1))
    sizes = np.diff(starts)
    representatives = first[by_first]
    n_groups = len(representatives)

    # candidate distinct rows of every distinct row (itself at distance 0 included), k + 1 deep
    query_parts, other_parts, measured_parts = [np.arange(n_groups)], [np.arange(n_groups)], [np.zeros(n_groups)]
    if n_groups > 1:
        scorer = _Scorer(x[representatives], min(k, n_groups - 1))
        spans = _map_blocks(scorer.candidates, np.arange(n_groups), min(block_rows, scorer.block_rows))
        for (start, _), (row, col, dist) in spans:
            query_parts.append(row + start)
            other_parts.append(col)
            measured_parts.append(dist)
    query_group = np.concatenate(query_parts)
    other_group = np.concatenate(other_parts)
    measured = np.concatenate(measured_parts)
    # expand every candidate group to its first min(size, k + 1) members
    take = np.minimum(sizes[other_group], k + 1)
    pair = np.repeat(np.arange(len(take)), take)
    rank = np.arange(len(pair)) - np.repeat(np.cumsum(take) - take, take)
    member = members[starts[other_group[pair]] + rank]
    owner, dist = query_group[pair], measured[pair]
    order = np.lexsort((member, dist, owner))
    owner, member, dist = owner[order], member[order], dist[order]
    first_of = np.searchsorted(owner, np.arange(n_groups))
    listing = first_of[:, None] + np.arange(
        k + 1
    )  # k + 1 nearest rows of each group, a copy of the row itself among them
    lists, lists_dist = member[listing], dist[listing]
    # each row drops itself from its group's list (or the list's last entry when it is not listed)
    own = lists[group]
    is_self = own == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones((n, k + 1), dtype=bool)
    keep[np.arange(n), drop] = False
    indices = own[keep].reshape(n, k)
    return indices, np.sqrt(lists_dist[group][keep].reshape(n, k))
