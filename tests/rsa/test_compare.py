"""RDM comparisons against scipy, explicit loops and the textbook CKA / unbiased-HSIC formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance as ssd
from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr

from rsa_toolkit.rsa.compare import COMPARISONS, compare_pair, compare_rdms, pairwise_similarity, prepare_for, rank_average
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.rdm import compute_condensed_rdm, compute_rdm

ALL = ["spearman", "pearson", "cosine", "kendall_tau_b", "kendall_tau_a", "cka", "cka_debiased"]


def _rdm_stack(t: int = 4, n: int = 12, d: int = 20, seed: int = 0, dtype: type = np.float64,
               ties: bool = False) -> np.ndarray:
    """(T, M) condensed correlation RDMs of related random features (so the comparisons are not all ~0)."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, d))
    rdms = []
    for _ in range(t):
        x = shared + rng.uniform(0.3, 2.0) * rng.normal(size=(n, d))
        v = compute_condensed_rdm(x)
        rdms.append(np.round(v, 1) if ties else v)  # rounding creates many tied entries
    return np.stack(rdms).astype(dtype)


def _pairwise_reference(stack: np.ndarray, fn) -> np.ndarray:
    t = len(stack)
    out = np.eye(t)
    for i in range(t):
        for j in range(t):
            if i != j:
                out[i, j] = fn(np.asarray(stack[i], dtype=np.float64), np.asarray(stack[j], dtype=np.float64))
    return out


def test_registry_holds_the_documented_comparisons():
    assert COMPARISONS.names() == ALL


# --- rank and moment comparisons vs scipy --------------------------------------------------------------------------

SCIPY = {
    "spearman": lambda a, b: spearmanr(a, b).statistic,
    "pearson": lambda a, b: pearsonr(a, b).statistic,
    "kendall_tau_b": lambda a, b: kendalltau(a, b, variant="b").statistic,
    "cosine": lambda a, b: a @ b / np.sqrt((a @ a) * (b @ b)),
}


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", list(SCIPY))
def test_matches_scipy_on_every_pair(method, dtype, ties):
    stack = _rdm_stack(seed=1, dtype=dtype, ties=ties)
    if ties:
        assert len(np.unique(stack[0])) < stack.shape[1] / 2
    sim = compare_rdms(stack, method=method)
    np.testing.assert_allclose(sim, _pairwise_reference(stack, SCIPY[method]), rtol=0, atol=1e-12)
    a, b = stack[0], stack[2]
    assert compare_pair(a, b, method=method) == pytest.approx(SCIPY[method](a.astype(float), b.astype(float)),
                                                              abs=1e-12)


def _tau_a_loop(a: np.ndarray, b: np.ndarray) -> float:
    """(concordant - discordant) / (M(M-1)/2), by the definition, O(M^2); ties count as neither."""
    m = len(a)
    s = 0.0
    for i in range(m):
        for j in range(i + 1, m):
            s += np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return s / (m * (m - 1) / 2)


@pytest.mark.parametrize("ties", [False, True])
def test_kendall_tau_a_matches_definition(ties):
    stack = _rdm_stack(t=3, n=9, seed=2, ties=ties)
    if ties:
        assert len(np.unique(stack[1])) < stack.shape[1]
    np.testing.assert_allclose(compare_rdms(stack, method="kendall_tau_a"), _pairwise_reference(stack, _tau_a_loop),
                               rtol=0, atol=1e-12)


def test_kendall_tau_a_with_hand_counted_ties():
    a = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 4.0])
    b = np.array([2.0, 1.0, 1.0, 3.0, 4.0, 4.0])
    # 15 pairs, counted by hand: 10 concordant, 1 discordant ((0, 2)), 4 tied in a or b -> (10 - 1) / 15
    expected = _tau_a_loop(a, b)
    assert compare_pair(a, b, method="kendall_tau_a") == pytest.approx(expected, abs=1e-14)
    assert expected == pytest.approx(9 / 15)


# --- CKA vs the textbook formulas ---------------------------------------------------------------------------------

def _centring(n: int) -> np.ndarray:
    return np.eye(n) - np.ones((n, n)) / n


def _cka_textbook(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741 - L is the paper's name
    """Kornblith et al. 2019: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H))."""
    h = _centring(len(k))
    return np.trace(k @ h @ l @ h) / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(l @ h @ l @ h))


