"""LEEP and NCE: transferability from the empirical joint of source labels and target labels.

Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate Transferability of Learned Representations",
ICML 2020. Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019
(NCE). Source distributions: see :mod:`rsa_toolkit.analysis.transferability._source_labels`.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.analysis.transferability._source_labels import source_distribution
from rsa_toolkit.analysis.transferability._inputs import check_feature_matrix, check_target
from rsa_toolkit.analysis.transferability.measures import register_measure

__all__ = ["leep", "nce"]


@register_measure("nce", target_kinds=("classification",),
                  summary="negative conditional entropy -H(Y|Z) of target labels given hard source labels",
                  reference="Tran et al., ICCV 2019")
def nce(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None,
        source_probs: np.ndarray | None = None, n_clusters: int = 10, seed: int = 0) -> float:
    """NCE (Tran et al., ICCV 2019): NCE = -H(Y | Z) = sum_{y,z} P(y, z) log P(y | z).

    Z are hard source labels: argmax of ``source_probs`` (N, C_s) (first index on ties), or, without them, the
    seeded k-means cluster of each image's features (``n_clusters`` clusters, ``seed``). P(y, z) is the empirical
    joint, #{i: y_i = y, z_i = z} / N, and P(y | z) = P(y, z) / P(z). With ``source_probs`` given the features are
    only checked for shape (N rows).

    Shapes: features (N, ...); target (N,) class labels; source_probs (N, C_s). Returns a float <= 0 (higher is
    better; 0 means the source labels determine the target labels).
    """
    x = check_feature_matrix(features, measure="nce")
    t = check_target(target, x.shape[0], measure="nce", accepts=("classification",), target_kind=target_kind)
    p = source_distribution(x, source_probs, n_clusters=n_clusters, seed=seed, measure="nce")
    z = np.argmax(p, axis=1)
    n, c_t, c_s = len(z), t.values.shape[1], p.shape[1]
    joint = np.bincount(t.labels * c_s + z, minlength=c_t * c_s).reshape(c_t, c_s) / n
    marginal_z = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / np.where(marginal_z > 0, marginal_z, 1.0))[nz])))


@register_measure("leep", target_kinds=("classification",),
                  summary="log expected empirical prediction of target labels through source-label probabilities",
                  reference="Nguyen et al., ICML 2020")
def leep(features: np.ndarray, target: np.ndarray, *, target_kind: str | None = None,
         source_probs: np.ndarray | None = None, n_clusters: int = 10, seed: int = 0) -> float:
    """LEEP (Nguyen et al., ICML 2020): LEEP = 1/N sum_i log( sum_z P(y_i | z) theta(x_i)_z ).

    theta(x_i) (C_s,) are source-label probabilities of image i: ``source_probs`` (N, C_s) (a source classifier's
    softmax), or, without them, soft assignments of a seeded k-means on the features (``n_clusters``, ``seed``;
    Gaussian-mixture posteriors at the centroids, see ``_source_labels``). The empirical joint is
    P(y, z) = 1/N sum_{i: y_i = y} theta(x_i)_z and P(y | z) = P(y, z) / sum_y' P(y', z) (0 where P(z) = 0).

    Shapes: features (N, ...); target (N,) class labels; source_probs (N, C_s). Returns a float <= 0 (higher is
    better).
    """
    x = check_feature_matrix(features, measure="leep")
    t = check_target(target, x.shape[0], measure="leep", accepts=("classification",), target_kind=target_kind)
    theta = source_distribution(x, source_probs, n_clusters=n_clusters, seed=seed, measure="leep")
    n = theta.shape[0]
    joint = t.values.T @ theta / n  # (C_t, C_s)
    marginal_z = joint.sum(axis=0, keepdims=True)
    conditional = joint / np.where(marginal_z > 0, marginal_z, 1.0)  # P(y | z)
    eep = np.sum(theta * conditional[t.labels], axis=1)  # expected empirical prediction of y_i
    return float(np.mean(np.log(eep)))
