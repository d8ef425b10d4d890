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

Protocols (``protocol=``): ``"all"`` scores every task the two share (all common sources, all common targets);
``"dds"`` first keeps only the DDS paper's 17 tasks (``DDS17_TASKS``) as sources and targets, so Taskonomy's
affinities give the paper's 17 x 17 table. Teachers dropped by the protocol are listed in ``excluded_by_protocol``.

A ground truth with ``higher_is_better=False`` (a loss after transfer, say) is negated first.

Names are compared as canonical task names (aliases such as ``rgb2depth`` match ``depth_zbuffer``); names that are
not tasks must match exactly. Tasks missing on either side are listed in the result, never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.analysis.ground_truth import GroundTruth, canonical_name

__all__ = ["MIN_SOURCES", "PROTOCOLS", "DDS17_TASKS", "TargetScore", "Evaluation", "evaluate_similarity",
           "protocol_label", "rho_intervals", "SIMILARITY_MEASURES", "measure_names", "check_measures",
           "MeasureEvaluation", "evaluate_measures"]

#: The DDS paper's 17 tasks (Dwivedi et al., ECCV 2020; column ``in_dds17`` of the reference name mapping
#: shared/reference/taskonomy/taskonomy_task_name_mapping.csv), in its ``dds17_index`` order. They are exactly the
#: 17 targets of Taskonomy's affinity table (data/taskonomy/README.md); tests check both facts.
DDS17_TASKS = ("autoencoding", "curvature", "denoising", "edge_texture", "edge_occlusion", "keypoints2d",
               "keypoints3d", "reshading", "depth_zbuffer", "depth_euclidean", "normal", "room_layout",
               "segment_unsup25d", "segment_unsup2d", "vanishing_point", "segment_semantic", "class_object")
PROTOCOLS = ("all", "dds")


def protocol_label(protocol: str) -> str:
    """How the protocol is named in printed output."""
    return {"all": "protocol all: every source and target in common",
            "dds": "protocol dds: the DDS paper's 17 tasks as sources and targets"}[protocol]

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
    protocol: str = "all"  # PROTOCOLS
    excluded_by_protocol: tuple[str, ...] = ()  # teachers left out by the protocol (dds: those not in DDS17_TASKS)

    def n_scored(self, field: str) -> int:
        """How many targets a mean is over: ``n_scored("spearman_with_diagonal")``, ``n_scored("top1_hit")``."""
        return sum(_defined(getattr(t, field)) for t in self.per_target)


def evaluate_similarity(similarity: np.ndarray, names: Sequence[str], ground_truth: GroundTruth, *,
                        protocol: str = "all") -> Evaluation:
    """Score ``similarity`` (T, T), rows and columns named by ``names``, against ``ground_truth``; see the module
    docstring for every number. ``similarity[s, t]`` scores source s for target t (it need not be symmetric).
    Raises :class:`UserInputError` when the two share no target or no source."""
    sim, names = _check(similarity, names, ground_truth)
    _check_protocol(protocol)
    excluded: list[str] = []
    if protocol == "dds":
        keep = [i for i, n in enumerate(names) if n in DDS17_TASKS]
        excluded = [n for n in names if n not in DDS17_TASKS]
        sim, names = sim[np.ix_(keep, keep)], [names[i] for i in keep]
        ground_truth = _restrict_truth(ground_truth, DDS17_TASKS)
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
        protocol=protocol,
        excluded_by_protocol=tuple(excluded),
    )


def _check_protocol(protocol: object) -> None:
    if protocol not in PROTOCOLS:
        raise UserInputError(unknown_name(f"Unknown protocol {protocol!r}", protocol, PROTOCOLS))


def _restrict_truth(truth: GroundTruth, tasks: Sequence[str]) -> GroundTruth:
    rows = [i for i, n in enumerate(truth.sources) if n in tasks]
    cols = [j for j, n in enumerate(truth.targets) if n in tasks]
    return GroundTruth(values=np.asarray(truth.values)[np.ix_(rows, cols)], sources=[truth.sources[i] for i in rows],
                       targets=[truth.targets[j] for j in cols], name=truth.name,
                       higher_is_better=truth.higher_is_better, description=truth.description)


