"""Reproduce the seed's claims (Luo et al., ECCV 2020, Tables 1-3 and Figures 2-3) on mini-Taskonomy, where the
truth is exact.

For each target set ({depth, normal} and {depth, edge2d, normal}) and each seed, five students are trained on the
shipped mini zoo with the same budget and evaluated on held-out test frames against ground truth and the teachers:

==============  =====================================================================================================
run             what
==============  =====================================================================================================
``kd``          KD n-to-1: one joint student, equal fixed weights, no auxiliary
``kd-n-to-n``   KD n-to-n: one single-task student per target, total parameters matched to the n-to-1 student
``soka``        SOKA n-to-1 with the auxiliary ``--auto-aux`` picks (the best RSA rank)
``soka-worst``  SOKA with the worst-ranked auxiliary (does the RSA choice matter?)
``soka-none``   SOKA with no auxiliary (the target teachers alone guide)
==============  =====================================================================================================

Jobs run in ``--jobs`` processes of one torch thread each; a run whose ``metrics.json`` exists is not trained again,
so a killed experiment continues where it stopped. Inference times (Table 3) are measured afterwards in this process,
all models on the same batch, as ratios. Writes the generated sections of docs/results.md (tables with mean ± std over
seeds) and docs/img/results_*.png.

    python benchmarks/soka_results.py --out runs/results                # the documented run (see docs/results.md)
    python benchmarks/soka_results.py --out /tmp/r --steps 20 --seeds 1 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
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
RUNS = ("kd", "kd-n-to-n", "soka", "soka-worst", "soka-none")
LABELS = {"teachers": "Teachers", "kd": "KD n-to-1", "kd-n-to-n": "KD n-to-n", "soka": "SOKA (RSA aux)",
          "soka-worst": "SOKA (worst aux)", "soka-none": "SOKA (no aux)"}
# per task: (metric, higher is better) in the seed's order
METRICS = {"depth_zbuffer": (("rmse", False), ("rel", False), ("delta1", True), ("delta2", True)),
           "edge_texture": (("rmse", False), ("accuracy", True)),
           "normal": (("rmse", False), ("angle", False), ("angle_11", True))}
TITLES = {"rmse": "rmse", "rel": "rel", "delta1": "δ<1.25", "delta2": "δ<1.25²", "accuracy": "acc",
          "angle": "angle°", "angle_11": "<11.25°"}


# --- the runs -------------------------------------------------------------------------------------------------------

def settings(kind: str, targets: tuple[str, ...], seed: int, args: argparse.Namespace,
             ranking: list[str]) -> dict[str, Any]:
    base = {"targets": list(targets), "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
            "seed": seed, "train_frames": args.train_frames, "eval_frames": args.eval_frames, "threads": 1,
            "checkpoint_every": args.steps}
    if kind in ("kd", "kd-n-to-n"):
        return {**base, "method": kind}
    aux = {"soka": {"auto_aux": True}, "soka-worst": {"aux": ranking[-1]}, "soka-none": {}}[kind]
    return {**base, "method": "soka", **aux}


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

    choice = rank_zoo(targets, mini_source(), mini_probe(), n_bootstrap=100, seed=0)
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


# --- aggregation ----------------------------------------------------------------------------------------------------

def load_metrics(out: Path, name: str, kind: str, seeds: int) -> list[dict[str, Any]]:
    return [json.loads((out / name.replace(" ", "-") / kind / f"seed{s}" / "metrics.json").read_text())
            for s in range(seeds)]


def values(runs: list[dict[str, Any]], model: str, task: str, metric: str, reference: str = "vs_truth") -> np.ndarray:
    key = "teachers" if model == "teachers" else "student"
    return np.array([np.nan if (v := m[key][task][reference].get(metric)) is None else v for m in runs], dtype=float)


def mean_std(x: np.ndarray, digits: int = 4) -> str:
    if np.isnan(x).all():
        return "–"
    return f"{np.nanmean(x):.{digits}g} ± {np.nanstd(x):.2g}" if len(x) > 1 else f"{x[0]:.{digits}g}"


def metric_table(groups: dict[str, list[dict[str, Any]]], targets: tuple[str, ...], *, with_teachers: bool,
                 reference: str = "vs_truth") -> list[str]:
    cols = [(t, m, hi) for t in targets for m, hi in METRICS[t]]
    header = ["model", *(f"{t} {TITLES[m]} {'↑' if hi else '↓'}" for t, m, hi in cols), "#params"]
    rows = []
    first = next(iter(groups.values()))
    if with_teachers:
        params = first[0]["parameters"]["teachers_total"]
        rows.append([LABELS["teachers"], *(mean_std(values(first[:1], "teachers", t, m)) for t, m, _ in cols),
                     f"{params:,}"])
    for kind, runs in groups.items():
        rows.append([LABELS[kind], *(mean_std(values(runs, "student", t, m, reference)) for t, m, _ in cols),
                     f"{runs[0]['parameters']['student']:,}"])
    return [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}", *(f"| {' | '.join(r)} |" for r in rows)]


def wins(a: list[dict[str, Any]], b: list[dict[str, Any]] | None, targets: tuple[str, ...]) -> tuple[int, int]:
    """On how many (task, metric) columns run group ``a``'s seed mean beats ``b``'s (``None``: ``a``'s teachers),
    out of how many."""
    won = total = 0
    for t in targets:
        for m, hi in METRICS[t]:
            x = np.nanmean(values(a, "student", t, m))
            y = np.nanmean(values(a, "teachers", t, m) if b is None else values(b, "student", t, m))
            total += 1
            won += bool(x > y if hi else x < y)
    return won, total


def weight_rows(out: Path, seeds: int) -> list[str]:
    """Across every SOKA run: does the weight GradNorm gave a task (its mean over the run) go with that task's result?

    Spearman over runs between a task's mean weight and its first metric (rmse / angle: lower is better, so a negative
    correlation means more weight, better result). Read from the runs' logs and metrics; nothing is tuned on it.
    """
    from scipy.stats import spearmanr

    lines = ["| task | metric | SOKA runs | weight range | Spearman(weight, metric) |", "|---|---|---|---|---|"]
    for task, metric in (("depth_zbuffer", "rmse"), ("normal", "angle")):
        weights, scores = [], []
        for name in TARGET_SETS:
            for kind in ("soka", "soka-worst", "soka-none"):
                for seed in range(seeds):
                    run = out / name.replace(" ", "-") / kind / f"seed{seed}"
                    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
                    weights.append(float(np.mean([e["weights"][task] for e in log])))
                    scores.append(json.loads((run / "metrics.json").read_text())["student"][task]["vs_truth"][metric])
        rho = spearmanr(weights, scores).statistic
        lines.append(f"| {task} | {TITLES[metric]} | {len(weights)} | {min(weights):.2f}–{max(weights):.2f} | "
                     f"**{rho:+.2f}** |")
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory of the runs (reused: finished runs are kept)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--train-frames", type=int, default=4000)
    ap.add_argument("--eval-frames", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-write", action="store_true", help="print the tables; leave docs/ alone")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rankings = {name: aux_ranking(targets, args) for name, targets in TARGET_SETS.items()}
    for name, targets in TARGET_SETS.items():
        fill_knowledge(targets, [rankings[name][0], rankings[name][-1]], args)
    jobs = [(str(args.out / name.replace(" ", "-") / kind / f"seed{seed}"),
             settings(kind, targets, seed, args, rankings[name]))
            for seed in range(args.seeds) for name, targets in TARGET_SETS.items() for kind in RUNS]
    todo = [job for job in jobs if not (Path(job[0]) / "metrics.json").is_file()]
    with ProcessPoolExecutor(args.jobs) as pool:
        for done in pool.map(run_one, *zip(*todo)) if todo else ():
            print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {done}", flush=True)
    # wall time of training and evaluating, summed over the invocations that trained (a killed run continues)
    timing_file = args.out / "timing.json"
    train_minutes = json.loads(timing_file.read_text())["minutes"] if timing_file.is_file() else 0.0
    if todo:
        train_minutes += (time.perf_counter() - t0) / 60
        timing_file.write_text(json.dumps({"minutes": train_minutes}))
    metrics = {name: {kind: load_metrics(args.out, name, kind, args.seeds) for kind in RUNS} for name in TARGET_SETS}
    t1 = time.perf_counter()
    speed = speed_rows(args)
    total_minutes = train_minutes + (time.perf_counter() - t1) / 60
    print_or_write(args, metrics, rankings, speed, train_minutes, total_minutes)


def print_or_write(args: argparse.Namespace, metrics: dict[str, dict[str, list[dict[str, Any]]]],
                   rankings: dict[str, list[str]], speed: list[str], train_minutes: float,
                   total_minutes: float) -> None:
    three, two = TARGET_SETS["3 tasks"], TARGET_SETS["2 tasks"]
    m3, m2 = metrics["3 tasks"], metrics["2 tasks"]
    command = (f"python benchmarks/soka_results.py --out RUNS --seeds {args.seeds} --steps {args.steps} "
               f"--batch-size {args.batch_size} --lr {args.lr:g} --train-frames {args.train_frames} --eval-frames "
               f"{args.eval_frames} --jobs {args.jobs}")
    setup = [
        "", f"Produced by `{command}` in {total_minutes:.0f} min ({train_minutes:.0f} min of training and "
        f"evaluating {len(RUNS) * len(TARGET_SETS) * args.seeds} students) on {os.cpu_count()} CPU cores; do not "
        "edit by hand. Mean ± standard deviation over seeds "
        f"{', '.join(str(s) for s in range(args.seeds))}; every student: {args.steps} steps of {args.batch_size} "
        f"frames at 64 px, AdamW lr {args.lr:g} (5% warm-up, cosine), {args.train_frames:,} train frames, scored "
        f"on {args.eval_frames} test frames against exact ground truth.",
        "",
        *(f"- {name}: RSA ranking of the auxiliaries: first **{r[0]}**, last **{r[-1]}** (of {len(r)})."
          for name, r in rankings.items()),
        "",
    ]
    table1 = ["", *metric_table({k: m3[k] for k in ("kd", "soka")}, three, with_teachers=True), ""]
    table2 = ["", "**2 tasks**", "", *metric_table({k: m2[k] for k in ("kd-n-to-n", "soka")}, two,
                                                   with_teachers=False),
              "", "**3 tasks**", "", *metric_table({k: m3[k] for k in ("kd-n-to-n", "soka")}, three,
                                                   with_teachers=False), ""]
    ablation = ["", *[line for name, targets in TARGET_SETS.items() for line in
                      (f"**{name}**", "", *metric_table({k: metrics[name][k] for k in ("soka", "soka-worst",
                                                                                        "soka-none", "kd")},
                                                        targets, with_teachers=False), "")]]
    tallies = [""]
    for name, targets in TARGET_SETS.items():
        g = metrics[name]
        for a, b in (("soka", "kd"), ("soka", "kd-n-to-n"), ("soka", "soka-worst"), ("soka", "soka-none")):
            w, n = wins(g[a], g[b], targets)
            tallies.append(f"- {name}: {LABELS[a]} better than {LABELS[b]} on {w} of {n} metrics (seed means).")
        w, n = wins(g["soka"], None, targets)
        tallies.append(f"- {name}: {LABELS['soka']} better than the teachers on {w} of {n} metrics.")
    tallies.append("")
    sections = {"results_setup": setup, "results_table1": table1, "results_table2": table2,
                "results_table3": ["", *speed, ""], "results_ablation": ablation, "results_tallies": tallies,
                "results_weights": ["", *weight_rows(args.out, args.seeds), ""]}
    if args.no_write:
        for name, lines in sections.items():
            print(f"--- {name}", *lines, sep="\n")
        return
    doc = ROOT / "docs" / "results.md"
    for name, lines in sections.items():
        write_section(doc, name, lines)
    run = args.out / "3-tasks" / "soka" / "seed0"
    curves_png(run / "log.jsonl", ROOT / "docs" / "img" / "results_curves.png",
               f"SOKA, 3 tasks, seed 0 (auxiliary {rankings['3 tasks'][0]})")
    from amalgamate import write_report

    report = write_report([run, args.out / "3-tasks" / "kd" / "seed0"], args.out / "report-3-tasks")
    prediction = next(p for p in report if p.name.startswith("predictions-soka"))
    (ROOT / "docs" / "img" / "results_predictions.png").write_bytes(prediction.read_bytes())
    print(f"wrote {doc} and docs/img/results_*.png")


if __name__ == "__main__":
    main()
