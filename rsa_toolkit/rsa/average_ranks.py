"""Average ranks (as ``scipy.stats.rankdata(method='average')``), optionally weighted, for Spearman's comparison and
its bootstrap, with bounded temporaries for the 10^8 entries of a large probe set's RDM.

Doubled ranks are exact integers (average ranks are half-integers), so the ranks of an RDM are stored in 4 bytes per
entry. Their (weighted) mean is W + 1 for a total weight W; :func:`doubled_ranks_and_spread` also returns their sum of
squared deviations from it, from the tie groups, so Spearman needs no other pass over the ranks.

One plain sort, no argsort: each value becomes an order-preserving unsigned integer key (a float's bits with the sign
handled, -0.0 read as 0.0), counted from the smallest, and key and entry index are packed into one uint64 word,
``key << b | index`` with b the bits of the largest index. ``ndarray.sort`` orders the words (numpy's vectorised
sort of integers, several times faster than ``np.argsort`` of the values); the sorted words give the permutation
(low bits) and the tie groups (high bits) without gathering the values in sorted order. A key longer than 64 - b bits
(float64 keys span up to 64) loses its lowest bits: entries whose shortened keys agree (a few hundred in a float64
RDM of 5,000 images, none of them tied) are then ordered, and split into tie groups, by their values, pass by pass.
NaN, a dtype without such keys, or a run of equal shortened keys longer than a pass whose values differ:
``np.argsort`` as before.

Memory: the packed words (or the argsort), 8 bytes per entry, and the ranks; tie groups are resolved in passes over
``_RANK_CHUNK`` sorted positions, so there are no other full-length temporaries even when most entries tie (a
float32 RDM of 20,000 images has ~10^8 tied entries).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["rank_average", "doubled_ranks", "doubled_ranks_and_spread"]

_RANK_CHUNK = 1 << 18  # sorted positions per pass (and per chunk of keys): about 10 MB of temporaries, in cache


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
    return doubled_ranks_and_spread(values, weights, order=order)[0]


def doubled_ranks_and_spread(values: np.ndarray, weights: np.ndarray | None = None, *,
                             order: np.ndarray | None = None) -> tuple[np.ndarray, int, float]:
    """(:func:`doubled_ranks`, their weighted mean W + 1, their weighted sum of squared deviations from it).

    With r_k the doubled ranks and w_k the weights (1 without weights), W = sum_k w_k and the spread is
    sum_k w_k (r_k - W - 1)^2, computed exactly from the tie groups and returned as a float: 0 exactly when all
    entries of positive weight tie.
    """
    n = len(values)
    total = n if weights is None else int(weights.sum())
    dtype = np.int32 if 2 * total + 1 < np.iinfo(np.int32).max else np.int64
    ranks = np.empty(n, dtype=dtype)
    if n == 0:
        return ranks, total + 1, 0.0
    if order is None:
        packed = _packed_sort(values)
        if packed is not None:
            try:
                return ranks, total + 1, _rank_sorted(packed, weights, total + 1, ranks)
            except _Unresolved:
                del packed
        order = np.argsort(values)  # any order within ties is fine: tied values are averaged below
    return ranks, total + 1, _rank_sorted(_ArgsortOrder(values, order), weights, total + 1, ranks)


# --- sorted positions -> ranks --------------------------------------------------------------------------------------

def _rank_sorted(sorted_: _ArgsortOrder | _PackedOrder, weights: np.ndarray | None, mean: int,
                 ranks: np.ndarray) -> float:
    """Fill ``ranks`` pass by pass over the sorted positions; return the spread (see doubled_ranks_and_spread).

    The spread of doubled ranks 2, 4, ..., 2W is (W^3 - W) / 3 about their mean W + 1; averaging a tie group of
    weight g takes (g^3 - g) / 3 off it. Both are summed as exact integers.
    """
    n = len(ranks)
    start, before, ties = 0, 0, 0  # sorted positions done, their total weight, their tie groups' sum of g^3 - g
    while start < n:
        stop = min(n, start + _RANK_CHUNK)
        new_group = sorted_.starts(start, stop)  # new_group[0] is True: passes begin where tie groups begin
        if stop < n and not sorted_.starts(stop, stop + 1)[0]:  # the last tie group runs on past this pass
            cut = int(np.flatnonzero(new_group)[-1])  # where that group begins
            if cut == 0:  # it fills the whole pass: rank it on its own, however long it is
                stop = _tie_group_end(sorted_, stop)
                sorted_.check_tied(start, stop)
                g = _rank_tie_group(sorted_, start, stop, weights, before, ranks)
                before, ties, start = before + g, ties + g ** 3 - g, stop
                continue
            stop, new_group = start + cut, new_group[:cut]
        idx, new_group = sorted_.resolve(start, stop, new_group)
        before, part = _rank_groups(new_group, idx, None if weights is None else weights[idx], before, ranks)
        ties += part
        start = stop
    return float(((mean - 1) ** 3 - (mean - 1) - ties) // 3)


def _rank_groups(new_group: np.ndarray, idx: np.ndarray, w: np.ndarray | None, before: int,
                 ranks: np.ndarray) -> tuple[int, int]:
    """Rank sorted entries ``idx`` made of whole tie groups (``new_group`` marks their first entries), placed after
    ``before`` (total weight); return the new total weight and the groups' sum of g^3 - g (g: a group's weight)."""
    m = len(idx)
    if w is None:
        return _rank_unweighted(new_group, idx, before, ranks)
    bounds = np.append(np.flatnonzero(new_group), m)  # where each group begins, then the end
    size = np.diff(bounds)
    # a group of weight g ending at e: mean position e - (g - 1) / 2, doubled 2e - g + 1
    weight = np.add.reduceat(w.astype(np.int64, copy=False), bounds[:-1])
    end = np.cumsum(weight)
    total = before + int(end[-1])
    end += before
    ranks[idx] = np.repeat((2 * end - weight + 1).astype(ranks.dtype, copy=False), size)
    return total, _sum_cubes(weight[weight > 1])


def _rank_unweighted(new_group: np.ndarray, idx: np.ndarray, before: int, ranks: np.ndarray) -> tuple[int, int]:
    """_rank_groups without weights: doubled ranks 2 (before + j) for the j-th entry, then the tie groups' entries
    (the only ones gathered) get their groups' means."""
    m = len(idx)
    doubled = np.arange(2 * before + 2, 2 * (before + m) + 1, 2, dtype=ranks.dtype)
    tied = ~new_group[1:]  # entries j + 1 equal to their predecessor j
    if not tied.any():
        ranks[idx] = doubled
        return before + m, 0
    member = np.empty(m, dtype=bool)  # entries of tie groups: tied to their predecessor or their successor
    member[0] = tied[0]
    member[1:] = tied
    member[:-1] |= tied
    where = np.flatnonzero(member)
    bounds = np.append(np.flatnonzero(new_group[where]), len(where))  # tie groups within ``where``
    size = np.diff(bounds)
    # a group at positions [a, a + g): doubled mean position 2 before + 2a + g + 1
    mean = (2 * where[bounds[:-1]] + size + (2 * before + 1)).astype(ranks.dtype, copy=False)
    doubled[where] = np.repeat(mean, size)
    ranks[idx] = doubled
    return before + m, _sum_cubes(size)


