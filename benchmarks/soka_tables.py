"""The tables of docs/results.md, generated from the paired experiment's CSV alone (benchmarks/soka_results.py).

The CSV (shipped as ``docs/results_metrics.csv``) has one row per arm x target set x seed x model x task x reference
x metric: the students' and teachers' test metrics (reference ``truth`` or ``teacher``) and what the training logs
say (reference ``training``: each task's mean loss weight, the seconds per step, the step at which the balance
criterion was met, the weights' last drift). :func:`sections` turns it into the doc's generated sections; every
number in them can be recomputed from the CSV, and ``python benchmarks/soka_results.py --from-csv
docs/results_metrics.csv`` does exactly that. Arms and target sets absent from the CSV (an experiment run in parts)
are left out of every table.

Statistics (:mod:`amalgamate.evaluation.statistics`, DESIGN.md §7): mean ± sample SD (ddof = 1) [95 % t CI] over
seeds; paired t-tests of SOKA (RSA aux) against every other arm on the primary metrics across seeds (Wilcoxon as a
check), Holm-corrected over the whole family; "no detectable difference" where the corrected p >= 0.05.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

TARGET_SETS = {"2 tasks": ("depth_zbuffer", "normal"), "3 tasks": ("depth_zbuffer", "edge_texture", "normal")}
ARMS = ("kd", "kd-n-to-n", "soka", "soka-worst", "soka-random", "soka-none", "soka-other")
REFERENCE_ARM = "soka"  # the arm every other is compared with
# the arms whose GradNorm competition the balance criterion ends (soka-other's balancer moves its weights to the end,
# and its logged criterion predates the fix that counts only DWA's deciding steps: amalgamate.md)
COMPETING_ARMS = ("soka", "soka-worst", "soka-random", "soka-none")
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
GOAL_GAP_PERCENT = 5.0  # the mission's goal: a student within 5 % of its teachers on every target
# the sections generated from the CSV (docs/results.md also has results_setup and results_table3, from the run)
CSV_SECTIONS = ("results_primary", "results_gap", "results_tests", "results_secondary", "results_balance",
                "results_weights", "results_step_seconds")

Table = dict[tuple[str, str, str, str, str], dict[int, float]]


def read_csv(path: Path) -> Table:
    """(arm, targets, task, reference, metric) -> {seed: value} (NaN for an empty value)."""
    table: Table = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["arm"], row["targets"], row["task"], row["reference"], row["metric"])
            table.setdefault(key, {})[int(row["seed"])] = float(row["value"]) if row["value"] else math.nan
    return table


def present(table: Table) -> tuple[dict[str, tuple[str, ...]], list[int]]:
    """The arms run per target set (in ARMS order) and the seeds, as the CSV holds them."""
    arms = {name: tuple(a for a in ARMS if any(k[0] == a and k[1] == name for k in table)) for name in TARGET_SETS}
    seeds = sorted({s for values in table.values() for s in values})
    return {name: a for name, a in arms.items() if a}, seeds


def _values(table: Table, key: tuple, seeds: list[int]) -> np.ndarray:
    return np.array([table.get(key, {}).get(s, np.nan) for s in seeds], dtype=float)


def _fmt(summary, digits: int = 4) -> str:
    if summary.n == 0:
        return "–"
    if not math.isfinite(summary.sd):
        return f"{summary.mean:.{digits}g}"
    return f"{summary.mean:.{digits}g} ± {summary.sd:.2g} [{summary.ci_low:.{digits}g}, {summary.ci_high:.{digits}g}]"


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    return [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}", *(f"| {' | '.join(r)} |" for r in rows)]


def metric_table(table: Table, name: str, arms: tuple[str, ...], seeds: list[int], *,
                 primary_only: bool = False) -> list[str]:
    """Mean ± SD [95 % CI] over seeds per model (the teachers first) and (task, metric) column, against the truth."""
    from amalgamate.evaluation.statistics import summary

    targets = TARGET_SETS[name]
    cols = [(t, *PRIMARY[t]) for t in targets] if primary_only else [(t, m, hi) for t in targets
                                                                     for m, hi in METRICS[t]]
    header = ["model", *(f"{t} {TITLES[m]} {'↑' if hi else '↓'}" for t, m, hi in cols)]
    teachers = [LABELS["teachers"], *(f"{np.nanmean(_values(table, ('teachers', name, t, 'truth', m), seeds)):.4g}"
                                      for t, m, _ in cols)]  # the same teachers and frames in every seed
    rows = [teachers, *([LABELS[arm], *(_fmt(summary(_values(table, (arm, name, t, "truth", m), seeds)))
                                        for t, m, _ in cols)] for arm in arms)]
    return _markdown(header, rows)


def gap_rows(table: Table, arms: dict[str, tuple[str, ...]], seeds: list[int]) -> list[str]:
    """Each student's gap to its teacher on each primary metric, in % of the teacher's value, signed so that
    positive is worse (student - teacher for lower-is-better metrics, teacher - student for higher-is-better),
    per seed, then mean [95 % CI] over seeds; "yes" when the whole CI lies within the goal, "no" when all of it
    lies beyond, "undecided" otherwise."""
    from amalgamate.evaluation.statistics import summary

    rows = []
    for name, run_arms in arms.items():
        for arm in run_arms:
            for task in TARGET_SETS[name]:
                metric, higher = PRIMARY[task]
                teacher = _values(table, ("teachers", name, task, "truth", metric), seeds)
                student = _values(table, (arm, name, task, "truth", metric), seeds)
                gap = 100 * ((teacher - student) if higher else (student - teacher)) / np.abs(teacher)
                s = summary(gap)
                within = ("–" if not math.isfinite(s.ci_high) else "yes" if s.ci_high <= GOAL_GAP_PERCENT
                          else "no" if s.ci_low > GOAL_GAP_PERCENT else "undecided")
                rows.append([name, LABELS[arm], task, TITLES[metric], f"{np.nanmean(teacher):.4g}",
                             _fmt(summary(student)), f"{s.mean:+.1f} % [{s.ci_low:+.1f}, {s.ci_high:+.1f}]", within])
    return _markdown(["targets", "model", "task", "metric", "teacher", "student", "gap (+ = worse) [95 % CI]",
                      f"within {GOAL_GAP_PERCENT:g} %"], rows)


def comparison_rows(table: Table, arms: dict[str, tuple[str, ...]], seeds: list[int]) -> list[str]:
    """Paired tests of SOKA (RSA aux) against every other arm on the primary metrics, over seeds, Holm-corrected
    over the whole family (every target set, arm and primary metric in the CSV)."""
    from amalgamate.evaluation.statistics import holm, paired_test, verdict

    tests = []
    for name, run_arms in arms.items():
        if REFERENCE_ARM not in run_arms:
            continue
        for arm in (a for a in run_arms if a != REFERENCE_ARM):
            for task in TARGET_SETS[name]:
                metric, higher = PRIMARY[task]
                a = _values(table, (REFERENCE_ARM, name, task, "truth", metric), seeds)
                b = _values(table, (arm, name, task, "truth", metric), seeds)
                tests.append((name, arm, task, metric, higher, paired_test(a, b)))
    adjusted = holm([t[-1].p_t for t in tests])
    rows = [[name, LABELS[arm], task, TITLES[metric], str(r.n),
             f"{r.mean_difference:+.3g} [{r.ci_low:+.3g}, {r.ci_high:+.3g}]", f"{r.p_t:.3g}", f"{r.p_wilcoxon:.3g}",
             f"{p_holm:.3g}", verdict(r.mean_difference, p_holm, higher_is_better=higher)]
            for (name, arm, task, metric, higher, r), p_holm in zip(tests, adjusted)]
    return _markdown(["targets", f"{LABELS[REFERENCE_ARM]} vs", "task", "metric", "seeds",
                      "mean difference [95 % CI]", "p (t)", "p (Wilcoxon)", "p (Holm)", "verdict"], rows)


def balance_rows(table: Table, arms: dict[str, tuple[str, ...]], seeds: list[int]) -> list[str]:
    """Per GradNorm arm (:data:`COMPETING_ARMS`): in how many runs the balance criterion was met, at which steps,
    and how far the others were from it at their last step (the weights' drift per step, against the threshold)."""
    rows = []
    for name, run_arms in arms.items():
        for arm in (a for a in run_arms if a in COMPETING_ARMS):
            at = _values(table, (arm, name, "all", "training", "balanced_at"), seeds)
            run = np.isfinite(_values(table, (arm, name, "all", "training", "seconds_per_step"), seeds))
            drift = _values(table, (arm, name, "all", "training", "final_drift"), seeds)[run & ~np.isfinite(at)]
            drift = drift[np.isfinite(drift)]
            met = at[np.isfinite(at)]
            rows.append([name, LABELS[arm], f"{len(met)} of {int(run.sum())}",
                         ", ".join(str(int(s)) for s in sorted(met)) or "–",
                         ", ".join(f"{d:.1e}" for d in sorted(drift)) or "–"])
    return _markdown(["targets", "arm", "runs balanced", "balanced at step", "others: drift at the last step"], rows)


def weight_rows(table: Table, arms: dict[str, tuple[str, ...]], seeds: list[int]) -> list[str]:
    """Across every self-coordinated run: does the mean weight a task received go with that task's primary result?
    (Spearman over runs; a reading of the runs, nothing is tuned on it.)"""
    from scipy.stats import spearmanr

    rows = []
    for task, (metric, _) in PRIMARY.items():
        weights, scores = [], []
        for name, run_arms in arms.items():
            for arm in (a for a in run_arms if a.startswith("soka")):
                w = _values(table, (arm, name, task, "training", "mean_weight"), seeds)
                m = _values(table, (arm, name, task, "truth", metric), seeds)
                keep = np.isfinite(w) & np.isfinite(m)
                weights += list(w[keep])
                scores += list(m[keep])
        if not weights:
            continue
        rho = spearmanr(weights, scores).statistic if len(set(weights)) > 1 else math.nan
        rows.append([task, TITLES[metric], str(len(weights)), f"{min(weights):.2f}–{max(weights):.2f}",
                     f"**{rho:+.2f}**"])
    return _markdown(["task", "metric", "self-coordinated runs", "mean weight range", "Spearman(weight, metric)"],
                     rows)


def step_seconds_rows(table: Table, arms: dict[str, tuple[str, ...]], seeds: list[int]) -> list[str]:
    """Mean training seconds per step per arm and target set (wall clock of the runs, under the experiment's load)."""
    from amalgamate.evaluation.statistics import summary

    rows = [[name, LABELS[arm], _fmt(summary(_values(table, (arm, name, "all", "training", "seconds_per_step"),
                                                      seeds)), 3)]
            for name, run_arms in arms.items() for arm in run_arms]
    return _markdown(["targets", "arm", "s / step"], rows)


def sections(path: Path) -> dict[str, list[str]]:
    """Every CSV-generated section of docs/results.md, as lines between its markers."""
    table = read_csv(path)
    arms, seeds = present(table)

    def per_set(**kw) -> list[str]:
        return ["", *[line for name, run_arms in arms.items()
                      for line in (f"**{name}**", "", *metric_table(table, name, run_arms, seeds, **kw), "")]]

    return {"results_primary": per_set(primary_only=True),
            "results_gap": ["", *gap_rows(table, arms, seeds), ""],
            "results_tests": ["", *comparison_rows(table, arms, seeds), ""],
            "results_secondary": per_set(),
            "results_balance": ["", *balance_rows(table, arms, seeds), ""],
            "results_weights": ["", *weight_rows(table, arms, seeds), ""],
            "results_step_seconds": ["", *step_seconds_rows(table, arms, seeds), ""]}
