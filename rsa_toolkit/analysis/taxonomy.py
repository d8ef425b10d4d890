"""How a task-similarity matrix compares with the pattern of the RSA paper's Taskonomy matrix.

Dwivedi & Roig (CVPR 2019, Fig. 3) find the 20 Taskonomy tasks grouped by type: 3D tasks resemble each other, 2D
tasks resemble each other, semantic tasks resemble each other, and depth_zbuffer and depth_euclidean are each
other's nearest neighbours. :func:`pattern_checks` tests exactly these statements on any matrix whose names are
tasks (aliases accepted), so a new zoo (our mini-Taskonomy, a user's retrained zoo) can be compared with the paper.

A cluster check is a one-sided permutation test (:func:`cluster_permutation_test`). The statistic for type τ is
d(τ) = mean similarity between two distinct tasks of τ − mean similarity between a task of τ and a task of another
type (diagonal excluded; the contrast of :func:`type_contrast`). The null permutes the type labels over the tasks
present; d(τ) depends only on which k tasks carry τ, so the null distribution is uniform over the C(n, k) k-subsets.
When C(n, k) ≤ ``n_permutations`` every subset is enumerated and p = #{subsets with d ≥ d_obs} / C(n, k) (exact;
the observed subset counts itself). Otherwise ``n_permutations`` seeded random permutations are drawn and
p = (1 + #{d ≥ d_obs}) / (1 + n_permutations) (Phipson & Smyth 2010). "≥" allows a tolerance of 1e-12 for float
ties. A cluster check *holds* only when p < ``alpha`` (0.05). Note the smallest p a type of k of n tasks can reach is
1 / C(n, k): two tasks of seven (1/21 = 0.048) can barely reach 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import get_task, resolve_task

__all__ = ["Check", "type_contrast", "nearest_neighbours", "pattern_checks", "cluster_permutation_test",
           "CLUSTER_TYPES", "N_PERMUTATIONS", "ALPHA"]

CLUSTER_TYPES = ("3D", "2D", "semantic")  # the groups the paper's matrix shows; low-dim geometric has 2 tasks


N_PERMUTATIONS = 10_000
ALPHA = 0.05


@dataclass(frozen=True)
class Check:
    """One statement about the matrix; ``statistic`` and ``p_value`` for the cluster checks (None for the
    nearest-neighbour check, which is a plain observation)."""

    statement: str
    holds: bool
    detail: str
    statistic: float | None = None
    p_value: float | None = None
    exact: bool | None = None  # True: every label subset enumerated; False: seeded Monte Carlo


def _named(matrix: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    s = np.asarray(matrix, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or not np.isfinite(s).all():
        raise UserInputError(f"a similarity matrix must be square and finite, got shape {s.shape}.")
    if len(names) != len(s):
        raise UserInputError(f"{len(names)} names for a {len(s)} x {len(s)} matrix.")
    return s, [resolve_task(n) for n in names]


def type_contrast(matrix: np.ndarray, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per task type present with >= 2 tasks: (mean similarity between two tasks of the type, mean similarity
    between a task of the type and a task of another type). Diagonal excluded."""
    s, tasks = _named(matrix, names)
    types = np.array([get_task(t).type for t in tasks])
    off = ~np.eye(len(s), dtype=bool)
    out = {}
    for ty in dict.fromkeys(types):
        inside = types == ty
        if inside.sum() >= 2 and (~inside).any():
            out[str(ty)] = (float(s[np.ix_(inside, inside)][off[np.ix_(inside, inside)]].mean()),
                            float(s[np.ix_(inside, ~inside)].mean()))
    return out


def nearest_neighbours(matrix: np.ndarray, names: Sequence[str]) -> dict[str, str]:
    """Each task's most similar other task (ties: the first in the given order)."""
    s, tasks = _named(matrix, names)
    masked = np.where(np.eye(len(s), dtype=bool), -np.inf, s)
    return {t: tasks[int(np.argmax(row))] for t, row in zip(tasks, masked)}


def cluster_permutation_test(matrix: np.ndarray, members: np.ndarray, *, n_permutations: int = N_PERMUTATIONS,
                             seed: int = 0) -> tuple[float, float, bool]:
    """(d_obs, p, exact) for the boolean mask ``members`` (T,) of one type in ``matrix`` (T, T); see the module
    docstring. d = mean S over ordered pairs of distinct members − mean S over (member, non-member) pairs."""
    s = np.asarray(matrix, dtype=np.float64)
    members = np.asarray(members, dtype=bool)
    n, k = len(s), int(members.sum())
    if not 2 <= k < n:
        raise UserInputError(f"a cluster test needs 2 <= members < {n} tasks, got {k} members.")
    observed = float(_contrast(s, members[None, :].astype(np.float64))[0])
    total = math.comb(n, k)
    if total <= n_permutations:
        masks = np.zeros((total, n))
        for row, subset in enumerate(combinations(range(n), k)):
            masks[row, list(subset)] = 1.0
        null = _contrast(s, masks)
        return observed, float(np.sum(null >= observed - 1e-12) / total), True
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_permutations, n))
    for row in range(n_permutations):
        masks[row, rng.permutation(n)[:k]] = 1.0
    null = _contrast(s, masks)
    return observed, float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations)), False


def _contrast(s: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """d for every row of ``masks`` (P, T) of 0/1: within (off-diagonal) mean − (member, non-member) mean."""
    k = masks[0].sum()
    n = s.shape[0]
    off = s - np.diag(np.diag(s))
    within = np.einsum("pi,ij,pj->p", masks, off, masks) / (k * (k - 1))
    between = np.einsum("pi,ij,pj->p", masks, s, 1.0 - masks) / (k * (n - k))
    return within - between


def pattern_checks(matrix: np.ndarray, names: Sequence[str], *, n_permutations: int = N_PERMUTATIONS,
                   seed: int = 0, alpha: float = ALPHA) -> list[Check]:
    """The paper's statements about its matrix, each tested on ``matrix`` (tasks missing from it are skipped).

    A cluster check holds only when its permutation p-value is below ``alpha`` (module docstring)."""
    s, tasks = _named(matrix, names)
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise UserInputError(f"n_permutations must be an integer >= 1, got {n_permutations!r}.")
    checks = []
    contrast = type_contrast(s, tasks)
    types = np.array([get_task(t).type for t in tasks])
    for ty in CLUSTER_TYPES:
        if ty in contrast:
            within, between = contrast[ty]
            d, p, exact = cluster_permutation_test(s, types == ty, n_permutations=n_permutations, seed=seed)
            how = (f"exact over all {math.comb(len(s), int((types == ty).sum()))} label subsets" if exact else
                   f"{n_permutations} seeded label permutations")
            checks.append(Check(f"{ty} tasks cluster", p < alpha,
                                f"mean similarity within {ty} {within:.3f} vs to other types {between:.3f}; "
                                f"difference {d:.3f}, permutation p = {p:.4g} ({how}; holds at p < {alpha:g})",
                                statistic=d, p_value=p, exact=exact))
    if {"depth_zbuffer", "depth_euclidean"} <= set(tasks):
        nn = nearest_neighbours(s, tasks)
        mutual = nn["depth_zbuffer"] == "depth_euclidean" and nn["depth_euclidean"] == "depth_zbuffer"
        checks.append(Check("depth_zbuffer and depth_euclidean are mutual nearest neighbours", mutual,
                            f"nearest to depth_zbuffer: {nn['depth_zbuffer']}; "
                            f"nearest to depth_euclidean: {nn['depth_euclidean']}"))
    return checks