def rho_intervals(similarity: np.ndarray, names: Sequence[str], ground_truth: GroundTruth, *,
                  similarity_samples: Sequence[np.ndarray] | None = None,
                  truth_samples: Sequence[GroundTruth] | None = None, confidence: float = 0.95,
                  protocol: str = "all") -> dict[str, dict[str, tuple[float, float]]]:
    """Per target, percentile intervals of ``spearman_with_diagonal`` and ``spearman_without_diagonal``.

    Resample b scores ``similarity_samples[b]`` (default: ``similarity``) against ``truth_samples[b]`` (default:
    ``ground_truth``); both lists, when given, must have the same length B. Give ``truth_samples`` to include the
    truth's own noise (e.g. readout seeds and test images, :func:`truth_samples_from_losses`), and
    ``similarity_samples`` for the probe-image noise of the predictor (a bootstrap over probe images). Returns
    ``{target: {"spearman_with_diagonal": (low, high), "spearman_without_diagonal": (low, high)}}``; NaN bounds
    where fewer than half the resamples define the number."""
    n_sim = None if similarity_samples is None else len(similarity_samples)
    n_truth = None if truth_samples is None else len(truth_samples)
    if n_sim is None and n_truth is None:
        raise UserInputError("rho_intervals: give similarity_samples, truth_samples, or both.")
    if n_sim is not None and n_truth is not None and n_sim != n_truth:
        raise UserInputError(f"rho_intervals: {n_sim} similarity samples but {n_truth} truth samples; give as many.")
    if not 0 < confidence < 1:
        raise UserInputError(f"confidence must be in (0, 1), got {confidence!r}.")
    b = n_sim if n_sim is not None else n_truth
    fields = ("spearman_with_diagonal", "spearman_without_diagonal")
    values: dict[str, dict[str, list[float]]] = {}
    for i in range(b):
        sim = similarity if similarity_samples is None else similarity_samples[i]
        truth = ground_truth if truth_samples is None else truth_samples[i]
        e = evaluate_similarity(sim, names, truth, protocol=protocol)
        for t in e.per_target:
            for f in fields:
                values.setdefault(t.target, {g: [] for g in fields})[f].append(getattr(t, f))
    tail = 100 * (1 - confidence) / 2
    out = {}
    for target, per in values.items():
        out[target] = {}
        for f, xs in per.items():
            kept = [x for x in xs if not math.isnan(x)]
            out[target][f] = (tuple(float(v) for v in np.percentile(kept, [tail, 100 - tail]))
                              if len(kept) * 2 >= b and kept else (math.nan, math.nan))
    return out


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
    from scipy import stats  # imported when first scored: scipy.stats costs every command ~0.4 s at start-up

    return float(stats.spearmanr(x, y).statistic)


def _weighted_tau(x: list[float], y: list[float]) -> float:
    if len(x) < MIN_SOURCES or _constant(x) or _constant(y):
        return math.nan
    from scipy import stats

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


# --------------------------------------------------------------------------- several measures, one zoo

#: Similarity presets scored as measures beside the transferability registry: name -> similarity_matrix options
#: (``None``: the options the caller gives, by default the RSA paper's recipe).
SIMILARITY_MEASURES: dict[str, dict[str, str] | None] = {
    "rsa": None,
    "dds-zscore-cosine": {"normalization": "zscore", "method": "cosine", "comparison": "spearman"},
}


def measure_names() -> list[str]:
    """Every measure :func:`evaluate_measures` accepts: the similarity presets, then the transferability registry."""
    from rsa_toolkit.analysis.transferability import TRANSFERABILITY_MEASURES

    return [*SIMILARITY_MEASURES, *TRANSFERABILITY_MEASURES.names()]


def check_measures(measures: Sequence[str]) -> list[str]:
    """The measures, de-duplicated in order; an unknown name fails with did-you-mean."""
    valid = measure_names()
    if isinstance(measures, str) or not len(measures):
        raise UserInputError(f"measures must be a non-empty list of names from: {', '.join(valid)}.")
    for m in measures:
        if m not in valid:
            raise UserInputError(unknown_name(f"Unknown measure '{m}'", m, valid))
    return list(dict.fromkeys(measures))


