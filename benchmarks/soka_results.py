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
order is drawn from ``(seed, 7)`` alone) and the same initialisation seed. Primary metrics (declared before the
experiment): ``soka_tables.PRIMARY``. Every finished run goes into one CSV, ``RUNS/metrics.csv``, shipped as
``docs/results_metrics.csv`` (one row per arm x target set x seed x model x task x reference x metric, the training
logs' weights, step times and balance steps included); every table but the inference times is generated from that
CSV alone (benchmarks/soka_tables.py: mean, sample SD and 95 % CI over seeds, the gap to the teachers, paired tests
with Holm's correction, verdicts).

Jobs run in ``--jobs`` processes of one torch thread each; a run whose ``metrics.json`` exists is not trained again,
so a killed experiment continues where it stopped, and an experiment run in parts (``--arms``, ``--target-sets``)
adds up under one RUNS; ``--tables-only`` tabulates what is finished. Inference times (Table 3) are measured in this
process, all models on the same batch, as ratios, into ``RUNS/speed.json`` (``--speed-only`` measures them alone, on a
quiet machine). Writes the generated sections of docs/results.md, docs/results_metrics.csv and docs/img/results_*.png.

Choosing the defaults (docs/amalgamate.md; ``benchmarks/soka_sweep.py`` runs the whole sweep) comes first, on the
**val** split, never on test: the same script with ``--eval-split val`` scores every run on val frames (a shard
rendered once under RUNS), and ``--set KEY=VALUE`` (repeatable; ``gradnorm.lr=0.05`` for a weighting's option)
changes the soka arms' config, one output directory per setting, e.g.
``--seeds 1 --eval-split val --set guide_weight=0.25 --out runs/sweep-gw0.25 --no-write``.

    python benchmarks/soka_results.py --out runs/results                # the documented run (see docs/results.md)
    python benchmarks/soka_results.py --from-csv docs/results_metrics.csv     # the doc's tables from the shipped CSV
    python benchmarks/soka_results.py --out /tmp/r --steps 2 --seeds 1 --train-frames 64 --eval-frames 16 \
        --kd-warmup 0 --no-speed --no-write                              # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc_section import markers, write_section  # noqa: E402
from soka_tables import (ARMS, CSV_FIELDS, CSV_SECTIONS, PRIMARY, REFERENCE_ARM, TARGET_SETS,  # noqa: E402
                         TITLES, sections)

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("results_setup", "results_table3", *CSV_SECTIONS)  # the generated sections of docs/results.md
SHIPPED_CSV = ROOT / "docs" / "results_metrics.csv"  # the experiment's CSV, shipped: every table comes from it


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


# --- the CSV: every run's metrics and what its log says ---------------------------------------------------------------

def run_dir(out: Path, name: str, arm: str, seed: int) -> Path:
    return out / name.replace(" ", "-") / arm / f"seed{seed}"


def run_rows(run: Path, arm: str, name: str, seed: int) -> list[dict[str, Any]]:
    """The CSV rows of one finished run: the student's metrics against the truth and the teachers; each task's mean
    loss weight over the logged steps, the seconds per training step, the step the balance criterion was met and the
    weights' drift per step at the last step that logged one (what the criterion compares with its threshold)."""
    m = json.loads((run / "metrics.json").read_text())
    info = json.loads((run / "run.json").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    row = {"arm": arm, "targets": name, "seed": seed, "model": "student"}
    rows = [{**row, "task": task, "reference": reference[3:], "metric": metric, "value": value}
            for task, scores in m["student"].items() for reference in ("vs_truth", "vs_teacher")
            for metric, value in (scores.get(reference) or {}).items()]
    rows += [{**row, "task": task, "reference": "training", "metric": "mean_weight",
              "value": float(np.mean([e["weights"][task] for e in log]))} for task in m["student"]]
    rows += [{**row, "task": "all", "reference": "training", "metric": "seconds_per_step",
              "value": info["seconds_this_session"] / max(1, info["step"])},
             {**row, "task": "all", "reference": "training", "metric": "balanced_at", "value": info["balanced_at"]},
             {**row, "task": "all", "reference": "training", "metric": "final_drift",
              "value": next((e["drift"] for e in reversed(log) if e.get("drift") is not None), None)}]
    return rows


def teacher_rows(run: Path, name: str, seed: int) -> list[dict[str, Any]]:
    """The teachers' metrics against the truth (the same teachers and test frames in every arm of a seed)."""
    m = json.loads((run / "metrics.json").read_text())
    return [{"arm": "teachers", "targets": name, "seed": seed, "model": "teacher", "task": task,
             "reference": "truth", "metric": metric, "value": value}
            for task, scores in m["teachers"].items() for metric, value in (scores.get("vs_truth") or {}).items()]


def write_csv(out: Path, seeds: int, path: Path) -> int:
    """One row per arm x target set x seed x model x task x reference x metric, from every arm whose runs are
    finished for every seed (an experiment run in parts tabulates its complete arms, so no table mixes seed counts
    and every comparison stays paired); returns the number of runs in it."""
    from rsa_toolkit.files import atomic_path

    complete = [(name, arm) for name in TARGET_SETS for arm in ARMS
                if all((run_dir(out, name, arm, s) / "metrics.json").is_file() for s in range(seeds))]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for name, arm in complete:
            for seed in range(seeds):
                writer.writerows({**r, "value": "" if r["value"] is None else r["value"]}
                                 for r in run_rows(run_dir(out, name, arm, seed), arm, name, seed))
        for name in dict.fromkeys(name for name, _ in complete):
            first = next(arm for n, arm in complete if n == name)
            for seed in range(seeds):
                writer.writerows(teacher_rows(run_dir(out, name, first, seed), name, seed))
    return len(complete) * seeds


# --- inference time (Table 3) and the figures ---------------------------------------------------------------------

def speed_rows(out: Path, batch_size: int) -> list[str]:
    """The n teachers, KD n-to-n and the n-to-1 student timed together (bench_amalgamate), saved to RUNS/speed.json
    with the machine's load when measured, so that a later write of the tables reuses the quiet measurement."""
    from bench_amalgamate import inference_rows

    load = os.getloadavg()[0]
    rows = [{"targets": name, **r} for name, targets in TARGET_SETS.items()
            for r in inference_rows(targets, batch_size, rounds=20)]
    (out / "speed.json").write_text(json.dumps({"load_1min": load, "batch": batch_size, "rows": rows,
                                                "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))
    return speed_lines(out)


def speed_lines(out: Path) -> list[str]:
    path = out / "speed.json"
    if not path.is_file():
        return []
    speed = json.loads(path.read_text())
    return [f"Measured {speed['measured']} (load {speed['load_1min']:.2f} when it started), batch {speed['batch']}, "
            "the three models of a target set timed together, best of 20 interleaved rounds:", "",
            "| targets | model | ms / frame | × teachers | parameters | GFLOP / frame |", "|---|---|---|---|---|---|",
            *(f"| {r['targets']} | {r['model']} | {r['ms']:.2f} | **{r['ratio']:.2f}×** | {r['params']:,} | "
              f"{r['gflops']:.3f} |" for r in speed["rows"])]


def curves_png(run: Path, path: Path, title: str) -> None:
    """Per-task losses and weights over the steps; the end of the KD warm-up (the first step a weight moves) and the
    step the competition balanced are marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rsa_toolkit.files import atomic_path

    entries = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    balanced_at = json.loads((run / "run.json").read_text()).get("balanced_at")
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
    if balanced_at is not None:
        for ax in (ax_loss, ax_w):
            ax.axvline(balanced_at, color="grey", ls="--", lw=0.8)
        ax_w.annotate(f" balanced at step {balanced_at}: weights frozen", (balanced_at, 0.02),
                      xycoords=("data", "axes fraction"), fontsize=8, color="grey", ha="right")
    ax_w.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        FigureCanvasAgg(fig).print_png(str(tmp))


def figures(out: Path, rankings: dict[str, list[str]]) -> None:
    """Loss and weight curves of SOKA seed 0 (seed Fig. 3) and its predictions beside KD's (seed Fig. 2), on the
    largest target set that has both runs."""
    from amalgamate import write_report

    for shown in reversed(list(TARGET_SETS)):
        soka, kd = run_dir(out, shown, "soka", 0), run_dir(out, shown, "kd", 0)
        if (soka / "metrics.json").is_file() and (kd / "metrics.json").is_file():
            break
    else:
        return
    curves_png(soka, ROOT / "docs" / "img" / "results_curves.png",
               f"SOKA, {shown}, seed 0 (auxiliary {rankings[shown][0]})")
    report = write_report([soka, kd], out / f"report-{shown.replace(' ', '-')}")
    prediction = next(p for p in report if p.name.startswith("predictions-soka"))
    (ROOT / "docs" / "img" / "results_predictions.png").write_bytes(prediction.read_bytes())


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="directory of the runs (reused: finished runs are kept)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=500, help="training steps per student (default: the teachers' "
                                                           "own budget)")
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
                    help="run only these arms; 'soka' is always kept: every test compares with it")
    ap.add_argument("--target-sets", nargs="+", choices=list(TARGET_SETS), default=list(TARGET_SETS),
                    help="run only these target sets")
    ap.add_argument("--tables-only", action="store_true",
                    help="train nothing: tabulate the finished runs under --out (an experiment run in parts)")
    ap.add_argument("--from-csv", type=Path, metavar="CSV",
                    help="regenerate the CSV's sections of docs/results.md from a metrics CSV alone (e.g. the shipped "
                         "docs/results_metrics.csv); needs no runs")
    ap.add_argument("--speed-only", action="store_true",
                    help="measure inference time (Table 3) into RUNS/speed.json and stop; on a quiet machine")
    ap.add_argument("--no-speed", action="store_true",
                    help="skip the inference timing (Table 3 then shows RUNS/speed.json's earlier measurement)")
    ap.add_argument("--no-write", action="store_true", help="print the tables; leave docs/ alone")
    args = ap.parse_args()
    if args.from_csv is None and args.out is None:
        ap.error("--out is required (unless --from-csv)")
    return args


def main() -> None:
    args = parse_args()
    if args.from_csv is not None:
        emit(args, sections(args.from_csv))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.speed_only:
        print(*speed_rows(args.out, args.batch_size), sep="\n")
        return
    if not args.no_write:  # before hours of training, not after
        text = (ROOT / "docs" / "results.md").read_text()
        missing = [n for n in SECTIONS if any(m not in text for m in markers(n))]
        if missing:
            raise SystemExit(f"docs/results.md lacks the markers of {', '.join(missing)}; add them first.")
    t0 = time.perf_counter()
    if args.eval_split == "val":
        val_shard(args)  # rendered once here, before the workers read it
    rankings = {name: aux_ranking(targets, args) for name, targets in TARGET_SETS.items()}
    if not args.tables_only:
        train_all(args, rankings, t0)
    csv_path = args.out / "metrics.csv"
    finished = write_csv(args.out, args.seeds, csv_path)
    if not args.no_speed:
        speed_rows(args.out, args.batch_size)
    emit(args, {"results_setup": setup_lines(args, rankings, finished), "results_table3": ["", *speed_lines(args.out),
                                                                                          ""], **sections(csv_path)})
    if not args.no_write:
        shutil.copyfile(csv_path, SHIPPED_CSV)
        figures(args.out, rankings)
        print(f"wrote docs/results.md, {SHIPPED_CSV.relative_to(ROOT)} and docs/img/results_*.png")


def train_all(args: argparse.Namespace, rankings: dict[str, list[str]], t0: float) -> None:
    """Train every missing run of the arms and target sets chosen by --arms / --target-sets (the CPU plan of
    docs/results.md runs the experiment in parts; every part's finished runs stay under --out and every table shows
    them all) in --jobs processes; adds the wall time to RUNS/timing.json."""
    arms = [a for a in ARMS if a in args.arms or a == REFERENCE_ARM]
    target_sets = {name: TARGET_SETS[name] for name in args.target_sets}
    for name, targets in target_sets.items():
        auxiliaries = {rankings[name][0], rankings[name][-1], *(random_auxiliary(rankings[name], s)
                                                               for s in range(args.seeds))}
        fill_knowledge(targets, sorted(auxiliaries), args)
    jobs = [(str(run_dir(args.out, name, arm, seed)), settings(arm, targets, seed, args, rankings[name]))
            for seed in range(args.seeds) for name, targets in target_sets.items() for arm in arms]
    todo = [job for job in jobs if not (Path(job[0]) / "metrics.json").is_file()]
    if not todo:
        return
    with ProcessPoolExecutor(args.jobs) as pool:
        for done in pool.map(run_one, *zip(*todo)):
            print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {done}", flush=True)
    minutes = training_minutes(args.out) + (time.perf_counter() - t0) / 60
    (args.out / "timing.json").write_text(json.dumps({"minutes": minutes}))


def training_minutes(out: Path) -> float:
    """The wall time of every part's training so far (RUNS/timing.json)."""
    path = out / "timing.json"
    return json.loads(path.read_text())["minutes"] if path.is_file() else 0.0


def setup_lines(args: argparse.Namespace, rankings: dict[str, list[str]], finished: int) -> list[str]:
    minutes, planned = training_minutes(args.out), len(ARMS)
    command = (f"python benchmarks/soka_results.py --out RUNS --seeds {args.seeds} --steps {args.steps} "
               f"--batch-size {args.batch_size} --lr {args.lr:g} --train-frames {args.train_frames} --eval-frames "
               f"{args.eval_frames} --other-weighting {args.other_weighting} --eval-split {args.eval_split}"
               + "".join(f" --set {pair}" for pair in args.set) + f" --jobs {args.jobs}")
    seeds = range(args.seeds)
    return [
        "", f"Produced by `{command}` (run in parts with `--arms` / `--target-sets`; the parts add up under one RUNS) "
        f"on {os.cpu_count()} CPU cores, {minutes:.0f} min of training and evaluating so far: **{finished} of the "
        f"{planned * len(TARGET_SETS) * args.seeds} students** ({planned} arms × {len(TARGET_SETS)} target sets × "
        f"{args.seeds} seeds) are in the tables (an arm enters once all its seeds are finished); do not edit by "
        "hand. Every table below except Table 3 is generated from [results_metrics.csv](results_metrics.csv) (one "
        "row per arm, target set, seed, task, reference and metric; `python benchmarks/soka_results.py --from-csv "
        "docs/results_metrics.csv` regenerates them). Mean ± sample SD (ddof = 1) [95 % t CI] over the seeds; every "
        f"student: {args.steps} steps of {args.batch_size} frames at 64 px, AdamW lr {args.lr:g} (5% warm-up, "
        f"cosine), {args.train_frames:,} train frames (the same data order per seed in every arm), scored on "
        f"{args.eval_frames} {args.eval_split} frames against exact ground truth. Primary metrics (declared before "
        f"the run): {', '.join(f'{t} {TITLES[m]}' for t, (m, _) in PRIMARY.items())}.",
        "",
        *(f"- {name}: RSA ranking of the auxiliaries: first **{r[0]}**, last **{r[-1]}** (of {len(r)}); random "
          f"per seed: {', '.join(random_auxiliary(r, s) for s in seeds)}." for name, r in rankings.items()),
        "",
    ]


def emit(args: argparse.Namespace, generated: dict[str, list[str]]) -> None:
    """Write the sections into docs/results.md (or print them with --no-write)."""
    if args.no_write:
        for name, lines in generated.items():
            print(f"--- {name}", *lines, sep="\n")
        return
    for name, lines in generated.items():
        write_section(ROOT / "docs" / "results.md", name, lines)


if __name__ == "__main__":
    main()
