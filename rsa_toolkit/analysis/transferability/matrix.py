"""A source x target score matrix of a transferability measure over a zoo's features (issue 15, item 3).

Features only: no labels of the target tasks are used. Each teacher is both a candidate source and a target, and the
target's "labels" come from the **target teacher's own features** on the same N probe images. What each measure
receives (see docs/evaluate.md, "Transferability measures"):

- source side: for ``cka_linear``, ``cka_rbf``, ``cka_debiased`` the source teacher's features as given, (N, D);
  for every other measure the source features reduced to their first ``source_components`` (default 32) principal
  components (:func:`~rsa_toolkit.analysis.transferability.parc.pca_scores`: exact SVD of the centred features,
  svd_flip signs). For PARC this is the reduction PARC itself applies (32 components), so the value is PARC's on
  the full features; for LogME, H-score, TransRate, NCE and LEEP it keeps D below the images per class (TransRate
  rewards dimensionality when a class has fewer images than dimensions; docs/transferability.md) and keeps the
  cost at 32 x 32 instead of D x D.
- target side, by the first kind the measure accepts in the order features, regression, classification:

  * ``"features"`` (cka_*, parc): the target teacher's features (N, D) as given;
  * ``"regression"`` (logme): the target teacher's first ``target_components`` (default 8) principal-component
    scores, (N, 8);
  * ``"classification"`` (h_score, h_score_shrinkage, nce, leep, transrate): a seeded k-means (``n_clusters``,
    default 10, at most N // 2; ``seed`` 0) of those 8 principal-component scores: one pseudo class per image.

- NCE and LEEP also need source labels: the registry's default, a seeded k-means of the (reduced) source features
  (``n_clusters``, ``seed``), computed once per source and passed as ``source_probs``.

``M[s, t]`` = measure(source s, target t); the diagonal (a teacher scored against its own target) is included, like
the unit diagonal of an RSA matrix. Higher is better for every measure.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.transferability._inputs import check_feature_matrix
from rsa_toolkit.analysis.transferability._source_labels import kmeans, source_distribution
from rsa_toolkit.analysis.transferability.measures import TRANSFERABILITY_MEASURES
from rsa_toolkit.analysis.transferability.parc import pca_scores

__all__ = ["measure_matrix", "teacher_targets", "target_kind_for", "SOURCE_COMPONENTS", "TARGET_COMPONENTS",
           "N_CLUSTERS"]

SOURCE_COMPONENTS = 32
TARGET_COMPONENTS = 8
N_CLUSTERS = 10
_FULL_FEATURES = ("cka_linear", "cka_rbf", "cka_debiased")
_SOURCE_LABELS = ("nce", "leep")


def target_kind_for(measure: str) -> str:
    """The target kind a measure gets in a features-only matrix: features, else regression, else classification."""
    kinds = TRANSFERABILITY_MEASURES.get(measure).target_kinds
    return next(k for k in ("features", "regression", "classification") if k in kinds)


def teacher_targets(features: np.ndarray, *, target_components: int = TARGET_COMPONENTS,
                    n_clusters: int = N_CLUSTERS, seed: int = 0) -> dict[str, np.ndarray]:
    """A target teacher's features (N, ...) as the three target kinds: ``{"features": (N, D), "regression":
    (N, k) principal-component scores, "classification": (N,) k-means labels of those scores}``."""
    x = check_feature_matrix(features, measure="teacher_targets", min_n=4)
    k = min(target_components, x.shape[0] - 1, x.shape[1])
    pcs = pca_scores(x, k)
    _, labels = kmeans(pcs, max(2, min(n_clusters, x.shape[0] // 2)), seed=seed)
    return {"features": x, "regression": pcs, "classification": labels.astype(np.int64)}


def measure_matrix(features: Mapping[str, np.ndarray], measure: str, *,
                   source_components: int | None = SOURCE_COMPONENTS, target_components: int = TARGET_COMPONENTS,
                   n_clusters: int = N_CLUSTERS, seed: int = 0) -> np.ndarray:
    """(T, T) float64: ``M[s, t]`` = ``measure`` of teacher s's features against teacher t's target (module
    docstring), teachers in the order of ``features`` (name -> (N, ...) array, the same N images in each)."""
    entry = TRANSFERABILITY_MEASURES.get(measure)  # an unknown name fails here with did-you-mean
    names = list(features)
    if len(names) < 2:
        raise UserInputError(f"measure_matrix needs at least 2 teachers, got {len(names)}.")
    arrays = {n: check_feature_matrix(features[n], measure=measure, name=f"features of '{n}'", min_n=4)
              for n in names}
    sizes = {a.shape[0] for a in arrays.values()}
    if len(sizes) != 1:
        raise UserInputError(f"every teacher needs the same probe images; got {sorted(sizes)} rows.")
    kind = target_kind_for(measure)
    targets = {n: teacher_targets(a, target_components=target_components, n_clusters=n_clusters,
                                  seed=seed)[kind] for n, a in arrays.items()}
    if measure in _FULL_FEATURES or source_components is None:
        sources = arrays
    else:
        sources = {n: pca_scores(a, min(source_components, a.shape[0] - 1, a.shape[1])) if
                   a.shape[1] > source_components else a for n, a in arrays.items()}
    per_source: dict[str, dict[str, object]] = {n: {} for n in names}
    if measure in _SOURCE_LABELS:
        k = max(2, min(n_clusters, next(iter(sizes)) // 2))
        for n in names:
            per_source[n] = {"source_probs": source_distribution(sources[n], None, n_clusters=k, seed=seed,
                                                                 measure=measure)}
    out = np.empty((len(names), len(names)))
    # One BLAS thread for the T x T small scores (N x 32 products and factorisations): multi-threaded OpenBLAS
    # hands each tiny call to its threads, and on busy cores that made the matrices up to 10x slower, with
    # identical results (measured for every measure on 20 mini teachers; docs/evaluate.md's timing column).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        for i, s in enumerate(names):
            for j, t in enumerate(names):
                value = float(entry(sources[s], targets[t], target_kind=kind, **per_source[s]))
                if not np.isfinite(value):
                    raise UserInputError(f"{measure}: source '{s}' scored {value} for target '{t}'; a non-finite "
                                         f"score cannot be ranked (constant features?).")
                out[i, j] = value
    return out
