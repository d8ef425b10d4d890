"""The table users need: every transferability measure of the mini zoo against three transfer truths (mean
per-target Spearman with its interval, weighted tau, hit rates, time per measure), each truth's own ceiling, and
verdicts in plain words; written into the ``transferability_table`` section of docs/evaluate.md and, number for
number, docs/transferability_table.csv.

    python benchmarks/transferability_table.py                    # every measure; ~2 min on 2 busy cores
    python benchmarks/transferability_table.py --truth OUT        # a run of `rsa-toolkit mini transfer OUT`
    python benchmarks/transferability_table.py --quick            # 3 measures, 20 resamples, a temp folder

Truths: ``--truth DIR`` as loss gain (``transfer.csv``) and as AHP affinities (``ahp.csv``, seeds-and-splits runs
only), and Taskonomy's affinities on the DDS paper's 17 x 17. Predictors: the mini teachers' features on the default
probe set, as ``rsa-toolkit evaluate`` gets them; each measure's matrix from ``evaluate_measures``. Interval of a mean:
resample b draws the targets with replacement, paired with resample b of the truth's seeds, splits and test images
where it has ``losses.npz`` (``truth_samples_from_losses``) and, with ``--probe-bootstrap``, with the measure
recomputed on bootstrap b of the probe images; the same draws serve every measure. Ceiling: ``reliability.csv``. The
best measure is compared with RSA by a paired t-test over targets (Wilcoxon as the check), Holm-corrected over the
truths (amalgamate.evaluation.statistics, the project's evidence standard).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling helper below, when run as a script
from _doc_section import write_section  # noqa: E402

from rsa_toolkit.analysis.evaluation import (DDS17_TASKS, SIMILARITY_MEASURES, Evaluation,  # noqa: E402
                                             evaluate_measures, evaluate_similarity, measure_names)
from rsa_toolkit.analysis.ground_truth import (GroundTruth, load_ground_truth, losses_file,  # noqa: E402
                                               read_ground_truth_csv, truth_samples_from_losses)
from rsa_toolkit.files import atomic_path  # noqa: E402
from rsa_toolkit.lab.transfer import zoo_manifest_hash  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTION = "transferability_table"
QUICK_MEASURES = ("rsa", "dds-zscore-cosine", "logme")
GOAL = 0.85  # of the truth's ceiling (issue 15)
ALPHA = 0.05
LABELS = {  # what each measure computes; the options are docs/evaluate.md's "Transferability measures"
    "rsa": "RSA, the default: centred features, 1 − Pearson RDMs, Spearman",
    "dds-zscore-cosine": "DDS: z-scored features, cosine RDMs, Spearman",
    "logme": "LogME", "h_score": "H-score", "h_score_shrinkage": "H-score, shrinkage", "nce": "NCE", "leep": "LEEP",
    "parc": "PARC", "transrate": "TransRate", "cka_debiased": "debiased linear CKA, no normalisation",
    "cka_linear": "linear CKA, no normalisation", "cka_rbf": "RBF CKA, no normalisation"}
CSV_FIELDS = ("truth", "measure", "label", "targets", "rho_diag", "ci_low", "ci_high", "rho_nodiag", "weighted_tau",
              "top1", "top3", "seconds", "resamples", "note")


@dataclass(frozen=True)
class Truth:
    key: str  # the CSV's name for it
    label: str
    what: str  # where the numbers come from, one line
    truth: GroundTruth | None  # None: not in this run (``reason`` says why)
    reason: str
    samples: list[GroundTruth] | None  # the truth's own resamples, paired with the interval's resamples
    ceiling: float  # NaN: none (``ceiling_text`` says why)
    ceiling_text: str


@dataclass(frozen=True)
class Score:
    measure: str
    truth: str  # Truth.key
    evaluation: Evaluation
    ci: tuple[float, float]
    seconds: float  # the measure's matrix and its scoring, wall-clock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, load = time.perf_counter(), os.getloadavg()[0]
    truths = load_truths(args.truth, n_resamples=args.ci, seed=args.seed)
    features, n_images = mini_features(args.cache_dir)
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):  # loaded cores: extra BLAS threads only wait
        scores = [s for m in args.measures for s in score_measure(features, m, truths, args, n_images)]
    minutes = (time.perf_counter() - started) / 60
    command = " ".join(["python benchmarks/transferability_table.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [*preamble(args, command, minutes, load, n_images), *tables(truths, scores, args.measures),
             *verdicts(truths, scores), ""]
    write_csv(args.csv, truths, scores, args.ci)
    write_section(args.doc, SECTION, lines)
    print(f"wrote {args.doc} (section {SECTION}) and {args.csv} in {minutes:.1f} min")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--truth", type=Path, default=ROOT / "data" / "mini_transfer",
                    help="mini transfer truth directory (default data/mini_transfer)")
    ap.add_argument("--measures", nargs="+", choices=measure_names(), metavar="NAME",
                    help="default: every measure (--quick: " + " ".join(QUICK_MEASURES) + ")")
    ap.add_argument("--ci", type=int, metavar="N", help="resamples per interval (default 200, --quick 20; 0: none)")
    ap.add_argument("--probe-bootstrap", action="store_true",
                    help="each resample also recomputes the measure on a bootstrap of the probe images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (default 1: the products are small)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default: the toolkit's)")
    ap.add_argument("--doc", type=Path, help="markdown with the section (default docs/evaluate.md; --quick: temp)")
    ap.add_argument("--csv", type=Path, help="raw numbers (default docs/transferability_table.csv; --quick: temp)")
    ap.add_argument("--quick", action="store_true", help="a smoke run that never writes into docs/")
    args = ap.parse_args(argv)
    args.measures = list(dict.fromkeys(args.measures or (QUICK_MEASURES if args.quick else measure_names())))
    args.ci = (20 if args.quick else 200) if args.ci is None else args.ci
    if args.ci < 0:
        ap.error(f"--ci: expected 0 or a positive number of resamples, got {args.ci}")
    if not (args.truth / "transfer.csv").is_file():
        ap.error(f"--truth {args.truth}: no transfer.csv there; give the folder of `rsa-toolkit mini transfer OUT`")
    temp = args.quick and not (args.doc and args.csv)
    out = Path(tempfile.mkdtemp(prefix="transferability-table-")) if temp else ROOT / "docs"
    args.doc = args.doc or out / "evaluate.md"
    args.csv = args.csv or out / "transferability_table.csv"
    return args


def load_truths(directory: Path, *, n_resamples: int, seed: int) -> list[Truth]:
    """The mini truth as loss gain and as AHP affinities, and Taskonomy's affinities on 17 x 17."""
    where, recipe, reliability = _short(directory), _recipe(directory), _reliability(directory)
    old = f"{where} is a one-seed run"  # the reason a piece is missing
    gain = load_ground_truth(str(directory / "transfer.csv"))  # a path, so its losses.npz is found beside it
    losses = losses_file(gain) is not None
    samples = truth_samples_from_losses(gain, n_resamples=n_resamples, seed=seed) if losses and n_resamples else None
    truths = [Truth("mini-gain", "mini truth (loss gain)", f"`{where}/transfer.csv`, 1 − loss / loss(pixels); "
                    f"{recipe}" + ("" if losses else "; no losses.npz, so the truth's own noise is not resampled"),
                    gain, "", samples, *_ceiling(reliability, ("seed_rho_gain", "split_rho_gain"), old))]
    ahp_path = directory / "ahp.csv"
    ahp = read_ground_truth_csv(ahp_path, name="mini AHP") if ahp_path.is_file() else None  # no path: never gain
    truths.append(Truth("mini-ahp", "mini truth (AHP win rate)", f"`{where}/ahp.csv`, Taskonomy's AHP affinities "
                        f"of the per-image win rates" + (" (its own noise is not resampled)" if ahp else ""), ahp,
                        "" if ahp else f"no ahp.csv, {old}", None,
                        *_ceiling(reliability, ("seed_rho_ahp", "split_rho_ahp", "split_half_ahp"), old)))
    truths.append(Truth("taskonomy-dds", "Taskonomy affinity (DDS 17 × 17)", "`taskonomy-affinity` (AHP, Zamir et "
                        "al. 2018) on the DDS paper's 17 tasks, as `--protocol dds`",
                        dds_block(load_ground_truth("taskonomy-affinity")), "", None, math.nan,
                        "Taskonomy released one measurement per transfer"))
    return truths


