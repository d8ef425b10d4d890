"""Bootstrap over probe images: weighted pairs == materialised resampled RDMs, seeding, intervals, row stability."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance as ssd
from scipy.stats import kendalltau, pearsonr, spearmanr

from rsa_toolkit.rsa.bootstrap import bootstrap_similarity, pair_multiplicities
from rsa_toolkit.rsa.compare import compare_rdms
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.similarity import similarity_matrix


def _teacher_features(t: int = 4, n: int = 20, d: int = 16, seed: int = 0, noise=None) -> list[np.ndarray]:
    """T teachers seeing the same N images: a shared signal plus teacher-specific noise of increasing strength."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, d))
    noise = np.linspace(0.3, 2.0, t) if noise is None else noise
    return [shared + s * rng.normal(size=(n, d)) for s in noise]


def _condensed_stack(**kwargs) -> np.ndarray:
    return similarity_matrix(_teacher_features(**kwargs)).rdms


def _materialised(square: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The resampled RDM R[idx][:, idx] as a flat vector of its pairs a < b, without an image paired with its copy."""
    resampled = square[idx][:, idx]
    a, b = np.triu_indices(len(idx), 1)
    keep = idx[a] != idx[b]
    return resampled[a[keep], b[keep]]


REFERENCE = {
    "spearman": lambda x, y: spearmanr(x, y).statistic,
    "pearson": lambda x, y: pearsonr(x, y).statistic,
    "cosine": lambda x, y: x @ y / np.sqrt((x @ x) * (y @ y)),
    "kendall_tau_b": lambda x, y: kendalltau(x, y).statistic,
}


@pytest.mark.parametrize("comparison", list(REFERENCE))
def test_resample_equals_materialised_rdm(comparison):
    stack = _condensed_stack(t=3, n=14, seed=1)
    n = 14
    seed = 123
    boot = bootstrap_similarity(stack, compare_rdms(stack, method=comparison), comparison=comparison,
                                n_bootstrap=2, seed=seed)
    squares = [ssd.squareform(v) for v in stack]
    rng = np.random.default_rng(seed)  # the same draws, in the same order
    for b in range(2):
        idx = rng.integers(0, n, size=n)
        assert len(np.unique(idx)) < n  # a real resample, with duplicates
        vectors = [_materialised(sq, idx) for sq in squares]
        for i in range(3):
            for j in range(3):
                expected = 1.0 if i == j else REFERENCE[comparison](vectors[i], vectors[j])
                assert boot.samples[b, i, j] == pytest.approx(expected, abs=1e-12)


def test_resample_of_square_stack_equals_condensed():
    stack = _condensed_stack(t=3, n=12, seed=2)
    squares = np.stack([ssd.squareform(v) for v in stack])
    full = compare_rdms(stack)
    a = bootstrap_similarity(stack, full, n_bootstrap=3, seed=4)
    b = bootstrap_similarity(squares, full, n_bootstrap=3, seed=4)
    np.testing.assert_allclose(a.samples, b.samples, rtol=0, atol=1e-13)


def test_cka_resample_equals_materialised_square_matrices():
    stack = _condensed_stack(t=3, n=10, seed=3)
    squares = np.stack([ssd.squareform(v) for v in stack])
    boot = bootstrap_similarity(squares, compare_rdms(squares, method="cka"), comparison="cka", n_bootstrap=2,
                                seed=5)
    rng = np.random.default_rng(5)
    for b in range(2):
        idx = rng.integers(0, 10, size=10)
        expected = compare_rdms(np.stack([sq[np.ix_(idx, idx)] for sq in squares]), method="cka")
        np.testing.assert_allclose(boot.samples[b], expected, rtol=0, atol=1e-12)


def test_pair_multiplicities_count_pairs_of_distinct_draws():
    rng = np.random.default_rng(6)
    n = 9
    idx = rng.integers(0, n, size=n)
    w = pair_multiplicities(np.bincount(idx, minlength=n))
    expected = np.zeros(n * (n - 1) // 2, dtype=np.int64)
    for a in range(n):
        for b in range(a + 1, n):
            i, j = sorted((idx[a], idx[b]))
            if i != j:
                expected[n * i - i * (i + 1) // 2 + (j - i - 1)] += 1
    np.testing.assert_array_equal(w, expected)
    assert w.sum() == (n * (n - 1) // 2) - sum(c * (c - 1) // 2 for c in np.bincount(idx))


def test_same_seed_same_result_other_seed_different():
    stack = _condensed_stack(t=4, n=15, seed=7)
    full = compare_rdms(stack)
    a = bootstrap_similarity(stack, full, n_bootstrap=20, seed=11)
    b = bootstrap_similarity(stack, full, n_bootstrap=20, seed=11)
    c = bootstrap_similarity(stack, full, n_bootstrap=20, seed=12)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.ci_low, b.ci_low)
    np.testing.assert_array_equal(a.row_stability, b.row_stability)
    assert not np.array_equal(a.samples, c.samples)
    assert a.seed == 11 and c.seed == 12


def test_samples_are_valid_similarity_matrices():
    stack = _condensed_stack(t=4, n=15, seed=8)
    boot = bootstrap_similarity(stack, compare_rdms(stack), n_bootstrap=10, seed=0)
    assert boot.samples.shape == (10, 4, 4)
    np.testing.assert_array_equal(boot.samples, boot.samples.transpose(0, 2, 1))
    np.testing.assert_array_equal(boot.samples[:, np.arange(4), np.arange(4)], 1.0)
    assert np.all(np.abs(boot.samples) <= 1.0)
    assert np.all(boot.ci_low <= boot.ci_high)


@pytest.mark.parametrize("comparison", ["spearman", "pearson"])
def test_interval_contains_full_sample_value(comparison):
    features = _teacher_features(t=4, n=40, d=24, seed=9)
    result = similarity_matrix(features, comparison=comparison, n_bootstrap=200, seed=3)
    boot = result.bootstrap
    assert boot is not None and boot.confidence == 0.95
    full = result.matrix
    assert np.all(boot.ci_low <= full + 1e-12) and np.all(full <= boot.ci_high + 1e-12)
    # the interval is informative: narrower than the whole range
    off = ~np.eye(4, dtype=bool)
    assert np.all((boot.ci_high - boot.ci_low)[off] < 0.5)


def test_narrower_interval_at_lower_confidence():
    stack = _condensed_stack(t=3, n=25, seed=10)
    full = compare_rdms(stack)
    wide = bootstrap_similarity(stack, full, n_bootstrap=100, confidence=0.95, seed=1)
    narrow = bootstrap_similarity(stack, full, n_bootstrap=100, confidence=0.5, seed=1)
    assert np.all(narrow.ci_high - narrow.ci_low <= wide.ci_high - wide.ci_low + 1e-15)


def test_row_stability_bounds_and_structured_data():
    # Strong structure: teacher k mixes two signals at angle theta_k, so similarity falls with |theta_i - theta_j|
    # and every row has a clear ordering (uneven angles: no two teachers equally far from a third).
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(50, 30)), rng.normal(size=(50, 30))
    features = [np.cos(t) * a + np.sin(t) * b + 0.1 * rng.normal(size=(50, 30)) for t in (0.0, 0.1, 0.4, 1.0, 1.5)]
    result = similarity_matrix(features, n_bootstrap=50, seed=0)
    stability = result.bootstrap.row_stability
    assert stability.shape == (5,)
    assert np.all(stability >= -1.0) and np.all(stability <= 1.0)
    assert np.all(stability > 0.9)
    assert stability.mean() > 0.95


def test_row_stability_in_range_for_unstructured_data():
    rng = np.random.default_rng(12)
    features = [rng.normal(size=(12, 6)) for _ in range(5)]  # independent teachers: no structure to recover
    stability = similarity_matrix(features, n_bootstrap=30, seed=0).bootstrap.row_stability
    assert np.all(stability >= -1.0) and np.all(stability <= 1.0)


def test_bootstrap_through_similarity_matrix_equals_direct_call():
    features = _teacher_features(t=3, n=16, seed=13)
    result = similarity_matrix(features, n_bootstrap=5, seed=9)
    direct = bootstrap_similarity(result.rdms, result.matrix, n_bootstrap=5, seed=9)
    np.testing.assert_array_equal(result.bootstrap.samples, direct.samples)


def test_inputs_not_mutated():
    stack = _condensed_stack(t=3, n=12, seed=14)
    full = compare_rdms(stack)
    before, full_before = stack.copy(), full.copy()
    stack.setflags(write=False)
    full.setflags(write=False)
    bootstrap_similarity(stack, full, n_bootstrap=3, seed=0)
    np.testing.assert_array_equal(stack, before)
    np.testing.assert_array_equal(full, full_before)


def test_bad_arguments():
    stack = _condensed_stack(t=3, n=8, seed=15)
    full = compare_rdms(stack)
    with pytest.raises(UserInputError, match=r"n_bootstrap must be an integer >= 1, got 0"):
        bootstrap_similarity(stack, full, n_bootstrap=0)
    with pytest.raises(UserInputError, match=r"confidence must be in \(0, 1\), got 1.5"):
        bootstrap_similarity(stack, full, confidence=1.5)
    with pytest.raises(UserInputError, match=r"Unknown comparison 'rho'"):
        bootstrap_similarity(stack, full, comparison="rho")
