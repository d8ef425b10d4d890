"""Average ranks (as ``scipy.stats.rankdata(method='average')``), optionally weighted, for Spearman's comparison and
its bootstrap, with bounded temporaries for the 10^8 entries of a large probe set's RDM.

Doubled ranks are exact integers (average ranks are half-integers), so the ranks of an RDM are stored in 4 bytes per
entry. Memory: the argsort (8 bytes per entry, unless given) and the ranks; tie groups are resolved in passes over
``_RANK_CHUNK`` sorted positions, so there are no other full-length temporaries even when most entries tie (a
float32 RDM of 20,000 images has ~10^8 tied entries).
"""

from __future__ import annotations

import numpy as np

__all__ = ["rank_average", "doubled_ranks"]

_RANK_CHUNK = 1 << 20  # sorted positions per pass of the tie resolution: about 40 MB of temporaries


def rank_average(values: np.ndarray, weights: np.ndarray | None = None, *,
                 order: np.ndarray | None = None) -> np.ndarray:
    """1-based average ranks of ``values`` (as scipy.stats.rankdata 'average'), each value counted ``weights`` times.

    With weights, a value of multiplicity w occupies w consecutive positions and gets their mean; tied values share
    the mean position of their whole group. ``order`` (``np.argsort(values)``) skips the sort when the same values
    are ranked under many weightings (bootstrap).
    """
    return doubled_ranks(values, weights, order=order) / 2.0


def doubled_ranks(values: np.ndarray, weights: np.ndarray | None = None, *,
                  order: np.ndarray | None = None) -> np.ndarray:
    """Twice :func:`rank_average`, as exact integers (average ranks are half-integers): int32 when they fit.

    Sorted positions are visited in passes of ``_RANK_CHUNK``; a pass ends where a tie group ends, and a tie group
    longer than a pass is ranked on its own.
    """
    n = len(values)
    if order is None:
        order = np.argsort(values)  # any order within ties is fine: tied values are averaged below
    total = n if weights is None else int(weights.sum())
    dtype = np.int32 if 2 * total + 1 < np.iinfo(np.int32).max else np.int64
    ranks = np.empty(n, dtype=dtype)
    start, before = 0, 0  # sorted positions done, and their total weight
    while start < n:
        stop = min(n, start + _RANK_CHUNK)
        idx = order[start:stop]
        v = values[idx]
        if stop < n and values[order[stop]] == v[-1]:  # the last tie group runs on past this pass
            cut = int(np.searchsorted(v, v[-1]))  # where that group begins
            if cut == 0:  # it fills the whole pass: rank it on its own, however long it is
                stop = _tie_group_end(values, order, stop, v[-1])
                before = _rank_tie_group(order[start:stop], weights, before, ranks)
                start = stop
                continue
            stop, idx, v = start + cut, idx[:cut], v[:cut]
        before = _rank_groups(v, None if weights is None else weights[idx], before, ranks, idx)
        start = stop
    return ranks


def _rank_groups(v: np.ndarray, w: np.ndarray | None, before: int, ranks: np.ndarray, idx: np.ndarray) -> int:
    """Rank sorted values ``v`` made of whole tie groups, placed after ``before`` (total weight); return the new
    total weight."""
    new_group = np.empty(v.shape, dtype=bool)
    new_group[0] = True
    np.not_equal(v[1:], v[:-1], out=new_group[1:])
    if w is None and new_group.all():
        ranks[idx] = np.arange(2 * before + 2, 2 * (before + len(v)) + 1, 2, dtype=ranks.dtype)
        return before + len(v)
    group = np.cumsum(new_group) - 1
    w = np.ones(len(v), dtype=np.int64) if w is None else w.astype(np.int64)
    group_weight = np.bincount(group, weights=w).astype(np.int64)
    group_end = before + np.cumsum(group_weight)
    # mean position of a group of weight g ending at e: e - (g - 1) / 2, doubled: 2e - g + 1
    ranks[idx] = (2 * group_end - group_weight + 1)[group]
    return int(group_end[-1])


def _tie_group_end(values: np.ndarray, order: np.ndarray, stop: int, value: object) -> int:
    """First sorted position at or after ``stop`` whose value differs from ``value``."""
    n = len(order)
    while stop < n:
        following = values[order[stop:stop + _RANK_CHUNK]]
        same = int(np.searchsorted(following, value, side="right"))
        stop += same
        if same < len(following):
            break
    return stop


def _rank_tie_group(idx: np.ndarray, weights: np.ndarray | None, before: int, ranks: np.ndarray) -> int:
    """One tie group (its entries ``idx``): all share the mean position; return the new total weight."""
    g = len(idx) if weights is None else sum(int(weights[idx[k:k + _RANK_CHUNK]].sum())
                                             for k in range(0, len(idx), _RANK_CHUNK))
    ranks[idx] = 2 * before + g + 1
    return before + g
