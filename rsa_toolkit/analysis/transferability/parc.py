"""PARC: Pairwise Annotation Representation Comparison.

Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible Transfer Learning", NeurIPS 2021.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.analysis.transferability._inputs import check_feature_matrix, check_int, check_target
from rsa_toolkit.analysis.transferability.measures import register_measure
from rsa_toolkit.errors import UserInputError

__all__ = ["parc", "pca_scores"]

_NAME = "parc"


@register_measure(_NAME, target_kinds=("classification", "regression", "features"),
                  summary="Spearman between 1-Pearson RDMs of PCA-reduced features and of the target",
                  reference="Bolya et al., NeurIPS 2021")
def parc(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None,
         n_components: int | None = 32) -> float:
    """PARC (Bolya et al., NeurIPS 2021): Spearman(triu(1 - corr(F')), triu(1 - corr(Y))).

    F' are the features reduced by PCA to ``n_components`` (exact SVD of the centred features, only when
    D > n_components, as the released code; None: never), corr(.) the N x N Pearson correlations between the rows
    (images), Y the one-hot labels (classification) or the target rows (regression / features, used as given, no
    PCA), and triu the strict upper triangle (N(N-1)/2 entries). Spearman is Pearson of average ranks. For class
    labels the target RDM is computed exactly (0 within a class, C / (C - 1) across), so its ties stay ties instead
    of being broken by rounding noise.

    Returns the coefficient in [-1, 1]; the paper reports it x 100. Caveats of the published recipe, kept here:
    the rows are correlated across PCA components, so the image RDM depends on the components' signs (fixed here
    as in scikit-learn's ``svd_flip``: the largest |score| of each component is positive, so the value is
    deterministic and invariant to the order of the images); and a target with one column (K = 1) has no row
    correlation, so it is refused.

    Shapes: features (N, ...) -> (N, D); target (N,) labels, (N, K) regression targets or (N, D2) features.
    """
    x = check_feature_matrix(features, measure=_NAME, min_n=3)
    t = check_target(target, x.shape[0], measure=_NAME, accepts=("classification", "regression", "features"),
                     target_kind=target_kind)
    if n_components is not None:
        n_components = check_int(n_components, name="n_components", measure=_NAME, minimum=2)
    if t.values.shape[1] < 2:
        raise UserInputError(
            f"{_NAME}: a 1 - Pearson RDM of the target needs at least 2 values per image, got a target of shape "
            f"{t.values.shape}; give a multi-column target (e.g. pooled pixels) or class labels."
        )
    reduced = pca_scores(x, n_components) if n_components is not None and x.shape[1] > n_components else x
    d_feat = _correlation_rdm_triu(reduced, what="features (after PCA)" if reduced is not x else "features")
    if t.kind == "classification":  # 1 - Pearson of one-hot rows, exactly: 0 within a class, C/(C-1) across
        iu = np.triu_indices(x.shape[0], k=1)
        c = t.values.shape[1]
        d_target = np.where(t.labels[iu[0]] == t.labels[iu[1]], 0.0, c / (c - 1))
    else:
        d_target = _correlation_rdm_triu(t.values, what="target")
    return _spearman(d_feat, d_target)


def pca_scores(x: np.ndarray, n_components: int) -> np.ndarray:
    """The first ``n_components`` principal-component scores of x (N, D) by exact thin SVD of the centred data,
    each component's sign chosen so that its largest-|.| score is positive (scikit-learn's ``svd_flip`` rule)."""
    u, s, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    scores = u[:, :n_components] * s[:n_components]
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(scores.shape[1])])
    signs[signs == 0] = 1.0
    return scores * signs


def _correlation_rdm_triu(rows: np.ndarray, *, what: str) -> np.ndarray:
    c = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(c, axis=1)
    scale = np.max(np.abs(rows), axis=1)
    flat = norms <= 1e-12 * np.where(scale > 0, scale, 1.0) * np.sqrt(rows.shape[1])
    if flat.any():
        row = int(np.flatnonzero(flat)[0])
        raise UserInputError(
            f"{_NAME}: image row {row} of the {what} is constant, so its Pearson correlations are undefined; "
            "check that image."
        )
    z = c / norms[:, None]
    iu = np.triu_indices(rows.shape[0], k=1)
    return np.clip(1.0 - (z @ z.T)[iu], 0.0, 2.0)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import rankdata  # here, not at the top: the CLI's parser lists the measures, and scipy.stats
    # costs every command ~0.7 s of start-up

    ra = rankdata(a) - (len(a) + 1) / 2
    rb = rankdata(b) - (len(b) + 1) / 2
    denom = np.sqrt(np.sum(ra * ra) * np.sum(rb * rb))
    if denom == 0:
        raise UserInputError(
            f"{_NAME}: one of the RDMs has all entries equal, so the Spearman correlation is undefined."
        )
    return float(np.sum(ra * rb) / denom)
