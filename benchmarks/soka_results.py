"""Reproduce the seed's claims (Luo et al., ECCV 2020, Tables 1-3 and Figures 2-3) on mini-Taskonomy, where the
truth is exact, as a paired experiment with statistics (DESIGN.md §7's evidence standards).

For each target set ({depth, normal} and {depth, edge2d, normal}) and each seed (5 by default), every arm trains one
student on the shipped mini zoo with the same budget; it is evaluated on held-out test frames against ground truth
and the teachers:

===============  ====================================================================================================
arm              what
===============  ====================================================================================================
``kd``           KD n-to-1: one joint student, equal fixed weights, no auxiliary
``kd-n-to-n``    KD n-to-n: one single-task student per target, total parameters matched to the n-to-1 student
``soka``         SOKA n-to-1 (GradNorm) with the auxiliary RSA ranks best (what ``--auto-aux`` picks)
``soka-worst``   SOKA with the worst-ranked auxiliary (does the RSA choice matter?)
``soka-random``  SOKA with an auxiliary drawn at random (seeded per seed) from the candidates between best and worst
``soka-none``    SOKA with no auxiliary (the target teachers alone guide)
``soka-other``   SOKA with the RSA-best auxiliary and the best other balancer (``--other-weighting``, DWA: chosen
                 on the val split, benchmarks/soka_sweep.py, docs/amalgamate.md)
===============  ====================================================================================================

Pairing: every arm of a seed has the same seed, the same training frames and so the same data order (the trainer's
order is drawn from ``(seed, 7)`` alone) and the same initialisation seed. Primary metrics (declared here, before the
experiment): :data:`PRIMARY`. Every metric of every run goes to one CSV, ``RUNS/metrics.csv`` (one row per arm x
target set x seed x model x task x reference x metric); every table is generated from that CSV only: mean, sample SD
(ddof = 1) and 95 % t CI over seeds, paired t-tests of SOKA (RSA aux) against each other arm on the primary metrics
across seeds (Wilcoxon as a check), Holm-corrected over the whole family of those comparisons, and a verdict ("no
detectable difference" where the corrected p >= 0.05) (:mod:`amalgamate.evaluation.statistics`).

Jobs run in ``--jobs`` processes of one torch thread each; a run whose ``metrics.json`` exists is not trained again,
so a killed experiment continues where it stopped. Inference times (Table 3) are measured afterwards in this process,
all models on the same batch, as ratios. Writes the generated sections of docs/results.md and docs/img/results_*.png.

Choosing the defaults (docs/amalgamate.md; ``benchmarks/soka_sweep.py`` runs the whole sweep) comes first, on the
**val** split, never on test: the same script with ``--eval-split val`` scores every run on val frames (a shard
rendered once under RUNS), and ``--set KEY=VALUE`` (repeatable; ``gradnorm.lr=0.05`` for a weighting's option)
changes the soka arms' config, one output directory per setting, e.g. ``--seeds 1 --eval-split val --set guide_weight=0.25 --out runs/sweep-gw0.25 --no-write``.

    python benchmarks/soka_results.py --out runs/results                # the documented run (see docs/results.md)
    python benchmarks/soka_results.py --out /tmp/r --steps 2 --seeds 1 --train-frames 64 --eval-frames 16 \
        --kd-warmup 0 --no-speed --no-write                              # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_SETS = {"2 tasks": ("depth_zbuffer", "normal"), "3 tasks": ("depth_zbuffer", "edge_texture", "normal")}
ARMS = ("kd", "kd-n-to-n", "soka", "soka-worst", "soka-random", "soka-none", "soka-other")
REFERENCE_ARM = "soka"  # the arm every other is compared with
LABELS = {"teachers": "Teachers", "kd": "KD n-to-1", "kd-n-to-n": "KD n-to-n", "soka": "SOKA (RSA aux)",
          "soka-worst": "SOKA (worst aux)", "soka-random": "SOKA (random aux)", "soka-none": "SOKA (no aux)",
          "soka-other": "SOKA (other balancer, RSA aux)"}
# the primary metric per task, declared before the experiment: (metric, higher is better)
PRIMARY = {"depth_zbuffer": ("rmse", False), "normal": ("angle", False), "edge_texture": ("f_score", True)}
# secondary metrics shown in the tables, per task
METRICS = {"depth_zbuffer": (("rmse", False), ("rel", False), ("delta1", True), ("delta2", True)),
           "edge_texture": (("f_score", True), ("rmse", False), ("accuracy", True)),
           "normal": (("angle", False), ("angle_11", True), ("rmse", False))}
TITLES = {"rmse": "rmse", "rel": "rel", "delta1": "δ<1.25", "delta2": "δ<1.25²", "accuracy": "acc",
          "angle": "angle°", "angle_11": "<11.25°", "f_score": "F (ODS)"}
CSV_FIELDS = ("arm", "targets", "seed", "model", "task", "reference", "metric", "value")
SECTIONS = ("results_setup", "results_primary", "results_tests", "results_secondary", "results_table3",
            "results_weights", "results_step_seconds")  # the generated sections of docs/results.md


# --- the runs -------------------------------------------------------------------------------------------------------

def settings(arm: str, targets: tuple[str, ...], seed: int, args: argparse.Namespace,
             ranking: list[str]) -> dict[str, Any]:
    base = {"targets": list(targets), "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
            "seed": seed, "train_frames": args.train_frames, "eval_frames": args.eval_frames, "threads": 1,
            "checkpoint_every": args.steps}
    if args.eval_split == "val":
        base["eval_shard"] = str(val_shard(args))
    if arm in ("kd", "kd-n-to-n"):
        return {**base, "method": arm}
    soka = {**base, "method": "soka", **overrides(args.set)}
    if args.kd_warmup is not None:
        soka["kd_warmup"] = args.kd_warmup
    if arm == "soka":
        return {**soka, "aux": ranking[0]}  # what --auto-aux picks (the same ranking)
    if arm == "soka-worst":
        return {**soka, "aux": ranking[-1]}
    if arm == "soka-random":
        return {**soka, "aux": random_auxiliary(ranking, seed)}
    if arm == "soka-none":
        return soka
    if arm == "soka-other":
        return {**soka, "aux": ranking[0], "weighting": args.other_weighting}
    raise ValueError(f"unknown arm {arm}")


def overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as config settings (values read as JSON where they parse, else strings);
    ``WEIGHTING.OPTION=VALUE`` goes to ``weighting_options``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if "." in key:
            table, option = key.split(".", 1)
            out.setdefault("weighting_options", {}).setdefault(table, {})[option] = value
        else:
            out[key] = value
    return out


def val_shard(args: argparse.Namespace) -> Path:
    """``args.eval_frames`` labelled frames of the val split, rendered once into RUNS/val-shard."""
    from rsa_toolkit.scenes.shards import shard_is_current, write_shard

    path = args.out / f"val-shard-{args.eval_frames}"
    if not shard_is_current(path):
        write_shard(path, "val", args.eval_frames)
    return path


def random_auxiliary(ranking: list[str], seed: int) -> str:
    """A candidate between the best and the worst, drawn from a generator seeded by the seed (same on every rerun)."""
    middle = ranking[1:-1] or ranking
    return middle[int(np.random.default_rng([seed, 2020]).integers(len(middle)))]


def run_one(run_dir: str, config: dict[str, Any]) -> str:
    """Train (unless finished) and evaluate one student; runs in a worker process."""
    from amalgamate import evaluate_run, train

    path = Path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path / "metrics.json").is_file():
        train(path, config, overwrite=True)
        evaluate_run(path)
    return run_dir


def aux_ranking(targets: tuple[str, ...], args: argparse.Namespace) -> list[str]:
    """The RSA ranking of the auxiliary candidates, as --auto-aux computes it (cached features)."""
    from amalgamate.training.auxiliary import rank_zoo
    from amalgamate.zoo import mini_source
    from rsa_toolkit.zoo.mini.embedded import mini_probe

    choice = rank_zoo(targets, mini_source(), mini_probe(args.probe_frames), n_bootstrap=100, seed=0)
    return [entry["name"] for entry in choice.record["ranking"]]


def fill_knowledge(targets: tuple[str, ...], auxiliaries: list[str], args: argparse.Namespace) -> None:
    """Compute every teacher's knowledge once, here, so that parallel runs only read the cache."""
    from amalgamate.training.images import mini_frames
    from amalgamate.training.knowledge import build_knowledge
    from amalgamate.zoo import mini_source
    from rsa_toolkit.features.extract import default_cache_dir

    zoo = mini_source()
    images = mini_frames("train", args.train_frames, cache_dir=default_cache_dir())
    for aux in auxiliaries:
        build_knowledge([zoo.target(t) for t in targets], zoo.auxiliary(aux), images, cache_dir=default_cache_dir())


