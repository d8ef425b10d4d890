"""The task-similarity matrix: features of T teachers -> T RDMs -> T x T comparison (+ bootstrap).

Teachers are processed a few at a time (features may be memory-mapped), so memory holds those teachers' features and
matrices plus the T condensed RDMs and prepared vectors, never T full N x N matrices.

Large probe sets: when the T condensed RDMs and prepared vectors do not fit in the memory budget (``max_memory``,
default 3/4 of the available memory), they go to memory-mapped files in a scratch directory instead, and the Gram
matrix of the comparison streams from them (out-of-core mode: :mod:`rsa_toolkit.rsa.out_of_core`; the plan and its memory
model: :mod:`rsa_toolkit.rsa.memory`). Both modes compute the same numbers in the same order: with the same ``n_jobs``,
their results are identical.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rsa_toolkit.devices import resolve_device
from rsa_toolkit.validation import check_dtype, check_int
from rsa_toolkit.rsa.bootstrap import BootstrapResult, bootstrap_similarity
from rsa_toolkit.rsa.compare import COMPARISONS, Prepared, pairwise_similarity, prepare_for
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.memory import MemoryPlan, memory_budget, plan_memory
from rsa_toolkit.rsa.normalize import NORMALIZATIONS
from rsa_toolkit.rsa.out_of_core import disk_array, read_only, release_pages, scratch_directory, to_disk
from rsa_toolkit.rsa.rdm import RDM_METHODS, compute_condensed_rdm, compute_rdm

__all__ = ["SimilarityResult", "similarity_matrix"]


@dataclass(frozen=True)
class SimilarityResult:
    names: list[str]
    matrix: np.ndarray  # (T, T), symmetric, unit diagonal
    # (T, N(N-1)/2) condensed RDMs (a kernel K as 1 - K), or (T, N, N) for CKA; out of core a read-only memory map;
    # None when not kept (keep_rdms)
    rdms: np.ndarray | None
    n_images: int
    method: str
    normalization: str
    comparison: str
    layer: str | None = None
    bootstrap: BootstrapResult | None = None
    memory: MemoryPlan | None = None  # how it ran: in memory or out of core, teachers at once

    @property
    def kind(self) -> str:
        """What ``rdms`` holds: "kernel" (square kernels for CKA) or "dissimilarity"."""
        kernel = RDM_METHODS.get(self.method).kind == "kernel"
        return "kernel" if kernel and COMPARISONS.get(self.comparison).square_input else "dissimilarity"


def similarity_matrix(features: Mapping[str, np.ndarray] | Sequence[np.ndarray], *, names: Sequence[str] | None = None,
                      method: str = "correlation", normalization: str = "center", comparison: str = "spearman",
                      dtype: type | str = np.float64, chunk_size: int | None = None, groups: int = 2,
                      n_bootstrap: int = 0, confidence: float = 0.95, seed: int = 0, layer: str | None = None,
                      n_jobs: int | None = None, progress: bool = False, device: object | None = None,
                      max_memory: int | str | None = None, out_of_core: bool | None = None,
                      scratch: str | os.PathLike[str] | None = None,
                      keep_rdms: bool | None = None) -> SimilarityResult:
    """T x T similarity of T teachers' representations of the same N probe images (same order in every teacher).

    ``features``: a mapping name -> (N, ...) array (e.g. memory-mapped ``.npy``), or a sequence with ``names``.
    Defaults follow the RSA paper: per-feature centring, 1 - Pearson RDMs, Spearman comparison.
    ``n_bootstrap`` > 0 adds percentile confidence intervals and row stability (see :mod:`rsa_toolkit.rsa.bootstrap`).
    ``n_jobs`` teachers are processed at once (default: one per CPU core; one with a ``device``), fewer when the
    memory budget requires it. Results do not depend on ``n_jobs`` beyond the last bits of the matrix products.

    Large probe sets: ``max_memory`` (this process's peak, in bytes or as a size such as "8G"; default 3/4 of the
    available memory) decides between the in-memory and the out-of-core mode; ``out_of_core`` True or False forces
    one. Out of core, RDMs and prepared vectors go to a fresh directory inside ``scratch`` (default: the system temp
    directory), removed at the end; Spearman, Pearson and cosine only, without bootstrap. ``keep_rdms`` (default:
    in memory yes, out of core no, as T RDMs of 20,000 images fill 16-32 GB) keeps the RDMs in the result, out of
    core as a read-only memory map whose disk space is freed with the result. ``result.memory`` says how it ran.

    ``device``: None (numpy) or a torch device such as "cuda" for the RDM products, Spearman's ranks and the Gram
    product (:mod:`rsa_toolkit.rsa.torch_math`; "cpu" runs torch on the CPU and matches numpy to rounding).
    """
    from rsa_toolkit.progress import progress as progress_lines

    names, arrays = _check_teachers(features, names)
    spec = RDM_METHODS.get(method)
    NORMALIZATIONS.get(normalization)
    comp = COMPARISONS.get(comparison)
    dt = check_dtype(dtype)
    if n_jobs is not None:
        check_int(n_jobs, name="n_jobs", minimum=1)
    dev = resolve_device(device, rsa=True)
    t, n = len(names), arrays[0].shape[0]
    jobs = n_jobs or (1 if dev is not None else min(t, os.cpu_count() or 1))
    plan = plan_memory(t, n, max(int(np.prod(a.shape[1:])) for a in arrays), method=method, comparison=comparison,
                       dtype=dt, n_bootstrap=n_bootstrap, n_jobs=jobs, budget=memory_budget(max_memory),
                       out_of_core=out_of_core, keep_rdms=keep_rdms)
    square = comp.square_input
    # A kernel under a correlation comparison is compared as the dissimilarity 1 - K off the diagonal, as DDS does
    # (Dwivedi et al. 2020, z-score + Laplacian kernel); CKA reads the whole kernel, diagonal included.
    kernel_as_rdm = spec.kind == "kernel" and not square
    kind = "dissimilarity" if kernel_as_rdm else spec.kind
    shape = (n, n) if square else (n * (n - 1) // 2,)
    options = dict(method=method, normalization=normalization, dtype=dt, chunk_size=chunk_size, groups=groups,
                   device=dev)

    with contextlib.ExitStack() as cleanup:
        folder = cleanup.enter_context(scratch_directory(scratch, need=plan.disk)) if plan.out_of_core else None
        # One preallocated stack (in memory, or a file), filled teacher by teacher, when the RDMs are kept; prepared
        # vectors reference its rows or are compact (see compare).
        stack = None
        if plan.keep_rdms or n_bootstrap:
            stack = disk_array(folder / "rdms.npy", (t, *shape), dt) if folder else np.empty((t, *shape), dtype=dt)

        def one_teacher(i: int) -> Prepared:
            rdm = stack[i] if stack is not None else np.empty(shape, dtype=dt)
            if square:
                rdm[...] = compute_rdm(arrays[i], name=names[i], **options)
            elif kernel_as_rdm:
                rdm[...] = 1.0 - compute_rdm(arrays[i], name=names[i], **options)[np.triu_indices(n, 1)]
            else:
                compute_condensed_rdm(arrays[i], out=rdm, name=names[i], **options)
            release_pages(arrays[i])
            prepared = prepare_for(comp, rdm, kind=kind, name=names[i], device=dev)
            if folder is not None:
                prepared = _on_disk(prepared, folder / f"prepared_{i}.npy")
                release_pages(rdm)
            return prepared

        prepared = list(progress_lines(_map(one_teacher, range(t), plan.n_jobs), total=t, desc="RDMs",
                                       unit="teacher", enabled=progress))
        matrix = pairwise_similarity(comp, prepared, device=dev)
        del prepared
        boot = None
        if n_bootstrap:
            boot = bootstrap_similarity(stack, matrix, comparison=comparison, kind=kind, n_bootstrap=n_bootstrap,
                                        confidence=confidence, seed=seed, names=names, progress=progress)
        rdms = None
        if plan.keep_rdms:
            rdms = read_only(stack) if folder else stack
    return SimilarityResult(names, matrix, rdms, n, method, normalization, comparison, layer, boot, plan)


def _on_disk(prepared: Prepared, path: Path) -> Prepared:
    """The prepared vector backed by a file: as it is when it already is one (a row of the RDM file), else written
    out and mapped back, so the in-memory copy can go."""
    if isinstance(prepared.values, np.memmap):
        return prepared
    return replace(prepared, values=to_disk(prepared.values, path))


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