def dds_block(truth: GroundTruth) -> GroundTruth:
    """The truth on the DDS paper's 17 tasks only. Scored with protocol ``all`` it gives exactly protocol ``dds``
    (which keeps the same rows and columns of the matrix), so every truth of the table shares one protocol."""
    rows = [i for i, s in enumerate(truth.sources) if s in DDS17_TASKS]
    cols = [j for j, t in enumerate(truth.targets) if t in DDS17_TASKS]
    return GroundTruth(values=np.asarray(truth.values)[np.ix_(rows, cols)], sources=[truth.sources[i] for i in rows],
                       targets=[truth.targets[j] for j in cols], name=truth.name,
                       higher_is_better=truth.higher_is_better, description=truth.description)


def _recipe(directory: Path) -> str:
    """What ``recipe.json`` says the truth was computed from."""
    path = directory / "recipe.json"
    recipe = json.loads(path.read_text()) if path.is_file() else {}
    c = recipe.get("config", {})
    if not c:
        return "no recipe.json"
    if "readouts" in recipe:
        return (f"recipe.json: readout seeds × training splits {c['seeds']} × {c['splits']}, "
                f"{c['train_frames']:,} training frames per split, early stopping on {c['val_frames']} val frames (at "
                f"most {c['max_steps']} steps of {c['batch_size']}), {c['test_frames']} test frames")
    return (f"recipe.json: one readout seed ({c['seed']}), one split of {c['train_frames']:,} training frames, "
            f"{c['steps']} steps of {c['batch_size']}, no early stopping, {c['test_frames']} test frames")


