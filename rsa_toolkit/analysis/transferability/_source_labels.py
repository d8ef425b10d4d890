"""Source-label distributions for LEEP and NCE when a feature extractor has no source classifier.

Following the common practice (e.g. the Transfer-Learning-Library's examples pass the source model's predictions),
the caller gives ``source_probs`` (N, C_s), a source model's softmax outputs; without them the features are
clustered by seeded k-means (k-means++ initialisation, Lloyd iterations; Arthur & Vassilvitskii 2007) and each image
gets the posterior of an equal-weight isotropic Gaussian mixture at those centroids,
p(k | x) = softmax_k(-|x - c_k|^2 / (2 s^2)), with s^2 = sum_i |x_i - c_{k(i)}|^2 / (N D) the pooled within-cluster
variance per feature.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.analysis.transferability._inputs import check_feature_matrix, check_int
from rsa_toolkit.errors import UserInputError


def source_distribution(x: np.ndarray, source_probs: object | None, *, n_clusters: int, seed: int,
                        measure: str, max_iter: int = 300) -> np.ndarray:
    """(N, C_s) float64 rows summing to 1: the checked ``source_probs``, or soft k-means assignments of ``x``."""
    n = x.shape[0]
    if source_probs is not None:
        p = check_feature_matrix(source_probs, measure=measure, name="source_probs", min_n=1)
        if p.shape[0] != n:
            raise UserInputError(
                f"{measure}: source_probs must have one row per image, N = {n}, got {p.shape[0]} rows."
            )
        sums = p.sum(axis=1)
        if (p < 0).any() or not np.allclose(sums, 1.0, rtol=0, atol=1e-6):
            raise UserInputError(
                f"{measure}: source_probs rows must be probabilities (>= 0, summing to 1); got row sums in "
                f"[{sums.min():.6g}, {sums.max():.6g}] and minimum {p.min():.6g}; apply a softmax to logits first."
            )
        return p / sums[:, None]
    k = check_int(n_clusters, name="n_clusters", measure=measure, minimum=2, maximum=n)
    seed = check_int(seed, name="seed", measure=measure, minimum=0)
    centroids, assign = kmeans(x, k, seed=seed, max_iter=max_iter)
    d2 = _sq_dist(x, centroids)
    s2 = d2[np.arange(n), assign].sum() / (n * x.shape[1])
    if s2 <= 0:
        out = np.zeros((n, k))
        out[np.arange(n), assign] = 1.0
        return out
    logits = -d2 / (2 * s2)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _sq_dist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    d2 = np.sum(x * x, axis=1)[:, None] - 2 * x @ c.T + np.sum(c * c, axis=1)[None, :]
    return np.maximum(d2, 0.0)


def kmeans(x: np.ndarray, k: int, *, seed: int, max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means: (centroids (k, D), assignments (N,)). An emptied cluster is re-seeded at the point farthest
    from its centroid."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    centroids = np.empty((k, x.shape[1]))
    centroids[0] = x[rng.integers(n)]
    closest = _sq_dist(x, centroids[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        idx = int(rng.choice(n, p=closest / total)) if total > 0 else int(rng.integers(n))
        centroids[j] = x[idx]
        closest = np.minimum(closest, _sq_dist(x, centroids[j:j + 1])[:, 0])
    assign = np.full(n, -1)
    for _ in range(max_iter):
        d2 = _sq_dist(x, centroids)
        new = np.argmin(d2, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = assign == j
            if members.any():
                centroids[j] = x[members].mean(axis=0)
            else:
                far = int(np.argmax(d2[np.arange(n), assign]))
                centroids[j] = x[far]
                assign[far] = j
    return centroids, assign
