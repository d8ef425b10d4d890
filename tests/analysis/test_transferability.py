"""Transferability measures: each estimator against an independent computation in float64 (brute-force evidence
maximisation, loops over classes and index tuples, scipy / scikit-learn / torch references), invariances, a
noisy-copy-beats-random sanity check for every registered measure, the registry interface and the input errors."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.spatial.distance import pdist, squareform
from scipy.stats import multivariate_normal, spearmanr

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.transferability import (
    TRANSFERABILITY_MEASURES, cka_debiased, cka_linear, cka_rbf, h_score, ledoit_wolf_shrinkage, leep, list_measures,
    logme, majority_pixel_label, nce, parc, pooled_pixel_target, rank_sources, transferability_score, transrate)

RTOL = 1e-8


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _classification(n: int = 40, d: int = 6, c: int = 3, signal: float = 1.0, seed: int = 0):
    rng = _rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    x = rng.normal(size=(n, d))
    x[:, :c] += signal * np.eye(c)[y]
    return x, y


# ---------------------------------------------------------------------------------------------------- LogME


def _brute_force_log_evidence(f: np.ndarray, y: np.ndarray) -> float:
    """max over (alpha, beta) of log N(y | 0, I / beta + F F^T / alpha), the marginal of Bayesian linear regression,
    found by scipy.optimize (Nelder-Mead, then a polish) in log-parameters."""
    n = len(y)

    def neg(p: np.ndarray) -> float:
        alpha, beta = np.exp(p)
        cov = np.eye(n) / beta + f @ f.T / alpha
        return -multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(y)

    best = minimize(neg, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-14,
                                                                       "maxiter": 20000})
    best = minimize(neg, best.x, method="BFGS", options={"gtol": 1e-11})
    return -best.fun


@pytest.mark.parametrize(("n", "d"), [(12, 3), (9, 5), (6, 9)])  # (6, 9): D > N
def test_logme_matches_brute_force_evidence_regression(n: int, d: int) -> None:
    rng = _rng(1)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=(d, 2)) + 0.7 * rng.normal(size=(n, 2))
    expected = np.mean([_brute_force_log_evidence(f, y[:, k]) for k in range(2)]) / n
    assert logme(f, y) == pytest.approx(expected, rel=RTOL)


def test_logme_classification_is_mean_over_one_hot_columns() -> None:
    x, y = _classification(n=12, d=3, c=3, seed=2)
    onehot = np.eye(3)[y]
    expected = np.mean([_brute_force_log_evidence(x, onehot[:, k]) for k in range(3)]) / len(y)
    assert logme(x, y) == pytest.approx(expected, rel=RTOL)
    assert logme(x, y + 7) == logme(x, y)  # label values do not matter, only the partition


# ---------------------------------------------------------------------------------------------------- H-score


def _h_score_loop(x: np.ndarray, y: np.ndarray, *, shrinkage: float | None = None) -> float:
    g = np.empty_like(x)
    for c in np.unique(y):
        g[y == c] = x[y == c].mean(axis=0)
    cov_f = np.cov(x, rowvar=False, ddof=0)
    cov_g = np.cov(g, rowvar=False, ddof=0)
    if shrinkage is None:
        return float(np.trace(np.linalg.pinv(cov_f) @ cov_g))
    d = x.shape[1]
    shrunk = (1 - shrinkage) * cov_f + shrinkage * np.trace(cov_f) / d * np.eye(d)
    return float(np.trace(np.linalg.inv(shrunk) @ ((1 - shrinkage) * cov_g)))


def test_h_score_matches_loop() -> None:
    x, y = _classification(n=30, d=5, c=4, seed=3)
    assert h_score(x, y) == pytest.approx(_h_score_loop(x, y), rel=RTOL)
    assert h_score(x, y, shrinkage=0.3) == pytest.approx(_h_score_loop(x, y, shrinkage=0.3), rel=RTOL)


def test_h_score_ledoit_wolf_matches_scikit_learn() -> None:
    from sklearn.covariance import LedoitWolf

    x, y = _classification(n=25, d=8, c=3, seed=4)
    lw = LedoitWolf().fit(x)
    assert ledoit_wolf_shrinkage(x - x.mean(axis=0)) == pytest.approx(lw.shrinkage_, rel=RTOL)
    expected = _h_score_loop(x, y, shrinkage=lw.shrinkage_)
    assert transferability_score(x, y, measure="h_score_shrinkage") == pytest.approx(expected, rel=RTOL)


# ---------------------------------------------------------------------------------------------------- NCE, LEEP


def _joint_loop(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    joint = np.zeros((y.max() + 1, probs.shape[1]))
    for i in range(len(y)):
        for z in range(probs.shape[1]):
            joint[y[i], z] += probs[i, z] / len(y)
    return joint


def _source_probs(n: int, c_s: int, seed: int) -> np.ndarray:
    logits = _rng(seed).normal(size=(n, c_s)) * 2
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def test_leep_matches_loop() -> None:
    x, y = _classification(n=30, d=4, c=3, seed=5)
    probs = _source_probs(30, 5, seed=6)
    joint = _joint_loop(y, probs)
    total = 0.0
    for i in range(len(y)):
        total += np.log(sum(joint[y[i], z] / joint[:, z].sum() * probs[i, z] for z in range(5)))
    assert leep(x, y, source_probs=probs) == pytest.approx(total / len(y), rel=RTOL)


def test_nce_matches_loop() -> None:
    x, y = _classification(n=30, d=4, c=3, seed=7)
    probs = _source_probs(30, 6, seed=8)
    hard = np.eye(6)[np.argmax(probs, axis=1)]
    joint = _joint_loop(y, hard)
    expected = 0.0
    for t in range(joint.shape[0]):
        for z in range(joint.shape[1]):
            if joint[t, z] > 0:
                expected += joint[t, z] * np.log(joint[t, z] / joint[:, z].sum())
    assert nce(x, y, source_probs=probs) == pytest.approx(expected, rel=RTOL)
    assert nce(x, y, source_probs=np.eye(3)[y]) == pytest.approx(0.0, abs=1e-15)  # source labels = target labels


def test_clustered_source_labels_are_seeded() -> None:
    x, y = _classification(n=40, d=5, c=3, seed=9)
    assert leep(x, y, seed=3) == leep(x, y, seed=3)
    assert nce(x, y, n_clusters=4, seed=1) == nce(x, y, n_clusters=4, seed=1)


# ---------------------------------------------------------------------------------------------------- PARC


def _label_rdm(y: np.ndarray, c: int) -> np.ndarray:
    # np.corrcoef's rounding noise (~1e-16) would break the label RDM's ties; round it away
    return np.round(1 - np.corrcoef(np.eye(c)[y]), 12)


def test_parc_matches_spearman_on_explicit_rdms() -> None:
    x, y = _classification(n=20, d=6, c=3, seed=10)
    iu = np.triu_indices(20, k=1)
    expected = spearmanr((1 - np.corrcoef(x))[iu], _label_rdm(y, 3)[iu]).statistic
    assert parc(x, y) == pytest.approx(expected, rel=RTOL)  # D = 6 <= 32: no PCA
    t = _rng(11).normal(size=(20, 4))
    expected = spearmanr((1 - np.corrcoef(x))[iu], (1 - np.corrcoef(t))[iu]).statistic
    assert parc(x, t) == pytest.approx(expected, rel=RTOL)


def test_parc_pca_matches_scikit_learn_scores_with_sign_rule() -> None:
    from sklearn.decomposition import PCA

    x, y = _classification(n=20, d=12, c=3, seed=12)
    scores = PCA(n_components=4, svd_solver="full").fit_transform(x)
    scores *= np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(4)])
    iu = np.triu_indices(20, k=1)
    expected = spearmanr((1 - np.corrcoef(scores))[iu], _label_rdm(y, 3)[iu]).statistic
    assert parc(x, y, n_components=4) == pytest.approx(expected, rel=RTOL)


# ---------------------------------------------------------------------------------------------------- TransRate


@pytest.mark.parametrize("formula", ["code", "mcr2"])
def test_transrate_matches_slogdet_loop(formula: str) -> None:
    x, y = _classification(n=30, d=5, c=3, seed=13)
    eps = 1e-2
    z = x - x.mean(axis=0)

    def rate(m: np.ndarray) -> float:
        n, d = m.shape
        k = 1 / (n * eps) if formula == "code" else d / (n * eps ** 2)
        sign, logdet = np.linalg.slogdet(np.eye(d) + k * m.T @ m)
        assert sign > 0
        return 0.5 * logdet

    classes = np.unique(y)
    if formula == "code":
        conditional = sum(rate(z[y == c]) for c in classes) / len(classes)
    else:
        conditional = sum(np.mean(y == c) * rate(z[y == c]) for c in classes)
    assert transrate(x, y, eps=eps, formula=formula) == pytest.approx(rate(z) - conditional, rel=RTOL)


# ---------------------------------------------------------------------------------------------------- CKA


def _centring(n: int) -> np.ndarray:
    return np.eye(n) - np.ones((n, n)) / n


def _biased_hsic_loop(k: np.ndarray, l_: np.ndarray) -> float:
    """Biased HSIC (Gretton et al. 2005) with the explicit centring matrix: tr(K H L H) / (n - 1)^2."""
    h = _centring(len(k))
    return float(np.trace(k @ h @ l_ @ h)) / (len(k) - 1) ** 2


@pytest.mark.parametrize(("n", "d1", "d2"), [(15, 4, 3), (6, 10, 12)])  # feature-space and Gram-space paths
def test_linear_cka_matches_definition_and_hsic(n: int, d1: int, d2: int) -> None:
    rng = _rng(14)
    x, y = rng.normal(size=(n, d1)), rng.normal(size=(n, d2))
    y[:, 0] += x[:, 0]
    xc, yc = x - x.mean(0), y - y.mean(0)
    definition = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    k, l_ = x @ x.T, y @ y.T
    by_hsic = _biased_hsic_loop(k, l_) / np.sqrt(_biased_hsic_loop(k, k) * _biased_hsic_loop(l_, l_))
    assert cka_linear(x, y) == pytest.approx(definition, rel=RTOL)
    assert cka_linear(x, y) == pytest.approx(by_hsic, rel=RTOL)


def test_rbf_cka_matches_explicit_kernels() -> None:
    rng = _rng(15)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 3))
    y[:, 0] += x[:, 0]

    def kernel(a: np.ndarray) -> np.ndarray:
        d2 = pdist(a, "sqeuclidean")
        return squareform(np.exp(-d2 / (2 * 0.5 * np.median(d2))), checks=False) + np.eye(len(a))

    k, l_ = kernel(x), kernel(y)
    expected = _biased_hsic_loop(k, l_) / np.sqrt(_biased_hsic_loop(k, k) * _biased_hsic_loop(l_, l_))
    assert cka_rbf(x, y) == pytest.approx(expected, rel=RTOL)


def _unbiased_hsic_loop(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012): (n)_2^-1 sum k_ij l_ij + (n)_4^-1 sum k_ij l_qr - 2 (n)_3^-1 sum k_ij l_iq over
    distinct indices."""
    n = len(k)
    a = np.mean([k[i, j] * l_[i, j] for i, j in itertools.permutations(range(n), 2)])
    b = np.mean([k[i, j] * l_[q, r] for i, j, q, r in itertools.permutations(range(n), 4)])
    c = np.mean([k[i, j] * l_[i, q] for i, j, q in itertools.permutations(range(n), 3)])
    return float(a + b - 2 * c)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_debiased_cka_matches_distinct_index_loop(kernel: str) -> None:
    rng = _rng(16)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    y[:, 0] += x[:, 0]
    if kernel == "linear":
        k, l_ = x @ x.T, y @ y.T
    else:
        def rbf(a: np.ndarray) -> np.ndarray:
            d2 = squareform(pdist(a, "sqeuclidean"))
            return np.exp(-d2 / (2 * 0.5 * np.median(pdist(a, "sqeuclidean"))))
        k, l_ = rbf(x), rbf(y)
    expected = _unbiased_hsic_loop(k, l_) / np.sqrt(_unbiased_hsic_loop(k, k) * _unbiased_hsic_loop(l_, l_))
    assert cka_debiased(x, y, kernel=kernel) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("measure", ["cka_linear", "cka_rbf", "cka_debiased"])
