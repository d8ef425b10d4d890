"""Comparing RDMs: all T x T pairs at once.

Every comparison except Kendall's tau is an inner product after a per-RDM transform (``prepare``): each RDM becomes a
unit vector u_t and the T x T matrix is one product U @ U.T. So each RDM is ranked (or centred) once, not T times.

=================  ===================================================================================================
spearman           Pearson of the average ranks of the upper-triangle entries (RSA paper)
pearson            Pearson of the upper-triangle entries
cosine             cosine of the upper-triangle entries
kendall_tau_b      scipy's tau-b, one call per pair (no product form exists; O(M log M) each)
kendall_tau_a      (concordant - discordant) / (M(M-1)/2), from tau-b and the tie counts
cka                linear CKA (Kornblith et al. 2019) of the kernels: <HKH, HLH>_F / (|HKH|_F |HLH|_F)
cka_debiased       CKA with the unbiased HSIC estimator (Song et al. 2012), as <U(K), U(L)> / (|U(K)| |U(L)|)
                   with U the U-centring of the kernel with zeroed diagonal (Szekely & Rizzo 2014), whose inner
                   product equals n(n-3) HSIC_1.
=================  ===================================================================================================

CKA takes kernels; an RDM D is turned into one by classical scaling, K = -1/2 H D H, which is the Gram matrix of the
normalised features when D is a correlation, cosine or squared-euclidean RDM (those are squared distances).

Bootstrap weights: ``weights`` (M,) gives each upper-triangle entry a multiplicity (0 drops it). Spearman, Pearson
and cosine use them exactly as if the entries were repeated (weighted average ranks, weighted moments), so a
bootstrap resample never materialises repeated entries; Kendall repeats them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._registry import Registry
from ._validation import check_square_stack
from .errors import UserInputError
from .rdm import squareform

__all__ = ["COMPARISONS", "Comparison", "compare_rdms", "compare_pair", "prepare_for", "pairwise_similarity",
           "rank_average"]


@dataclass(frozen=True)
class Comparison:
    name: str
    square_input: bool  # needs the full matrix (CKA) rather than the upper triangle
    prepare: Callable[..., np.ndarray]  # (matrix or condensed, *, kind, weights, name) -> vector
    pairwise: Callable[[np.ndarray], np.ndarray] | None = None  # (T, K) -> (T, T); None means inner products


COMPARISONS: Registry[Comparison] = Registry("comparison")


def compare_rdms(rdms: np.ndarray, *, method: str = "spearman", kind: str = "dissimilarity",
                 names: list[str] | None = None) -> np.ndarray:
    """T x T similarity of T RDMs given as (T, N, N) matrices or (T, N(N-1)/2) upper triangles.

    ``kind`` says whether the matrices are dissimilarities (RDMs) or kernels (similarities; CKA uses them as they
    are). ``names`` label the RDMs in error messages. The result is symmetric with an exact unit diagonal.
    """
    comparison = COMPARISONS.get(method)
    if kind not in ("dissimilarity", "kernel"):
        raise UserInputError(f"kind must be 'dissimilarity' or 'kernel', got '{kind}'.")
    stack = check_square_stack(rdms)
    labels = names or [f"rdm {t}" for t in range(len(stack))]
    if len(labels) != len(stack):
        raise UserInputError(f"names has {len(labels)} entries but there are {len(stack)} RDMs.")
    prepared = np.stack([prepare_for(comparison, m, kind=kind, name=labels[t]) for t, m in enumerate(stack)])
    return pairwise_similarity(comparison, prepared)


def compare_pair(a: np.ndarray, b: np.ndarray, *, method: str = "spearman", kind: str = "dissimilarity") -> float:
    """Similarity of two RDMs (square or condensed, same N)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise UserInputError(f"the two RDMs must have the same shape, got {a.shape} and {b.shape}.")
    return float(compare_rdms(np.stack([a, b]), method=method, kind=kind, names=["first RDM", "second RDM"])[0, 1])