def _sum_cubes(g: np.ndarray) -> int:
    """sum(g^3 - g) over group weights g, exactly: in int64 when it cannot overflow, else in Python integers."""
    if not len(g):
        return 0
    top = int(g.max())
    if top * top * int(g.sum()) < 1 << 62:
        return int((g * g * g - g).sum())
    return sum(int(x) ** 3 - int(x) for x in g)


def _tie_group_end(sorted_: _ArgsortOrder | _PackedOrder, stop: int) -> int:
    """First sorted position at or after ``stop`` where a new tie group begins (or the end)."""
    n = sorted_.n
    while stop < n:
        following = sorted_.starts(stop, min(n, stop + _RANK_CHUNK))
        begins = np.flatnonzero(following)
        if len(begins):
            return stop + int(begins[0])
        stop += len(following)
    return stop


def _rank_tie_group(sorted_: _ArgsortOrder | _PackedOrder, start: int, stop: int, weights: np.ndarray | None,
                    before: int, ranks: np.ndarray) -> int:
    """One tie group (sorted positions start to stop): all share the mean position; return its weight."""
    chunks = range(start, stop, _RANK_CHUNK)
    g = stop - start if weights is None else sum(int(weights[sorted_.indices(k, min(stop, k + _RANK_CHUNK))].sum())
                                                 for k in chunks)
    for k in chunks:
        ranks[sorted_.indices(k, min(stop, k + _RANK_CHUNK))] = 2 * before + g + 1
    return g


