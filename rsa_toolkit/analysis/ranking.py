"""Ranking auxiliary teachers for a set of target tasks (the RSA transfer-learning recipe; SOKA-Net's auxiliary).

For targets G and candidate c, score(c) = agg_{g in G} S[c, g] with agg = mean (default), min (the candidate must
suit every target) or max (one target is enough). Candidates are every teacher that is not a target, best first; ties
break by name so the order is deterministic. With bootstrap samples of S, each candidate also gets the fraction of
resamples in which it ranks first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rsa_toolkit.registry import Registry
from rsa_toolkit.errors import UserInputError, closest_names, unknown_name
from rsa_toolkit.tasks import try_resolve_task

__all__ = ["Candidate", "AGGREGATES", "match_teachers", "rank_auxiliaries"]

AGGREGATES: Registry = Registry("aggregate")
AGGREGATES.register("mean")(np.mean)
AGGREGATES.register("min")(np.min)
AGGREGATES.register("max")(np.max)


@dataclass(frozen=True)
class Candidate:
    name: str
    score: float
    per_target: dict[str, float]
    top1_probability: float | None = None  # fraction of bootstrap resamples where this candidate ranks first


def match_teachers(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Indices of the teachers that the ``wanted`` names denote.

    A name matches a teacher with the same name, or, when both are task names or aliases, the same task
    (``depth`` finds a teacher called ``rgb2depth``). Unknown names fail with the closest valid ones.
    """
    by_task = {}
    for i, n in enumerate(names):
        task = try_resolve_task(n)
        if task is not None:
            by_task.setdefault(task.name, i)
    out = []
    for w in wanted:
        if w in names:
            idx = list(names).index(w)
        else:
            task = try_resolve_task(w)
            if task is None:
                raise UserInputError(unknown_name(f"Unknown target '{w}': not a task name and not a teacher", w,
                                                  names, listing="Teachers", hints=_near(w, names)))
            if task.name not in by_task:
                raise UserInputError(f"Target '{w}' (task {task.name}) is not among the teachers: "
                                     f"{', '.join(names)}.")
            idx = by_task[task.name]
        if idx in out:
            raise UserInputError(f"target '{w}' names the same teacher as another target ('{names[idx]}').")
        out.append(idx)
    return out


def _near(wanted: str, names: Sequence[str]) -> list[str]:
    """The teacher names closest to ``wanted``, else the closest task names or aliases of the teachers (``dpeth`` ->
    ``depth``, the alias of a ``depth_zbuffer`` teacher), best first."""
    close = closest_names(wanted, names)
    if close:
        return close
    aliases = []
    for n in names:
        task = try_resolve_task(n)
        if task is not None:
            aliases += [task.name, *task.aliases]
    return closest_names(wanted, aliases)


def rank_auxiliaries(similarity: np.ndarray, names: Sequence[str], targets: Sequence[str], *,
                     aggregate: str = "mean", samples: np.ndarray | None = None,
                     exclude: Sequence[str] = ()) -> list[Candidate]:
    """Candidates (all teachers except targets and ``exclude``) ranked by aggregated similarity to the targets.

    ``similarity`` (T, T); ``samples`` optional (B, T, T) bootstrap matrices for the top-1 probabilities.
    """
    agg = AGGREGATES.get(aggregate)
    sim = np.asarray(similarity, dtype=np.float64)
    names = list(names)
    if sim.ndim != 2 or sim.shape != (len(names), len(names)):
        raise UserInputError(f"similarity must be ({len(names)}, {len(names)}) for {len(names)} names, "
                             f"got shape {sim.shape}.")
    if not np.isfinite(sim).all():
        raise UserInputError("similarity has NaN or infinite values; rank from a finite matrix.")
    if samples is not None:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 3 or not len(samples) or samples.shape[1:] != sim.shape:
            raise UserInputError(f"samples must be (B, {len(names)}, {len(names)}) bootstrap matrices, "
                                 f"got shape {samples.shape}.")
    if not targets:
        raise UserInputError("give at least one target task.")
    target_idx = match_teachers(names, targets)
    skip = set(target_idx) | set(match_teachers(names, exclude))
    cand_idx = [i for i in range(len(names)) if i not in skip]
    if not cand_idx:
        raise UserInputError("no candidates left: every teacher is a target (or excluded).")

    scores = agg(sim[np.ix_(cand_idx, target_idx)], axis=1)
    top1 = None
    if samples is not None:
        boot = agg(samples[:, cand_idx][:, :, target_idx], axis=2)  # (B, candidates)
        winners = [_best(row, [names[i] for i in cand_idx]) for row in boot]
        top1 = np.bincount(winners, minlength=len(cand_idx)) / len(boot)
    order = sorted(range(len(cand_idx)), key=lambda k: (-scores[k], names[cand_idx[k]]))
    return [
        Candidate(
            name=names[cand_idx[k]],
            score=float(scores[k]),
            per_target={names[t]: float(sim[cand_idx[k], t]) for t in target_idx},
            top1_probability=None if top1 is None else float(top1[k]),
        )
        for k in order
    ]


def _best(scores: np.ndarray, labels: list[str]) -> int:
    return min(range(len(scores)), key=lambda k: (-scores[k], labels[k]))