def prepare_for(comparison: Comparison, matrix: np.ndarray, *, kind: str = "dissimilarity",
                weights: np.ndarray | None = None, order: np.ndarray | None = None, name: str = "rdm") -> np.ndarray:
    """Turn one RDM (square or condensed) into what ``comparison`` combines; used by streaming pipelines.

    ``weights`` are bootstrap multiplicities of the upper-triangle entries; ``order`` their precomputed argsort.
    """
    matrix = np.asarray(matrix)
    if comparison.square_input and matrix.ndim == 1:
        if kind == "kernel":
            raise UserInputError(f"{name}: CKA on a kernel needs the square matrix (the diagonal matters).")
        matrix = squareform(matrix)
    elif not comparison.square_input and matrix.ndim == 2:
        matrix = matrix[np.triu_indices(matrix.shape[0], 1)]
    return comparison.prepare(matrix, kind=kind, weights=weights, order=order, name=name)


def pairwise_similarity(comparison: Comparison, prepared: np.ndarray) -> np.ndarray:
    """(T, K) prepared vectors -> (T, T) similarities, symmetric, unit diagonal, within [-1, 1]."""
    if comparison.pairwise is not None:
        sim = comparison.pairwise(prepared)
    else:
        # float64 accumulation even for float32 vectors: M can be tens of millions of entries.
        p = prepared.astype(np.float64, copy=False)
        sim = p @ p.T
    sim = (sim + sim.T) / 2
    np.clip(sim, -1.0, 1.0, out=sim)
    np.fill_diagonal(sim, 1.0)
    return sim


# --- ranks ----------------------------------------------------------------------------------------------------------

def rank_average(values: np.ndarray, weights: np.ndarray | None = None, *,
                 order: np.ndarray | None = None) -> np.ndarray:
    """1-based average ranks of ``values`` (as scipy.stats.rankdata 'average'), each value counted ``weights`` times.

    With weights, a value of multiplicity w occupies w consecutive positions and gets their mean; tied values share
    the mean position of their whole group. Without ties and weights this is one argsort and a scatter; ``order``
    (``np.argsort(values)``) skips the sort when the same values are ranked under many weightings (bootstrap).
    """
    if order is None:
        order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_group = np.empty(ordered.shape, dtype=bool)
    new_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_group[1:])
    ranks = np.empty(values.shape, dtype=np.float64)
    if weights is None and new_group.all():
        ranks[order] = np.arange(1, len(values) + 1, dtype=np.float64)
        return ranks
    group = np.cumsum(new_group) - 1
    w = np.ones(len(values)) if weights is None else weights[order].astype(np.float64)
    group_weight = np.bincount(group, weights=w)
    group_end = np.cumsum(group_weight)
    ranks[order] = (group_end - (group_weight - 1) / 2)[group]
    return ranks


# --- the comparisons ------------------------------------------------------------------------------------------------

def _unit(v: np.ndarray, name: str, what: str) -> np.ndarray:
    norm = np.sqrt(v @ v)
    if not norm > 0:
        raise UserInputError(f"{name}: {what} so the comparison is undefined (all its dissimilarities are equal?).")
    return v / norm


def _standardised(v: np.ndarray, weights: np.ndarray | None, name: str, what: str) -> np.ndarray:
    kept = v if weights is None else v[weights > 0]
    if kept.size == 0 or kept.min() == kept.max():  # exactly constant: rounding in the mean would leave ~1e-16 noise
        raise UserInputError(f"{name}: {what} so the comparison is undefined (all its dissimilarities are equal?).")
    if weights is None:
        return _unit(v - v.mean(), name, what)
    w = weights.astype(np.float64)
    centred = v - (w @ v) / w.sum()
    return _unit(centred * np.sqrt(w), name, what)


def _spearman(v: np.ndarray, *, weights: np.ndarray | None = None, order: np.ndarray | None = None,
              name: str = "rdm", **_: object) -> np.ndarray:
    return _standardised(rank_average(v, weights, order=order), weights, name, "the RDM has zero variance")


