"""The RSA math on a torch device (a GPU): the RDM's matrix products, Spearman's average ranks and the comparison's
Gram matrix, with numpy arrays in and out.

numpy is the default everywhere (``device=None``). A torch device ("cuda", "cuda:1"; "cpu" runs torch on the CPU,
which is how the tests check this path against numpy) takes the heavy parts: the O(N^2 D) products of
:func:`rsa_toolkit.rsa.rdm.compute_rdm` / :func:`~rsa_toolkit.rsa.rdm.compute_condensed_rdm`, the O(M log M) sort behind
Spearman's ranks and the O(T^2 M) Gram product of :func:`rsa_toolkit.rsa.compare.pairwise_similarity`. The O(N D) feature
checks and normalisation, the condensed copy and the moments stay in numpy. Results equal the numpy path's up to the
rounding of the products (~1e-15 relative in float64); ranks are exact integers, equal to numpy's (and to
``scipy.stats.rankdata(method='average')``, doubled) for equal RDM entries.

No torch path, so numpy even with a device: the Laplacian kernel's L1 distances and the RBF kernel's median,
weighted ranks (bootstrap), Kendall's tau and CKA's centring.

Device memory: the features and one block of the product (``chunk_size`` x N entries); for the ranks, one teacher's
whole upper triangle sorted with its indices, about 40 bytes per entry (8 GB at N = 20,000 images).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["as_tensor", "to_numpy", "doubled_ranks_and_spread", "outer_product"]


def as_tensor(x: np.ndarray, device: torch.device, dtype: np.dtype | None = None) -> torch.Tensor:
    """``x`` on ``device`` (on the CPU without a copy when it is contiguous and of ``dtype``)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    with warnings.catch_warnings():
        # torch warns that it cannot share a read-only array's memory safely; nothing here writes to its inputs.
        warnings.simplefilter("ignore", UserWarning)
        return torch.as_tensor(x, device=device)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.cpu().numpy()


def doubled_ranks_and_spread(values: np.ndarray, device: torch.device) -> tuple[np.ndarray, int, float]:
    """(doubled ranks, their mean n + 1, their sum of squared deviations from it), the torch twin of
    :func:`rsa_toolkit.rsa.average_ranks.doubled_ranks_and_spread` without weights: ranks are twice the 1-based
    average ranks (ties share their mean position) as exact integers of the same dtype (int32 when it fits). The
    spread comes from the tie groups, (n^3 - n - sum over groups of g^3 - g) / 3, so the host makes no pass over the
    ranks (four passes of a whole upper triangle per teacher before)."""
    n = len(values)
    sorted_values, order = torch.sort(as_tensor(values, device))
    _, counts = torch.unique_consecutive(sorted_values, return_counts=True)
    del sorted_values
    ends = torch.cumsum(counts, 0)  # 1-based last position of each tie group
    dtype = torch.int32 if 2 * n + 1 < np.iinfo(np.int32).max else torch.int64
    ranks = torch.empty(n, dtype=dtype, device=order.device)
    # mean position of a group of g entries ending at e: e - (g - 1) / 2, doubled: 2e - g + 1
    ranks[order] = torch.repeat_interleave((2 * ends - counts + 1).to(dtype), counts)
    if len(counts) <= 1:
        return to_numpy(ranks), n + 1, 0.0  # all tied (or empty): exactly no spread
    g = counts[counts > 1].to(torch.float64)  # g^3 - g overflows int64 from g ~ 2e6 on; float64 is exact to 2^53
    ties = float(torch.sum(g * g * g - g)) if len(g) else 0.0
    return to_numpy(ranks), n + 1, (n ** 3 - n - ties) / 3


def outer_product(device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    """A function (T, K) float64 chunk -> its (T, T) Gram matrix, computed on ``device``."""
    def outer(chunk: np.ndarray) -> np.ndarray:
        c = as_tensor(chunk, device)
        return to_numpy(c @ c.T)

    return outer