def _reliability(directory: Path) -> list[dict[str, str]] | None:
    path = directory / "reliability.csv"
    return list(csv.DictReader(path.read_text().splitlines())) if path.is_file() else None


def _ceiling(rows: list[dict[str, str]] | None, columns: tuple[str, ...], old: str) -> tuple[float, str]:
    """(mean over the scored targets of the first reliability column that has values, what it is) or (NaN, why)."""
    if rows is None:
        return math.nan, f"no reliability.csv, {old}"
    scored = [r for r in rows if r.get("beats_constant") == "True"]
    for column in columns:
        values = [float(r[column]) for r in scored if r.get(column, "") != ""]
        if values:
            return float(np.mean(values)), (f"mean over {len(values)} targets of `{column}` (reliability.csv): the "
                                            f"truth's Spearman with itself between repeats")
    return math.nan, f"reliability.csv has no {' / '.join(columns)} values"


def mini_features(cache_dir: Path | None) -> tuple[dict[str, np.ndarray], int]:
    """The mini teachers' features on the default probe set, as ``rsa-toolkit evaluate`` gets them by default."""
    from rsa_toolkit.features.extract import zoo_features
    from rsa_toolkit.images.probe import resolve_probe
    from rsa_toolkit.zoo.mini.embedded import mini_zoo

    features = zoo_features(mini_zoo(), resolve_probe("mini"), cache_dir=cache_dir).as_dict()
    return features, int(np.asarray(next(iter(features.values()))).shape[0])


def score_measure(features: dict[str, np.ndarray], measure: str, truths: list[Truth], args: argparse.Namespace,
                  n_images: int) -> list[Score]:
    present = [t for t in truths if t.truth is not None]
    start = time.perf_counter()
    result, = evaluate_measures(features, [t.truth for t in present], measures=[measure], seed=args.seed)
    seconds = time.perf_counter() - start
    print(f"{measure}: {seconds:.1f} s", file=sys.stderr, flush=True)
    samples = _matrix_samples(features, measure, args.ci, args.seed, n_images) if args.probe_bootstrap else None
    return [Score(measure, t.key, e, _interval(result.matrix, list(result.names), e, t, samples, args), seconds)
            for t, e in zip(present, result.evaluations)]


def _matrix_samples(features: dict[str, np.ndarray], measure: str, n: int, seed: int,
                    n_images: int) -> list[np.ndarray]:
    """The measure recomputed on n bootstrap resamples of the probe images, as ``evaluate_measures`` draws them."""
    if measure in SIMILARITY_MEASURES:
        from rsa_toolkit.rsa.similarity import similarity_matrix

        options = dict(SIMILARITY_MEASURES[measure] or {})
        return list(similarity_matrix(features, n_bootstrap=n, seed=seed, **options).bootstrap.samples)
    from rsa_toolkit.analysis.transferability.matrix import measure_matrix

    rng = np.random.default_rng(seed)
    return [measure_matrix({k: np.asarray(v)[idx] for k, v in features.items()}, measure, seed=seed)
            for idx in [rng.integers(0, n_images, n_images) for _ in range(n)]]