def _pearson(v: np.ndarray, *, weights: np.ndarray | None = None, name: str = "rdm", **_: object) -> np.ndarray:
    return _standardised(np.asarray(v, dtype=np.float64), weights, name, "the RDM has zero variance")


def _cosine(v: np.ndarray, *, weights: np.ndarray | None = None, name: str = "rdm", **_: object) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return _unit(v if weights is None else v * np.sqrt(weights), name, "the RDM is all zeros")


def _repeat(v: np.ndarray, *, weights: np.ndarray | None = None, **_: object) -> np.ndarray:
    return np.asarray(v, dtype=np.float64) if weights is None else np.repeat(v, weights.astype(np.int64))


def _kendall_pairwise(variant: str) -> Callable[[np.ndarray], np.ndarray]:
    def pairwise(stack: np.ndarray) -> np.ndarray:
        from scipy.stats import kendalltau  # imported here: scipy.stats is slow to import and rarely needed

        t = len(stack)
        sim = np.eye(t)
        ties = [_tied_pairs(v) for v in stack] if variant == "a" else None
        m = stack.shape[1]
        n0 = m * (m - 1) / 2
        for i in range(t):
            for j in range(i + 1, t):
                tau_b = kendalltau(stack[i], stack[j], variant="b").statistic
                if variant == "a":  # tau_b * sqrt((n0 - n1)(n0 - n2)) = concordant - discordant
                    tau_b = tau_b * np.sqrt((n0 - ties[i]) * (n0 - ties[j])) / n0
                sim[i, j] = sim[j, i] = tau_b
        if not np.isfinite(sim).all():
            raise UserInputError("kendall: an RDM has all-equal entries, so tau is undefined.")
        return sim

    return pairwise


def _tied_pairs(v: np.ndarray) -> float:
    _, counts = np.unique(v, return_counts=True)
    return float((counts * (counts - 1) / 2).sum())


def _as_kernel(matrix: np.ndarray, kind: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    m = (m + m.T) / 2
    if kind == "kernel":
        return m
    centred = m - m.mean(axis=0, keepdims=True)  # -1/2 H D H, the classical-scaling kernel
    centred -= centred.mean(axis=1, keepdims=True)
    return -0.5 * centred


def _cka(matrix: np.ndarray, *, kind: str = "dissimilarity", name: str = "rdm", **_: object) -> np.ndarray:
    k = _as_kernel(matrix, kind)
    k = k - k.mean(axis=0, keepdims=True)
    k -= k.mean(axis=1, keepdims=True)
    iu = np.triu_indices(k.shape[0], 1)
    # <A, B>_F of symmetric matrices = 2 * upper . upper + diag . diag
    return _unit(np.concatenate([np.sqrt(2.0) * k[iu], np.diag(k)]), name, "the centred kernel is zero")


def _cka_debiased(matrix: np.ndarray, *, kind: str = "dissimilarity", name: str = "rdm", **_: object) -> np.ndarray:
    k = _as_kernel(matrix, kind)
    n = k.shape[0]
    if n < 4:
        raise UserInputError(f"{name}: debiased CKA needs at least 4 images, got {n}.")
    k = k.copy()
    np.fill_diagonal(k, 0.0)
    row = k.sum(axis=1)
    u = k - row[:, None] / (n - 2) - row[None, :] / (n - 2) + row.sum() / ((n - 1) * (n - 2))
    # U-centred matrices have a zero diagonal, so the upper triangle carries the whole inner product (times 2).
    return _unit(u[np.triu_indices(n, 1)], name, "the U-centred kernel is zero")


for _c in (
    Comparison("spearman", False, _spearman),
    Comparison("pearson", False, _pearson),
    Comparison("cosine", False, _cosine),
    Comparison("kendall_tau_b", False, _repeat, _kendall_pairwise("b")),
    Comparison("kendall_tau_a", False, _repeat, _kendall_pairwise("a")),
    Comparison("cka", True, _cka),
    Comparison("cka_debiased", True, _cka_debiased),
):
    COMPARISONS.register(_c.name)(_c)
