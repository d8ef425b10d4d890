"""``rsa-toolkit evaluate``: score a task-similarity matrix against transfer ground truth (Taskonomy, mini zoo, CSV)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rsa_toolkit.console import json_safe, text_table
from rsa_toolkit.files import check_output_path, write_faults
from rsa_toolkit.rsa.compare import COMPARISONS
from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.analysis.evaluation import (PROTOCOLS, Evaluation, MeasureEvaluation, TargetScore, check_measures,
                                             evaluate_measures, evaluate_similarity, measure_names, protocol_label,
                                             rho_intervals)
from rsa_toolkit.analysis.ground_truth import (GROUND_TRUTHS, GroundTruth, canonical_name, check_truth_zoo,
                                               load_ground_truth, truth_samples_from_losses)
from rsa_toolkit.validation import check_int
from rsa_toolkit.viz.outputs import read_similarity_csv
from rsa_toolkit.cli._options import (add_common, add_memory_options, add_rdm_options, rsa_device, show_progress,
                                      similarity_kwargs)
from rsa_toolkit.cli._sources import add_source_options, feature_sets, uses_mini_zoo

HELP = "score a similarity matrix against transfer ground truth (Spearman per target, hit rates)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + ". See docs/evaluate.md.",
                       epilog="examples: rsa-toolkit evaluate --matrix sim.csv --truth taskonomy-affinity;  "
                              "rsa-toolkit evaluate --features feats/ --truth taskonomy-affinity "
                              "--truth taskonomy-winrate --out eval.html. --tasks keeps only those teachers "
                              "(with --matrix too), e.g. the DDS paper's 17 tasks.")
    p.add_argument("--matrix", metavar="CSV", help="similarity CSV written by `matrix` (default: compute it from "
                                                   "the features source below)")
    p.add_argument("--truth", action="append", required=True, metavar="NAME|CSV",
                   help=f"ground truth: {', '.join(GROUND_TRUTHS.names())}, or a CSV (rows = sources, columns = "
                        f"targets, blank = missing); repeat for several")
    p.add_argument("--measures", nargs="+", metavar="NAME",
                   help=f"score these measures' source x target matrices, computed on the features source: "
                        f"{', '.join(measure_names())} (default: rsa, the similarity matrix of the RDM options "
                        f"below). See docs/evaluate.md for what each gets as its target")
    p.add_argument("--protocol", choices=PROTOCOLS, default="all",
                   help="all: every source and target the matrix and the truth share (default); dds: only the DDS "
                        "paper's 17 tasks, as sources and as targets (its 17 x 17 table on taskonomy-affinity)")
    p.add_argument("--ci", type=int, default=0, metavar="N",
                   help="per-target interval of rho from N resamples: a bootstrap of the probe images (features "
                        "source), paired with resamples of the truth's seeds, splits and test images where its "
                        "per-seed losses.npz exists (default 0: none)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    p.add_argument("--out", metavar="HTML", help="also write an interactive bar chart of the per-target Spearman")
    p.add_argument("--layer", default=None, help="layer to compare (default: the only one, or each teacher's default)")
    add_source_options(p)
    add_rdm_options(p)
    p.add_argument("--comparison", default="spearman",
                   help=f"RDM comparison: {', '.join(COMPARISONS.names())} (default spearman)")
    p.set_defaults(bootstrap=0, confidence=0.95)  # the evaluation uses the matrix only, never its intervals
    add_memory_options(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Everything cheap is checked before the (possibly long) similarity computation.
    truths = [load_ground_truth(t) for t in dict.fromkeys(args.truth)]
    out = _check_out(args.out) if args.out else None
    measures = check_measures(args.measures) if args.measures else None
    check_int(args.ci, name="--ci", minimum=0, expected="0 (none) or a positive number of resamples")
    if args.matrix:
        if measures not in (None, ["rsa"]):
            others = [m for m in measures if m != "rsa"]
            raise UserInputError(f"--measures {' '.join(others)}: these are computed from features; with --matrix "
                                 f"only 'rsa' (the matrix itself) can be scored. Give a features source "
                                 f"(--features DIR, a zoo, or none for the mini zoo) instead of --matrix.")
        matrix, names, source = similarity_input(args)
        for truth in truths:
            _check_overlap(truth, names, source)
        results = [_score_matrix(matrix, names, truths, args)]
        sources = [source]
    else:
        arrays, n_images = feature_input(args)
        names = list(arrays)
        for truth in truths:
            _check_overlap(truth, names, "the features source")
        if uses_mini_zoo(args):  # a truth measured on other mini teachers than these says so
            from rsa_toolkit.zoo.mini.embedded import MANIFEST, default_zoo_dir

            for truth in truths:
                check_truth_zoo(truth, default_zoo_dir() / MANIFEST)
        options = similarity_kwargs(args)
        results = evaluate_measures(arrays, truths, measures=measures or ["rsa"], protocol=args.protocol,
                                    similarity_options=options, n_resamples=args.ci, confidence=args.confidence,
                                    seed=args.seed)
        sources = [_describe(r.measure, args, len(r.names), n_images) for r in results]
    if args.json:
        if measures is None:  # the one similarity matrix: the original layout
            r = results[0]
            record = {"similarity": sources[0], "teachers": list(r.names), "protocol": args.protocol,
                      "evaluations": [_as_json(e, t, i, c) for e, t, i, c in
                                      zip(r.evaluations, truths, r.intervals, r.ci_method)]}
        else:
            record = {"protocol": args.protocol, "measures": [
                {"measure": r.measure, "similarity": src, "teachers": list(r.names),
                 "evaluations": [_as_json(e, t, i, c) for e, t, i, c in
                                 zip(r.evaluations, truths, r.intervals, r.ci_method)]}
                for r, src in zip(results, sources)]}
        print(json.dumps(record, indent=2))
    else:
        blocks = []
        for k, truth in enumerate(truths):
            for r, src in zip(results, sources):
                blocks.append(report(r.evaluations[k], truth, src, intervals=r.intervals[k],
                                     ci_method=r.ci_method[k], measure=r.measure if measures else None))
            if measures and len(results) > 1:
                blocks.append(summary(results, k, truth))
        print("\n\n".join(blocks))
    if out is not None:
        from rsa_toolkit.viz.plots import save_html

        with write_faults(out):
            save_html(figure([e for r in results for e in r.evaluations],
                             [r.measure for r in results for _ in r.evaluations] if measures else None), out)
        if not args.quiet:
            print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _score_matrix(matrix: np.ndarray, names: list[str], truths: list[GroundTruth],
                  args: argparse.Namespace) -> MeasureEvaluation:
    """A --matrix CSV as the measure 'rsa'; with --ci, intervals from the truth's per-seed losses only (a CSV has
    no probe images to resample)."""
    evaluations, intervals, methods = [], [], []
    for truth in truths:
        evaluations.append(evaluate_similarity(matrix, names, truth, protocol=args.protocol))
        samples = truth_samples_from_losses(truth, n_resamples=args.ci, seed=args.seed) if args.ci else None
        if args.ci and samples is None:
            raise UserInputError(f"--ci with --matrix: ground truth '{truth.name}' has no per-seed losses.npz beside "
                                 f"it, and a matrix CSV has no probe images to resample; give a features source "
                                 f"instead of --matrix, or leave --ci out.")
        intervals.append(rho_intervals(matrix, names, truth, truth_samples=samples, confidence=args.confidence,
                                       protocol=args.protocol) if samples else None)
        methods.append(f"{args.ci} resamples of the truth's readout seeds, splits and test images (the matrix held "
                       f"fixed)" if samples else "none")
    return MeasureEvaluation(measure="rsa", names=tuple(names), matrix=matrix,
                             evaluations=tuple(evaluations), intervals=tuple(intervals), ci_method=tuple(methods))


def _describe(measure: str, args: argparse.Namespace, n_teachers: int, n_images: int) -> str:
    if measure == "rsa":
        return f"{args.comparison} of {args.method} RDMs, {n_teachers} teachers x {n_images} images"
    if measure == "dds-zscore-cosine":
        return f"spearman of cosine RDMs after z-scoring, {n_teachers} teachers x {n_images} images"
    from rsa_toolkit.analysis.transferability.matrix import target_kind_for

    return f"{measure} (target: {_TARGET_TEXT[target_kind_for(measure)]}), {n_teachers} teachers x {n_images} images"


_TARGET_TEXT = {"features": "the target teacher's features",
                "regression": "the target teacher's first 8 principal components",
                "classification": "k-means classes of the target teacher's first 8 principal components"}


def feature_input(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], int]:
    """The features source's arrays (name -> (N, ...)), restricted by --tasks, and N."""
    if args.layer == "all":
        raise UserInputError("evaluate scores one matrix; choose --layer NAME (or leave it out).")
    similarity_kwargs(args)  # bad options fail before the features are computed
    (_, features), = feature_sets(args, progress=show_progress(args))
    arrays = features.as_dict()
    if args.tasks:  # a zoo loads only these already; a features directory holds them all
        arrays = {features.names[i]: arrays[features.names[i]] for i in _select(features.names, args.tasks)}
    return arrays, int(np.asarray(next(iter(arrays.values()))).shape[0])


