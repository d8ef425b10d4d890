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
from rsa_toolkit.analysis.evaluation import Evaluation, TargetScore, evaluate_similarity
from rsa_toolkit.analysis.ground_truth import GROUND_TRUTHS, GroundTruth, canonical_name, load_ground_truth
from rsa_toolkit.viz.outputs import read_similarity_csv
from rsa_toolkit.rsa.similarity import similarity_matrix
from rsa_toolkit.cli._options import (add_common, add_memory_options, add_rdm_options, rsa_device, show_progress,
                                      similarity_kwargs)
from rsa_toolkit.cli._sources import add_source_options, feature_sets

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
    matrix, names, source = similarity_input(args)
    for truth in truths:
        _check_overlap(truth, names, source)
    evaluations = [evaluate_similarity(matrix, names, truth) for truth in truths]
    if args.json:
        print(json.dumps({"similarity": source, "teachers": names,
                          "evaluations": [_as_json(e, t) for e, t in zip(evaluations, truths)]}, indent=2))
    else:
        print("\n\n".join(report(e, t, source) for e, t in zip(evaluations, truths)))
    if out is not None:
        from rsa_toolkit.viz.plots import save_html

        with write_faults(out):
            save_html(figure(evaluations), out)
        if not args.quiet:
            print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def similarity_input(args: argparse.Namespace) -> tuple[np.ndarray, list[str], str]:
    """(matrix, names, where it came from): the --matrix CSV, or the matrix of the features source."""
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
    options = similarity_kwargs(args)  # bad options fail before the features are computed
    (_, features), = feature_sets(args, progress=show_progress(args))
    arrays = features.as_dict()
    if args.tasks:  # a zoo loads only these already; a features directory holds them all
        arrays = {features.names[i]: arrays[features.names[i]] for i in _select(features.names, args.tasks)}
    result = similarity_matrix(arrays, **options)
    return result.matrix, result.names, (f"{args.comparison} of {args.method} RDMs, {len(result.names)} teachers x "
                                         f"{result.n_images} images")


def report(e: Evaluation, truth: GroundTruth, source: str) -> str:
    """One ground truth's block: the per-target table, the means and hit rates, then what could not be scored."""
    header = ["target", "n", "rho+diag", "rho-diag", "w.tau", "top-1", "top-3", "best true source", "most similar"]
    rows = [[t.target, str(len(t.sources)), _num(t.spearman_with_diagonal), _num(t.spearman_without_diagonal),
             _num(t.weighted_tau), _hit(t.top1_hit), _hit(t.top3_hit), " = ".join(t.best_sources) or "-",
             ", ".join(t.most_similar) or "-"] for t in e.per_target]
    n = e.n_scored
    lines = [
        f"ground truth: {truth.name} — {truth.description}",
        f"similarity: {source}; {len(e.per_target)} targets, {len(e.sources)} sources in common",
        "",
        text_table(header, rows, left={0, 7, 8}, rstrip=True),
        "",
        f"mean Spearman, diagonal included (DDS protocol): {_num(e.mean_spearman_with_diagonal)} over "
        f"{n('spearman_with_diagonal')} targets",
        f"mean Spearman, diagonal excluded:                {_num(e.mean_spearman_without_diagonal)} over "
        f"{n('spearman_without_diagonal')} targets",
        f"mean weighted Kendall tau, diagonal excluded:    {_num(e.mean_weighted_tau)} over {n('weighted_tau')} "
        f"targets",
        f"top-1 hit rate: {_rate(e.top1_hit_rate, e.per_target, 'top1_hit', e.top1_chance)}",
        f"top-3 hit rate: {_rate(e.top3_hit_rate, e.per_target, 'top3_hit', e.top3_chance)}",
        f"not scored (fewer than 3 sources with a ground truth, or constant values): {_list(e.unscored_targets)}",
        f"teachers without a ground-truth column (not targets): {_list(e.not_truth_targets)}",
        f"teachers without a ground-truth row (not sources): {_list(e.not_truth_sources)}",
        f"ground-truth tasks missing from the similarity matrix: {_list(e.not_in_similarity)}",
    ]
    return "\n".join(lines)


def figure(evaluations: list[Evaluation]):  # noqa: ANN201 - plotly Figure, imported lazily (slow to import)
    """Per-target Spearman bars, diagonal included and excluded; one row of bars per ground truth."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(evaluations), cols=1, shared_yaxes=True, vertical_spacing=0.5 / len(evaluations),
                        subplot_titles=[f"{e.ground_truth}: mean rho {_num(e.mean_spearman_with_diagonal)} (diagonal "
                                        f"included), {_num(e.mean_spearman_without_diagonal)} (excluded)"
                                        for e in evaluations])
    for row, e in enumerate(evaluations, 1):
        targets = [t.target for t in e.per_target]
        for field, label, color in (("spearman_with_diagonal", "diagonal included (DDS)", "#4c72b0"),
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


def _as_json(e: Evaluation, truth: GroundTruth) -> dict[str, object]:
    record = asdict(e)
    record["description"] = truth.description
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
