"""LogME: the logarithm of the maximum evidence of a Bayesian linear model on the features.

You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.analysis.transferability._inputs import (
    check_feature_matrix, check_int, check_positive_float, check_target)
from rsa_toolkit.analysis.transferability.measures import register_measure
from rsa_toolkit.errors import UserInputError

__all__ = ["logme"]

_NAME = "logme"


@register_measure(_NAME, target_kinds=("classification", "regression"),
                  summary="log maximum evidence of Bayesian linear regression on the features, per target column",
                  reference="You et al., LogME, ICML 2021")
def logme(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None, tol: float = 1e-10,
          max_iter: int = 1000) -> float:
    """LogME (You et al., ICML 2021): the maximum log evidence per image, averaged over target columns.

    For each target column y (N,) (one-hot columns for class labels) and features F (N, D) (used as given: no
    centring, no bias column, as in the paper), the model is w ~ N(0, alpha^-1 I_D), y | F, w ~ N(F w, beta^-1 I_N);
    its log evidence is

        L(alpha, beta) = D/2 log alpha + N/2 log beta - N/2 log 2 pi - beta/2 |y - F m|^2 - alpha/2 |m|^2
                         - 1/2 log det A,      A = alpha I + beta F^T F,  m = beta A^-1 F^T y,

    maximised by the fixed-point iteration (MacKay) gamma = sum_i beta s_i / (alpha + beta s_i),
    alpha <- gamma / |m|^2, beta <- (N - gamma) / |y - F m|^2, with s_i the eigenvalues of F^T F from one thin SVD
    F = U S V^T. All columns iterate at once, in float64. Score = mean over columns of L(alpha*, beta*) / N.

    Differences from the released code: it iterates until alpha and beta change by less than ``tol`` (relative), up
    to ``max_iter`` steps, instead of stopping once alpha/beta changes by < 1 % (at most 11 steps), and it adds no
    1e-5 to the denominators; so the value is the maximum of L to float64 precision. If a column is fitted exactly
    (possible when D >= N) beta grows without bound; the iteration then stops at ``max_iter``.

    Shapes: features (N, ...) -> (N, D); target (N,) labels or (N, K) / (N,) real targets. Returns a float
    (higher is better).
    """
    x = check_feature_matrix(features, measure=_NAME)
    t = check_target(target, x.shape[0], measure=_NAME, accepts=("classification", "regression"),
                     target_kind=target_kind)
    tol = check_positive_float(tol, name="tol", measure=_NAME)
    max_iter = check_int(max_iter, name="max_iter", measure=_NAME)
    zero = np.flatnonzero(~np.any(t.values != 0, axis=0))
    if zero.size:
        raise UserInputError(
            f"{_NAME}: target column {int(zero[0])} is all zeros, so its evidence has no maximum; drop that column."
        )
    return float(np.mean(_log_evidence(x, t.values, tol=tol, max_iter=max_iter)[0]) / x.shape[0])


def _log_evidence(f: np.ndarray, y: np.ndarray, *, tol: float,
                  max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log evidence (K,), alpha (K,), beta (K,)) at the fixed point, for features (N, D) and targets (N, K)."""
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sig2 = (s * s)[:, None]  # (r, 1), r = min(N, D)
    z = u.T @ y  # (r, K): y in the basis of F's left singular vectors
    perp = np.sum((y - u @ z) ** 2, axis=0)  # |y|^2 outside F's column space
    tiny = np.finfo(np.float64).tiny
    alpha = np.ones(y.shape[1])
    beta = np.ones(y.shape[1])

    def moments(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        denom = alpha + beta * sig2  # (r, K): eigenvalues of A on F's row space
        gamma = np.sum(beta * sig2 / denom, axis=0)
        m2 = np.sum((beta * s[:, None] * z / denom) ** 2, axis=0)  # |m|^2
        res = perp + np.sum((alpha * z / denom) ** 2, axis=0)  # |y - F m|^2
        return denom, gamma, np.maximum(m2, tiny), np.maximum(res, tiny)

    with np.errstate(over="ignore", divide="ignore"):
        for _ in range(max_iter):
            _, gamma, m2, res = moments(alpha, beta)
            new_alpha = gamma / m2
            new_beta = (n - gamma) / res
            done = (np.abs(new_alpha - alpha) <= tol * np.abs(new_alpha)).all() and (
                np.abs(new_beta - beta) <= tol * np.abs(new_beta)).all()
            alpha, beta = new_alpha, new_beta
            if done:
                break
        denom, _, m2, res = moments(alpha, beta)
    r = sig2.shape[0]
    logdet_a = np.sum(np.log(denom), axis=0) + (d - r) * np.log(alpha)
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
                - beta / 2 * res - alpha / 2 * m2 - logdet_a / 2)
    return evidence, alpha, beta
