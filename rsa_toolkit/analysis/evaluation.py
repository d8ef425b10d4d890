"""Scoring a task-similarity matrix against transfer ground truth.

For a similarity matrix S (T, T) and a ground truth G (sources x targets, higher = better transfer), on the tasks the
two share, per target t over the sources s with a known G[s, t]:

- ``spearman_with_diagonal``: Spearman rho between S[s, t] and G[s, t], s = t included. This is the protocol of
  Dwivedi et al., "Duality Diagram Similarity" (ECCV 2020), and of the RSA paper (Dwivedi & Roig, CVPR 2019): the
  similarity column against the ground-truth column over all sources, then the mean over targets. S[t, t] is the
  largest similarity and G[t, t] (a task's transfer to itself) is usually the largest transfer, so the diagonal
  alone contributes agreement.
- ``spearman_without_diagonal``: the same over the sources s != t, i.e. the ranking of candidate auxiliaries.
- ``weighted_tau``: Vigna's weighted Kendall tau (``scipy.stats.weightedtau``, hyperbolic weights 1/(r+1), the
  average of the two rankings), s != t: like Kendall tau, but swaps near the top of either ranking weigh more.
- ``top1_hit`` / ``top3_hit``: whether the best true source (s != t; with ties, any of the tied best) is the most
  similar source / among the 3 most similar sources (s != t; similarity ties broken by name).

A target with fewer than 3 usable sources, or with constant values on either side, gets NaN for the correlations
(and no hits); it is listed in ``unscored_targets``. Means and hit rates are over the targets where each number is
defined. ``top1_chance`` / ``top3_chance`` are the hit rates a random ranking would have on average.

A ground truth with ``higher_is_better=False`` (a loss after transfer, say) is negated first.

Names are compared as canonical task names (aliases such as ``rgb2depth`` match ``depth_zbuffer``); names that are
not tasks must match exactly. Tasks missing on either side are listed in the result, never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.ground_truth import GroundTruth, canonical_name

__all__ = ["MIN_SOURCES", "TargetScore", "Evaluation", "evaluate_similarity"]

MIN_SOURCES = 3  # a rank correlation of two points is always +-1: no information


@dataclass(frozen=True)
class TargetScore:
    """One target's scores; ``sources`` are those with a known ground truth for it, the target itself excluded."""

    target: str
    sources: tuple[str, ...]
    spearman_with_diagonal: float
    spearman_without_diagonal: float
    weighted_tau: float
    best_sources: tuple[str, ...]  # the true best source(s) among ``sources``; several when tied
    most_similar: tuple[str, ...]  # ``sources`` by decreasing similarity, ties by name, the first 3
    top1_hit: bool | None  # None: fewer than MIN_SOURCES sources
    top3_hit: bool | None


@dataclass(frozen=True)
class Evaluation:
    ground_truth: str
    per_target: tuple[TargetScore, ...]
    mean_spearman_with_diagonal: float
    mean_spearman_without_diagonal: float
    mean_weighted_tau: float
    top1_hit_rate: float
    top3_hit_rate: float
    top1_chance: float
    top3_chance: float
    sources: tuple[str, ...]  # the common sources
    unscored_targets: tuple[str, ...]  # common targets with a NaN score (too few sources, or constant values)
    not_truth_targets: tuple[str, ...]  # similarity tasks that the ground truth has no column for
    not_truth_sources: tuple[str, ...]  # similarity tasks that the ground truth has no row for
    not_in_similarity: tuple[str, ...]  # ground-truth tasks (rows or columns) absent from the similarity matrix

    def n_scored(self, field: str) -> int:
        """How many targets a mean is over: ``n_scored("spearman_with_diagonal")``, ``n_scored("top1_hit")``."""
        return sum(_defined(getattr(t, field)) for t in self.per_target)


def evaluate_similarity(similarity: np.ndarray, names: Sequence[str], ground_truth: GroundTruth) -> Evaluation:
    """Score ``similarity`` (T, T), rows and columns named by ``names``, against ``ground_truth``; see the module
    docstring for every number. Raises :class:`UserInputError` when the two share no target or no source."""
    sim, names = _check(similarity, names, ground_truth)
    index = {n: i for i, n in enumerate(names)}
    gt_source = {n: i for i, n in enumerate(ground_truth.sources)}
    sources = [n for n in names if n in gt_source]
    targets = [n for n in names if n in ground_truth.targets]
    if not targets or not sources:
        raise UserInputError(_no_overlap_message(names, ground_truth, targets, sources))

    # A loss-like ground truth (lower = better transfer) is negated, so "best" and every correlation keep one sense.
    values = np.asarray(ground_truth.values, dtype=np.float64) * (1.0 if ground_truth.higher_is_better else -1.0)
    per_target = []
    for t in targets:
        column = values[:, ground_truth.targets.index(t)]
        usable = [s for s in sources if not math.isnan(column[gt_source[s]])]
        true = {s: float(column[gt_source[s]]) for s in usable}
        similar = {s: float(sim[index[s], index[t]]) for s in usable}
        per_target.append(_score_target(t, true, similar))

    return Evaluation(
        ground_truth=ground_truth.name,
        per_target=tuple(per_target),
        mean_spearman_with_diagonal=_mean([p.spearman_with_diagonal for p in per_target]),
        mean_spearman_without_diagonal=_mean([p.spearman_without_diagonal for p in per_target]),
        mean_weighted_tau=_mean([p.weighted_tau for p in per_target]),
        top1_hit_rate=_mean([p.top1_hit for p in per_target]),
        top3_hit_rate=_mean([p.top3_hit for p in per_target]),
        top1_chance=_mean([_chance(p, 1) for p in per_target]),
        top3_chance=_mean([_chance(p, 3) for p in per_target]),
        sources=tuple(sources),
        unscored_targets=tuple(p.target for p in per_target if not all(map(_defined, (
            p.spearman_with_diagonal, p.spearman_without_diagonal, p.weighted_tau, p.top1_hit)))),
        not_truth_targets=tuple(n for n in names if n not in ground_truth.targets),
        not_truth_sources=tuple(n for n in names if n not in gt_source),
        not_in_similarity=tuple(n for n in dict.fromkeys([*ground_truth.sources, *ground_truth.targets])
                                if n not in index),
    )


