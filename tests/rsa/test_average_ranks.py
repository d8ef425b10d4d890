"""Average ranks from packed sort keys (rsa_toolkit.rsa.average_ranks) against scipy.stats.rankdata: ties, -0.0,
float extremes, float32 and float64, weights, shortened float64 keys, chunked passes, and the argsort fallback."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from rsa_toolkit.rsa import average_ranks
from rsa_toolkit.rsa.average_ranks import doubled_ranks, doubled_ranks_and_spread


def _pool(dtype: type) -> list[float]:
    info = np.finfo(dtype)
    one = dtype(1.0)
    return [0.0, -0.0, 1.0, -1.0, float(np.nextafter(one, dtype(2))), float(np.nextafter(one, dtype(0))), 0.5,
            float(info.max), -float(info.max), float(info.smallest_subnormal), -float(info.smallest_subnormal),
            float(info.tiny), np.inf, -np.inf, 1e-3, 123.25]


def _reference(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """2 x scipy's average ranks, an entry of weight w counted as w repeats (all tied, so they share one rank);
    meaningless for entries of weight 0, which _check compares with the argsort path only."""
    if weights is None:
        return (2 * rankdata(values)).astype(np.int64)
    repeated = np.repeat(values, weights)
    if not len(repeated):
        return np.zeros(len(values), dtype=np.int64)
    return (2 * rankdata(repeated)[np.maximum(np.cumsum(weights) - 1, 0)]).astype(np.int64)


def _check(values: np.ndarray, weights: np.ndarray | None) -> None:
    ranks, mean, spread = doubled_ranks_and_spread(values, weights)
    total = len(values) if weights is None else int(weights.sum())
    assert mean == total + 1
    expected = _reference(values, weights)
    kept = slice(None) if weights is None else weights > 0
    np.testing.assert_array_equal(ranks[kept], expected[kept])
    # the argsort path (as before, and as the bootstrap calls it) gives the same ranks, zero weights included
    np.testing.assert_array_equal(ranks, doubled_ranks(values, weights, order=np.argsort(values)))
    w = np.ones(len(values), dtype=np.int64) if weights is None else weights
    assert spread == sum(int(wk) * (int(r) - mean) ** 2 for wk, r in zip(w, ranks))  # exact


def _values(dtype: type) -> st.SearchStrategy[np.ndarray]:
    element = st.one_of(st.sampled_from(_pool(dtype)),
                        st.floats(width=np.dtype(dtype).itemsize * 8, allow_nan=False))
    return st.lists(element, min_size=1, max_size=80).map(lambda v: np.array(v, dtype=dtype))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]), weighted=st.booleans(),
       chunk=st.sampled_from([1, 2, 3, 5, 1 << 18]))
def test_packed_ranks_equal_scipy_with_ties_extremes_and_weights(data: st.DataObject, dtype: type, weighted: bool,
                                                                  chunk: int) -> None:
    values = data.draw(_values(dtype))
    weights = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(values), max_size=len(values))),
                       dtype=np.int64) if weighted else None
    original = average_ranks._RANK_CHUNK
    average_ranks._RANK_CHUNK = chunk  # not monkeypatch: hypothesis reruns the body without re-entering fixtures
    try:
        _check(values, weights)
    finally:
        average_ranks._RANK_CHUNK = original


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_zero_ties_with_zero(dtype: type) -> None:
    values = np.array([0.0, -0.0, 1.0, -0.0, -1.0, 0.0], dtype=dtype)
    np.testing.assert_array_equal(doubled_ranks(values), [7, 7, 12, 7, 2, 7])


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 7, 1 << 18])
def test_shortened_float64_keys_order_near_ties_by_value(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Values spanning the whole float64 range leave room for only part of each key next to the index: neighbours
    one ulp apart share a shortened key and are told apart (and tied) by their values."""
    monkeypatch.setattr(average_ranks, "_RANK_CHUNK", chunk)
    one = 1.0
    up = np.nextafter(one, 2.0)
    values = np.array([1e300, -1e300, up, one, up, one, one, -0.0, 0.0, 5e-324, np.nextafter(up, 2.0), up])
    packed = average_ranks._packed_sort(values)
    assert packed is not None and packed.shift > 0
    np.random.default_rng(chunk).shuffle(values)
    for weights in (None, np.random.default_rng(0).integers(1, 4, len(values))):
        _check(values, weights)


