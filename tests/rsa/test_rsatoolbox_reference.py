"""rsa-toolkit vs rsatoolbox 0.3.2, the reference implementation (DESIGN.md section 4), and the interop round trip.

What rsatoolbox 0.3.2 computes (read from ``rsatoolbox/rdm/calc.py`` and ``rsatoolbox/rdm/compare.py``):

* ``calc_rdm(..., method='correlation')`` subtracts each *pattern's* (image's) mean over channels, scales rows to unit
  norm and returns 1 - Z Z^T: 1 - Pearson between images, **without** subtracting each feature's mean over images.
  The RSA recipe centres features first, so we feed rsatoolbox centred features (or use normalization='none').
* ``calc_rdm(..., method='euclidean')`` is the *squared* euclidean distance divided by the number of channels
  (its ``dissimilarity_measure`` says 'squared euclidean'). It has no cosine RDM.
* ``compare(..., method='spearman')`` ranks each dissimilarity vector with ``scipy.stats.rankdata`` (average ranks
  for ties), centres the ranks and takes their cosine: Pearson of average ranks, i.e. the classical tie-corrected
  Spearman rho, the same quantity as our 'spearman'. ``'rho-a'`` instead divides the centred-rank inner product by
  (n^3 - n) / 12, the rank variance *without* ties (Nili et al. 2014's rho-a); it equals Spearman when there are no
  ties and is smaller in magnitude with ties. ``'corr'`` = Pearson, ``'cosine'`` = cosine, ``'kendall'``/``'tau-b'`` =
  scipy's tau-b, ``'tau-a'`` = (concordant - discordant) / (n(n-1)/2).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.rdm import RDMs, calc_rdm, compare  # noqa: E402

from rsa_toolkit.rsa.compare import compare_rdms  # noqa: E402
from rsa_toolkit.errors import UserInputError  # noqa: E402
from rsa_toolkit.rsa.interop import from_rsatoolbox, to_rsatoolbox  # noqa: E402
from rsa_toolkit.rsa.rdm import compute_condensed_rdm, compute_rdm  # noqa: E402
from rsa_toolkit.rsa.similarity import similarity_matrix  # noqa: E402

T, N, D = 6, 40, 30
NAMES = [f"teacher_{i}" for i in range(T)]


def _features(dtype: type = np.float64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(N, D))
    offsets = rng.normal(size=(1, D)) * 3.0  # non-zero feature means: centring matters
    return [(shared + rng.uniform(0.2, 2.0) * rng.normal(size=(N, D)) + offsets).astype(dtype) for _ in range(T)]


def _rsatoolbox_rdms(features: list[np.ndarray], method: str, *, centre: bool) -> RDMs:
    datasets = [Dataset(np.asarray(x - x.mean(axis=0, keepdims=True) if centre else x, dtype=np.float64))
                for x in features]
    return calc_rdm(datasets, method=method)


TOL = {np.float64: 1e-10, np.float32: 1e-6}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correlation_rdms_equal_rsatoolbox_on_centred_features(dtype):
    features = _features(dtype)
    ours = np.stack([compute_condensed_rdm(x, dtype=dtype) for x in features])
    theirs = _rsatoolbox_rdms(features, "correlation", centre=True).get_vectors()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL[dtype])
    assert np.abs(ours - theirs).max() < 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_uncentred_correlation_is_rsatoolbox_default(dtype):
    features = _features(dtype)
    ours = np.stack([compute_condensed_rdm(x, normalization="none", dtype=dtype) for x in features])
    theirs = _rsatoolbox_rdms(features, "correlation", centre=False).get_vectors()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL[dtype])
    # ... and the RSA recipe's centring is a real difference, not a rounding one.
    centred = np.stack([compute_condensed_rdm(x) for x in features])
    assert np.abs(centred - theirs).max() > 1e-2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("normalization", ["none", "center"])
def test_squared_euclidean_over_channels_equals_rsatoolbox_euclidean(normalization, dtype):
    features = _features(dtype, seed=1)
    ours = np.stack([compute_condensed_rdm(x, method="sqeuclidean", normalization=normalization, dtype=dtype) / D
                     for x in features])
    theirs = _rsatoolbox_rdms(features, "euclidean", centre=normalization == "center")
    assert theirs.dissimilarity_measure == "squared euclidean"
    scale = np.abs(theirs.get_vectors()).max()
    np.testing.assert_allclose(ours, theirs.get_vectors(), rtol=0, atol=TOL[dtype] * scale)
    euclid = np.stack([compute_condensed_rdm(x, method="euclidean", normalization=normalization, dtype=dtype)
                       for x in features])
    np.testing.assert_allclose(euclid, np.sqrt(theirs.get_vectors() * D), rtol=0, atol=TOL[dtype] * scale)


def test_rsatoolbox_has_no_cosine_rdm():
    # Documented absence: nothing to compare our cosine RDM with (test_rdm.py checks it against scipy's pdist).
    with pytest.raises(NotImplementedError):
        calc_rdm(Dataset(_features()[0]), method="cosine")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spearman_similarity_equals_rsatoolbox_spearman(dtype):
    features = _features(dtype, seed=2)
    ours = similarity_matrix(features, names=NAMES, dtype=dtype)
    rdms = _rsatoolbox_rdms(features, "correlation", centre=True)
    np.testing.assert_allclose(ours.matrix, compare(rdms, rdms, method="spearman"), rtol=0, atol=1e-6)
    # On exactly the same RDM vectors, agreement is to rounding.
    same = to_rsatoolbox(ours.rdms, names=NAMES)
    np.testing.assert_allclose(compare_rdms(ours.rdms), compare(same, same, method="spearman"), rtol=0, atol=1e-12)


def test_rsatoolbox_spearman_is_tie_corrected_and_rho_a_is_not():
    rng = np.random.default_rng(3)
    stack = np.round(rng.uniform(size=(4, 45)), 1)  # many ties
    rdms = RDMs(stack)
    ours = compare_rdms(stack, method="spearman")
    np.testing.assert_allclose(ours, compare(rdms, rdms, method="spearman"), rtol=0, atol=1e-12)
    rho_a = compare(rdms, rdms, method="rho-a")
    off = ~np.eye(4, dtype=bool)
    assert np.all(np.abs(rho_a[off]) < np.abs(ours[off]))  # no tie correction in rho-a's denominator
    # Without ties the two definitions coincide.
    distinct = rng.uniform(size=(4, 45))
    no_ties = RDMs(distinct)
    np.testing.assert_allclose(compare_rdms(distinct), compare(no_ties, no_ties, method="rho-a"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ours, theirs", [("pearson", "corr"), ("cosine", "cosine"), ("kendall_tau_b", "tau-b"),
                                          ("kendall_tau_a", "tau-a"), ("spearman", "spearman")])
@pytest.mark.parametrize("ties", [False, True])
def test_other_comparisons_equal_rsatoolbox(ours, theirs, ties):
    stack = np.stack([compute_condensed_rdm(x) for x in _features(seed=4)[:4]])
    if ties:
        stack = np.round(stack, 1)
    rdms = RDMs(stack)
    sim, reference = compare_rdms(stack, method=ours), compare(rdms, rdms, method=theirs)
    off = ~np.eye(len(stack), dtype=bool)
    # Off the diagonal the numbers agree. On it, our matrices have an exact unit diagonal by convention, while
    # rsatoolbox's tau-a of a tied RDM with itself is (n0 - tied pairs) / n0 < 1 (tied pairs are not concordant).
    np.testing.assert_allclose(sim[off], reference[off], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.diag(sim), 1.0)
    if theirs != "tau-a" or not ties:
        np.testing.assert_allclose(np.diag(reference), 1.0, rtol=0, atol=1e-12)


# --- interop ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_condensed_is_exact(dtype):
    stack = np.stack([compute_condensed_rdm(x, dtype=dtype) for x in _features(seed=5)])
    obj = to_rsatoolbox(stack, names=NAMES, method="correlation")
    assert isinstance(obj, RDMs)
    assert obj.n_rdm == T and obj.n_cond == N
    assert obj.dissimilarity_measure == "correlation"
    assert list(obj.rdm_descriptors["name"]) == NAMES
    back, names = from_rsatoolbox(obj)
    assert names == NAMES
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, stack)
    # no aliasing either way
    back[0, 0] = -1.0
    assert stack[0, 0] != -1.0 and obj.get_vectors()[0, 0] != -1.0


def test_round_trip_square_gives_the_condensed_upper_triangle():
    features = _features(seed=6)
    squares = np.stack([compute_rdm(x, method="euclidean") for x in features])
    obj = to_rsatoolbox(squares, names=NAMES, method="euclidean")
    np.testing.assert_array_equal(obj.get_matrices(), squares)
    back, names = from_rsatoolbox(obj)
    np.testing.assert_array_equal(back, np.stack([compute_condensed_rdm(x, method="euclidean") for x in features]))
    assert names == NAMES and obj.dissimilarity_measure == "euclidean"


def test_from_rsatoolbox_of_calc_rdm_and_default_names():
    features = _features(seed=7)
    obj = _rsatoolbox_rdms(features, "correlation", centre=True)
    vectors, names = from_rsatoolbox(obj)
    assert names == [str(i) for i in range(T)]
    np.testing.assert_array_equal(vectors, obj.get_vectors())
    np.testing.assert_allclose(vectors, np.stack([compute_condensed_rdm(x) for x in features]), atol=1e-10)
    unnamed = to_rsatoolbox(vectors)
    assert list(unnamed.rdm_descriptors["name"]) == names


def test_interop_errors(monkeypatch):
    stack = np.stack([compute_condensed_rdm(x) for x in _features(seed=8)])
    with pytest.raises(UserInputError, match=r"names has 2 entries but there are 6 RDMs"):
        to_rsatoolbox(stack, names=["a", "b"])
    with pytest.raises(UserInputError, match=r"a condensed RDM has length N\(N-1\)/2, got 7"):
        to_rsatoolbox(np.ones((2, 7)))
    with pytest.raises(UserInputError, match=r"expected an rsatoolbox.rdm.RDMs object, got ndarray"):
        from_rsatoolbox(stack)
    for module in [m for m in sys.modules if m == "rsatoolbox" or m.startswith("rsatoolbox.")]:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import rsatoolbox.rdm` fail
    with pytest.raises(UserInputError, match=r"^rsatoolbox is not installed; pip install rsatoolbox$"):
        to_rsatoolbox(stack)
    with pytest.raises(UserInputError, match=r"^rsatoolbox is not installed; pip install rsatoolbox$"):
        from_rsatoolbox(None)