def similarity_input(args: argparse.Namespace) -> tuple[np.ndarray, list[str], str]:
    """(matrix, names, where it came from) of the --matrix CSV (features go through :func:`feature_input`)."""
    if args.layer == "all":
        raise UserInputError("evaluate scores one matrix; choose --layer NAME (or leave it out).")
    if args.matrix:
        if args.features or args.weights_dir or args.zoo or args.images:
            raise UserInputError("give either --matrix CSV or a features source, not both.")
        rsa_device(args)  # --device is checked on every path, though a CSV needs no device
        # finite, but not necessarily symmetric: each target's column is scored on its own (S[s, t]), so a
        # directional matrix (a transfer matrix as an oracle) is a valid input
        matrix, names = read_similarity_csv(args.matrix, symmetric=False)
        if not args.tasks:
            return matrix, names, args.matrix
        # Each entry depends on its two teachers only, so the sub-matrix is what those teachers alone would give.
        keep = _select(names, args.tasks)
        return (matrix[np.ix_(keep, keep)], [names[i] for i in keep],
                f"{args.matrix}, restricted to {len(keep)} teachers by --tasks")
    raise RuntimeError("similarity_input reads --matrix only; features go through feature_input")  # our bug


def report(e: Evaluation, truth: GroundTruth, source: str, *, intervals: dict | None = None,
           ci_method: str = "none", measure: str | None = None) -> str:
    """One ground truth's block: the per-target table, the means and hit rates, then what could not be scored."""
    header = ["target", "n", "rho+diag", "rho-diag", "w.tau", "top-1", "top-3", "best true source", "most similar"]
    left = {0, 7, 8}
    if intervals is not None:
        header[3:3] = ["rho+diag CI"]
        left = {0, 8, 9}
    rows = []
    for t in e.per_target:
        row = [t.target, str(len(t.sources)), _num(t.spearman_with_diagonal), _num(t.spearman_without_diagonal),
               _num(t.weighted_tau), _hit(t.top1_hit), _hit(t.top3_hit), " = ".join(t.best_sources) or "-",
               ", ".join(t.most_similar) or "-"]
        if intervals is not None:
            low, high = intervals.get(t.target, {}).get("spearman_with_diagonal", (math.nan, math.nan))
            row[3:3] = ["-" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"]
        rows.append(row)
    n = e.n_scored
    scope = f"protocol {e.protocol}, {len(e.sources)} sources x {len(e.per_target)} targets"
    lines = [
        f"ground truth: {truth.name} — {truth.description}",
        *([f"measure: {measure}"] if measure else []),
        f"similarity: {source}; {len(e.per_target)} targets, {len(e.sources)} sources in common",
        f"{protocol_label(e.protocol)}" + (f"; left out: {_list(e.excluded_by_protocol)}" if e.protocol != "all"
                                           else ""),
        "",
        text_table(header, rows, left=left, rstrip=True),
        "",
        f"mean Spearman, diagonal included ({scope}): {_num(e.mean_spearman_with_diagonal)} over "
        f"{n('spearman_with_diagonal')} targets",
        f"mean Spearman, diagonal excluded:                {_num(e.mean_spearman_without_diagonal)} over "
        f"{n('spearman_without_diagonal')} targets",
        f"mean weighted Kendall tau, diagonal excluded:    {_num(e.mean_weighted_tau)} over {n('weighted_tau')} "
        f"targets",
        f"top-1 hit rate: {_rate(e.top1_hit_rate, e.per_target, 'top1_hit', e.top1_chance)}",
        f"top-3 hit rate: {_rate(e.top3_hit_rate, e.per_target, 'top3_hit', e.top3_chance)}",
        *([f"rho intervals: {ci_method}"] if intervals is not None else []),
        f"not scored (fewer than 3 sources with a ground truth, or constant values): {_list(e.unscored_targets)}",
        f"teachers without a ground-truth column (not targets): {_list(e.not_truth_targets)}",
        f"teachers without a ground-truth row (not sources): {_list(e.not_truth_sources)}",
        f"ground-truth tasks missing from the similarity matrix: {_list(e.not_in_similarity)}",
    ]
    return "\n".join(lines)


def summary(results: list[MeasureEvaluation], k: int, truth: GroundTruth) -> str:
    """One line per measure against ground truth ``k``: the means and hit rates."""
    header = ["measure", "rho+diag", "rho-diag", "w.tau", "top-1", "top-3", "targets"]
    rows = [[r.measure, _num(e.mean_spearman_with_diagonal), _num(e.mean_spearman_without_diagonal),
             _num(e.mean_weighted_tau), _num(e.top1_hit_rate, 2), _num(e.top3_hit_rate, 2),
             str(e.n_scored("spearman_with_diagonal"))] for r in results for e in [r.evaluations[k]]]
    e = results[0].evaluations[k]
    return "\n".join([f"summary against {truth.name} ({protocol_label(e.protocol)}):", "",
                      text_table(header, rows, left={0}, rstrip=True)])


def figure(evaluations: list[Evaluation], labels: list[str] | None = None):  # noqa: ANN201 - plotly Figure
    """Per-target Spearman bars, diagonal included and excluded; one row of bars per ground truth (and measure,
    named by ``labels``)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(evaluations), cols=1, shared_yaxes=True, vertical_spacing=0.5 / len(evaluations),
                        subplot_titles=[f"{(labels[i] + ' vs ') if labels else ''}{e.ground_truth} (protocol "
                                        f"{e.protocol}): mean rho {_num(e.mean_spearman_with_diagonal)} (diagonal "
                                        f"included), {_num(e.mean_spearman_without_diagonal)} (excluded)"
                                        for i, e in enumerate(evaluations)])
    for row, e in enumerate(evaluations, 1):
        targets = [t.target for t in e.per_target]
        for field, label, color in (("spearman_with_diagonal", "diagonal included", "#4c72b0"),
                                    ("spearman_without_diagonal", "diagonal excluded", "#dd8452")):
            values = [getattr(t, field) for t in e.per_target]
            fig.add_trace(go.Bar(x=targets, y=[None if math.isnan(v) else v for v in values], name=label,
                                 marker_color=color, legendgroup=field, showlegend=row == 1,
                                 hovertemplate="%{x}: %{y:.3f}<extra>" + label + "</extra>"), row=row, col=1)
        fig.update_yaxes(title_text="Spearman rho", range=[-1.05, 1.05], row=row, col=1)
    fig.update_layout(barmode="group", height=380 * len(evaluations), template="plotly_white",
                      title="Similarity vs transfer ground truth: per-target Spearman correlation")
    return fig


def _select(names: list[str], wanted: list[str]) -> list[int]:
    """Indices, in matrix order, of the teachers that ``wanted`` names (task aliases match their task)."""
    canonical = [canonical_name(n) for n in names]
    keep = set()
    for w in wanted:
        if canonical_name(w) not in canonical:
            raise UserInputError(unknown_name(f"--tasks: '{w}' is not among the teachers", w, names,
                                              listing="Teachers"))
        keep.add(canonical.index(canonical_name(w)))
    return sorted(keep)


#: the fewest sources a ground truth and the similarity matrix must share: a Spearman correlation over fewer ranks
#: is undefined or meaningless
MIN_COMMON_SOURCES = 3


def _check_overlap(truth: GroundTruth, names: list[str], source: str) -> None:
    """One line when a ground truth shares targets but fewer than 3 sources with the matrix (no Spearman can be
    computed), naming the truth (a CSV's path) and the names on both sides. No overlap at all is
    :func:`evaluate_similarity`'s own error, which names both sides too."""
    canonical = {canonical_name(n) for n in names}
    sources = [s for s in truth.sources if canonical_name(s) in canonical]
    targets = [t for t in truth.targets if canonical_name(t) in canonical]
    if not targets or not sources or len(sources) >= MIN_COMMON_SOURCES:
        return
    raise UserInputError(
        f"ground truth '{truth.name}' shares only {len(sources)} source(s) ({', '.join(sources)}) with the "
        f"similarity matrix ({source}); at least {MIN_COMMON_SOURCES} are needed to rank them. The ground truth "
        f"names sources {_few(truth.sources)} and targets {_few(truth.targets)}; the matrix names {_few(names)}. "
        f"Name rows and columns after tasks (or aliases such as depth, normal), as `rsa-toolkit tasks` lists them.")


def _few(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_out(out: str) -> Path:
    path = check_output_path(out, what="--out")
    if path.suffix.lower() != ".html":
        raise UserInputError(f"--out '{out}': expected a file name ending in .html (an interactive chart); the "
                             f"numbers themselves are printed, or with --json as JSON.")
    return path


def _as_json(e: Evaluation, truth: GroundTruth, intervals: dict | None = None,
             ci_method: str = "none") -> dict[str, object]:
    record = asdict(e)
    record["description"] = truth.description
    if intervals is not None:
        record["rho_intervals"] = {t: {f: list(v) for f, v in per.items()} for t, per in intervals.items()}
        record["ci_method"] = ci_method
    record["n_scored"] = {f: e.n_scored(f) for f in ("spearman_with_diagonal", "spearman_without_diagonal",
                                                     "weighted_tau", "top1_hit")}
    return json_safe(record)  # JSON has no NaN: an undefined number becomes null


def _num(value: float, digits: int = 4) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _hit(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _rate(rate: float, per_target: tuple[TargetScore, ...], field: str, chance: float) -> str:
    hits = [getattr(t, field) for t in per_target if getattr(t, field) is not None]
    return f"{_num(rate, 2)} ({sum(hits)}/{len(hits)} targets; a random ranking: {_num(chance, 2)})"


def _list(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none"