@dataclass(frozen=True)
class MeasureEvaluation:
    """One measure's source x target matrix over ``names`` and its evaluation against each ground truth;
    ``intervals[i]`` (or None) are :func:`rho_intervals` for ``evaluations[i]``, ``ci_method`` says how."""

    measure: str
    names: tuple[str, ...]
    matrix: np.ndarray
    evaluations: tuple[Evaluation, ...]
    intervals: tuple[dict[str, dict[str, tuple[float, float]]] | None, ...]
    ci_method: tuple[str, ...]


def evaluate_measures(features: Mapping[str, np.ndarray], truth: GroundTruth | Sequence[GroundTruth], *,
                      measures: Sequence[str] = ("rsa",), protocol: str = "all",
                      similarity_options: Mapping[str, object] | None = None, n_resamples: int = 0,
                      confidence: float = 0.95, seed: int = 0) -> list[MeasureEvaluation]:
    """For each measure a (T, T) source x target matrix on the teachers' ``features`` (name -> (N, ...), the same N
    probe images), scored against each ground truth like a similarity matrix (:func:`evaluate_similarity`).

    ``rsa`` is :func:`rsa_toolkit.rsa.similarity_matrix` with ``similarity_options`` (default: centring, 1 - Pearson
    RDMs, Spearman); ``dds-zscore-cosine`` the DDS paper's best variant; every other name is a transferability
    measure, its matrix from :func:`rsa_toolkit.analysis.transferability.matrix.measure_matrix` (what each gets as
    target: that module). ``n_resamples`` > 0 adds per-target intervals of rho: resample b pairs a bootstrap of the
    probe images (the measure recomputed on them) with, where the truth has per-seed losses beside it
    (:func:`rsa_toolkit.analysis.ground_truth.truth_samples_from_losses`), a resample of the truth's readout seeds,
    splits and test images.
    """
    from rsa_toolkit.analysis.ground_truth import truth_samples_from_losses
    from rsa_toolkit.analysis.transferability.matrix import measure_matrix
    from rsa_toolkit.rsa.similarity import similarity_matrix

    truths = [truth] if isinstance(truth, GroundTruth) else list(truth)
    measures = check_measures(measures)
    _check_protocol(protocol)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 0:
        raise UserInputError(f"n_resamples must be an integer >= 0, got {n_resamples!r}.")
    names = [str(n) for n in features]
    truth_samples = [truth_samples_from_losses(t, n_resamples=n_resamples, seed=seed) if n_resamples else None
                     for t in truths]
    n_images = int(np.asarray(features[names[0]]).shape[0])
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n_images, n_images) for _ in range(n_resamples)]
    results = []
    for m in measures:
        if m in SIMILARITY_MEASURES:
            options = dict(similarity_options or {}) if SIMILARITY_MEASURES[m] is None else dict(SIMILARITY_MEASURES[m])
            if n_resamples:
                options.update(n_bootstrap=n_resamples, seed=seed)
            result = similarity_matrix(features, **options)
            matrix, names = result.matrix, list(result.names)
            samples = list(result.bootstrap.samples) if n_resamples else None
        else:
            matrix = measure_matrix(features, m, seed=seed)
            samples = ([measure_matrix({n: np.asarray(features[n])[idx] for n in names}, m, seed=seed)
                        for idx in draws] if n_resamples else None)
        evaluations, intervals, methods = [], [], []
        for t, t_samples in zip(truths, truth_samples):
            evaluations.append(evaluate_similarity(matrix, names, t, protocol=protocol))
            if not n_resamples:
                intervals.append(None)
                methods.append("none")
                continue
            intervals.append(rho_intervals(matrix, names, t, similarity_samples=samples, truth_samples=t_samples,
                                           confidence=confidence, protocol=protocol))
            methods.append(f"{n_resamples} bootstrap resamples of the {n_images} probe images" +
                           (" paired with resamples of the truth's readout seeds, splits and test images"
                            if t_samples is not None else "; the truth has no per-seed losses, so its own noise is "
                                                          "not included"))
        results.append(MeasureEvaluation(measure=m, names=tuple(names), matrix=matrix, evaluations=tuple(evaluations),
                                         intervals=tuple(intervals), ci_method=tuple(methods)))
    return results
