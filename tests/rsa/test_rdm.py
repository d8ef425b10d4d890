"""RDMs and kernels against independent references: brute-force loops with scipy's pearsonr, scipy's pdist,
torch's normalisation layers and scikit-learn's kernels, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance as ssd
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr
from sklearn.metrics.pairwise import laplacian_kernel, rbf_kernel
from sklearn.preprocessing import StandardScaler

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.normalize import NORMALIZATIONS, normalize_features
from rsa_toolkit.rsa.rdm import RDM_METHODS, compute_condensed_rdm, compute_rdm, condensed_index, squareform

DISSIMILARITIES = ["correlation", "cosine", "euclidean", "sqeuclidean"]
KERNELS = ["linear", "rbf", "laplacian"]
PDIST_METRIC = {"correlation": "correlation", "cosine": "cosine", "euclidean": "euclidean",
                "sqeuclidean": "sqeuclidean"}
# float32 results vs a float64 reference: absolute tolerance, relative to the typical magnitude of the values.
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def _features(shape: tuple[int, ...], seed: int = 0, dtype: type = np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # A shared component across images plus noise: realistic non-zero feature means and correlated images.
    x = rng.normal(size=shape) + 0.5 * rng.normal(size=(1, *shape[1:])) + 2.0
    return x.astype(dtype)


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def _assert_close(actual: np.ndarray, expected: np.ndarray, dtype: type) -> None:
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL[dtype] * scale)


# --- correlation: the RSA recipe vs a brute-force loop ------------------------------------------------------------

def _correlation_loop(x: np.ndarray) -> np.ndarray:
    """Per-feature centring, then 1 - Pearson for every pair, one scipy call each (the released code's double loop)."""
    f = _flat(x)
    f = f - f.mean(axis=0, keepdims=True)
    n = len(f)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = 1.0 - pearsonr(f[i], f[j]).statistic
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(12, 30), (9, 4, 3, 5)])
def test_correlation_matches_pearsonr_loop(shape, dtype):
    x = _features(shape, seed=1, dtype=dtype)
    rdm = compute_rdm(x, dtype=dtype)
    assert rdm.dtype == dtype and rdm.shape == (shape[0], shape[0])
    _assert_close(rdm, _correlation_loop(x), dtype)


# --- every dissimilarity vs scipy's pdist --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(15, 24), (10, 3, 4, 4)])
@pytest.mark.parametrize("method", DISSIMILARITIES)
def test_dissimilarities_match_pdist(method, shape, dtype):
    x = _features(shape, seed=2, dtype=dtype)
    expected = ssd.squareform(ssd.pdist(_flat(x), metric=PDIST_METRIC[method]))
    rdm = compute_rdm(x, method=method, normalization="none", dtype=dtype)
    assert rdm.dtype == dtype
    _assert_close(rdm, expected, dtype)
    condensed = compute_condensed_rdm(x, method=method, normalization="none", dtype=dtype)
    assert condensed.dtype == dtype
    _assert_close(condensed, ssd.pdist(_flat(x), metric=PDIST_METRIC[method]), dtype)


