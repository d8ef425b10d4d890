"""Centred kernel alignment (CKA) between two representations of the same images: linear, RBF and debiased.

Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited", ICML 2019 (CKA, the
linear and RBF forms); Gretton et al., ALT 2005 (HSIC); Song, Smola, Gretton, Bedo & Borgwardt, "Feature Selection
via Dependence Maximization", JMLR 2012 (the unbiased HSIC estimator); Nguyen, Raghu & Kornblith, "Do Wide and Deep
Networks Learn the Same Things?", ICLR 2021 (debiased CKA).
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.analysis.transferability._inputs import (
    check_choice, check_feature_matrix, check_positive_float, check_target)
from rsa_toolkit.analysis.transferability.measures import register_measure
from rsa_toolkit.errors import UserInputError

__all__ = ["cka_linear", "cka_rbf", "cka_debiased", "rbf_kernel", "unbiased_hsic"]

_KINDS = ("features", "regression")


@register_measure("cka_linear", target_kinds=_KINDS,
                  summary="linear CKA between the features and the target representation",
                  reference="Kornblith et al., ICML 2019")
def cka_linear(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None) -> float:
    """Linear CKA (Kornblith et al., ICML 2019): |Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F), X and Y centred per column.

    Equal to <K, L>_F / (|K|_F |L|_F) with the centred Gram matrices K = X X^T, L = Y Y^T (HSIC's normalisation
    cancels); the cheaper of the two forms is used. Invariant to orthogonal transforms and isotropic scaling of
    either representation. Shapes: features (N, ...) -> (N, D1); target (N, D2). Returns a float in [0, 1].
    """
    x, y = _pair(features, target, measure="cka_linear", target_kind=target_kind)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    n = x.shape[0]
    d1, d2 = x.shape[1], y.shape[1]
    if n * (d1 + d2) <= d1 * d2 + d1 * d1 + d2 * d2:  # Gram form is cheaper
        k, l_ = x @ x.T, y @ y.T
        return float(np.sum(k * l_) / (np.linalg.norm(k) * np.linalg.norm(l_)))
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


@register_measure("cka_rbf", target_kinds=_KINDS,
                  summary="CKA with Gaussian kernels, bandwidth from the median squared distance",
                  reference="Kornblith et al., ICML 2019")
def cka_rbf(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None,
            bandwidth_factor: float = 0.5) -> float:
    """RBF CKA (Kornblith et al., ICML 2019): <HKH, HLH>_F / (|HKH|_F |HLH|_F), H = I - 11^T / N.

    K_ij = exp(-|x_i - x_j|^2 / (2 s^2)) with the median heuristic s^2 = bandwidth_factor * median_{i<j}
    |x_i - x_j|^2, computed separately for each representation (the toolkit's ``rbf`` RDM method uses the same
    rule; Kornblith et al.'s s = threshold * median distance corresponds to bandwidth_factor = threshold^2).
    Shapes: features (N, ...) -> (N, D1); target (N, D2). Returns a float in [0, 1].
    """
    x, y = _pair(features, target, measure="cka_rbf", target_kind=target_kind)
    factor = check_positive_float(bandwidth_factor, name="bandwidth_factor", measure="cka_rbf")
    k = _centre(rbf_kernel(x, bandwidth_factor=factor, what="features"))
    l_ = _centre(rbf_kernel(y, bandwidth_factor=factor, what="target"))
    return float(np.sum(k * l_) / (np.linalg.norm(k) * np.linalg.norm(l_)))


@register_measure("cka_debiased", target_kinds=_KINDS,
                  summary="CKA with the unbiased HSIC estimator (linear kernel by default)",
                  reference="Song et al., JMLR 2012; Nguyen et al., ICLR 2021")
def cka_debiased(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None,
                 kernel: str = "linear", bandwidth_factor: float = 0.5) -> float:
    """Debiased CKA (Nguyen et al., ICLR 2021): HSIC_1(K, L) / sqrt(HSIC_1(K, K) HSIC_1(L, L)).

    HSIC_1 is the unbiased estimator of Song et al. (JMLR 2012), with K~, L~ the kernels with zeroed diagonals:
        HSIC_1 = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((N-1)(N-2)) - 2/(N-2) 1^T K~ L~ 1] / (N (N-3)),
    computed as <U(K), U(L)>_F / (N (N-3)) with U the U-centring (Szekely & Rizzo 2014). ``kernel``: "linear"
    (X X^T, the usual choice) or "rbf" (as :func:`cka_rbf`). Needs N >= 4. Unlike biased CKA it can be slightly
    negative for independent representations. Shapes: features (N, ...) -> (N, D1); target (N, D2).
    """
    x, y = _pair(features, target, measure="cka_debiased", target_kind=target_kind, min_n=4)
    kernel = check_choice(kernel, name="kernel", measure="cka_debiased", choices=("linear", "rbf"))
    factor = check_positive_float(bandwidth_factor, name="bandwidth_factor", measure="cka_debiased")
    if kernel == "linear":
        k, l_ = x @ x.T, y @ y.T
    else:
        k = rbf_kernel(x, bandwidth_factor=factor, what="features")
        l_ = rbf_kernel(y, bandwidth_factor=factor, what="target")
    uk, ul = _u_centre(k), _u_centre(l_)
    kk, ll = np.sum(uk * uk), np.sum(ul * ul)
    if kk <= 0 or ll <= 0:
        raise UserInputError(
            "cka_debiased: the unbiased HSIC of the "
            f"{'features' if kk <= 0 else 'target'} with itself is not positive, so debiased CKA is undefined; "
            "the representation is (nearly) constant across images."
        )
    return float(np.sum(uk * ul) / np.sqrt(kk * ll))


def unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    """Unbiased HSIC_1 (Song et al., JMLR 2012) of two N x N kernel matrices (N >= 4)."""
    n = k.shape[0]
    return float(np.sum(_u_centre(k) * _u_centre(l_)) / (n * (n - 3)))


def rbf_kernel(x: np.ndarray, *, bandwidth_factor: float = 0.5, what: str = "features") -> np.ndarray:
    """exp(-|x_i - x_j|^2 / (2 s^2)), s^2 = bandwidth_factor * median_{i<j} |x_i - x_j|^2; exact ones on the
    diagonal."""
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    median = float(np.median(d2[np.triu_indices(len(x), k=1)]))
    if median <= 0:
        raise UserInputError(
            f"RBF kernel: the median squared distance between images of the {what} is 0 (at least half the pairs "
            "are identical), so the median-heuristic bandwidth is undefined."
        )
    return np.exp(-d2 / (2 * bandwidth_factor * median))


def _pair(features: object, target: object, *, measure: str, target_kind: str | None,
          min_n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    x = check_feature_matrix(features, measure=measure, min_n=min_n)
    y = check_target(target, x.shape[0], measure=measure, accepts=_KINDS, target_kind=target_kind).values
    for arr, what in ((x, "features"), (y, "target")):
        if np.all(np.ptp(arr, axis=0) == 0):
            raise UserInputError(
                f"{measure}: the {what} are the same for every image (zero variance), so CKA is undefined."
            )
    return x, y


def _centre(k: np.ndarray) -> np.ndarray:
    """H K H, H = I - 11^T / N."""
    k = k - k.mean(axis=0, keepdims=True)
    return k - k.mean(axis=1, keepdims=True)


def _u_centre(k: np.ndarray) -> np.ndarray:
    """U-centring of K with zeroed diagonal (Szekely & Rizzo 2014): <U(K), U(L)> = N (N-3) HSIC_1(K, L)."""
    n = k.shape[0]
    k = k.copy()
    np.fill_diagonal(k, 0.0)
    rows = k.sum(axis=1)
    total = rows.sum()
    u = k - rows[:, None] / (n - 2) - rows[None, :] / (n - 2) + total / ((n - 1) * (n - 2))
    np.fill_diagonal(u, 0.0)
    return u
