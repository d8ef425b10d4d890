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

Memory: a prepared vector is stored compactly as u = scale * (values - offset): Spearman keeps doubled average ranks
as integers (exact, 4 bytes per entry), Pearson and cosine keep a reference to the RDM itself (no copy). The Gram
matrix is accumulated in float64 over chunks of entries, so T x M float64 unit vectors never exist at once; prepared
vectors may be memory-mapped files (:mod:`rsa_toolkit.rsa.out_of_core`), whose pages are released chunk by chunk.
Ranking (:mod:`rsa_toolkit.rsa.average_ranks`) needs its sorted keys (8 bytes per entry) and the ranks.

Device: with ``device`` (a torch device, e.g. "cuda"), Spearman's ranks (unweighted) and the Gram product run there
(:mod:`rsa_toolkit.rsa.torch_math`); the moments, weighted ranks (bootstrap), Kendall's tau and CKA stay in numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rsa_toolkit.devices import resolve_device
from rsa_toolkit.registry import Registry
from rsa_toolkit.validation import check_square_stack
from rsa_toolkit.rsa.average_ranks import doubled_ranks_and_spread, rank_average
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.out_of_core import CHUNK_BYTES, DEFAULT_SHARE, available_memory, release_pages
from rsa_toolkit.rsa.rdm import squareform

__all__ = ["COMPARISONS", "Comparison", "Prepared", "compare_rdms", "compare_pair", "prepare_for", "prepare_all",
           "pairwise_similarity", "rank_average"]

_GRAM_CHUNK = 1 << 16  # entries per chunk of the Gram accumulation: T x 65,536 float64 = 10 MB for T = 20
_MOMENT_CHUNK = 1 << 20  # entries per chunk of a mean or norm: 8 MB of float64


@dataclass(frozen=True)
class Prepared:
    """One RDM ready for comparison: the unit vector u = scale * (values - offset), stored compactly."""

    values: np.ndarray  # (K,) integer doubled ranks, the RDM itself, or float64 entries
    offset: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class Comparison:
    name: str
    square_input: bool  # needs the full matrix (CKA) rather than the upper triangle
    prepare: Callable[..., Prepared]  # (matrix or condensed, *, kind, weights, order, name, device) -> Prepared
    # (prepared list, weights) -> (T, T); None means the inner products of the unit vectors
    pairwise: Callable[[list[Prepared], np.ndarray | None], np.ndarray] | None = None


COMPARISONS: Registry[Comparison] = Registry("comparison")


def compare_rdms(rdms: np.ndarray, *, method: str = "spearman", kind: str = "dissimilarity",
                 names: list[str] | None = None, device: object | None = None) -> np.ndarray:
    """T x T similarity of T RDMs given as (T, N, N) matrices or (T, N(N-1)/2) upper triangles.

    ``kind`` says whether the matrices are dissimilarities (RDMs) or kernels (similarities; CKA uses them as they
    are). ``names`` label the RDMs in error messages. The result is symmetric with an exact unit diagonal.
    ``device`` (a torch device such as "cuda"; default None: numpy) runs the ranks and the Gram product there.
    """
    comparison = COMPARISONS.get(method)
    device = resolve_device(device, rsa=True)
    if kind not in ("dissimilarity", "kernel"):
        raise UserInputError(f"kind must be 'dissimilarity' or 'kernel', got '{kind}'.")
    stack = check_square_stack(rdms)
    labels = names or [f"rdm {t}" for t in range(len(stack))]
    if len(labels) != len(stack):
        raise UserInputError(f"names has {len(labels)} entries but there are {len(stack)} RDMs.")
    prepared = prepare_all(comparison, stack, kind=kind, names=labels, device=device)
    return pairwise_similarity(comparison, prepared, device=device)