def _hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Song et al. 2012, Eq. 5: unbiased HSIC with K~, L~ the kernels with zeroed diagonals."""
    n = len(k)
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    one = np.ones(n)
    return (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (one @ kt @ lt @ one)) / (n * (n - 3))


def _cka_debiased_textbook(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    return _hsic_unbiased(k, l) / np.sqrt(_hsic_unbiased(k, k) * _hsic_unbiased(l, l))


def _kernel_stack(t: int = 4, n: int = 10, seed: int = 3, method: str = "linear") -> np.ndarray:
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, 15))
    return np.stack([compute_rdm(shared + rng.uniform(0.5, 2) * rng.normal(size=(n, 15)), method=method,
                                 normalization="none") for _ in range(t)])


@pytest.mark.parametrize("kernel", ["linear", "rbf", "laplacian"])
def test_linear_cka_matches_trace_formula(kernel):
    kernels = _kernel_stack(method=kernel)
    sim = compare_rdms(kernels, method="cka", kind="kernel")
    np.testing.assert_allclose(sim, _pairwise_reference(kernels, _cka_textbook), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", ["linear", "rbf", "laplacian"])
def test_debiased_cka_matches_song_unbiased_hsic(kernel):
    kernels = _kernel_stack(method=kernel, n=9)
    sim = compare_rdms(kernels, method="cka_debiased", kind="kernel")
    np.testing.assert_allclose(sim, _pairwise_reference(kernels, _cka_debiased_textbook), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["cka", "cka_debiased"])
def test_cka_on_rdms_equals_cka_on_classical_scaling_kernels(method):
    stack = _rdm_stack(t=3, n=11, seed=4)
    squares = np.stack([ssd.squareform(v) for v in stack])
    h = _centring(11)
    kernels = np.stack([-0.5 * h @ d @ h for d in squares])
    on_rdms = compare_rdms(stack, method=method)
    np.testing.assert_allclose(on_rdms, compare_rdms(kernels, method=method, kind="kernel"), rtol=0, atol=1e-12)
    textbook = _cka_textbook if method == "cka" else _cka_debiased_textbook
    np.testing.assert_allclose(on_rdms, _pairwise_reference(kernels, textbook), rtol=0, atol=1e-12)


def test_cka_of_squared_euclidean_rdms_is_linear_cka_of_centred_features():
    # -1/2 H D H of squared euclidean distances is the Gram matrix of the centred features.
    rng = np.random.default_rng(5)
    feats = [rng.normal(size=(10, 6)) for _ in range(3)]
    rdms = np.stack([compute_condensed_rdm(f, method="sqeuclidean", normalization="none") for f in feats])
    grams = np.stack([(f - f.mean(0)) @ (f - f.mean(0)).T for f in feats])
    np.testing.assert_allclose(compare_rdms(rdms, method="cka"), _pairwise_reference(grams, _cka_textbook),
                               rtol=0, atol=1e-10)


def test_cka_of_kernel_needs_square_matrix():
    kernels = _kernel_stack()
    iu = np.triu_indices(kernels.shape[1], 1)
    with pytest.raises(UserInputError, match=r"rdm 0: CKA on a kernel needs the square matrix"):
        compare_rdms(np.stack([k[iu] for k in kernels]), method="cka", kind="kernel")


def test_debiased_cka_needs_four_images():
    with pytest.raises(UserInputError, match=r"debiased CKA needs at least 4 images, got 3"):
        compare_rdms(np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]]), method="cka_debiased")


# --- ranks ----------------------------------------------------------------------------------------------------------

def test_rank_average_matches_rankdata():
    rng = np.random.default_rng(6)
    for values in (rng.normal(size=50), rng.integers(0, 6, size=50).astype(float), np.array([2.0, 2.0, 2.0]),
                   np.array([3.0, 1.0, 2.0])):
        np.testing.assert_array_equal(rank_average(values), rankdata(values))
        np.testing.assert_array_equal(rank_average(values, order=np.argsort(values)), rankdata(values))


def test_weighted_rank_average_matches_rankdata_of_repeated_values():
    rng = np.random.default_rng(7)
    for values in (rng.normal(size=40), rng.integers(0, 5, size=40).astype(float)):
        weights = rng.integers(0, 4, size=40)
        weights[:3] = [0, 1, 3]
        repeated_ranks = rankdata(np.repeat(values, weights))
        first_copy = np.cumsum(weights) - weights
        kept = weights > 0
        ranks = rank_average(values, weights)
        np.testing.assert_allclose(ranks[kept], repeated_ranks[first_copy[kept]], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(rank_average(values, weights, order=np.argsort(values, kind="stable")), ranks)


def test_unit_weights_change_nothing():
    values = np.round(np.random.default_rng(8).normal(size=30), 1)
    np.testing.assert_array_equal(rank_average(values, np.ones(30, dtype=np.int64)), rankdata(values))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_weighted_prepare_equals_repeating_entries(method, ties):
    stack = _rdm_stack(t=3, n=10, seed=9, ties=ties)
    rng = np.random.default_rng(10)
    weights = rng.integers(0, 4, size=stack.shape[1])
    comparison = COMPARISONS.get(method)
    prepared = [prepare_for(comparison, v, weights=weights) for v in stack]
    weighted = pairwise_similarity(comparison, prepared, weights=weights)
    repeated = np.stack([np.repeat(v, weights) for v in stack])
    np.testing.assert_allclose(weighted, compare_rdms(repeated, method=method), rtol=0, atol=1e-12)
    np.testing.assert_allclose(weighted, _pairwise_reference(repeated, SCIPY[method]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["kendall_tau_b", "kendall_tau_a"])
def test_weighted_kendall_repeats_entries(method):
    stack = _rdm_stack(t=3, n=8, seed=11)
    weights = np.random.default_rng(12).integers(0, 3, size=stack.shape[1])
    comparison = COMPARISONS.get(method)
    prepared = [prepare_for(comparison, v, weights=weights) for v in stack]
    repeated = np.stack([np.repeat(v, weights) for v in stack])
    reference = SCIPY["kendall_tau_b"] if method == "kendall_tau_b" else _tau_a_loop
    np.testing.assert_allclose(pairwise_similarity(comparison, prepared, weights=weights),
                               _pairwise_reference(repeated, reference), rtol=0, atol=1e-12)


# --- shapes and output properties ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ALL)
def test_square_and_condensed_stacks_agree(method):
    stack = _rdm_stack(t=4, n=10, seed=13)
    squares = np.stack([ssd.squareform(v) for v in stack])
    np.testing.assert_allclose(compare_rdms(squares, method=method), compare_rdms(stack, method=method),
                               rtol=0, atol=1e-13)
    assert compare_pair(squares[0], squares[1], method=method) == pytest.approx(
        compare_pair(stack[0], stack[1], method=method), abs=1e-13)


def test_square_input_uses_the_upper_triangle():
    stack = _rdm_stack(t=3, n=8, seed=14)
    squares = np.stack([ssd.squareform(v) for v in stack])
    lower = np.tril_indices(8, -1)
    scrambled = squares.copy()
    scrambled[:, lower[0], lower[1]] = 123.0
    np.testing.assert_allclose(compare_rdms(scrambled), compare_rdms(stack), atol=1e-14)


@pytest.mark.parametrize("method", ALL)
def test_output_symmetric_unit_diagonal_bounded(method):
    sim = compare_rdms(_rdm_stack(t=5, n=9, seed=15), method=method)
    np.testing.assert_array_equal(sim, sim.T)
    np.testing.assert_array_equal(np.diag(sim), 1.0)
    assert sim.min() >= -1.0 and sim.max() <= 1.0


@pytest.mark.parametrize("method", ALL)
def test_inputs_not_mutated(method):
    stack = _rdm_stack(t=3, n=8, seed=16)
    before = stack.copy()
    stack.setflags(write=False)
    compare_rdms(stack, method=method)
    compare_pair(stack[0], stack[1], method=method)
    np.testing.assert_array_equal(stack, before)


# --- errors ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_constant_rdm_has_zero_variance(method):
    stack = _rdm_stack(t=3, n=6, seed=17)
    stack[1] = 0.7
    with pytest.raises(UserInputError, match=r"^rdm 1: the RDM has zero variance so the comparison is undefined"):
        compare_rdms(stack, method=method)
    with pytest.raises(UserInputError, match=r"^second RDM: the RDM has zero variance"):
        compare_pair(stack[0], stack[1], method=method)
    with pytest.raises(UserInputError, match=r"^depth: the RDM has zero variance"):
        compare_rdms(stack, method=method, names=["normal", "depth", "edges"])


def test_zero_rdm_has_no_cosine():
    with pytest.raises(UserInputError, match=r"^first RDM: the RDM is all zeros"):
        compare_pair(np.zeros(6), np.arange(6.0), method="cosine")


@pytest.mark.parametrize("method", ["kendall_tau_b", "kendall_tau_a"])
def test_constant_rdm_kendall(method):
    with pytest.raises(UserInputError, match=r"kendall: an RDM has all-equal entries, so tau is undefined"):
        compare_pair(np.full(6, 0.5), np.arange(6.0), method=method)


def test_compare_pair_shape_mismatch():
    with pytest.raises(UserInputError, match=r"the two RDMs must have the same shape, got \(10,\) and \(15,\)"):
        compare_pair(np.arange(10.0), np.arange(15.0))
    with pytest.raises(UserInputError, match=r"got \(5, 5\) and \(10,\)"):
        compare_pair(np.ones((5, 5)), np.arange(10.0))


def test_unknown_comparison_lists_available():
    with pytest.raises(UserInputError, match=r"Unknown comparison 'spearmann'\. Did you mean 'spearman'.*"
                                             r"Available: spearman, pearson, cosine, kendall_tau_b, kendall_tau_a, "
                                             r"cka, cka_debiased\."):
        compare_rdms(_rdm_stack(t=2), method="spearmann")


def test_bad_stacks():
    with pytest.raises(UserInputError, match=r"a condensed RDM has length N\(N-1\)/2, got 7"):
        compare_rdms(np.ones((2, 7)))
    with pytest.raises(UserInputError, match=r"expected a stack of square matrices \(T, N, N\) or condensed vectors"):
        compare_rdms(np.ones((2, 4, 5)))
    with pytest.raises(UserInputError, match=r"need at least 3 images, got 2x2 matrices"):
        compare_rdms(np.ones((2, 2, 2)))
    stack = _rdm_stack(t=3)
    stack[2, 5] = np.nan
    with pytest.raises(UserInputError, match=r"rdms: matrix 2 has NaN or infinite values"):
        compare_rdms(stack)
    with pytest.raises(UserInputError, match=r"kind must be 'dissimilarity' or 'kernel', got 'similarity'"):
        compare_rdms(_rdm_stack(t=2), kind="similarity")
    with pytest.raises(UserInputError, match=r"names has 2 entries but there are 3 RDMs"):
        compare_rdms(_rdm_stack(t=3), names=["a", "b"])


# --- compact storage and chunked accumulation -----------------------------------------------------------------------

def test_gram_chunks_span_more_than_one_block(monkeypatch):
    """More entries than one accumulation chunk: the chunked float64 Gram equals scipy on the whole vectors."""
    import rsa_toolkit.rsa.compare as compare

    monkeypatch.setattr(compare, "_GRAM_CHUNK", 1000)  # 4,950 entries -> 5 chunks, the last one partial
    stack = _rdm_stack(t=4, n=100, seed=21)
    sim = compare_rdms(stack, method="spearman")
    np.testing.assert_allclose(sim, _pairwise_reference(stack, SCIPY["spearman"]), rtol=0, atol=1e-12)


def test_spearman_keeps_exact_integer_ranks():
    from rsa_toolkit.rsa.average_ranks import doubled_ranks

    values = np.round(np.random.default_rng(22).normal(size=500), 1)  # many ties
    doubled = doubled_ranks(values)
    assert doubled.dtype == np.int32
    np.testing.assert_array_equal(doubled, (2 * rankdata(values)).astype(np.int64))
    prepared = prepare_for(COMPARISONS.get("spearman"), values)
    assert prepared.values.dtype == np.int32  # 4 bytes per entry, not 8


def test_doubled_ranks_switch_to_int64_when_int32_would_overflow():
    from rsa_toolkit.rsa.average_ranks import doubled_ranks

    values = np.array([0.3, 0.1, 0.2])
    weights = np.array([2**30, 1, 2**29])  # total weight beyond what doubled int32 ranks can hold
    doubled = doubled_ranks(values, weights)
    assert doubled.dtype == np.int64
    # doubled mean position = first + last position of each value's run in the sorted multiset
    np.testing.assert_array_equal(doubled, [(2**29 + 2) + (2**29 + 1 + 2**30), 1 + 1, 2 + (2**29 + 1)])


def test_pearson_prepared_references_the_rdm_without_copy():
    v = _rdm_stack(t=1, n=12, seed=23)[0]
    prepared = prepare_for(COMPARISONS.get("pearson"), v)
    assert np.shares_memory(prepared.values, v)


@pytest.mark.parametrize("comparison", ["spearman", "pearson"])
def test_kernel_under_a_correlation_is_compared_as_one_minus_k_off_the_diagonal(comparison):
    """DDS's z-score + Laplacian kernel + Spearman, against sklearn's kernel and scipy's correlation."""
    from sklearn.metrics.pairwise import laplacian_kernel
    from sklearn.preprocessing import StandardScaler

    from rsa_toolkit.rsa.similarity import similarity_matrix

    rng = np.random.default_rng(5)
    shared = rng.normal(size=(12, 6))
    features = [shared + s * rng.normal(size=(12, 6)) for s in (0.3, 1.0, 3.0)]
    result = similarity_matrix(features, method="laplacian", normalization="zscore", comparison=comparison)
    upper = np.triu_indices(12, 1)
    rdms = [1.0 - laplacian_kernel(StandardScaler().fit_transform(f))[upper] for f in features]
    corr = spearmanr if comparison == "spearman" else pearsonr
    for i in range(3):
        for j in range(3):
            assert result.matrix[i, j] == pytest.approx(corr(rdms[i], rdms[j])[0], abs=1e-12)
    assert result.kind == "dissimilarity" and result.rdms.shape == (3, len(upper[0]))
