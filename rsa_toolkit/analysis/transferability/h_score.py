"""H-score and its shrinkage-regularised variant.

Bao, Li, Huang, Zhao, Tong & Zheng, "An Information-Theoretic Approach to Transferability in Task Transfer
Learning", ICIP 2019; regularised: Ibrahim, Ponomareva & Mazumder, "Newer is not always better: Rethinking
transferability metrics, their peculiarities, stability and performance", ECML-PKDD 2022.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.analysis.transferability._inputs import check_feature_matrix, check_target
from rsa_toolkit.analysis.transferability.measures import register_measure
from rsa_toolkit.errors import UserInputError

__all__ = ["h_score", "ledoit_wolf_shrinkage"]

_NAME = "h_score"


@register_measure("h_score_shrinkage", target_kinds=("classification",),
                  summary="H-score with a Ledoit-Wolf shrunk feature covariance",
                  reference="Ibrahim et al., ECML-PKDD 2022", shrinkage="ledoit_wolf")
@register_measure("h_score", target_kinds=("classification",),
                  summary="tr(cov(f)^+ cov(E[f|y])): class-mean spread relative to the feature covariance",
                  reference="Bao et al., ICIP 2019")
def h_score(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None,
            shrinkage: str | float | None = None) -> float:
    """H-score (Bao et al., ICIP 2019): H(f) = tr(cov(f)^+ cov(E[f | y])).

    f (N, D) are the features, y (N,) the class labels; cov(f) = F_c^T F_c / N with F_c the centred features and
    cov(E[f|y]) = sum_c (N_c / N) mu_c mu_c^T with mu_c the centred class means (both with the same 1/N, so the
    normalisation cancels); ^+ is the Moore-Penrose pseudo-inverse (numpy's default cut-off on the eigenvalues of
    the symmetric cov(f)).

    ``shrinkage`` (Ibrahim et al. 2022): None for the plain H-score; ``"ledoit_wolf"`` or a number a in [0, 1] for
    tr(S_a^+ (1 - a) cov(E[f|y])) with S_a = (1 - a) cov(f) + a (tr cov(f) / D) I; ``"ledoit_wolf"`` takes a from
    the Ledoit-Wolf formula (:func:`ledoit_wolf_shrinkage`, as scikit-learn's ``LedoitWolf``). The released
    regularised code mixes cov(f) with 1/N and cov(E[f|y]) with 1/(N-1); here both use 1/N, which scales that
    variant by (N-1)/N relative to it.

    Shapes: features (N, ...) -> (N, D); target (N,) class labels. Returns a float >= 0 (higher is better).
    """
    x = check_feature_matrix(features, measure=_NAME)
    t = check_target(target, x.shape[0], measure=_NAME, accepts=("classification",), target_kind=target_kind)
    if shrinkage is not None and shrinkage != "ledoit_wolf" and not (
            isinstance(shrinkage, (int, float, np.floating)) and not isinstance(shrinkage, bool)
            and 0.0 <= float(shrinkage) <= 1.0):
        raise UserInputError(
            f"{_NAME}: shrinkage must be None, 'ledoit_wolf' or a number in [0, 1], got {shrinkage!r}."
        )
    xc = x - x.mean(axis=0)
    n, d = xc.shape
    cov_f = xc.T @ xc / n
    counts = np.bincount(t.labels)
    means = (t.values.T @ xc) / counts[:, None]  # (C, D) centred class means
    weighted = means * np.sqrt(counts / n)[:, None]  # cov(E[f|y]) = weighted^T weighted
    scale = 1.0
    if shrinkage is not None:
        a = ledoit_wolf_shrinkage(xc) if shrinkage == "ledoit_wolf" else float(shrinkage)
        cov_f = (1 - a) * cov_f + a * (np.trace(cov_f) / d) * np.eye(d)
        scale = 1 - a
    evals, evecs = np.linalg.eigh(cov_f)
    cutoff = 1e-15 * max(float(evals.max()), 0.0)
    keep = evals > cutoff
    proj = weighted @ evecs[:, keep]  # (C, r)
    return float(scale * np.sum(proj ** 2 / evals[keep]))


def ledoit_wolf_shrinkage(centred: np.ndarray) -> float:
    """Ledoit & Wolf (2004) shrinkage a in [0, 1] for the covariance X^T X / N of centred X (N, D), toward
    (tr / D) I; the same estimate as scikit-learn's ``ledoit_wolf_shrinkage(assume_centered=True)``."""
    n, d = centred.shape
    x2 = centred ** 2
    mu = x2.sum() / (n * d)
    beta_ = np.sum(x2.T @ x2)
    delta_ = np.sum((centred.T @ centred) ** 2) / n ** 2
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2 * mu * x2.sum() / n + d * mu ** 2) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else float(beta / delta)