def _interval(matrix: np.ndarray, names: list[str], point: Evaluation, truth: Truth,
              samples: list[np.ndarray] | None, args: argparse.Namespace) -> tuple[float, float]:
    """Percentile interval of the mean per-target Spearman (diagonal included) over ``args.ci`` resamples."""
    if not args.ci:
        return math.nan, math.nan
    targets = [p.target for p in point.per_target]
    per_target = []
    for b in range(args.ci):
        if samples is None and truth.samples is None:
            evaluation = point
        else:
            evaluation = evaluate_similarity(matrix if samples is None else samples[b], names,
                                             truth.truth if truth.samples is None else truth.samples[b])
        rho = {p.target: p.spearman_with_diagonal for p in evaluation.per_target}
        per_target.append(np.array([rho[t] for t in targets]))
    rng = np.random.default_rng(args.seed)  # the same target draws for every measure
    means = [x[np.isfinite(x)].mean() for x in (v[rng.integers(0, len(v), len(v))] for v in per_target)
             if np.isfinite(x).any()]
    low, high = np.percentile(means, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)]) if means else (math.nan, math.nan)
    return float(low), float(high)


def ranked(scores: list[Score], key: str) -> list[Score]:
    """One truth's scores, best mean Spearman (diagonal included) first; undefined means last."""
    mine = [s for s in scores if s.truth == key]
    return sorted(mine, key=lambda s: -np.nan_to_num(s.evaluation.mean_spearman_with_diagonal, nan=-np.inf))


def comparisons(truths: list[Truth], scores: list[Score]) -> dict[str, tuple[Score, Score, object, float]]:
    """Per truth whose best measure is not RSA: (best, rsa, paired test over targets, Holm-adjusted p)."""
    from amalgamate.evaluation.statistics import holm, paired_test

    tests = {}
    for t in truths:
        order = ranked(scores, t.key)
        rsa = next((s for s in order if s.measure == "rsa"), None)
        if order and rsa is not None and order[0] is not rsa:
            best = {p.target: p.spearman_with_diagonal for p in order[0].evaluation.per_target}
            base = [(best[p.target], p.spearman_with_diagonal) for p in rsa.evaluation.per_target]
            tests[t.key] = (order[0], rsa, paired_test(*zip(*base)))
    adjusted = holm([test.p_t for _, _, test in tests.values()])
    return {k: (*v, float(p)) for (k, v), p in zip(tests.items(), adjusted)}


def preamble(args: argparse.Namespace, command: str, minutes: float, load: float, n_images: int) -> list[str]:
    noise = "the targets (with replacement) and, where the truth has per-seed losses, its seeds, splits and test images"
    noise += "; each measure recomputed on a bootstrap of the probe images" if args.probe_bootstrap else \
        "; the probe images are held fixed (`--probe-bootstrap` adds them, at N times each measure's time)"
    return ["", f"Produced by `{command}` in **{minutes:.1f} min** ({platform.machine()}, {os.cpu_count()} cores, "
                f"load average {load:.1f} at the start; a load above the core count means other jobs shared the "
                f"machine and the times are upper bounds); do not edit by hand. Every number: "
                f"[transferability_table.csv](transferability_table.csv).", "",
            f"- Predictors: the 20 mini teachers' `encoder` features on the default probe set ({n_images} frames), "
            f"each teacher on its own input kind (grey, noisy or masked frames for colorization, denoising and "
            f"inpainting: `--teacher-inputs own`, the default); zoo manifest sha256 {zoo_manifest_hash()[:12]}...; "
            f"each measure's source × target matrix as `rsa-toolkit evaluate --measures` computes it (seed "
            f"{args.seed}). Time: that matrix and its scoring, wall-clock, BLAS threads: {args.blas_threads}.",
            f"- ρ: the mean over targets of the per-target Spearman, diagonal included (the DDS protocol); 95 % "
            f"interval: percentiles of {args.ci} resamples of {noise}." if args.ci else
            "- ρ: the mean over targets of the per-target Spearman, diagonal included; no intervals (`--ci 0`).",
            "- Ceiling: the truth's own reliability, the most a predictor's ρ can be expected to reach. It is the "
            "agreement of single repeats; the truth averages all of them and is more reliable, so the goal (≥ 0.85 "
            "of it) errs on the generous side.", ""]