@pytest.mark.parametrize("method", DISSIMILARITIES)
def test_dissimilarities_after_centring_match_pdist_of_centred_features(method):
    x = _features((14, 20), seed=3)
    centred = x - x.mean(axis=0)
    expected = ssd.squareform(ssd.pdist(centred, metric=PDIST_METRIC[method]))
    _assert_close(compute_rdm(x, method=method), expected, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", DISSIMILARITIES + KERNELS)
def test_matrix_is_symmetric_with_exact_diagonal(method, dtype):
    x = _features((40, 17), seed=4)
    for chunk_size in (None, 7):
        m = compute_rdm(x, method=method, dtype=dtype, chunk_size=chunk_size)
        np.testing.assert_array_equal(m, m.T)
        if RDM_METHODS.get(method).kind == "dissimilarity":
            np.testing.assert_array_equal(np.diag(m), 0.0)
        if method in ("rbf", "laplacian"):
            np.testing.assert_array_equal(np.diag(m), 1.0)
        if method in ("correlation", "cosine"):
            assert m.min() >= 0.0 and m.max() <= 2.0
        if method in ("euclidean", "sqeuclidean"):
            assert m.min() >= 0.0


def test_near_duplicate_images_give_non_negative_distances():
    x = _features((6, 50), seed=5)
    x[3] = x[1] + 1e-9  # float cancellation in |a|^2 + |b|^2 - 2 a.b would go negative without the clamp
    for method in DISSIMILARITIES:
        assert compute_rdm(x, method=method, normalization="none").min() >= 0.0
        assert compute_condensed_rdm(x, method=method, normalization="none", dtype=np.float32).min() >= 0.0


# --- chunked == unchunked, condensed == square -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", DISSIMILARITIES + KERNELS)
def test_chunked_equals_unchunked(method, dtype):
    x = _features((23, 3, 2, 2), seed=6)
    full = compute_rdm(x, method=method, dtype=dtype)
    for chunk_size in (1, 7, len(x)):
        _assert_close(compute_rdm(x, method=method, dtype=dtype, chunk_size=chunk_size), full, dtype)
        if RDM_METHODS.get(method).kind == "dissimilarity":
            condensed = compute_condensed_rdm(x, method=method, dtype=dtype, chunk_size=chunk_size)
            _assert_close(condensed, ssd.squareform(full), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", DISSIMILARITIES)
def test_condensed_equals_squareform_of_square(method, dtype):
    x = _features((31, 12), seed=7)
    for chunk_size in (None, 1, 5):
        square = compute_rdm(x, method=method, dtype=dtype, chunk_size=chunk_size)
        condensed = compute_condensed_rdm(x, method=method, dtype=dtype, chunk_size=chunk_size)
        # Same blocks, same products: bit-identical, and in scipy's condensed order.
        np.testing.assert_array_equal(condensed, ssd.squareform(square))
        np.testing.assert_array_equal(squareform(condensed), square)


def test_squareform_and_condensed_index_match_scipy():
    n = 9
    v = np.arange(n * (n - 1) // 2, dtype=np.float64) + 1.0
    np.testing.assert_array_equal(squareform(v), ssd.squareform(v))
    np.testing.assert_array_equal(np.diag(squareform(v, diagonal=1.0)), 1.0)
    i, j = np.triu_indices(n, 1)
    np.testing.assert_array_equal(condensed_index(n, i, j), np.arange(len(v)))
    assert squareform(v.astype(np.float32)).dtype == np.float32


def test_condensed_rejects_kernels():
    with pytest.raises(UserInputError, match=r"method 'rbf' is a kernel; condensed RDMs need a dissimilarity"):
        compute_condensed_rdm(_features((5, 4)), method="rbf")


# --- normalisations vs explicit references -------------------------------------------------------------------------

def _torch_reference(x: np.ndarray, normalization: str, groups: int) -> np.ndarray:
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    if normalization == "none":
        return x.astype(np.float64)
    if normalization == "center":
        return x - x.mean(axis=0, keepdims=True)
    if normalization == "zscore":
        return StandardScaler().fit_transform(_flat(x)).reshape(x.shape)
    if normalization == "batch":
        return F.batch_norm(t, None, None, training=True, eps=1e-5).numpy()
    if normalization == "layer":
        return F.layer_norm(t, t.shape[1:], eps=1e-5).numpy()
    if normalization == "instance":
        return F.instance_norm(t, eps=1e-5).numpy()
    if normalization == "group":
        return F.group_norm(t, groups, eps=1e-5).numpy()
    raise AssertionError(normalization)


def test_every_registered_normalization_has_a_reference():
    assert set(NORMALIZATIONS.names()) == {"none", "center", "zscore", "batch", "layer", "instance", "group"}


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("normalization", ["none", "center", "zscore", "batch", "layer", "instance", "group"])
def test_normalization_matches_reference_on_feature_maps(normalization, groups):
    x = _features((7, 8, 3, 5), seed=8)
    x[:, 2] *= 10.0  # channels on different scales
    out = normalize_features(x, normalization=normalization, groups=groups)
    assert out.dtype == np.float64 and out.shape == x.shape
    np.testing.assert_allclose(out, _torch_reference(x, normalization, groups), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("normalization", ["none", "center", "zscore", "batch", "layer"])
def test_normalization_matches_reference_on_flat_features(normalization):
    x = _features((11, 13), seed=9)
    out = normalize_features(x, normalization=normalization)
    np.testing.assert_allclose(out, _torch_reference(x, normalization, 1), rtol=1e-10, atol=1e-10)


def test_zscore_leaves_constant_features_at_zero():
    x = _features((6, 5), seed=10)
    x[:, 2] = 3.0
    out = normalize_features(x, normalization="zscore")
    np.testing.assert_array_equal(out[:, 2], 0.0)
    np.testing.assert_allclose(out, StandardScaler().fit_transform(x), atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", DISSIMILARITIES)
@pytest.mark.parametrize("normalization", ["zscore", "batch", "layer", "instance", "group"])
def test_rdm_after_normalization_matches_pdist_of_reference(normalization, method, dtype):
    x = _features((12, 4, 3, 3), seed=11)
    reference = _flat(_torch_reference(x, normalization, 2))
    expected = ssd.squareform(ssd.pdist(reference, metric=PDIST_METRIC[method]))
    _assert_close(compute_rdm(x, method=method, normalization=normalization, dtype=dtype, groups=2), expected, dtype)


# --- kernels --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("normalization", ["none", "center"])
def test_linear_kernel_is_gram_matrix(normalization, dtype):
    x = _features((13, 2, 3, 3), seed=12)
    f = _flat(x) if normalization == "none" else _flat(x) - _flat(x).mean(axis=0)
    _assert_close(compute_rdm(x, method="linear", normalization=normalization, dtype=dtype), f @ f.T, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("normalization", ["none", "zscore"])
def test_rbf_kernel_matches_sklearn_with_median_bandwidth(normalization, dtype):
    x = _features((16, 10), seed=13)
    f = _flat(x) if normalization == "none" else StandardScaler().fit_transform(x)
    sigma2 = 0.5 * np.median(ssd.pdist(f, metric="sqeuclidean"))
    expected = rbf_kernel(f, gamma=1.0 / (2.0 * sigma2))
    for chunk_size in (None, 3):
        k = compute_rdm(x, method="rbf", normalization=normalization, dtype=dtype, chunk_size=chunk_size)
        _assert_close(k, expected, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_laplacian_kernel_matches_sklearn_default_gamma(dtype):
    x = _features((14, 3, 2, 2), seed=14)
    _assert_close(compute_rdm(x, method="laplacian", normalization="none", dtype=dtype),
                  laplacian_kernel(_flat(x)), dtype)
    centred = _flat(x) - _flat(x).mean(axis=0)
    _assert_close(compute_rdm(x, method="laplacian", dtype=dtype), laplacian_kernel(centred), dtype)


# --- inputs are never modified ------------------------------------------------------------------------------------

@pytest.mark.parametrize("normalization", ["none", "center", "zscore", "batch", "layer", "instance", "group"])
@pytest.mark.parametrize("method", DISSIMILARITIES + KERNELS)
def test_inputs_not_mutated(method, normalization):
    for dtype in (np.float64, np.float32):
        x = _features((8, 4, 2, 2), seed=15, dtype=dtype)
        before = x.copy()
        x.setflags(write=False)  # any in-place write would raise
        compute_rdm(x, method=method, normalization=normalization, dtype=dtype, chunk_size=3)
        if RDM_METHODS.get(method).kind == "dissimilarity":
            compute_condensed_rdm(x, method=method, normalization=normalization, dtype=dtype)
        normalize_features(x, normalization=normalization)
        np.testing.assert_array_equal(x, before)


def test_integer_and_bool_features_are_accepted():
    x = np.random.default_rng(16).integers(0, 5, size=(8, 12))
    x[:, 0] = [0, 1, 2, 3, 4, 0, 1, 2]  # no constant rows
    expected = ssd.squareform(ssd.pdist(x.astype(np.float64), metric="cosine"))
    _assert_close(compute_rdm(x, method="cosine", normalization="none"), expected, np.float64)


# --- bad inputs: one clear message each ----------------------------------------------------------------------------

def test_too_few_images():
    with pytest.raises(UserInputError, match=r"depth: need at least 3 images for an RDM comparison, got N = 2"):
        compute_rdm(np.ones((2, 5)) * [[1.0], [2.0]] + np.arange(5), name="depth")


def test_zero_features():
    with pytest.raises(UserInputError, match=r"normal: features have zero values per image \(shape \(5, 0\)\)"):
        compute_rdm(np.empty((5, 0)), name="normal")
    with pytest.raises(UserInputError, match=r"features have zero values per image \(shape \(4, 3, 0\)\)"):
        compute_condensed_rdm(np.empty((4, 3, 0)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_row_names_teacher_and_row(bad):
    x = _features((6, 2, 3), seed=17)
    x[4, 1, 2] = bad
    with pytest.raises(UserInputError, match=r"^edge_texture: image row 4 has NaN or infinite features"):
        compute_rdm(x, name="edge_texture")
    with pytest.raises(UserInputError, match=r"^edge_texture: image row 4 has NaN or infinite features"):
        compute_condensed_rdm(x, name="edge_texture")


def test_constant_row_names_teacher_and_row():
    x = _features((6, 7), seed=18)
    x[2] = 0.25
    with pytest.raises(UserInputError, match=r"^reshading: image row 2 has constant features \(zero variance\)"):
        compute_rdm(x, name="reshading", method="euclidean")


def test_row_constant_after_centring_is_reported():
    # Every raw row varies, but after subtracting the feature means (0, 5) row 2 is (-1, -1): zero variance.
    x = np.array([[1.0, 4.0], [-1.0, 6.0], [-1.0, 4.0], [1.0, 6.0]])
    with pytest.raises(UserInputError, match=r"^t: image row 2 has zero variance after normalisation"):
        compute_rdm(x, name="t")
    # ... and a row equal to the feature means becomes all zeros, which has no cosine.
    y = np.array([[0.0, 4.0], [2.0, 0.0], [1.0, 2.0]])
    with pytest.raises(UserInputError, match=r"^t: image row 2 has zero norm after normalisation"):
        compute_condensed_rdm(y, method="cosine", name="t")


def test_unknown_method_lists_available():
    expected = ", ".join(RDM_METHODS.names())
    assert set(RDM_METHODS.names()) == set(DISSIMILARITIES + KERNELS)
    with pytest.raises(UserInputError, match=rf"Unknown RDM method 'corelation'\. Did you mean 'correlation'.*"
                                             rf"Available: {expected}\."):
        compute_rdm(_features((5, 4)), method="corelation")
    with pytest.raises(UserInputError, match=r"Unknown RDM method 'pearson'.*Available: .*correlation"):
        compute_condensed_rdm(_features((5, 4)), method="pearson")


def test_unknown_normalization_lists_available():
    expected = ", ".join(NORMALIZATIONS.names())
    with pytest.raises(UserInputError, match=rf"Unknown normalization 'z-score'\..*Available: {expected}\."):
        compute_rdm(_features((5, 4)), normalization="z-score")
    with pytest.raises(UserInputError, match=r"Unknown normalization 'l2'"):
        normalize_features(_features((5, 4)), normalization="l2")


def test_group_norm_needs_divisible_channels():
    with pytest.raises(UserInputError, match=r"^dino: group norm with 3 groups needs C divisible by it, got C = 4\."):
        compute_rdm(_features((5, 4, 2, 2)), normalization="group", groups=3, name="dino")


@pytest.mark.parametrize("groups", [0, -2, 1.5, True])
def test_group_norm_needs_positive_integer_groups(groups):
    with pytest.raises(UserInputError, match=r"groups must be an integer >= 1, got"):
        compute_rdm(_features((5, 4, 2, 2)), normalization="group", groups=groups)


@pytest.mark.parametrize("normalization", ["instance", "group"])
def test_instance_and_group_norm_need_feature_maps(normalization):
    with pytest.raises(UserInputError, match=rf"^t: normalization '{normalization}' needs feature maps \(N, C, H, W\), "
                                             r"got shape \(5, 4\)"):
        compute_rdm(_features((5, 4)), normalization=normalization, name="t")


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "complex128", "not-a-dtype"])
def test_bad_output_dtype(dtype):
    with pytest.raises(UserInputError, match=r"dtype must be float32 or float64, got"):
        compute_rdm(_features((5, 4)), dtype=dtype)


@pytest.mark.parametrize("features", [np.array([["a", "b"], ["c", "d"], ["e", "f"]]),
                                      np.array([[1, "x"], [2, 3], [4, 5]], dtype=object),
                                      np.ones((4, 3), dtype=np.complex128) * np.arange(3)])
def test_bad_feature_dtype(features):
    with pytest.raises(UserInputError, match=r"^t: features must be numeric \(real\), got dtype"):
        compute_rdm(features, name="t")


def test_one_dimensional_features():
    with pytest.raises(UserInputError, match=r"features must have shape \(N, \.\.\.\) with N images, got shape \(5,\)"):
        compute_rdm(np.arange(5.0))


@pytest.mark.parametrize("chunk_size", [0, -3, 2.0])
def test_bad_chunk_size(chunk_size):
    with pytest.raises(UserInputError, match=r"chunk_size must be an integer >= 1, got"):
        compute_rdm(_features((6, 4)), chunk_size=chunk_size)
    with pytest.raises(UserInputError, match=r"chunk_size must be an integer >= 1, got"):
        compute_condensed_rdm(_features((6, 4)), chunk_size=chunk_size)


def test_rbf_with_mostly_identical_images():
    x = np.tile(np.arange(4.0), (7, 1))
    x[0] = [3.0, 1.0, 2.0, 0.0]
    with pytest.raises(UserInputError, match=r"rbf kernel: the median squared distance between images is 0"):
        compute_rdm(x, method="rbf", normalization="none")


def test_memory_mapped_teachers_stay_intact_after_their_pages_are_released(tmp_path):
    """similarity_matrix drops each memory-mapped teacher's pages once its RDM is done; the data must not change."""
    from rsa_toolkit.rsa.similarity import similarity_matrix

    rng = np.random.default_rng(40)
    arrays = {f"t{i}": rng.normal(size=(30, 12)).astype(np.float32) for i in range(3)}
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a)
    mapped = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in arrays}
    first = similarity_matrix(mapped).matrix
    for name, a in arrays.items():
        np.testing.assert_array_equal(mapped[name], a)
    np.testing.assert_array_equal(similarity_matrix(mapped).matrix, first)
    np.testing.assert_array_equal(similarity_matrix(arrays).matrix, first)
