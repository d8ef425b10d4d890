"""Representational dissimilarity matrices (RDMs) and kernels from features, one matrix product per teacher.

The RSA recipe (Dwivedi & Roig, CVPR 2019): subtract each feature's mean over the N images, then
RDM[i, j] = 1 - Pearson(f_i, f_j). Pearson between two images is the dot product of their features after each row
is centred and scaled to unit norm, so the whole RDM is ``1 - Z @ Z.T`` with Z (N, D) the standardised rows.

Methods (registry ``RDM_METHODS``), for features x_i of image i after normalisation:

=============  ==========  =============================================================
correlation    dissimilar  1 - Pearson(x_i, x_j)                     (RSA default)
cosine         dissimilar  1 - x_i.x_j / (|x_i| |x_j|)               (DDS best with zscore)
euclidean      dissimilar  |x_i - x_j|
sqeuclidean    dissimilar  |x_i - x_j|^2
linear         kernel      x_i.x_j                                   (linear CKA)
rbf            kernel      exp(-|x_i - x_j|^2 / (2 s^2)),  s^2 = 0.5 * median_{i<j} |x_i - x_j|^2
laplacian      kernel      exp(-|x_i - x_j|_1 / D)                   (scikit-learn's default gamma = 1/D, as DDS)
=============  ==========  =============================================================

Numerics: normalisation and row scaling in float64; the product in the requested dtype; dissimilarities are clamped
to their valid range (no tiny negatives) and the diagonal is exactly 0 (kernels: the exact self-similarity).
Large N: the product runs in blocks of ``chunk_size`` rows, and :func:`compute_condensed_rdm` never holds N x N.
Device: ``device`` (a torch device such as "cuda"; default None: numpy) runs the blocks' products and their
conversion to dissimilarities there (:mod:`rsa_toolkit.rsa.torch_math`); the Laplacian kernel and the RBF kernel's
median and exponential stay in numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from rsa_toolkit.devices import resolve_device
from rsa_toolkit.registry import Registry
from rsa_toolkit.validation import check_dtype, check_features, check_int
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.normalize import normalize_features

__all__ = ["RDM_METHODS", "RDMMethod", "compute_rdm", "compute_condensed_rdm", "condensed_index", "squareform"]

# Block rows are chosen so that one block holds at most this many matrix entries (32 MB in float64); up to
# N = 2048 the whole matrix is one symmetric product.
_BLOCK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class RDMMethod:
    name: str
    kind: str  # "dissimilarity" or "kernel"
    prepare_rows: Callable[[np.ndarray, str], np.ndarray]  # (N, D) float64 -> rows whose products give the matrix
    from_products: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (block, norms_i, norms_j) -> values
    max_value: float = np.inf


RDM_METHODS: Registry[RDMMethod] = Registry("RDM method")


def compute_rdm(features: np.ndarray, *, method: str = "correlation", normalization: str = "center",
                dtype: type | str = np.float64, chunk_size: int | None = None, groups: int = 2,
                name: str = "features", device: object | None = None) -> np.ndarray:
    """The (N, N) RDM (or kernel, for kernel methods) of features shaped (N, ...).

    ``name`` is used in error messages (the teacher's name). See the module docstring for the methods.
    """
    spec, rows, dt, dev = _prepare(features, method, normalization, dtype, groups, name, chunk_size, device)
    if spec.name == "laplacian":
        return _laplacian(rows, dt)
    n = rows.shape[0]
    out = np.empty((n, n), dtype=dt)
    for i0, i1, block in _blocks(rows, dt, chunk_size, spec, dev):
        out[i0:i1, i0:] = block
    _mirror_upper(out)  # blocks hold columns j >= i0 only: the lower triangle is their mirror image
    if spec.name == "rbf":
        return _rbf_from_sqdist(out, _median_offdiagonal(out))
    return out


def compute_condensed_rdm(features: np.ndarray, *, method: str = "correlation", normalization: str = "center",
                          dtype: type | str = np.float64, chunk_size: int | None = None, groups: int = 2,
                          name: str = "features", out: np.ndarray | None = None,
                          device: object | None = None) -> np.ndarray:
    """The upper triangle (i < j, row by row, as ``scipy.spatial.distance.squareform``) of the RDM: (N(N-1)/2,).

    Only for dissimilarity methods (a kernel's diagonal carries information the condensed form would drop).
    Memory: one block of ``chunk_size`` x N entries besides the output; ``out`` (N(N-1)/2,) of ``dtype`` receives the
    result in place (e.g. a row of a preallocated stack, or of a memory-mapped file).
    """
    spec, rows, dt, dev = _prepare(features, method, normalization, dtype, groups, name, chunk_size, device)
    if spec.kind != "dissimilarity":
        raise UserInputError(f"method '{method}' is a kernel; condensed RDMs need a dissimilarity "
                             f"({', '.join(n for n in RDM_METHODS.names() if RDM_METHODS.get(n).kind == 'dissimilarity')}).")
    n = rows.shape[0]
    if out is None:
        out = np.empty(n * (n - 1) // 2, dtype=dt)
    elif out.shape != (n * (n - 1) // 2,) or out.dtype != dt:
        raise UserInputError(f"out must have shape ({n * (n - 1) // 2},) and dtype {dt}, got {out.shape} {out.dtype}.")
    for i0, i1, block in _blocks(rows, dt, chunk_size, spec, dev):
        for i in range(i0, min(i1, n - 1)):
            start = condensed_index(n, i, i + 1)
            out[start:start + n - i - 1] = block[i - i0, i + 1 - i0:]
    return out


def condensed_index(n: int, i: int | np.ndarray, j: int | np.ndarray) -> int | np.ndarray:
    """Position of pair (i, j), i < j, in a condensed RDM of n images."""
    return n * i - i * (i + 1) // 2 + (j - i - 1)


def squareform(condensed: np.ndarray, *, diagonal: float = 0.0) -> np.ndarray:
    """(N(N-1)/2,) -> symmetric (N, N) with the given diagonal (scipy's squareform without its checks)."""
    m = condensed.shape[0]
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    out = np.empty((n, n), dtype=condensed.dtype)
    iu = np.triu_indices(n, 1)
    out[iu] = condensed
    out.T[iu] = condensed
    np.fill_diagonal(out, diagonal)
    return out


# --- the methods --------------------------------------------------------------------------------------------------

def _unit_rows(x: np.ndarray, name: str, *, centre: bool) -> np.ndarray:
    z = x - x.mean(axis=1, keepdims=True) if centre else x
    norms = np.sqrt(np.einsum("ij,ij->i", z, z))
    bad = norms <= np.finfo(np.float64).tiny
    if bad.any():
        what = "zero variance" if centre else "zero norm"
        raise UserInputError(f"{name}: image row {int(np.flatnonzero(bad)[0])} has {what} after normalisation, "
                             "so its correlation/cosine dissimilarity is undefined; try normalization 'none' or "
                             "check that image's features.")
    return z / norms[:, None]


# The conversions below work in place on numpy arrays and torch tensors alike (the device path shares them).

def _one_minus(block: np.ndarray, _ni: np.ndarray, _nj: np.ndarray) -> np.ndarray:
    block *= -1.0  # then + 1: exactly 1 - block, in place for numpy and torch
    block += 1.0
    return block


def _sqdist(block: np.ndarray, ni: np.ndarray, nj: np.ndarray) -> np.ndarray:
    block *= -2.0
    block += ni[:, None]
    block += nj[None, :]
    return block


def _dist(block: np.ndarray, ni: np.ndarray, nj: np.ndarray) -> np.ndarray:
    block = _clip(_sqdist(block, ni, nj), 0.0, np.inf)
    return np.sqrt(block, out=block) if isinstance(block, np.ndarray) else block.sqrt_()


def _clip(block: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(block, low, high, out=block) if isinstance(block, np.ndarray) else block.clamp_(low, high)


def _zero_diagonal(block: np.ndarray) -> None:
    """Zero entries (k, k) of a block of rows i0.. over columns i0.. (the images' self-dissimilarities)."""
    if isinstance(block, np.ndarray):
        np.fill_diagonal(block, 0.0)
    else:
        block.diagonal().zero_()


def _identity(block: np.ndarray, _ni: np.ndarray, _nj: np.ndarray) -> np.ndarray:
    return block


def _register(spec: RDMMethod) -> None:
    RDM_METHODS.register(spec.name)(spec)


_register(RDMMethod("correlation", "dissimilarity", lambda x, nm: _unit_rows(x, nm, centre=True), _one_minus, 2.0))
_register(RDMMethod("cosine", "dissimilarity", lambda x, nm: _unit_rows(x, nm, centre=False), _one_minus, 2.0))
_register(RDMMethod("euclidean", "dissimilarity", lambda x, nm: x, _dist))
_register(RDMMethod("sqeuclidean", "dissimilarity", lambda x, nm: x, _sqdist))
_register(RDMMethod("linear", "kernel", lambda x, nm: x, _identity))
_register(RDMMethod("rbf", "kernel", lambda x, nm: x, _sqdist))  # squared distances; the kernel needs their median
_register(RDMMethod("laplacian", "kernel", lambda x, nm: x, _identity))  # computed by _laplacian


# --- the engine ---------------------------------------------------------------------------------------------------

def _prepare(features: np.ndarray, method: str, normalization: str, dtype: type | str, groups: int,
             name: str, chunk_size: int | None, device: object | None) -> tuple[RDMMethod, np.ndarray, np.dtype, object]:
    spec = RDM_METHODS.get(method)
    dt = check_dtype(dtype)
    if chunk_size is not None:
        check_int(chunk_size, name="chunk_size", minimum=1)  # 0 or negative would skip every block
    dev = resolve_device(device, rsa=True)
    x = check_features(features, name=name)
    x = normalize_features(x, normalization=normalization, groups=groups, name=name)
    rows = spec.prepare_rows(x.reshape(x.shape[0], -1), name)
    return spec, rows, dt, dev


def _blocks(rows: np.ndarray, dt: np.dtype, chunk_size: int | None, spec: RDMMethod,
            device: object | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (i0, i1, block) with block[k, j - i0] = matrix[i0 + k, j] for j >= i0 (the upper part of rows i0..i1),
    computed from row products, with exact diagonal and clamped range; numpy blocks, computed on ``device`` if any.

    Only columns j >= i0 are computed, so blocked products cost what the symmetric product does: half of N x N.
    """
    n = rows.shape[0]
    sq = np.einsum("ij,ij->i", rows, rows)  # squared norms in float64 first, for distance methods
    if device is None:
        z, sq = np.ascontiguousarray(rows, dtype=dt), sq.astype(dt)
    else:
        from rsa_toolkit.rsa.torch_math import as_tensor, to_numpy

        z, sq = as_tensor(rows, device, dt), as_tensor(sq, device, dt)
    step = n if chunk_size is None and n * n <= _BLOCK_ENTRIES else (chunk_size or max(1, _BLOCK_ENTRIES // n))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        # z @ z.T on the whole matrix lets BLAS use the symmetric rank-k kernel (half the flops).
        block = z @ z.T if (i0, i1) == (0, n) else z[i0:i1] @ z[i0:].T
        block = spec.from_products(block, sq[i0:i1], sq[i0:])
        if spec.kind == "dissimilarity" or spec.name == "rbf":
            _clip(block, 0.0, spec.max_value)
            _zero_diagonal(block)
        yield i0, i1, block if device is None else to_numpy(block)


def _mirror_upper(out: np.ndarray) -> None:
    """Copy the upper triangle onto the lower one in place, block by block (no N x N temporaries)."""
    n = out.shape[0]
    step = max(1, _BLOCK_ENTRIES // n)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        diag = out[i0:i1, i0:i1]
        lower = np.tril_indices(i1 - i0, -1)
        diag[lower] = diag.T[lower]
        out[i1:, i0:i1] = out[i0:i1, i1:].T


def _median_offdiagonal(square: np.ndarray) -> float:
    return float(np.median(square[np.triu_indices(square.shape[0], 1)]))


def _rbf_from_sqdist(sqdist: np.ndarray, median: float) -> np.ndarray:
    sigma2 = 0.5 * median
    if sigma2 <= 0:
        raise UserInputError("rbf kernel: the median squared distance between images is 0 (most images have "
                             "identical features), so the bandwidth is undefined.")
    sqdist *= -1.0 / (2.0 * sigma2)
    return np.exp(sqdist, out=sqdist)


def _laplacian(rows: np.ndarray, dt: np.dtype) -> np.ndarray:
    from sklearn.metrics.pairwise import manhattan_distances  # imported here: scikit-learn is slow to import

    dist = manhattan_distances(rows)
    return np.exp(-dist / rows.shape[1]).astype(dt, copy=False)
