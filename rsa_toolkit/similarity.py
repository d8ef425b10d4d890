"""The task-similarity matrix: features of T teachers -> T RDMs -> T x T comparison (+ bootstrap).

Teachers are processed one at a time (features may be memory-mapped), so memory holds one teacher's features and
matrix plus the T prepared vectors, never T full N x N matrices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._validation import check_dtype
from .bootstrap import BootstrapResult, bootstrap_similarity
from .compare import COMPARISONS, pairwise_similarity, prepare_for
from .errors import UserInputError
from .normalize import NORMALIZATIONS
from .rdm import RDM_METHODS, compute_condensed_rdm, compute_rdm

__all__ = ["SimilarityResult", "similarity_matrix"]


@dataclass(frozen=True)
class SimilarityResult:
    names: list[str]
    matrix: np.ndarray  # (T, T), symmetric, unit diagonal
    rdms: np.ndarray  # (T, N(N-1)/2) condensed RDMs, or (T, N, N) for kernel methods
    n_images: int
    method: str
    normalization: str
    comparison: str
    layer: str | None = None
    bootstrap: BootstrapResult | None = None

    @property
    def kind(self) -> str:
        return RDM_METHODS.get(self.method).kind


def similarity_matrix(features: Mapping[str, np.ndarray] | Sequence[np.ndarray], *, names: Sequence[str] | None = None,
                      method: str = "correlation", normalization: str = "center", comparison: str = "spearman",
                      dtype: type | str = np.float64, chunk_size: int | None = None, groups: int = 2,
                      n_bootstrap: int = 0, confidence: float = 0.95, seed: int = 0, layer: str | None = None,
                      progress: bool = False) -> SimilarityResult:
    """T x T similarity of T teachers' representations of the same N probe images (same order in every teacher).

    ``features``: a mapping name -> (N, ...) array (e.g. memory-mapped ``.npy``), or a sequence with ``names``.
    Defaults follow the RSA paper: per-feature centring, 1 - Pearson RDMs, Spearman comparison.
    ``n_bootstrap`` > 0 adds percentile confidence intervals and row stability (see :mod:`rsa_toolkit.bootstrap`).
    """
    from tqdm.auto import tqdm

    names, arrays = _check_teachers(features, names)
    spec = RDM_METHODS.get(method)
    NORMALIZATIONS.get(normalization)
    comp = COMPARISONS.get(comparison)
    dt = check_dtype(dtype)
    if comp.square_input is False and spec.kind == "kernel":
        raise UserInputError(f"method '{method}' is a kernel; compare kernels with cka or cka_debiased, or pick a "
                             "dissimilarity method (correlation, cosine, euclidean, sqeuclidean) for "
                             f"'{comparison}'.")
    square = spec.kind == "kernel" or comp.square_input
    rdms, prepared = [], []
    for name, x in tqdm(list(zip(names, arrays)), desc="RDMs", disable=not progress, leave=False):
        kwargs = dict(method=method, normalization=normalization, dtype=dt, chunk_size=chunk_size, groups=groups,
                      name=name)
        rdm = compute_rdm(x, **kwargs) if square else compute_condensed_rdm(x, **kwargs)
        prepared.append(prepare_for(comp, rdm, kind=spec.kind, name=name).astype(dt, copy=False))
        rdms.append(rdm)
    matrix = pairwise_similarity(comp, np.stack(prepared))
    del prepared
    rdm_stack = np.stack(rdms)
    boot = None
    if n_bootstrap:
        boot = bootstrap_similarity(rdm_stack, matrix, comparison=comparison, kind=spec.kind, n_bootstrap=n_bootstrap,
                                    confidence=confidence, seed=seed, names=names, progress=progress)
    return SimilarityResult(names, matrix, rdm_stack, arrays[0].shape[0], method, normalization, comparison, layer,
                            boot)


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