# --- sorted orders: an argsort, or sorted packed words --------------------------------------------------------------

class _Unresolved(Exception):
    """A run of equal shortened keys, longer than a pass, holds different values: rank from an argsort instead."""


class _ArgsortOrder:
    """Sorted positions from an argsort: tie groups from the values gathered in sorted order."""

    def __init__(self, values: np.ndarray, order: np.ndarray) -> None:
        self.values, self.order, self.n = values, order, len(order)

    def indices(self, start: int, stop: int) -> np.ndarray:
        return self.order[start:stop]

    def starts(self, start: int, stop: int) -> np.ndarray:
        """Whether each sorted position in [start, stop) begins a tie group."""
        return _differs_from_previous(self.values[self.order[max(0, start - 1):stop]], start)

    def resolve(self, start: int, stop: int, new_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Entries and tie-group starts of sorted positions [start, stop), given ``starts`` there."""
        return self.indices(start, stop), new_group

    def check_tied(self, start: int, stop: int) -> None:
        """Raise _Unresolved unless sorted positions [start, stop), one run of ``starts``, hold equal values: they do,
        as an argsort's runs are tie groups."""


class _PackedOrder:
    """Sorted positions from the sorted words ``key << bits | index`` of ``values``: entries from the low bits, tie
    groups from the high bits, and from the values where the keys were shortened by ``shift`` bits."""

    def __init__(self, values: np.ndarray, words: np.ndarray, bits: int, shift: int) -> None:
        self.values, self.words, self.shift, self.n = values, words, shift, len(words)
        self.bits, self.mask = np.uint64(bits), np.uint64((1 << bits) - 1)

    def indices(self, start: int, stop: int) -> np.ndarray:
        return (self.words[start:stop] & self.mask).view(np.intp)  # intp: the fastest fancy index

    def starts(self, start: int, stop: int) -> np.ndarray:
        """Whether each sorted position in [start, stop) begins a run of equal (possibly shortened) keys."""
        return _differs_from_previous(self.words[max(0, start - 1):stop] >> self.bits, start)

    def resolve(self, start: int, stop: int, new_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Entries and tie-group starts of sorted positions [start, stop), given ``starts`` there (whole runs)."""
        idx = self.indices(start, stop)
        if not self.shift or new_group.all():
            return idx, new_group
        # Runs of equal shortened keys: order their entries by value. Shortened keys grow with the values, so sorting
        # all runs' entries together keeps each run in its own positions.
        tied = ~new_group
        members = tied.copy()
        members[:-1] |= tied[1:]
        where = np.flatnonzero(members)
        v = self.values[idx[where]] + self.values.dtype.type(0)  # + 0: -0.0 becomes 0.0
        by_value = np.argsort(v, kind="stable")
        idx[where] = idx[where[by_value]]
        v = v[by_value]
        new_group[where[1:]] |= v[1:] != v[:-1]  # a run's first entry already starts a group
        return idx, new_group

    def check_tied(self, start: int, stop: int) -> None:
        if not self.shift:
            return
        first = self.values[self.indices(start, start + 1)]
        for k in range(start, stop, _RANK_CHUNK):
            if (self.values[self.indices(k, min(stop, k + _RANK_CHUNK))] != first).any():
                raise _Unresolved


def _differs_from_previous(v: np.ndarray, start: int) -> np.ndarray:
    """For sorted values ``v`` of positions max(0, start - 1) to stop: whether positions start to stop - 1 differ from
    their predecessor (position 0 always does)."""
    if start == 0:
        new_group = np.empty(len(v), dtype=bool)
        new_group[0] = True
        np.not_equal(v[1:], v[:-1], out=new_group[1:])
        return new_group
    return v[1:] != v[:-1]


def _packed_sort(values: np.ndarray) -> _PackedOrder | None:
    """The sorted packed words of ``values``; None for NaN, a dtype without integer keys, or 2^63 entries or more."""
    key_of = _KEYS.get(values.dtype.str[1:]) if values.dtype.isnative else None
    n = len(values)
    if key_of is None or n >= 1 << 63:
        return None
    lowest, highest = values.min(), values.max()
    if values.dtype.kind == "f" and (np.isnan(lowest) or np.isnan(highest)):
        return None
    bits = max(1, (n - 1).bit_length())  # index bits
    k_min, k_max = (int(k) for k in key_of(np.array([lowest, highest], dtype=values.dtype)))
    shift = max(0, (k_max - k_min).bit_length() - (64 - bits))  # key bits dropped to make room for the index
    words = np.empty(n, dtype=np.uint64)
    for k0 in range(0, n, _RANK_CHUNK):
        k1 = min(n, k0 + _RANK_CHUNK)
        w = words[k0:k1]
        key = key_of(values[k0:k1])
        key -= key.dtype.type(k_min)  # in the key's own width: fewer bytes to move
        w[:] = key
        if shift:
            w >>= np.uint64(shift)
        w <<= np.uint64(bits)
        w |= np.arange(k0, k1, dtype=np.uint64)
    words.sort()
    return _PackedOrder(values, words, bits, shift)


# --- order-preserving unsigned keys ---------------------------------------------------------------------------------

def _float_keys(signed: type, unsigned: type) -> Callable[[np.ndarray], np.ndarray]:
    bits = np.dtype(unsigned).itemsize * 8

    def key(x: np.ndarray) -> np.ndarray:
        s = (x + x.dtype.type(0)).view(signed)  # + 0: -0.0 becomes 0.0, so the two tie
        # flip: the sign bit for positive floats (above all negatives), every bit for negative ones (larger
        # magnitude, lower key); the arithmetic shift gives all ones for negatives
        flip = (s >> (bits - 1)).view(unsigned) | unsigned(1 << (bits - 1))
        return s.view(unsigned) ^ flip

    return key


def _signed_keys(unsigned: type) -> Callable[[np.ndarray], np.ndarray]:
    sign = unsigned(1 << (np.dtype(unsigned).itemsize * 8 - 1))
    return lambda x: x.view(unsigned) ^ sign


def _unsigned_keys(x: np.ndarray) -> np.ndarray:
    return x.astype(np.uint64)  # a copy: the caller subtracts in place


_KEYS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "f2": _float_keys(np.int16, np.uint16), "f4": _float_keys(np.int32, np.uint32),
    "f8": _float_keys(np.int64, np.uint64),
    "i1": _signed_keys(np.uint8), "i2": _signed_keys(np.uint16), "i4": _signed_keys(np.uint32),
    "i8": _signed_keys(np.uint64),
    "u1": _unsigned_keys, "u2": _unsigned_keys, "u4": _unsigned_keys, "u8": _unsigned_keys, "b1": _unsigned_keys,
}
