"""The val-split sweep that chooses SOKA's defaults before the experiment of docs/results.md (issue 16, item 2):
one setting changed at a time around the current defaults, one seed, the {depth, normal} target set, the auxiliary
RSA ranks best; every student scored on **val** frames, never test. Written into the ``soka_sweep`` section of
docs/amalgamate.md and, number for number, docs/soka_sweep.csv.

    python benchmarks/soka_sweep.py --out runs/sweep                # ~40 min on 2 cores
    python benchmarks/soka_sweep.py --out /tmp/s --steps 2 --train-frames 64 --eval-frames 16 --no-write   # smoke

Score of a run: the mean over the targets of student / teacher on each target's primary metric (depth rmse, normal
mean angle; both lower is better), so 1.00 is "as good as the teachers". One seed cannot separate settings whose
scores differ by less than the seed-to-seed spread; the table says which differences that covers (the spread of the
experiment's own seeds, docs/results.md, is the yardstick), and the defaults are changed only where a setting wins
by more. Runs are kept under --out: a rerun only trains what is missing.
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
FIELDS = ("setting", "settings", "task", "metric", "student", "teacher", "ratio", "balanced_at", "seconds")


def slug(pairs: tuple[str, ...]) -> str:
    return "-".join(p.replace("=", "_").replace(".", "_") for p in pairs) or "defaults"


def run_all(args: argparse.Namespace) -> dict[str, Path]:
    """Train and evaluate every setting's student (finished ones are kept); label -> run directory."""
    val = experiment.val_shard(args)
    ranking = experiment.aux_ranking(TARGETS, args)
    experiment.fill_knowledge(TARGETS, [ranking[0]], args)
    jobs, dirs = [], {}
    for label, pairs in SETTINGS:
        setting = argparse.Namespace(**{**vars(args), "set": list(pairs)})
        config = experiment.settings("soka", TARGETS, args.seed, setting, ranking)
        assert config["eval_shard"] == str(val)  # never test
        dirs[label] = args.out / slug(pairs)
        jobs.append((str(dirs[label]), config))
    todo = [job for job in jobs if not (Path(job[0]) / "metrics.json").is_file()]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for done in pool.map(experiment.run_one, *zip(*todo)) if todo else ():
            print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {done}", flush=True)
    return dirs


def rows(dirs: dict[str, Path]) -> list[dict]:
    out = []
    for label, pairs in SETTINGS:
        metrics = json.loads((dirs[label] / "metrics.json").read_text())
        run = json.loads((dirs[label] / "run.json").read_text())
        for task in TARGETS:
            metric, higher = experiment.PRIMARY[task]
            student = metrics["student"][task]["vs_truth"][metric]
            teacher = metrics["teachers"][task]["vs_truth"][metric]
            out.append({"setting": label, "settings": " ".join(pairs), "task": task, "metric": metric,
                        "student": student, "teacher": teacher,
                        "ratio": teacher / student if higher else student / teacher,
                        "balanced_at": run.get("balanced_at"), "seconds": run["seconds_this_session"]})
    return out


def table(records: list[dict]) -> list[str]:
    """One line per setting: each target's primary metric and ratio to its teacher, the mean ratio, balance."""
    head = ["setting", *(f"{t} {experiment.TITLES[experiment.PRIMARY[t][0]]} (× teacher)" for t in TARGETS),
            "mean × teacher", "balanced at step"]
    lines = [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}"]
    by = {}
    for r in records:
        by.setdefault(r["setting"], []).append(r)
    best = min(by, key=lambda s: sum(r["ratio"] for r in by[s]))
    for label, group in by.items():
        mean = sum(r["ratio"] for r in group) / len(group)
        cells = [f"{r['student']:.4g} ({r['ratio']:.3f})" for r in group]
        balanced = group[0]["balanced_at"]
        name = f"**{label}**" if label == best else label
        lines.append(f"| {name} | {' | '.join(cells)} | {mean:.3f} | "
                     f"{'not reached' if balanced is None else balanced} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory of the runs (reused: finished runs are kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--train-frames", type=int, default=4000)
    ap.add_argument("--eval-frames", type=int, default=500, help="val frames every run is scored on")
    ap.add_argument("--probe-frames", type=int, default=500, help="mini probe frames of the RSA ranking")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-write", action="store_true", help="print the table; leave docs/ alone")
    args = ap.parse_args()
    args.eval_split, args.kd_warmup, args.other_weighting = "val", None, None
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    records = rows(run_all(args))
    minutes = (time.perf_counter() - t0) / 60
    command = (f"python benchmarks/soka_sweep.py --out RUNS --seed {args.seed} --steps {args.steps} --batch-size "
               f"{args.batch_size} --lr {args.lr:g} --train-frames {args.train_frames} --eval-frames "
               f"{args.eval_frames} --jobs {args.jobs}")
    lines = ["", (f"Produced by `{command}` ({minutes:.0f} min this call, {os.cpu_count()} CPU cores); do not edit "
             f"by hand. Every number: [soka_sweep.csv](soka_sweep.csv). SOKA with the auxiliary RSA ranks best for "
             f"{{{', '.join(TARGETS)}}}, seed {args.seed}, {args.steps} steps of {args.batch_size} frames, scored on "
             f"{args.eval_frames} **val** frames against exact labels; in brackets the student's metric over the "
             f"teacher's (lower is better); bold: the lowest mean."), "", *table(records), ""]
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
