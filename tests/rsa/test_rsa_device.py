"""The RSA math on a torch device (issue 8, part 4), run here with torch on the CPU: RDMs, ranks and the Gram matrix
equal the numpy path and scipy references; methods without a torch path fall back to numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import rankdata, spearmanr

from rsa_toolkit.rsa.average_ranks import doubled_ranks, doubled_ranks_and_spread
from rsa_toolkit.rsa.compare import COMPARISONS, compare_rdms
from rsa_toolkit.devices import resolve_device
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.rdm import RDM_METHODS, compute_condensed_rdm, compute_rdm
from rsa_toolkit.rsa.similarity import similarity_matrix
from rsa_toolkit.rsa.torch_math import doubled_ranks_and_spread as torch_doubled_ranks_and_spread

CPU = "cpu"


def _features(n: int = 30, d: int = 8, seed: int = 0, integer: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, size=(n, d)).astype(np.float64) if integer else rng.normal(size=(n, d))


@pytest.mark.parametrize("method", RDM_METHODS.names())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rdm_on_device_equals_numpy(method: str, dtype: type) -> None:
    x = _features()
    expected = compute_rdm(x, method=method, dtype=dtype)
    got = compute_rdm(x, method=method, dtype=dtype, device=CPU, chunk_size=7)  # several blocks
    assert isinstance(got, np.ndarray) and got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 if dtype == np.float64 else 2e-5)
    np.testing.assert_array_equal(got, got.T)
    if RDM_METHODS.get(method).kind == "dissimilarity":
        assert (np.diag(got) == 0).all() and (got >= 0).all()


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_condensed_rdm_on_device_matches_pdist(method: str) -> None:
    x = _features(seed=1)
    centred = x - x.mean(axis=0)
    reference = pdist(centred, "sqeuclidean" if method == "sqeuclidean" else method)
    got = compute_condensed_rdm(x, method=method, device=CPU, chunk_size=5)
    np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-12)


def test_device_ranks_equal_numpy_and_scipy_with_ties() -> None:
    rng = np.random.default_rng(2)
    for values in (rng.integers(0, 5, 200).astype(np.float64), rng.normal(size=101), np.zeros(7),
                   pdist(_features(integer=True), "sqeuclidean"), np.array([2.0, 1.0, 2.0, 2.0]).astype(np.float32)):
        got, mean, spread = torch_doubled_ranks_and_spread(values, torch.device(CPU))
        np.testing.assert_array_equal(got, 2 * rankdata(values))
        np.testing.assert_array_equal(got, doubled_ranks(values))
        assert got.dtype == doubled_ranks(values).dtype == np.int32
        # the mean and spread from the tie groups equal a pass over the ranks, and numpy's tie-group figures
        assert mean == len(values) + 1 and got.mean() == mean
        assert spread == pytest.approx(float(np.sum((got.astype(np.float64) - mean) ** 2)), rel=1e-12, abs=0)
        assert spread == pytest.approx(doubled_ranks_and_spread(values)[2], rel=1e-12, abs=0)


@pytest.mark.parametrize("method", COMPARISONS.names())
def test_comparisons_on_device_equal_numpy(method: str) -> None:
    """Spearman, Pearson and cosine run their Gram product (and Spearman its ranks) on the device; Kendall and CKA
    fall back to numpy: all agree."""
    rdms = np.stack([compute_condensed_rdm(_features(seed=s, integer=True), method="sqeuclidean")
                     for s in range(4)])  # integer distances: many ties
    expected = compare_rdms(rdms, method=method)
    np.testing.assert_allclose(compare_rdms(rdms, method=method, device=CPU), expected, rtol=0, atol=1e-12)


def test_spearman_on_device_matches_scipy_brute_force() -> None:
    rdms = [compute_condensed_rdm(_features(seed=s, integer=True), method="euclidean", device=CPU)
            for s in range(3)]
    got = compare_rdms(np.stack(rdms), device=CPU)
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(got[i, j], spearmanr(rdms[i], rdms[j]).statistic, rtol=0, atol=1e-12)


@pytest.mark.parametrize("comparison", ["spearman", "pearson", "cka"])
def test_similarity_matrix_on_device_equals_numpy(tmp_path, comparison: str) -> None:
    features = {f"t{s}": _features(seed=s) + 0.5 * _features(seed=9) for s in range(4)}
    expected = similarity_matrix(features, comparison=comparison)
    got = similarity_matrix(features, comparison=comparison, device=CPU)
    np.testing.assert_allclose(got.matrix, expected.matrix, rtol=0, atol=1e-12)
    if comparison != "cka":
        out_of_core = similarity_matrix(features, comparison=comparison, device=CPU, out_of_core=True,
                                        scratch=tmp_path)
        np.testing.assert_array_equal(out_of_core.matrix, got.matrix)


@pytest.mark.parametrize(("device", "message"), [
    ("mps", r"device 'mps': the RSA math runs on 'cpu' or 'cuda' devices \(it needs float64\)"),
    ("gpu0", r"device 'gpu0': .*; expected None \(numpy\), 'cpu', 'cuda' or 'cuda:N'\."),
    pytest.param("cuda", r"device 'cuda': no CUDA device is available here; use device None \(numpy\)\.",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")),
])
def test_bad_devices(device: str, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        resolve_device(device, rsa=True)
    with pytest.raises(UserInputError, match=message):
        similarity_matrix([_features(), _features(seed=1)], device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cli_cuda_device_steers_the_rsa_math(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    """--device cuda reaches the RSA math (here: refused, one line, exit 2); --device cpu stays numpy."""
    from rsa_toolkit.cli.main import main

    np.save(tmp_path / "a.npy", _features())
    assert main(["rdm", "--features", str(tmp_path / "a.npy"), "--out", str(tmp_path / "a_rdm.npy"),
                 "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("rsa-toolkit: error: --device 'cuda': no CUDA device is available")
    assert main(["rdm", "--features", str(tmp_path / "a.npy"), "--out", str(tmp_path / "a_rdm.npy"),
                 "--device", "cpu", "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a_rdm.npy"), compute_rdm(_features()))