def _score_target(target: str, true: dict[str, float], similar: dict[str, float]) -> TargetScore:
    """``true`` and ``similar``: source -> G[s, target] and S[s, target] over the usable sources (maybe the target
    itself)."""
    others = sorted(s for s in true if s != target)
    with_diag = sorted(true)
    ranked = sorted(others, key=lambda s: (-similar[s], s))
    enough = len(others) >= MIN_SOURCES
    best = max((true[s] for s in others), default=math.nan)
    best_sources = tuple(s for s in others if true[s] == best)
    return TargetScore(
        target=target,
        sources=tuple(others),
        spearman_with_diagonal=_spearman([similar[s] for s in with_diag], [true[s] for s in with_diag]),
        spearman_without_diagonal=_spearman([similar[s] for s in others], [true[s] for s in others]),
        weighted_tau=_weighted_tau([similar[s] for s in others], [true[s] for s in others]),
        best_sources=best_sources,
        most_similar=tuple(ranked[:3]),
        top1_hit=bool(set(ranked[:1]) & set(best_sources)) if enough else None,
        top3_hit=bool(set(ranked[:3]) & set(best_sources)) if enough else None,
    )


def _spearman(x: list[float], y: list[float]) -> float:
    """Spearman rho with average ranks for ties; NaN (not a warning) when it is undefined."""
    if len(x) < MIN_SOURCES or _constant(x) or _constant(y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def _weighted_tau(x: list[float], y: list[float]) -> float:
    if len(x) < MIN_SOURCES or _constant(x) or _constant(y):
        return math.nan
    return float(stats.weightedtau(x, y).statistic)


def _chance(score: TargetScore, k: int) -> float | None:
    """Hit probability of a uniformly random ranking: 1 - C(n - b, k) / C(n, k) for b tied best of n sources."""
    if score.top1_hit is None:
        return None
    n, b = len(score.sources), len(score.best_sources)
    return 1.0 - math.comb(n - b, k) / math.comb(n, k) if k <= n else 1.0


def _constant(values: list[float]) -> bool:
    return min(values) == max(values)


def _defined(value: float | bool | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _mean(values: list[float | bool | None]) -> float:
    kept = [float(v) for v in values if _defined(v)]
    return float(np.mean(kept)) if kept else math.nan


def _check(similarity: np.ndarray, names: Sequence[str], ground_truth: GroundTruth) -> tuple[np.ndarray, list[str]]:
    if not isinstance(ground_truth, GroundTruth):
        raise UserInputError(f"ground_truth: expected a GroundTruth (load_ground_truth), got "
                             f"{type(ground_truth).__name__}.")
    shape = (len(ground_truth.sources), len(ground_truth.targets))
    if np.shape(ground_truth.values) != shape:
        raise UserInputError(f"ground truth '{ground_truth.name}': values must be {shape} for its sources x targets, "
                             f"got shape {np.shape(ground_truth.values)}.")
    sim = np.asarray(similarity, dtype=np.float64)
    names = [str(n) for n in names]
    if sim.ndim != 2 or sim.shape != (len(names), len(names)):
        raise UserInputError(f"similarity must be ({len(names)}, {len(names)}) for {len(names)} names, got shape "
                             f"{sim.shape}.")
    if not np.isfinite(sim).all():
        raise UserInputError("similarity has NaN or infinite values; evaluate a finite matrix.")
    canonical = [canonical_name(n) for n in names]
    seen: dict[str, str] = {}
    for given, name in zip(names, canonical):
        if name in seen:
            raise UserInputError(f"similarity names '{seen[name]}' and '{given}' both denote '{name}'; keep one.")
        seen[name] = given
    return sim, canonical


def _no_overlap_message(names: list[str], gt: GroundTruth, targets: list[str], sources: list[str]) -> str:
    what = "no task" if not targets and not sources else ("no target" if not targets else "no source")
    return (f"the similarity matrix and ground truth '{gt.name}' share {what}: the matrix has "
            f"{', '.join(names)}; the ground truth has sources {', '.join(gt.sources)} and targets "
            f"{', '.join(gt.targets)}. Name teachers after tasks (or aliases such as depth, normal), as "
            f"`rsa-toolkit tasks` lists them.")
