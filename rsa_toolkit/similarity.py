"""The task-similarity matrix: features of T teachers -> T RDMs -> T x T comparison (+ bootstrap).

Teachers are processed one at a time (features may be memory-mapped), so memory holds one teacher's features and
matrix plus the T prepared vectors, never T full N x N matrices.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._validation import check_dtype, check_positive_int
from .bootstrap import BootstrapResult, bootstrap_similarity
from .compare import COMPARISONS, Prepared, pairwise_similarity, prepare_for
from .errors import UserInputError
from .normalize import NORMALIZATIONS
from .rdm import RDM_METHODS, compute_condensed_rdm, compute_rdm

__all__ = ["SimilarityResult", "similarity_matrix"]


@dataclass(frozen=True)
class SimilarityResult:
    names: list[str]
    matrix: np.ndarray  # (T, T), symmetric, unit diagonal
    rdms: np.ndarray  # (T, N(N-1)/2) condensed RDMs (a kernel K as 1 - K), or (T, N, N) for CKA
    n_images: int
    method: str
    normalization: str
    comparison: str
    layer: str | None = None
    bootstrap: BootstrapResult | None = None

    @property
    def kind(self) -> str:
        """What ``rdms`` holds: "kernel" (square kernels for CKA) or "dissimilarity"."""
        kernel = RDM_METHODS.get(self.method).kind == "kernel"
        return "kernel" if kernel and COMPARISONS.get(self.comparison).square_input else "dissimilarity"


def similarity_matrix(features: Mapping[str, np.ndarray] | Sequence[np.ndarray], *, names: Sequence[str] | None = None,
                      method: str = "correlation", normalization: str = "center", comparison: str = "spearman",
                      dtype: type | str = np.float64, chunk_size: int | None = None, groups: int = 2,
                      n_bootstrap: int = 0, confidence: float = 0.95, seed: int = 0, layer: str | None = None,
                      n_jobs: int | None = None, progress: bool = False) -> SimilarityResult:
    """T x T similarity of T teachers' representations of the same N probe images (same order in every teacher).

    ``features``: a mapping name -> (N, ...) array (e.g. memory-mapped ``.npy``), or a sequence with ``names``.
    Defaults follow the RSA paper: per-feature centring, 1 - Pearson RDMs, Spearman comparison.
    ``n_bootstrap`` > 0 adds percentile confidence intervals and row stability (see :mod:`rsa_toolkit.bootstrap`).
    ``n_jobs`` teachers are processed at once (default: one per CPU core); memory grows by one teacher's working set
    per job. Results do not depend on ``n_jobs`` beyond the last bits of the matrix products.
    """
    from tqdm.auto import tqdm

    names, arrays = _check_teachers(features, names)
    spec = RDM_METHODS.get(method)
    NORMALIZATIONS.get(normalization)
    comp = COMPARISONS.get(comparison)
    dt = check_dtype(dtype)
    if n_jobs is not None:
        check_positive_int(n_jobs, name="n_jobs")
    square = comp.square_input
    # A kernel under a correlation comparison is compared as the dissimilarity 1 - K off the diagonal, as DDS does
    # (Dwivedi et al. 2020, z-score + Laplacian kernel); CKA reads the whole kernel, diagonal included.
    kernel_as_rdm = spec.kind == "kernel" and not square
    kind = "dissimilarity" if kernel_as_rdm else spec.kind
    n = arrays[0].shape[0]
    # One preallocated stack, filled teacher by teacher; prepared vectors reference it or are compact (see compare).
    rdm_stack = np.empty((len(names), n, n) if square else (len(names), n * (n - 1) // 2), dtype=dt)

    def one_teacher(t: int) -> Prepared:
        kwargs = dict(method=method, normalization=normalization, dtype=dt, chunk_size=chunk_size, groups=groups,
                      name=names[t])
        if square:
            rdm_stack[t] = compute_rdm(arrays[t], **kwargs)
        elif kernel_as_rdm:
            rdm_stack[t] = 1.0 - compute_rdm(arrays[t], **kwargs)[np.triu_indices(n, 1)]
        else:
            compute_condensed_rdm(arrays[t], out=rdm_stack[t], **kwargs)
        _release_pages(arrays[t])
        return prepare_for(comp, rdm_stack[t], kind=kind, name=names[t])

    prepared = list(tqdm(_map(one_teacher, range(len(names)), n_jobs), total=len(names), desc="RDMs",
                         disable=not progress, leave=False))
    matrix = pairwise_similarity(comp, prepared)
    del prepared
    boot = None
    if n_bootstrap:
        boot = bootstrap_similarity(rdm_stack, matrix, comparison=comparison, kind=kind, n_bootstrap=n_bootstrap,
                                    confidence=confidence, seed=seed, names=names, progress=progress)
    return SimilarityResult(names, matrix, rdm_stack, arrays[0].shape[0], method, normalization, comparison, layer,
                            boot)


def _release_pages(x: np.ndarray) -> None:
    """Drop a read-only memory-mapped teacher's pages from this process once its RDM is done.

    The pages stay in the OS page cache (a later read costs no disk access) but leave this process's resident set,
    so peak memory holds the teachers being processed, not every teacher read so far.
    """
    if not (isinstance(x, np.memmap) and x.mode == "r" and hasattr(mmap, "MADV_DONTNEED")):
        return
    base = x.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None:
        base.madvise(mmap.MADV_DONTNEED)


def _map(fn: Callable[[int], Prepared], items: range, n_jobs: int | None) -> Iterator[Prepared]:
    """fn over items, in order; with several jobs, teachers run in threads with one BLAS thread each.

    Half of a teacher's time is single-threaded (sorting for ranks, element-wise passes), so one teacher per core
    beats one teacher at a time with a multi-threaded matrix product (measured: 5.5 s vs 8.8 s for 20 teachers x
    2,000 images on 2 cores). numpy releases the GIL in all of these.
    """
    jobs = min(len(items), os.cpu_count() or 1) if n_jobs is None else n_jobs
    if jobs <= 1:
        yield from map(fn, items)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), ThreadPoolExecutor(jobs) as pool:
        yield from pool.map(fn, items)


def _check_teachers(features: Mapping[str, np.ndarray] | Sequence[np.ndarray],
                    names: Sequence[str] | None) -> tuple[list[str], list[np.ndarray]]:
    if isinstance(features, Mapping):
        if names is not None:
            raise UserInputError("give names either as the mapping's keys or through names=, not both.")
        names, arrays = [str(k) for k in features], list(features.values())
    else:
        arrays = list(features)
        names = [f"teacher_{i}" for i in range(len(arrays))] if names is None else [str(n) for n in names]
        if len(names) != len(arrays):
            raise UserInputError(f"names has {len(names)} entries but there are {len(arrays)} feature arrays.")
    if len(arrays) < 2:
        raise UserInputError(f"need at least two teachers to compare, got {len(arrays)}.")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise UserInputError(f"teacher names must be unique; repeated: {', '.join(dup)}.")
    arrays = [a if hasattr(a, "shape") else np.asarray(a) for a in arrays]
    sizes = {name: (a.shape[0] if a.ndim else 0) for name, a in zip(names, arrays)}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise UserInputError(f"all teachers must see the same N probe images; got N = {listing}.")
    return names, arrays