def tables(truths: list[Truth], scores: list[Score], measures: list[str]) -> list[str]:
    lines = []
    for t in truths:
        lines.append(f"**{t.label}**: {t.what}.")
        if t.truth is None:
            lines += ["", f"— not in this table: {t.reason}.", ""]
            continue
        mine = {s.measure: s for s in scores if s.truth == t.key}
        e = next(iter(mine.values())).evaluation
        lines += [f"{len(e.sources)} sources × {e.n_scored('spearman_with_diagonal')} scored targets; a random "
                  f"ranking hits top-1 {e.top1_chance:.2f} and top-3 {e.top3_chance:.2f}.", "",
                  "| measure | ρ, diagonal included [95 % CI] | without diagonal | weighted τ | top-1 | top-3 | "
                  "time (s) |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [table_row(mine[m]) for m in measures]
        what = t.ceiling_text if math.isfinite(t.ceiling) else f"none ({t.ceiling_text})"
        lines += [f"| **ceiling**, the truth against itself: {what} | {_num(t.ceiling)} | | | | | |", ""]
    return lines


def table_row(s: Score) -> str:
    e = s.evaluation
    ci = "" if math.isnan(s.ci[0]) else f" [{_num(s.ci[0])}, {_num(s.ci[1])}]"
    return (f"| {_name(s.measure)} | {_num(e.mean_spearman_with_diagonal)}{ci} | "
            f"{_num(e.mean_spearman_without_diagonal)} | {_num(e.mean_weighted_tau)} | {_num(e.top1_hit_rate, 2)} | "
            f"{_num(e.top3_hit_rate, 2)} | {s.seconds:.1f} |")


def verdicts(truths: list[Truth], scores: list[Score]) -> list[str]:
    tests = comparisons(truths, scores)
    lines = ["**Verdicts.**", ""]
    for t in truths:
        order = ranked(scores, t.key)
        if t.truth is None or not order:
            lines.append(f"- {t.label}: not scored ({t.reason}).")
            continue
        best, rho = order[0], order[0].evaluation.mean_spearman_with_diagonal
        line = f"- {t.label}: the best measure is {_name(best.measure)}, ρ {_num(rho)}."
        rsa = [i for i, s in enumerate(order) if s.measure == "rsa"]
        if rsa and rsa[0] == 0:
            line += " RSA is the best measure here."
        elif rsa:
            rho_rsa = order[rsa[0]].evaluation.mean_spearman_with_diagonal
            line += f" RSA ranks {rsa[0] + 1} of {len(order)} (ρ {_num(rho_rsa)}). {_versus(tests[t.key], len(tests))}"
        lines.append(f"{line} {_goal(t, rho)}")
    lines += ["", "The best measure is picked after seeing these numbers, which favours finding it better than RSA; "
                  "a paired test over about 20 targets detects only large differences, so \"no detectable difference\" "
                  "is not evidence that two measures are equal."]
    return lines


def _versus(found: tuple, m: int) -> str:
    best, _, test, p = found
    words = "no detectable difference" if p >= ALPHA else ("better" if test.mean_difference > 0 else "worse")
    return (f"Best − RSA over the {test.n} targets: {test.mean_difference:+.3f} [{test.ci_low:+.3f}, "
            f"{test.ci_high:+.3f}], paired t p = {test.p_t:.3g} (Wilcoxon {test.p_wilcoxon:.3g}), Holm over {m} "
            f"comparison{'s' if m > 1 else ''}: p = {p:.3g}, **{words}**.")


def _goal(t: Truth, rho: float) -> str:
    if math.isnan(t.ceiling):
        return f"Goal (≥ {GOAL} of the ceiling): cannot be judged, the truth has no ceiling ({t.ceiling_text})."
    share = rho / t.ceiling
    return (f"Goal (≥ {GOAL} of the ceiling): {_num(rho)} / {_num(t.ceiling)} = {share:.2f} of the ceiling, "
            f"**{'met' if share >= GOAL else 'not met'}**.")


def write_csv(path: Path, truths: list[Truth], scores: list[Score], n_resamples: int) -> None:
    """One row per measure x truth (numbers blank where a truth is missing), then one ceiling row per truth."""
    rows, measures = [], list(dict.fromkeys(s.measure for s in scores))
    for t in truths:
        mine = {s.measure: s for s in scores if s.truth == t.key}
        for m, s in ((m, mine.get(m)) for m in measures):
            e = s.evaluation if s else None
            rows.append({"truth": t.key, "measure": m, "label": LABELS.get(m, m), "note": t.reason, **({} if e is None
                         else {"targets": e.n_scored("spearman_with_diagonal"),
                               "rho_diag": e.mean_spearman_with_diagonal, "ci_low": s.ci[0], "ci_high": s.ci[1],
                               "rho_nodiag": e.mean_spearman_without_diagonal, "weighted_tau": e.mean_weighted_tau,
                               "top1": e.top1_hit_rate, "top3": e.top3_hit_rate, "seconds": s.seconds,
                               "resamples": n_resamples})})
        rows.append({"truth": t.key, "measure": "ceiling", "label": "the truth's own reliability",
                     "rho_diag": t.ceiling, "note": t.ceiling_text})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows)


def _name(measure: str) -> str:
    return f"{LABELS.get(measure, measure)} (`{measure}`)"


def _num(value: float, digits: int = 3) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def _short(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