def test_a_long_run_of_near_ties_falls_back_to_argsort(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of equal shortened keys longer than a pass, with different values: ranked from an argsort."""
    monkeypatch.setattr(average_ranks, "_RANK_CHUNK", 4)
    values = np.array([1e300, -1e300] + [1.0] * 7 + [np.nextafter(1.0, 2.0)] * 6)
    calls = []
    real = average_ranks._ArgsortOrder

    class Spy(real):
        def __init__(self, *args):
            calls.append(1)
            super().__init__(*args)

    monkeypatch.setattr(average_ranks, "_ArgsortOrder", Spy)
    _check(values, None)
    assert calls  # the fallback ran


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_realistic_rdm_ranks_equal_scipy(dtype: type) -> None:
    from rsa_toolkit.rsa.rdm import compute_condensed_rdm

    x = np.random.default_rng(3).standard_normal((300, 8))  # low rank: float32 entries tie often
    values = compute_condensed_rdm(x, dtype=dtype)
    np.testing.assert_array_equal(doubled_ranks(values), 2 * rankdata(values))


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16, np.uint64, np.float16, bool])
def test_other_dtypes_equal_scipy(dtype: type) -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 2 if dtype is bool else 100, 500).astype(dtype)
    if np.issubdtype(dtype, np.signedinteger):
        values[::3] = -values[::3]
        values[0], values[1] = np.iinfo(dtype).min, np.iinfo(dtype).max
    if dtype is np.uint64:
        values[0] = np.iinfo(dtype).max
    np.testing.assert_array_equal(doubled_ranks(values), 2 * rankdata(values))


def test_nan_is_ranked_as_before_last_and_untied() -> None:
    """NaN takes the argsort path, as before: finite values ranked among themselves, each NaN a rank of its own."""
    values = np.array([2.0, np.nan, 1.0, np.nan, 2.0])
    ranks = doubled_ranks(values)
    np.testing.assert_array_equal(ranks[[0, 2, 4]], [5, 2, 5])
    assert sorted(ranks[[1, 3]]) == [8, 10]


def test_non_native_byte_order_and_strided_input() -> None:
    values = np.round(np.random.default_rng(5).normal(size=200), 1)
    np.testing.assert_array_equal(doubled_ranks(values.astype(">f8")), 2 * rankdata(values))
    np.testing.assert_array_equal(doubled_ranks(values[::2]), 2 * rankdata(values[::2]))


def test_prepare_all_in_threads_equals_one_at_a_time() -> None:
    from rsa_toolkit.rsa.compare import COMPARISONS, prepare_all, prepare_for

    rng = np.random.default_rng(6)
    stack = np.round(rng.random((5, 65 * 1024)), 3)  # over _GRAM_CHUNK entries (so in threads), ties
    spearman = COMPARISONS.get("spearman")
    names = [f"rdm {t}" for t in range(5)]
    for got, v in zip(prepare_all(spearman, stack, names=names), stack):
        expected = prepare_for(spearman, v)
        np.testing.assert_array_equal(got.values, expected.values)
        assert (got.offset, got.scale) == (expected.offset, expected.scale)
        np.testing.assert_array_equal(got.values, 2 * rankdata(v))
        assert got.offset == len(v) + 1
        np.testing.assert_allclose(got.scale, 1 / np.linalg.norm(2 * rankdata(v) - len(v) - 1), rtol=1e-15)