# --- the CSV and the tables from it ----------------------------------------------------------------------------------

def run_dir(out: Path, name: str, arm: str, seed: int) -> Path:
    return out / name.replace(" ", "-") / arm / f"seed{seed}"


def write_csv(out: Path, seeds: int) -> Path:
    """One row per arm x target set x seed x model x task x reference x metric, from every run's metrics.json."""
    from rsa_toolkit.files import atomic_path

    path = out / "metrics.csv"
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for name in TARGET_SETS:
            for arm in ARMS:
                for seed in range(seeds):
                    m = json.loads((run_dir(out, name, arm, seed) / "metrics.json").read_text())
                    for task, scores in m["student"].items():
                        for reference in ("vs_truth", "vs_teacher"):
                            for metric, value in (scores.get(reference) or {}).items():
                                writer.writerow({"arm": arm, "targets": name, "seed": seed, "model": "student",
                                                 "task": task, "reference": reference[3:], "metric": metric,
                                                 "value": "" if value is None else value})
                    if arm == ARMS[0]:  # the teachers are the same in every arm: once per target set and seed
                        for task, scores in m["teachers"].items():
                            for metric, value in (scores.get("vs_truth") or {}).items():
                                writer.writerow({"arm": "teachers", "targets": name, "seed": seed,
                                                 "model": "teacher", "task": task, "reference": "truth",
                                                 "metric": metric, "value": "" if value is None else value})
    return path


