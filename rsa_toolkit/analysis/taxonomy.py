"""How a task-similarity matrix compares with the pattern of the RSA paper's Taskonomy matrix.

Dwivedi & Roig (CVPR 2019, Fig. 3) find the 20 Taskonomy tasks grouped by type: 3D tasks resemble each other, 2D
tasks resemble each other, semantic tasks resemble each other, and depth_zbuffer and depth_euclidean are each
other's nearest neighbours. :func:`pattern_checks` tests exactly these statements on any matrix whose names are
tasks (aliases accepted), so a new zoo (our mini-Taskonomy, a user's retrained zoo) can be compared with the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import get_task, resolve_task

__all__ = ["Check", "type_contrast", "nearest_neighbours", "pattern_checks", "CLUSTER_TYPES"]

CLUSTER_TYPES = ("3D", "2D", "semantic")  # the groups the paper's matrix shows; low-dim geometric has 2 tasks


@dataclass(frozen=True)
class Check:
    statement: str
    holds: bool
    detail: str


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


def pattern_checks(matrix: np.ndarray, names: Sequence[str]) -> list[Check]:
    """The paper's statements about its matrix, each tested on ``matrix`` (tasks missing from it are skipped)."""
    s, tasks = _named(matrix, names)
    checks = []
    contrast = type_contrast(s, tasks)
    for ty in CLUSTER_TYPES:
        if ty in contrast:
            within, between = contrast[ty]
            checks.append(Check(f"{ty} tasks cluster", within > between,
                                f"mean similarity within {ty} {within:.3f} vs to other types {between:.3f}"))
    if {"depth_zbuffer", "depth_euclidean"} <= set(tasks):
        nn = nearest_neighbours(s, tasks)
        mutual = nn["depth_zbuffer"] == "depth_euclidean" and nn["depth_euclidean"] == "depth_zbuffer"
        checks.append(Check("depth_zbuffer and depth_euclidean are mutual nearest neighbours", mutual,
                            f"nearest to depth_zbuffer: {nn['depth_zbuffer']}; "
                            f"nearest to depth_euclidean: {nn['depth_euclidean']}"))
    return checks