def compare_pair(a: np.ndarray, b: np.ndarray, *, method: str = "spearman", kind: str = "dissimilarity",
                 device: object | None = None) -> float:
    """Similarity of two RDMs (square or condensed, same N)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise UserInputError(f"the two RDMs must have the same shape, got {a.shape} and {b.shape}.")
    return float(compare_rdms(np.stack([a, b]), method=method, kind=kind, names=["first RDM", "second RDM"],
                              device=device)[0, 1])


def prepare_for(comparison: Comparison, matrix: np.ndarray, *, kind: str = "dissimilarity",
                weights: np.ndarray | None = None, order: np.ndarray | None = None, name: str = "rdm",
                device: object | None = None) -> Prepared:
    """Turn one RDM (square or condensed) into what ``comparison`` combines; used by streaming pipelines.

    ``weights`` are bootstrap multiplicities of the upper-triangle entries (pass the same to
    :func:`pairwise_similarity`); ``order`` their precomputed argsort. ``device`` (a checked torch device, or None
    for numpy) ranks there when there are no weights.
    """
    matrix = np.asarray(matrix)
    if comparison.square_input and matrix.ndim == 1:
        if kind == "kernel":
            raise UserInputError(f"{name}: CKA on a kernel needs the square matrix (the diagonal matters).")
        matrix = squareform(matrix)
    elif not comparison.square_input and matrix.ndim == 2:
        matrix = matrix[np.triu_indices(matrix.shape[0], 1)]
    return comparison.prepare(matrix, kind=kind, weights=weights, order=order, name=name, device=device)


def prepare_all(comparison: Comparison, rdms: np.ndarray, *, kind: str = "dissimilarity", names: list[str],
                device: object | None = None) -> list[Prepared]:
    """:func:`prepare_for` of each RDM in ``rdms``; without a device and for the comparisons of the upper triangle,
    RDMs of at least ``_GRAM_CHUNK`` entries in threads (numpy's sorts release the GIL), one BLAS thread each: one per
    CPU core, as many as the available memory allows for Spearman's ranking temporaries (8 bytes per entry per RDM in
    flight)."""
    def one(t: int) -> Prepared:
        return prepare_for(comparison, rdms[t], kind=kind, name=names[t], device=device)

    small = np.size(rdms[0]) < _GRAM_CHUNK  # threads cost more than they save
    jobs = 1 if device is not None or comparison.square_input or small else min(len(rdms), os.cpu_count() or 1)
    if jobs > 1 and comparison.name == "spearman":
        free = available_memory()
        if free is not None:
            jobs = max(1, min(jobs, int(DEFAULT_SHARE * free) // (8 * np.size(rdms[0]) + CHUNK_BYTES)))
    if jobs <= 1:
        return [one(t) for t in range(len(rdms))]
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, range(len(rdms))))


def pairwise_similarity(comparison: Comparison, prepared: list[Prepared], *, weights: np.ndarray | None = None,
                        device: object | None = None) -> np.ndarray:
    """T prepared RDMs -> (T, T) similarities, symmetric, unit diagonal, within [-1, 1].

    ``device`` (a checked torch device, or None for numpy) runs the Gram product there.
    """
    if comparison.pairwise is not None:
        sim = comparison.pairwise(prepared, weights)
    else:
        sim = _gram(prepared, weights, device)
    sim = (sim + sim.T) / 2
    np.clip(sim, -1.0, 1.0, out=sim)
    np.fill_diagonal(sim, 1.0)
    return sim


def _gram(prepared: list[Prepared], weights: np.ndarray | None, device: object | None = None) -> np.ndarray:
    # One BLAS thread: a (T x chunk) @ (chunk x T) product is too small to split, and multi-threaded OpenBLAS turns
    # its per-call thread hand-offs into large slowdowns when the cores are busy (measured: 0.2-0.3 s vs 1.7-16 s
    # for 20 teachers x 2,000 images on 2 shared cores), with bit-identical results.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _gram_chunks(prepared, weights, device)


def _gram_chunks(prepared: list[Prepared], weights: np.ndarray | None, device: object | None = None) -> np.ndarray:
    t, k = len(prepared), len(prepared[0].values)
    offset = np.array([p.offset for p in prepared])[:, None]
    scale = np.array([p.scale for p in prepared])[:, None]
    root_w = None if weights is None else np.sqrt(weights.astype(np.float64))
    gram = np.zeros((t, t))
    if device is None:
        outer = _outer
    else:
        from rsa_toolkit.rsa.torch_math import outer_product

        outer = outer_product(device)
    block = np.empty((t, min(k, _GRAM_CHUNK)))
    for k0 in range(0, k, _GRAM_CHUNK):
        k1 = min(k, k0 + _GRAM_CHUNK)
        chunk = block[:, : k1 - k0]
        for row, p in zip(chunk, prepared):
            values = p.values[k0:k1]
            row[:] = values
            release_pages(values)  # a memory-mapped vector leaves the resident set as it streams by
        chunk -= offset
        chunk *= scale
        if root_w is not None:
            chunk *= root_w[k0:k1]
        gram += outer(chunk)
    return gram


def _outer(chunk: np.ndarray) -> np.ndarray:
    return chunk @ chunk.T


# --- the comparisons ------------------------------------------------------------------------------------------------

def _standardised(values: np.ndarray, weights: np.ndarray | None, name: str, what: str, *,
                  centre: bool = True) -> Prepared:
    """Prepared form of (values - weighted mean) / weighted norm, moments in float64."""
    kept = values if weights is None else values[weights > 0]
    if kept.size == 0 or (centre and kept.min() == kept.max()):
        # exactly constant: rounding in the mean would otherwise leave ~1e-16 noise to normalise
        raise UserInputError(f"{name}: {what} so the comparison is undefined (all its dissimilarities are equal?).")
    offset = _weighted_sum(values, weights, lambda v: v) / _total_weight(values, weights) if centre else 0.0
    sq_norm = _weighted_sum(values, weights, lambda v: np.square(v - offset))
    if not sq_norm > 0:
        raise UserInputError(f"{name}: {what} so the comparison is undefined (all its dissimilarities are equal?).")
    return Prepared(values, offset, 1.0 / np.sqrt(sq_norm))


def _weighted_sum(values: np.ndarray, weights: np.ndarray | None,
                  fn: Callable[[np.ndarray], np.ndarray]) -> float:
    """sum_k w_k fn(v_k) in float64, over chunks: no full-length float64 temporaries for tens of millions of entries."""
    total = 0.0
    for k0 in range(0, len(values), _MOMENT_CHUNK):
        chunk = fn(values[k0:k0 + _MOMENT_CHUNK].astype(np.float64))
        total += float(chunk.sum() if weights is None else weights[k0:k0 + _MOMENT_CHUNK] @ chunk)
    return total


def _total_weight(values: np.ndarray, weights: np.ndarray | None) -> float:
    return float(len(values) if weights is None else weights.sum())


def _spearman(v: np.ndarray, *, weights: np.ndarray | None = None, order: np.ndarray | None = None,
              name: str = "rdm", device: object | None = None, **_: object) -> Prepared:
    # the mean and spread of the ranks come from their tie groups: no pass over the ranks
    if device is not None and weights is None and order is None:
        from rsa_toolkit.rsa.torch_math import doubled_ranks_and_spread as on_device

        ranks, mean, spread = on_device(v, device)
    else:
        ranks, mean, spread = doubled_ranks_and_spread(v, weights, order=order)
    if not spread > 0:
        raise UserInputError(f"{name}: the RDM has zero variance so the comparison is undefined (all its "
                             f"dissimilarities are equal?).")
    return Prepared(ranks, float(mean), 1.0 / np.sqrt(spread))


def _pearson(v: np.ndarray, *, weights: np.ndarray | None = None, name: str = "rdm", **_: object) -> Prepared:
    return _standardised(v, weights, name, "the RDM has zero variance")


def _cosine(v: np.ndarray, *, weights: np.ndarray | None = None, name: str = "rdm", **_: object) -> Prepared:
    return _standardised(v, weights, name, "the RDM is all zeros", centre=False)


def _raw(v: np.ndarray, **_: object) -> Prepared:
    return Prepared(np.asarray(v))


def _unit(v: np.ndarray, name: str, what: str) -> Prepared:
    norm = np.sqrt(v @ v)
    if not norm > 0:
        raise UserInputError(f"{name}: {what} so the comparison is undefined (all its dissimilarities are equal?).")
    return Prepared(v, 0.0, 1.0 / norm)


def _kendall_pairwise(variant: str) -> Callable[[list[Prepared], np.ndarray | None], np.ndarray]:
    def pairwise(prepared: list[Prepared], weights: np.ndarray | None) -> np.ndarray:
        from scipy.stats import kendalltau  # imported here: scipy.stats is slow to import and rarely needed

        # Kendall's tau has no weighted form in scipy: repeat each entry by its multiplicity.
        stack = [p.values if weights is None else np.repeat(p.values, weights.astype(np.int64)) for p in prepared]
        t = len(stack)
        sim = np.eye(t)
        ties = [_tied_pairs(v) for v in stack] if variant == "a" else None
        m = len(stack[0])
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
    Comparison("kendall_tau_b", False, _raw, _kendall_pairwise("b")),
    Comparison("kendall_tau_a", False, _raw, _kendall_pairwise("a")),
    Comparison("cka", True, _cka),
    Comparison("cka_debiased", True, _cka_debiased),
):
    COMPARISONS.register(_c.name)(_c)