def read_csv(path: Path) -> dict[tuple[str, str, str, str, str], dict[int, float]]:
    """(arm, targets, task, reference, metric) -> {seed: value} (NaN for a missing value)."""
    table: dict[tuple[str, str, str, str, str], dict[int, float]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["arm"], row["targets"], row["task"], row["reference"], row["metric"])
            table.setdefault(key, {})[int(row["seed"])] = float(row["value"]) if row["value"] else float("nan")
    return table


def _seed_values(table: dict, key: tuple, seeds: list[int]) -> np.ndarray:
    return np.array([table.get(key, {}).get(s, np.nan) for s in seeds], dtype=float)


def _fmt(summary, digits: int = 4) -> str:
    from math import isfinite

    if summary.n == 0:
        return "–"
    if not isfinite(summary.sd):
        return f"{summary.mean:.{digits}g}"
    return f"{summary.mean:.{digits}g} ± {summary.sd:.2g} [{summary.ci_low:.{digits}g}, {summary.ci_high:.{digits}g}]"


def metric_table(table: dict, name: str, arms: tuple[str, ...], seeds: list[int], *, primary_only: bool = False,
                 with_teachers: bool = False, reference: str = "truth") -> list[str]:
    """Mean ± SD [95 % CI] over seeds per arm and (task, metric) column, from the CSV's table."""
    from amalgamate.evaluation.statistics import summary

    targets = TARGET_SETS[name]
    cols = [(t, *PRIMARY[t]) for t in targets] if primary_only else [(t, m, hi) for t in targets
                                                                     for m, hi in METRICS[t]]
    header = ["model", *(f"{t} {TITLES[m]} {'↑' if hi else '↓'}" for t, m, hi in cols)]
    rows = []
    for arm in (("teachers",) if with_teachers else ()) + arms:
        rows.append([LABELS[arm], *(_fmt(summary(_seed_values(table, (arm, name, t, reference, m), seeds)))
                                    for t, m, _ in cols)])
    return [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}", *(f"| {' | '.join(r)} |" for r in rows)]


