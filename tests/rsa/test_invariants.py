"""Property tests (hypothesis): the invariants every RDM and similarity matrix must satisfy on any sane input."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rsa_toolkit.rsa.compare import compare_rdms
from rsa_toolkit.rsa.rdm import compute_condensed_rdm, compute_rdm
from rsa_toolkit.rsa.similarity import similarity_matrix

SETTINGS = settings(max_examples=40, deadline=None)
DISSIMILARITIES = ["correlation", "cosine", "euclidean", "sqeuclidean"]
COMPARISONS = ["spearman", "pearson", "cosine", "kendall_tau_b", "kendall_tau_a", "cka", "cka_debiased"]
ELEMENTS = st.floats(-10, 10, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)


def _features(n_teachers: tuple[int, int] = (1, 1), n_images: tuple[int, int] = (5, 9)) -> st.SearchStrategy:
    """(T, N, D) features in [-10, 10]: every element drawn (no fill value, so rows are not mostly constant)."""
    return st.tuples(st.integers(*n_teachers), st.integers(*n_images), st.integers(3, 8)).flatmap(
        lambda shape: arrays(np.float64, shape, elements=ELEMENTS, fill=st.nothing()))


def _well_conditioned(x: np.ndarray, *, centre: bool = True) -> bool:
    """Every image row varies clearly (before and, if ``centre``, after subtracting the feature means)."""
    rows = x.reshape(-1, x.shape[-1])
    if rows.std(axis=1).min() < 0.5:
        return False
    if centre:
        centred = x - x.mean(axis=-2, keepdims=True)
        return bool(centred.reshape(-1, x.shape[-1]).std(axis=1).min() >= 0.5)
    return True


def _no_near_ties(condensed: np.ndarray, gap: float = 1e-7) -> bool:
    """Distinct, well-separated RDM entries, so rounding cannot reorder them (rank comparisons stay exact)."""
    s = np.sort(condensed, axis=-1)
    return bool(np.diff(s, axis=-1).min() > gap * max(1.0, np.abs(s).max()))


# --- RDMs -------------------------------------------------------------------------------------------------------------

@SETTINGS
@given(x=_features(), method=st.sampled_from(DISSIMILARITIES), dtype=st.sampled_from([np.float64, np.float32]),
       chunk_size=st.one_of(st.none(), st.integers(1, 9)))
def test_rdm_symmetric_zero_diagonal_and_in_range(x, method, dtype, chunk_size):
    x = x[0]
    assume(_well_conditioned(x))
    rdm = compute_rdm(x, method=method, dtype=dtype, chunk_size=chunk_size)
    assert rdm.dtype == dtype
    np.testing.assert_array_equal(rdm, rdm.T)
    np.testing.assert_array_equal(np.diag(rdm), 0.0)
    assert rdm.min() >= 0.0
    if method in ("correlation", "cosine"):
        assert rdm.max() <= 2.0
    condensed = compute_condensed_rdm(x, method=method, dtype=dtype, chunk_size=chunk_size)
    np.testing.assert_array_equal(condensed, rdm[np.triu_indices(len(x), 1)])


@SETTINGS
@given(x=_features(), data=st.data())
def test_correlation_rdm_invariant_to_positive_affine_rescaling_of_images(x, data):
    x = x[0]
    assume(_well_conditioned(x, centre=False))
    n = len(x)
    scale = np.array(data.draw(st.lists(st.floats(0.1, 10), min_size=n, max_size=n)))
    shift = np.array(data.draw(st.lists(st.floats(-10, 10), min_size=n, max_size=n)))
    rescaled = scale[:, None] * x + shift[:, None]  # x_i -> a_i x_i + b_i, a_i > 0
    before = compute_rdm(x, normalization="none")
    after = compute_rdm(rescaled, normalization="none")
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-9)


# --- comparisons ------------------------------------------------------------------------------------------------------

MONOTONE = {
    "exp": np.exp,
    "cubic": lambda v: v ** 3 + v,
    "sqrt": lambda v: np.sqrt(v + 1.0),
    "affine": lambda v: 3.0 * v + 7.0,
    "arctan": np.arctan,
}


@SETTINGS
@given(shape=st.tuples(st.integers(2, 4), st.integers(3, 8)), data=st.data(),
       transform=st.sampled_from(sorted(MONOTONE)), which=st.integers(0, 3))
def test_spearman_invariant_to_monotone_transform_of_an_rdm(shape, data, transform, which):
    t, n = shape
    m = n * (n - 1) // 2
    # Values on a coarse grid in [0, 2]: plenty of ties, and no two distinct values close enough to merge.
    grid = data.draw(arrays(np.int64, (t, m), elements=st.integers(0, 32), fill=st.nothing()))
    stack = grid * 0.0625
    assume(all(len(np.unique(v)) > 1 for v in stack))
    transformed = stack.copy()
    transformed[which % t] = MONOTONE[transform](stack[which % t])
    for method in ("spearman", "kendall_tau_b", "kendall_tau_a"):
        np.testing.assert_allclose(compare_rdms(transformed, method=method), compare_rdms(stack, method=method),
                                   rtol=0, atol=1e-12)


@SETTINGS
@given(x=_features(n_teachers=(2, 4)), method=st.sampled_from(DISSIMILARITIES),
       comparison=st.sampled_from(COMPARISONS), dtype=st.sampled_from([np.float64, np.float32]))
def test_similarity_matrix_symmetric_unit_diagonal_bounded(x, method, comparison, dtype):
    assume(_well_conditioned(x))
    rdms = np.stack([compute_condensed_rdm(f, method=method) for f in x])
    assume(all(np.ptp(v) > 1e-6 for v in rdms))  # a constant RDM has no correlation (an error, tested elsewhere)
    sim = similarity_matrix(list(x), method=method, comparison=comparison, dtype=dtype).matrix
    assert sim.shape == (len(x), len(x))
    np.testing.assert_array_equal(sim, sim.T)
    np.testing.assert_array_equal(np.diag(sim), 1.0)
    assert sim.min() >= -1.0 and sim.max() <= 1.0


@SETTINGS
@given(x=_features(n_teachers=(2, 4)), method=st.sampled_from(DISSIMILARITIES),
       comparison=st.sampled_from(COMPARISONS), data=st.data())
def test_permuting_images_leaves_similarity_unchanged(x, method, comparison, data):
    assume(_well_conditioned(x))
    rdms = np.stack([compute_condensed_rdm(f, method=method) for f in x])
    assume(_no_near_ties(rdms))
    perm = np.array(data.draw(st.permutations(range(x.shape[1]))))
    before = similarity_matrix(list(x), method=method, comparison=comparison).matrix
    after = similarity_matrix([f[perm] for f in x], method=method, comparison=comparison).matrix
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-9)


@SETTINGS
@given(x=_features(n_teachers=(2, 5)), comparison=st.sampled_from(COMPARISONS), data=st.data())
def test_permuting_teachers_permutes_the_matrix(x, comparison, data):
    assume(_well_conditioned(x))
    rdms = np.stack([compute_condensed_rdm(f) for f in x])
    assume(all(np.ptp(v) > 1e-6 for v in rdms))
    perm = np.array(data.draw(st.permutations(range(len(x)))))
    names = [f"t{i}" for i in range(len(x))]
    before = similarity_matrix(list(x), names=names, comparison=comparison)
    after = similarity_matrix([x[p] for p in perm], names=[names[p] for p in perm], comparison=comparison)
    assert after.names == [names[p] for p in perm]
    np.testing.assert_allclose(after.matrix, before.matrix[np.ix_(perm, perm)], rtol=0, atol=1e-12)