def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling(measure: str) -> None:
    rng = _rng(17)
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 4))
    y[:, :2] += x[:, :2]
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    base = transferability_score(x, y, measure=measure)
    assert transferability_score(3.7 * x @ q, y, measure=measure) == pytest.approx(base, rel=1e-10)
    assert transferability_score(x, 0.2 * y, measure=measure) == pytest.approx(base, rel=1e-10)
    assert transferability_score(y, x, measure=measure) == pytest.approx(base, rel=1e-10)  # symmetric


# ---------------------------------------------------------------------------------------------------- all measures


def _target_for(measure: str, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    return y if "classification" in TRANSFERABILITY_MEASURES.get(measure).target_kinds else t


@pytest.mark.parametrize("measure", list_measures())
def test_permutation_invariance(measure: str) -> None:
    x, y = _classification(n=24, d=5, c=3, seed=18)
    t = x[:, :3] + _rng(19).normal(size=(24, 3))
    target = _target_for(measure, y, t)
    probs = _source_probs(24, 4, seed=20)
    opts = {"source_probs": probs} if measure in ("leep", "nce") else {}
    perm = _rng(21).permutation(24)
    base = transferability_score(x, target, measure=measure, **opts)
    if opts:
        opts = {"source_probs": probs[perm]}
    assert transferability_score(x[perm], target[perm], measure=measure, **opts) == pytest.approx(base, rel=1e-9)


@pytest.mark.parametrize("measure", list_measures())
def test_noisy_copy_of_target_beats_random_features(measure: str) -> None:
    rng = _rng(22)
    n, c = 60, 3
    y = np.arange(n) % c
    t = rng.normal(size=(n, 6))
    if "classification" in TRANSFERABILITY_MEASURES.get(measure).target_kinds:
        target, copy = y, np.eye(c)[y] @ rng.normal(size=(c, 6)) * 3
    else:
        target, copy = t, t.copy()
    copy = copy + 0.5 * rng.normal(size=copy.shape)
    random = rng.normal(size=copy.shape)
    ranking = rank_sources({"random": random, "copy": copy}, target, measure=measure)
    assert [name for name, _ in ranking] == ["copy", "random"], ranking


def test_inputs_not_mutated_and_deterministic() -> None:
    x, y = _classification(n=20, d=4, c=2, seed=23)
    xs, ys = x.copy(), y.copy()
    for measure in list_measures(target_kind="classification"):
        assert transferability_score(x, y, measure=measure) == transferability_score(x, y, measure=measure)
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(y, ys)


@pytest.mark.parametrize("measure", list_measures())
def test_float32_input_is_computed_in_float64(measure: str) -> None:
    x, y = _classification(n=24, d=5, c=3, seed=30)
    x32 = x.astype(np.float32)
    t32 = (x[:, :3] + _rng(31).normal(size=(24, 3))).astype(np.float32)
    target32 = _target_for(measure, y, t32)
    target64 = target32 if target32.dtype != np.float32 else target32.astype(np.float64)
    assert transferability_score(x32, target32, measure=measure) == transferability_score(
        x32.astype(np.float64), target64, measure=measure)


def test_features_are_flattened() -> None:
    x, y = _classification(n=20, d=6, c=2, seed=24)
    assert logme(x.reshape(20, 2, 3), y) == logme(x, y)


def test_rank_sources_orders_and_passes_per_source_options() -> None:
    x, y = _classification(n=30, d=4, c=3, seed=25)
    good, bad = np.eye(3)[y], _source_probs(30, 3, seed=26)
    ranking = rank_sources({"a": x, "b": x}, y, measure="leep",
                           per_source_options={"a": {"source_probs": bad}, "b": {"source_probs": good}})
    assert [name for name, _ in ranking] == ["b", "a"]
    assert ranking[0][1] == pytest.approx(0.0, abs=1e-15)
    ties = rank_sources({"z": x, "a": x}, y, measure="h_score")
    assert [name for name, _ in ties] == ["z", "a"]  # ties keep the input order


# ---------------------------------------------------------------------------------------------------- pixel targets


def test_pooled_pixel_target_matches_torch_adaptive_pooling() -> None:
    torch = pytest.importorskip("torch")
    maps = _rng(27).normal(size=(3, 10, 7, 2))
    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(maps).permute(0, 3, 1, 2), (4, 3))
    expected = pooled.permute(0, 2, 3, 1).reshape(3, -1).numpy()
    np.testing.assert_allclose(pooled_pixel_target(maps, grid=(4, 3)), expected, rtol=1e-12)