def comparison_rows(table: dict, seeds: list[int]) -> list[str]:
    """Paired tests of SOKA (RSA aux) against every other arm on the primary metrics, over seeds, Holm-corrected
    over the whole family (every target set, arm and primary metric)."""
    from amalgamate.evaluation.statistics import holm, paired_test, verdict

    tests = []
    for name, targets in TARGET_SETS.items():
        for arm in ARMS:
            if arm == REFERENCE_ARM:
                continue
            for task in targets:
                metric, higher = PRIMARY[task]
                a = _seed_values(table, (REFERENCE_ARM, name, task, "truth", metric), seeds)
                b = _seed_values(table, (arm, name, task, "truth", metric), seeds)
                tests.append((name, arm, task, metric, higher, paired_test(a, b)))
    adjusted = holm([t[-1].p_t for t in tests])
    lines = [f"| targets | {LABELS[REFERENCE_ARM]} vs | task | metric | mean difference [95 % CI] | p (t) | "
             "p (Wilcoxon) | p (Holm) | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for (name, arm, task, metric, higher, r), p_holm in zip(tests, adjusted):
        lines.append(f"| {name} | {LABELS[arm]} | {task} | {TITLES[metric]} | {r.mean_difference:+.3g} "
                     f"[{r.ci_low:+.3g}, {r.ci_high:+.3g}] | {r.p_t:.3g} | {r.p_wilcoxon:.3g} | {p_holm:.3g} | "
                     f"{verdict(r.mean_difference, p_holm, higher_is_better=higher)} |")
    return lines


def weight_rows(out: Path, seeds: int) -> list[str]:
    """Across every SOKA run: does the mean weight a task received go with that task's primary result?
    (Spearman over runs; read from the logs and the CSV's source metrics; nothing is tuned on it.)"""
    from scipy.stats import spearmanr

    lines = ["| task | metric | SOKA runs | weight range | Spearman(weight, metric) |", "|---|---|---|---|---|"]
    for task in ("depth_zbuffer", "normal"):
        metric = PRIMARY[task][0]
        weights, scores = [], []
        for name in TARGET_SETS:
            for arm in (a for a in ARMS if a.startswith("soka")):
                for seed in range(seeds):
                    run = run_dir(out, name, arm, seed)
                    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
                    weights.append(float(np.mean([e["weights"][task] for e in log])))
                    scores.append(json.loads((run / "metrics.json").read_text())["student"][task]["vs_truth"][metric])
        rho = spearmanr(weights, scores).statistic if len(set(weights)) > 1 else float("nan")
        lines.append(f"| {task} | {TITLES[metric]} | {len(weights)} | {min(weights):.2f}–{max(weights):.2f} | "
                     f"**{rho:+.2f}** |")
    return lines


def step_seconds(out: Path, seeds: int) -> list[str]:
    """Mean training seconds per step per arm and target set (run.json; under the experiment's load)."""
    lines = ["| targets | arm | s / step |", "|---|---|---|"]
    for name in TARGET_SETS:
        for arm in ARMS:
            per = [json.loads((run_dir(out, name, arm, s) / "run.json").read_text()) for s in range(seeds)]
            sec = np.mean([r["seconds_this_session"] / max(1, r["step"]) for r in per])
            lines.append(f"| {name} | {LABELS[arm]} | {sec:.2f} |")
    return lines


def speed_rows(args: argparse.Namespace) -> list[str]:
    from bench_amalgamate import inference_rows

    lines = ["| targets | model | ms / frame | × teachers | parameters | GFLOP / frame |", "|---|---|---|---|---|---|"]
    for name, targets in TARGET_SETS.items():
        for r in inference_rows(targets, args.batch_size, rounds=20):
            lines.append(f"| {name} | {r['model']} | {r['ms']:.2f} | **{r['ratio']:.2f}×** | {r['params']:,} | "
                         f"{r['gflops']:.3f} |")
    return lines


def curves_png(log_path: Path, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rsa_toolkit.files import atomic_path

    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    steps = [e["step"] for e in entries]
    tasks = list(entries[0]["losses"])
    fig = Figure(figsize=(10, 3.8))
    ax_loss, ax_w = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for t in tasks:
        losses = np.array([e["losses"][t] for e in entries])
        ax_loss.plot(steps, losses / losses[0], label=t, lw=1)
        ax_w.plot(steps, [e["weights"][t] for e in entries], label=t, lw=1.2)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="step", ylabel="distillation loss / initial", title="losses")
    ax_w.set(xlabel="step", ylabel="loss weight w_i", title="self-coordinated weights (GradNorm)")
    ax_w.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        FigureCanvasAgg(fig).print_png(str(tmp))


def narrow(arms: list[str], target_sets: list[str]) -> None:
    """Restrict the experiment to some arms and target sets (the CPU plan of docs/results.md runs it in parts; the
    finished runs of every part stay under --out). Every table below iterates ARMS and TARGET_SETS, so they are
    narrowed here, once, before anything runs; the doc's setup line names what was run."""
    global ARMS, TARGET_SETS
    ARMS = tuple(a for a in ARMS if a in arms or a == REFERENCE_ARM)
    TARGET_SETS = {name: TARGET_SETS[name] for name in target_sets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory of the runs (reused: finished runs are kept)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--train-frames", type=int, default=4000)
    ap.add_argument("--eval-frames", type=int, default=500)
    ap.add_argument("--probe-frames", type=int, default=500, help="mini probe frames of the RSA ranking")
    ap.add_argument("--kd-warmup", type=int, default=None, help="soka arms: KD warm-up steps (default: the config's)")
    ap.add_argument("--other-weighting", default="dwa",
                    help="the balancer of the soka-other arm (default dwa: the best non-GradNorm balancer of the val "
                         "sweep, docs/amalgamate.md)")
    ap.add_argument("--eval-split", choices=("test", "val"), default="test",
                    help="score on test frames (the final numbers) or val frames (every choice, e.g. the sweep)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config setting of the soka arms (repeatable; gradnorm.lr=0.05 for a weighting's option)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                    help="run (and tabulate) only these arms; 'soka' is always kept: every test compares with it")
    ap.add_argument("--target-sets", nargs="+", choices=list(TARGET_SETS), default=list(TARGET_SETS),
                    help="run (and tabulate) only these target sets")
    ap.add_argument("--no-speed", action="store_true", help="skip the inference timing (Table 3)")
    ap.add_argument("--no-write", action="store_true", help="print the tables; leave docs/ alone")
    args = ap.parse_args()
    narrow(args.arms, args.target_sets)
    if not args.no_write:  # before hours of training, not after
        from _doc_section import markers

        text = (ROOT / "docs" / "results.md").read_text()
        missing = [n for n in SECTIONS if any(m not in text for m in markers(n))]
        if missing:
            raise SystemExit(f"docs/results.md lacks the markers of {', '.join(missing)}; add them first.")
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.eval_split == "val":
        val_shard(args)  # rendered once here, before the workers read it
    rankings = {name: aux_ranking(targets, args) for name, targets in TARGET_SETS.items()}
    for name, targets in TARGET_SETS.items():
        auxiliaries = {rankings[name][0], rankings[name][-1], *(random_auxiliary(rankings[name], s)
                                                               for s in range(args.seeds))}
        fill_knowledge(targets, sorted(auxiliaries), args)
    jobs = [(str(run_dir(args.out, name, arm, seed)), settings(arm, targets, seed, args, rankings[name]))
            for seed in range(args.seeds) for name, targets in TARGET_SETS.items() for arm in ARMS]
    todo = [job for job in jobs if not (Path(job[0]) / "metrics.json").is_file()]
    with ProcessPoolExecutor(args.jobs) as pool:
        for done in pool.map(run_one, *zip(*todo)) if todo else ():
            print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {done}", flush=True)
    timing_file = args.out / "timing.json"
    train_minutes = json.loads(timing_file.read_text())["minutes"] if timing_file.is_file() else 0.0
    if todo:
        train_minutes += (time.perf_counter() - t0) / 60
        timing_file.write_text(json.dumps({"minutes": train_minutes}))
    csv_path = write_csv(args.out, args.seeds)
    table = read_csv(csv_path)  # every table below comes from the CSV only
    t1 = time.perf_counter()
    speed = [] if args.no_speed else speed_rows(args)
    total_minutes = train_minutes + (time.perf_counter() - t1) / 60
    print_or_write(args, table, rankings, speed, train_minutes, total_minutes, csv_path)


def print_or_write(args: argparse.Namespace, table: dict, rankings: dict[str, list[str]], speed: list[str],
                   train_minutes: float, total_minutes: float, csv_path: Path) -> None:
    seeds = list(range(args.seeds))
    command = (f"python benchmarks/soka_results.py --out RUNS --seeds {args.seeds} --steps {args.steps} "
               f"--batch-size {args.batch_size} --lr {args.lr:g} --train-frames {args.train_frames} --eval-frames "
               f"{args.eval_frames} --other-weighting {args.other_weighting} --eval-split {args.eval_split}"
               + "".join(f" --set {pair}" for pair in args.set) + f" --jobs {args.jobs}"
               + (f" --arms {' '.join(ARMS)}" if len(ARMS) < len(LABELS) - 1 else "")
               + (f" --target-sets {' '.join(repr(n) for n in TARGET_SETS)}" if len(TARGET_SETS) < 2 else ""))
    setup = [
        "", f"Produced by `{command}` in {total_minutes:.0f} min ({train_minutes:.0f} min of training and "
        f"evaluating {len(ARMS) * len(TARGET_SETS) * args.seeds} students) on {os.cpu_count()} CPU cores; do not "
        f"edit by hand. Every table is generated from `{csv_path.name}` (one row per arm, target set, seed, task, "
        f"reference and metric). Mean ± sample SD (ddof = 1) [95 % t CI] over seeds "
        f"{', '.join(str(s) for s in seeds)}; every student: {args.steps} steps of {args.batch_size} frames at 64 px, "
        f"AdamW lr {args.lr:g} (5% warm-up, cosine), {args.train_frames:,} train frames (the same data order per "
        f"seed in every arm), scored on {args.eval_frames} {args.eval_split} frames against exact ground truth. "
        f"Primary metrics "
        f"(declared before the run): {', '.join(f'{t} {TITLES[m]}' for t, (m, _) in PRIMARY.items())}.",
        "",
        *(f"- {name}: RSA ranking of the auxiliaries: first **{r[0]}**, last **{r[-1]}** (of {len(r)}); random "
          f"per seed: {', '.join(random_auxiliary(r, s) for s in seeds)}." for name, r in rankings.items()),
        "",
    ]
    primary = ["", *[line for name in TARGET_SETS for line in
                     (f"**{name}**", "", *metric_table(table, name, ARMS, seeds, primary_only=True,
                                                       with_teachers=True), "")]]
    secondary = ["", *[line for name in TARGET_SETS for line in
                       (f"**{name}**", "", *metric_table(table, name, ARMS, seeds, with_teachers=True), "")]]
    sections = {"results_setup": setup, "results_primary": primary, "results_tests": ["", *comparison_rows(table,
                                                                                                         seeds), ""],
                "results_secondary": secondary, "results_table3": ["", *speed, ""],
                "results_weights": ["", *weight_rows(args.out, args.seeds), ""],
                "results_step_seconds": ["", *step_seconds(args.out, args.seeds), ""]}
    if args.no_write:
        for name, lines in sections.items():
            print(f"--- {name}", *lines, sep="\n")
        return
    doc = ROOT / "docs" / "results.md"
    for name, lines in sections.items():
        write_section(doc, name, lines)
    shown = list(TARGET_SETS)[-1]  # the largest target set run
    run = run_dir(args.out, shown, "soka", 0)
    curves_png(run / "log.jsonl", ROOT / "docs" / "img" / "results_curves.png",
               f"SOKA, {shown}, seed 0 (auxiliary {rankings[shown][0]})")
    if "kd" in ARMS:
        from amalgamate import write_report

        report = write_report([run, run_dir(args.out, shown, "kd", 0)], args.out / f"report-{shown.replace(' ', '-')}")
        prediction = next(p for p in report if p.name.startswith("predictions-soka"))
        (ROOT / "docs" / "img" / "results_predictions.png").write_bytes(prediction.read_bytes())
    print(f"wrote {doc} and docs/img/results_*.png")


if __name__ == "__main__":
    main()
