"""The val-split sweep that chooses SOKA's defaults before the experiment of docs/results.md (issue 16, item 2):
one setting changed at a time around the current defaults, one seed, the {depth, normal} target set, the auxiliary
RSA ranks best; every student scored on **val** frames, never test. Written into the ``soka_sweep`` section of
docs/amalgamate.md and, number for number, docs/soka_sweep.csv.

    python benchmarks/soka_sweep.py --out runs/sweep                # every setting, seed 0; ~30 min on 2 cores
    python benchmarks/soka_sweep.py --out runs/sweep --seeds 1 --only defaults kd_warmup_0   # contenders' 2nd seed
    python benchmarks/soka_sweep.py --out /tmp/s --steps 2 --train-frames 64 --eval-frames 16 --no-write   # smoke

Score of a run: the mean over the targets of student / teacher on each target's primary metric (depth rmse, normal
mean angle; both lower is better), so 1.00 is "as good as the teachers". One seed cannot separate settings whose
scores differ by less than the seed-to-seed spread, so the contenders get a second seed (``--seeds 1 --only ...``)
and the table shows the sample SD over seeds where there are two; a default is changed only where a setting wins
by more than that spread. Runs are kept under --out (``SETTING/seedN``): a rerun only trains what is missing, and
the table shows every finished run.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import soka_results as experiment
from _doc_section import write_section

ROOT = Path(__file__).resolve().parents[1]
TARGETS = experiment.TARGET_SETS["2 tasks"]

#: (label, config settings of the soka arm); the first row is the current defaults, each other changes one thing
SETTINGS = (
    ("defaults (λ 0.5, KD warm-up 50, GradNorm lr 0.025)", ()),
    ("guide_weight 0.1", ("guide_weight=0.1",)),
    ("guide_weight 0.25", ("guide_weight=0.25",)),
    ("guide_weight 1", ("guide_weight=1",)),
    ("kd_warmup 0", ("kd_warmup=0",)),
    ("kd_warmup 100", ("kd_warmup=100",)),
    ("GradNorm lr 0.01", ("gradnorm.lr=0.01",)),
    ("GradNorm lr 0.05", ("gradnorm.lr=0.05",)),
    ("balancer: uncertainty", ("weighting=uncertainty",)),
    ("balancer: DWA", ("weighting=dwa",)),
    ("balancer: IMTL-L", ("weighting=imtl-l",)),
    ("balancer: FAMO", ("weighting=famo",)),
)
FIELDS = ("setting", "settings", "seed", "task", "metric", "student", "teacher", "ratio", "balanced_at", "seconds")


def slug(pairs: tuple[str, ...]) -> str:
    return "-".join(p.replace("=", "_").replace(".", "_") for p in pairs) or "defaults"


def run_dir(out: Path, pairs: tuple[str, ...], seed: int) -> Path:
    return out / slug(pairs) / f"seed{seed}"


def run_all(args: argparse.Namespace) -> None:
    """Train and evaluate the chosen settings' students for each seed (finished ones are kept; when none is
    missing, the ranking, the knowledge and the val shard are not touched)."""
    todo = [(pairs, seed) for seed in args.seeds for _, pairs in SETTINGS
            if (not args.only or slug(pairs) in args.only)
            and not (run_dir(args.out, pairs, seed) / "metrics.json").is_file()]
    if not todo:
        return
    val = experiment.val_shard(args)
    ranking = experiment.aux_ranking(TARGETS, args)
    experiment.fill_knowledge(TARGETS, [ranking[0]], args)
    jobs = []
    for pairs, seed in todo:
        setting = argparse.Namespace(**{**vars(args), "set": list(pairs)})
        config = experiment.settings("soka", TARGETS, seed, setting, ranking)
        assert config["eval_shard"] == str(val)  # never test
        jobs.append((str(run_dir(args.out, pairs, seed)), config))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for done in pool.map(experiment.run_one, *zip(*jobs)):
            print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {done}", flush=True)


def rows(out: Path) -> list[dict]:
    """Every finished run under ``out``, whatever call trained it: one record per setting x seed x target."""
    records = []
    for label, pairs in SETTINGS:
        for run in sorted((out / slug(pairs)).glob("seed*/metrics.json")):
            metrics = json.loads(run.read_text())
            record = json.loads((run.parent / "run.json").read_text())
            seed = int(run.parent.name[4:])
            for task in TARGETS:
                metric, higher = experiment.PRIMARY[task]
                student = metrics["student"][task]["vs_truth"][metric]
                teacher = metrics["teachers"][task]["vs_truth"][metric]
                records.append({"setting": label, "settings": " ".join(pairs), "seed": seed, "task": task,
                                "metric": metric, "student": student, "teacher": teacher,
                                "ratio": teacher / student if higher else student / teacher,
                                "balanced_at": record.get("balanced_at"),
                                "seconds": record["seconds_this_session"]})
    return records


def table(records: list[dict]) -> list[str]:
    """One line per setting: each target's mean ratio to its teacher, the mean over targets (± its SD over seeds
    where there are two or more), the seeds, and when the competition balanced."""
    head = ["setting", *(f"{t} {experiment.TITLES[experiment.PRIMARY[t][0]]} × teacher" for t in TARGETS),
            "mean × teacher", "seeds", "balanced at step"]
    lines = [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}"]
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["setting"], []).append(r)

    def per_seed(group: list[dict]) -> np.ndarray:  # the mean ratio over targets, per seed
        seeds = sorted({r["seed"] for r in group})
        return np.array([np.mean([r["ratio"] for r in group if r["seed"] == s]) for s in seeds])

    best = min(by, key=lambda s: per_seed(by[s]).mean())
    for label, group in by.items():
        means = per_seed(group)
        cells = [f"{np.mean([r['ratio'] for r in group if r['task'] == t]):.3f}" for t in TARGETS]
        spread = f" ± {means.std(ddof=1):.3f}" if len(means) > 1 else ""
        balanced = sorted({r["balanced_at"] for r in group}, key=lambda b: (b is None, b))
        name = f"**{label}**" if label == best else label
        lines.append(f"| {name} | {' | '.join(cells)} | {means.mean():.3f}{spread} | {len(means)} | "
                     f"{', '.join('not reached' if b is None else str(b) for b in balanced)} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory of the runs (reused: finished runs are kept)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to train (default 0)")
    ap.add_argument("--only", nargs="+", default=[], metavar="SETTING",
                    help="train only these settings (their run-folder names, e.g. defaults kd_warmup_0): a second "
                         "seed for the contenders; the table shows every finished run")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--train-frames", type=int, default=4000)
    ap.add_argument("--eval-frames", type=int, default=500, help="val frames every run is scored on")
    ap.add_argument("--probe-frames", type=int, default=500, help="mini probe frames of the RSA ranking")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-write", action="store_true", help="print the table; leave docs/ alone")
    args = ap.parse_args()
    unknown = sorted(set(args.only) - {slug(pairs) for _, pairs in SETTINGS})
    if unknown:
        raise SystemExit(f"unknown setting(s) {', '.join(unknown)}; expected some of "
                         f"{', '.join(slug(pairs) for _, pairs in SETTINGS)}")
    args.eval_split, args.kd_warmup, args.other_weighting = "val", None, None
    args.out.mkdir(parents=True, exist_ok=True)
    run_all(args)
    records = rows(args.out)
    command = (f"python benchmarks/soka_sweep.py --out RUNS --steps {args.steps} --batch-size {args.batch_size} "
               f"--lr {args.lr:g} --train-frames {args.train_frames} --eval-frames {args.eval_frames}")
    minutes = sum(r["seconds"] for r in records) / 60 / len(TARGETS)  # one record per target of each run
    lines = ["", (f"Produced by `{command}` (seed 0 for every setting; `--seeds 1 --only ...` for the contenders' "
                  f"second seed) on {os.cpu_count()} CPU cores, {minutes:.0f} "
                  f"min of training in all; do not edit by hand. Every number: [soka_sweep.csv](soka_sweep.csv). "
                  f"SOKA with the auxiliary RSA ranks best for {{{', '.join(TARGETS)}}}, {args.steps} steps of "
                  f"{args.batch_size} frames, scored on {args.eval_frames} **val** frames against exact labels: the "
                  f"student's primary metric over its teacher's (lower is better; 1 = as good as the teacher), "
                  f"mean over targets ± sample SD over seeds; bold: the lowest mean."), "", *table(records), ""]
    if args.no_write:
        print("\n".join(lines))
        return
    from rsa_toolkit.files import atomic_path

    with atomic_path(ROOT / "docs" / "soka_sweep.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(records)
    write_section(ROOT / "docs" / "amalgamate.md", "soka_sweep", lines)
    print("\n".join(lines[3:]))
    print("wrote docs/amalgamate.md (soka_sweep) and docs/soka_sweep.csv")


if __name__ == "__main__":
    main()
