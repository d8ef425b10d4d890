"""Bootstrap over probe images: confidence intervals for every cell of a similarity matrix, and row stability.

One resample draws N image indices with replacement. Its RDM entries are the pairs (a, b) of drawn images; a pair of
an image with its own duplicate (same original image) is excluded, because its dissimilarity is 0 by construction and
would inflate agreement. So original pair {i, j} (i < j) enters with multiplicity c_i * c_j, where c counts how often
each image was drawn, and pairs are weighted rather than repeated (see :mod:`rsa_toolkit.rsa.compare`). The RDMs are not
recomputed from resampled features (as in rsatoolbox's pattern bootstrap): the per-feature centring uses all images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_toolkit.validation import check_int, check_number
from rsa_toolkit.rsa.compare import COMPARISONS, pairwise_similarity, prepare_for, rank_average
from rsa_toolkit.rsa.rdm import squareform

__all__ = ["BootstrapResult", "bootstrap_similarity", "pair_multiplicities"]


@dataclass(frozen=True)
class BootstrapResult:
    samples: np.ndarray  # (B, T, T) similarity matrix of each resample
    ci_low: np.ndarray  # (T, T) lower percentile bound
    ci_high: np.ndarray  # (T, T) upper percentile bound
    row_stability: np.ndarray  # (T,) mean Spearman between a resample's row and the full-sample row, self excluded
    confidence: float
    seed: int


def bootstrap_similarity(rdms: np.ndarray, full: np.ndarray, *, comparison: str = "spearman",
                         kind: str = "dissimilarity", n_bootstrap: int = 100, confidence: float = 0.95,
                         seed: int = 0, names: list[str] | None = None, progress: bool = False) -> BootstrapResult:
    """Bootstrap the T x T matrix ``full`` computed from ``rdms`` ((T, M) condensed or (T, N, N) square).

    Percentile intervals at ``confidence``; the same seed gives the same resamples.
    """
    from rsa_toolkit.progress import progress as progress_lines

    spec = COMPARISONS.get(comparison)
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", minimum=1)
    check_number(confidence, name="confidence", above=0, below=1, expected="in (0, 1)")
    rdms = np.asarray(rdms)
    t = len(rdms)
    labels = names or [f"rdm {i}" for i in range(t)]
    square = rdms.ndim == 3
    n = rdms.shape[1] if square else int(round((1 + np.sqrt(1 + 8 * rdms.shape[1])) / 2))
    condensed = None if spec.square_input else (
        np.stack([m[np.triu_indices(n, 1)] for m in rdms]) if square else rdms)
    orders = [np.argsort(v) for v in condensed] if comparison == "spearman" else [None] * t

    rng = np.random.default_rng(seed)
    samples = np.empty((n_bootstrap, t, t))
    for b in progress_lines(range(n_bootstrap), desc="bootstrap", unit="resample", enabled=progress):
        idx = rng.integers(0, n, size=n)
        if spec.square_input:
            mats = rdms if square else [squareform(v) for v in rdms]
            prepared = [prepare_for(spec, m[np.ix_(idx, idx)], kind=kind, name=labels[i]) for i, m in enumerate(mats)]
            samples[b] = pairwise_similarity(spec, prepared)
        else:
            w = pair_multiplicities(np.bincount(idx, minlength=n))
            prepared = [prepare_for(spec, v, kind=kind, weights=w, order=orders[i], name=labels[i])
                        for i, v in enumerate(condensed)]
            samples[b] = pairwise_similarity(spec, prepared, weights=w)

    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha], axis=0)
    return BootstrapResult(samples, low, high, _row_stability(samples, np.asarray(full)), confidence, seed)


def pair_multiplicities(counts: np.ndarray) -> np.ndarray:
    """(N,) draw counts -> (N(N-1)/2,) multiplicity c_i * c_j of each pair i < j, in condensed order."""
    n = len(counts)
    i, j = np.triu_indices(n, 1)
    return counts[i] * counts[j]


def _row_stability(samples: np.ndarray, full: np.ndarray) -> np.ndarray:
    t = full.shape[0]
    stability = np.empty(t)
    for row in range(t):
        others = np.arange(t) != row
        stability[row] = np.mean([_rank_agreement(s[row, others], full[row, others]) for s in samples])
    return stability


def _rank_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two rankings; a row without any ranking to disagree on (constant, or one entry) counts
    as stable."""
    ra, rb = rank_average(a), rank_average(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = np.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / denominator) if denominator > 0 else 1.0