def test_pooled_pixel_target_ignores_nan_pixels() -> None:
    maps = np.arange(16, dtype=float).reshape(1, 4, 4)
    maps[0, 0, 0] = np.nan
    out = pooled_pixel_target(maps, grid=(2, 2))
    np.testing.assert_allclose(out, [[np.mean([1, 4, 5]), np.mean([2, 3, 6, 7]), np.mean([8, 9, 12, 13]),
                                      np.mean([10, 11, 14, 15])]])


def test_majority_pixel_label() -> None:
    maps = np.array([[[1, 1], [2, 0]], [[3, 3], [2, 2]], [[255, 255], [255, 4]]])
    np.testing.assert_array_equal(majority_pixel_label(maps), [1, 2, 255])  # tie 2 vs 3 -> smaller
    np.testing.assert_array_equal(majority_pixel_label(maps, ignore_index=255), [1, 2, 4])


# ---------------------------------------------------------------------------------------------------- errors


def test_error_messages() -> None:
    x, y = _classification(n=20, d=4, c=2, seed=28)
    t = _rng(29).normal(size=(20, 3))
    with pytest.raises(UserInputError, match=r"Unknown transferability measure 'logm'\. Did you mean 'logme'"):
        transferability_score(x, y, measure="logm")
    with pytest.raises(UserInputError, match=r"h_score accepts classification targets \(class labels of shape "
                                             r"\(N,\) with integer values\); got a regression target \(inferred"):
        h_score(x, t)
    with pytest.raises(UserInputError, match=r"cka_linear accepts features targets .* got a classification target"):
        cka_linear(x, y)
    with pytest.raises(UserInputError, match=r"logme: target must have one row per image, N = 20 .* got shape "
                                             r"\(19,\)"):
        logme(x, y[:19])
    with pytest.raises(UserInputError, match=r"'leep' got unknown option\(s\) 'eps'; valid options: target_kind, "
                                             r"source_probs, n_clusters, seed"):
        transferability_score(x, y, measure="leep", eps=1.0)
    with pytest.raises(UserInputError, match=r"leep: source_probs rows must be probabilities .* apply a softmax"):
        leep(x, y, source_probs=np.ones((20, 3)))
    with pytest.raises(UserInputError, match=r"nce: n_clusters must be an integer in \[2, 20\], got 50"):
        nce(x, y, n_clusters=50)
    with pytest.raises(UserInputError, match=r"parc: a 1 - Pearson RDM of the target needs at least 2 values"):
        parc(x, t[:, 0])
    with pytest.raises(UserInputError, match=r"class labels need at least 2 distinct classes, got only \[1\]"):
        transrate(x, np.ones(20, dtype=int))
    with pytest.raises(UserInputError, match=r"class labels must be integers, got non-integer values"):
        h_score(x, y + 0.5, target_kind="classification")
    with pytest.raises(UserInputError, match=r"features row 3 has NaN or infinite values"):
        xn = x.copy()
        xn[3, 1] = np.nan
        logme(xn, y)
    with pytest.raises(UserInputError, match=r"cka_rbf: the target are the same for every image"):
        cka_rbf(x, np.ones((20, 2)))
    with pytest.raises(UserInputError, match=r"h_score: shrinkage must be None, 'ledoit_wolf' or a number in "
                                             r"\[0, 1\], got 2"):
        h_score(x, y, shrinkage=2)
    with pytest.raises(UserInputError, match=r"pooled_pixel_target: grid must be two integers \(h, w\) with "
                                             r"1 <= h <= H = 4"):
        pooled_pixel_target(np.zeros((2, 4, 4)), grid=(8, 2))
    with pytest.raises(UserInputError, match=r"rank_sources: per_source_options names unknown source\(s\) 'c'"):
        rank_sources({"a": x}, y, measure="nce", per_source_options={"c": {}})
    with pytest.raises(UserInputError, match=r"rank_sources: features_by_source must be a non-empty dict .* got an "
                                             r"empty dict"):
        rank_sources({}, y, measure="nce")
    with pytest.raises(UserInputError, match=r"logme accepts classification targets .*; or regression targets .*; "
                                             r"got a features target of shape \(20, 3\)"):
        logme(x, t, target_kind="features")
    with pytest.raises(UserInputError, match=r"parc: target_kind must be one of classification, regression, "
                                             r"features or None \(infer\), got 'labels'"):
        parc(x, y, target_kind="labels")
    with pytest.raises(UserInputError, match=r"'h_score_shrinkage' got unknown option\(s\) 'shrinkage'"):
        transferability_score(x, y, measure="h_score_shrinkage", shrinkage=0.1)
    with pytest.raises(UserInputError, match=r"logme: target column 1 is all zeros"):
        logme(x, np.c_[t[:, 0], np.zeros(20)])


def test_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "transferability.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile(code, "docs/transferability.md", "exec"), {})
    assert "('informative'" in capsys.readouterr().out
