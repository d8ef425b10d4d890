"""TransRate: transferability as the mutual information between features and labels, by coding rates.

Huang, Huang, Rong, Yang & Wei, "Frustratingly Easy Transferability Estimation", ICML 2022; the coding rate of
Ma et al. (TPAMI 2007) as used in MCR^2 (Yu et al., NeurIPS 2020).
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.analysis.transferability._inputs import (
    check_choice, check_feature_matrix, check_positive_float, check_target)
from rsa_toolkit.analysis.transferability.measures import register_measure

__all__ = ["transrate", "coding_rate"]

_NAME = "transrate"


@register_measure(_NAME, target_kinds=("classification",),
                  summary="coding rate of the features minus the class-conditional coding rate",
                  reference="Huang et al., ICML 2022")
def transrate(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None, eps: float = 1e-4,
              formula: str = "code") -> float:
    """TransRate (Huang et al., ICML 2022): TrR = R(Z, eps) - R_c(Z, eps | Y), Z the globally centred features.

    ``formula="code"`` (default; the authors' released implementation):
        R(Z, eps) = 1/2 log det(I_D + Z^T Z / (n eps)),  R_c = 1/C sum_c R(Z_c, eps)  (n = rows of its argument)
    ``formula="mcr2"`` (the coding rate of MCR^2, Yu et al. 2020, with class proportions):
        R(Z, eps) = 1/2 log det(I_D + D / (n eps^2) Z^T Z),  R_c = sum_c (n_c / N) R(Z_c, eps).
    Z_c are the rows of class c (not re-centred). Each log det is sum_i log(1 + k s_i^2) over the singular values
    s_i of the matrix (exact; no D x D matrix is formed).

    Caution: with fewer images per class than dimensions (n_c < D) each R(Z_c) is capped by its rank and the score
    rewards dimensionality (random features can outscore informative ones); reduce D first (docs/transferability.md).

    Shapes: features (N, ...) -> (N, D); target (N,) class labels. Returns a float (higher is better).
    """
    x = check_feature_matrix(features, measure=_NAME)
    t = check_target(target, x.shape[0], measure=_NAME, accepts=("classification",), target_kind=target_kind)
    eps = check_positive_float(eps, name="eps", measure=_NAME)
    formula = check_choice(formula, name="formula", measure=_NAME, choices=("code", "mcr2"))
    z = x - x.mean(axis=0)
    n = z.shape[0]
    rate = coding_rate(z, eps=eps, formula=formula)
    counts = np.bincount(t.labels)
    per_class = np.array([coding_rate(z[t.labels == c], eps=eps, formula=formula) for c in range(len(counts))])
    weights = np.full(len(counts), 1.0 / len(counts)) if formula == "code" else counts / n
    return float(rate - np.sum(weights * per_class))


def coding_rate(z: np.ndarray, *, eps: float = 1e-4, formula: str = "code") -> float:
    """R(Z, eps) of Z (n, D): 1/2 log det(I + k Z^T Z), k = 1 / (n eps) ("code") or D / (n eps^2) ("mcr2")."""
    n, d = z.shape
    k = 1.0 / (n * eps) if formula == "code" else d / (n * eps * eps)
    s = np.linalg.svd(z, compute_uv=False)
    return float(0.5 * np.sum(np.log1p(k * s * s)))
