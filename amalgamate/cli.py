"""Entry point of ``amalgamate``: train a multi-talent student, evaluate it, report on runs.

Each command is a thin layer over a library function (:func:`amalgamate.training.run.train`,
:func:`amalgamate.evaluation.evaluate.evaluate_run`, :func:`amalgamate.evaluation.report.write_report`); user
mistakes print one line, ``amalgamate: error: ...``, and exit with code 2. ``--method`` names come from
:data:`amalgamate.config.METHODS`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rsa_toolkit.console import ZOO_FILE_TRUST, run_command, text_table
from rsa_toolkit.errors import UserInputError

if TYPE_CHECKING:
    from amalgamate.evaluation.results import Evaluation

PROG = "amalgamate"

# CLI option -> config field, for the options that are plain settings (None = not given)
_SETTINGS = {
    "targets": "targets", "aux": "aux", "auto_aux": "auto_aux", "method": "method", "weighting": "weighting",
    "architecture": "architecture", "steps": "steps", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
    "device": "device", "threads": "threads", "precision": "precision", "live_teachers": "live_teachers",
    "images": "images", "masks": "masks", "zoo": "zoo_file",
    "weights_dir": "weights_dir", "zoo_dir": "zoo_dir", "train_frames": "train_frames", "train_shard": "train_shard",
    "cache_dir": "cache_dir", "checkpoint_every": "checkpoint_every", "distill": "distill",
    "guide_weight": "guide_weight", "kd_warmup": "kd_warmup", "gan_start": "gan_start",
    "probe_frames": "probe_frames", "bootstrap": "aux_bootstrap", "eval_frames": "eval_frames",
}


def build_parser() -> argparse.ArgumentParser:
    from amalgamate.choices import ARCHITECTURE_NAMES, WEIGHTING_NAMES
    from amalgamate.methods import METHODS

    parser = argparse.ArgumentParser(
        prog=PROG, description="Knowledge amalgamation: train one compact multi-talent student from a zoo of "
                               "teachers, without labels (SOKA-Net, Luo et al., ECCV 2020). See docs/amalgamate.md.",
        epilog="start here: amalgamate train --auto-aux  (the seed's Table 1 student: depth, edge2d, normal on the "
               "mini zoo, in a fresh runs/ directory)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    t = sub.add_parser("train", help="train a student (or continue one with --resume)",
                       description="Distil the target teachers into one student with a shared encoder and one head "
                                   "per task; the auxiliary teacher's representation guides the shared "
                                   "representation.",
                       epilog="examples: amalgamate train --auto-aux;  "
                              "amalgamate train --targets depth normal --auto-aux --out runs/dn;  "
                              "amalgamate train --targets depth normal edge2d --aux reshading --out runs/dne;  "
                              "amalgamate train --targets depth normal --method kd --out runs/kd")
    t.add_argument("--targets", nargs="+", metavar="TASK", help="target tasks (names or aliases: depth, normal, "
                                                                  "edge2d, ...); at least two (default with "
                                                                  "--auto-aux: depth edge2d normal, seed Table 1)")
    aux = t.add_mutually_exclusive_group()
    aux.add_argument("--aux", metavar="NAME", help="the auxiliary teacher")
    aux.add_argument("--auto-aux", action="store_true", default=None,
                     help="rank the zoo with RSA and take the best auxiliary (recorded in RUN_DIR/aux.json)")
    t.add_argument("--out", metavar="RUN_DIR", help="run directory (created; default: a fresh "
                                                     "runs/<method>-<targets>-<YYYYmmdd-HHMMSS>, printed first)")
    t.add_argument("--config", metavar="FILE", help="settings file, TOML or YAML (command-line options win)")
    t.add_argument("--method", help=f"{', '.join(METHODS.names())} (default soka)")
    t.add_argument("--weighting", help=f"loss weighting: {', '.join(WEIGHTING_NAMES)} (default gradnorm for "
                                       "soka, equal for kd)")
    t.add_argument("--architecture", help=f"student: {', '.join(ARCHITECTURE_NAMES)} (default: the zoo's)")
    t.add_argument("--steps", type=int, help="training steps (default 2000)")
    t.add_argument("--batch-size", type=int, help="images per step (default 32)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 1e-3; warm-up, then cosine decay)")
    t.add_argument("--seed", type=int, help="seed of everything random (default 0)")
    t.add_argument("--device", help="cpu (default), cuda, cuda:N or mps")
    t.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    t.add_argument("--precision", choices=("float32", "float64"),
                   help="the student's arithmetic (default float32; float64 to compare runs exactly)")
    t.add_argument("--distill", help="distillation norm for value outputs: l1 (default) or l2")
    t.add_argument("--guide-weight", type=float, help="weight lambda of the representation guidance (default 0.5, "
                                                       "checked on the val split: docs/amalgamate.md)")
    t.add_argument("--kd-warmup", type=int, metavar="STEPS", help="soka: steps of distillation only before guidance "
                                                                 "and competition start (default 50)")
    t.add_argument("--gan-start", type=int, metavar="STEP", help="add the conditional GAN term from this step on")
    data = t.add_argument_group("teachers and images")
    data.add_argument("--zoo-dir", metavar="DIR", help="a mini zoo (default $RSA_TOOLKIT_MINI_ZOO or data/mini_zoo)")
    data.add_argument("--weights-dir", metavar="DIR", help="Taskonomy visualpriors checkpoints (instead of the mini "
                                                           "zoo; needs --images)")
    data.add_argument("--zoo", metavar="FILE", help="a zoo file (rsa-toolkit's format) whose teachers join the "
                                                    "auxiliary candidates of --auto-aux and --aux. " + ZOO_FILE_TRUST)
    data.add_argument("--images", metavar="DIR", help="a folder of training images (default: mini-Taskonomy train "
                                                      "frames)")
    data.add_argument("--masks", metavar="DIR", help="validity masks, one PNG per training image (e.g. Taskonomy's "
                                                     "mask_valid): pixel losses count valid pixels only")
    data.add_argument("--train-frames", type=int, help="mini train frames (default 4000)")
    data.add_argument("--train-shard", metavar="DIR", help="train on the frames of this shard instead")
    data.add_argument("--live-teachers", action="store_true", default=None,
                      help="run the teachers on every batch instead of caching their knowledge once")
    data.add_argument("--cache-dir", metavar="DIR", help="knowledge and feature cache (default $RSA_TOOLKIT_CACHE "
                                                         "or ~/.cache/rsa-toolkit)")
    data.add_argument("--probe-frames", type=int, help="--auto-aux: mini probe frames for the ranking (default 500)")
    data.add_argument("--bootstrap", type=int, help="--auto-aux: bootstrap resamples (default 100)")
    runs = t.add_argument_group("run control")
    runs.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                      help="continue the run in RUN_DIR (this one, or --out's) from its last checkpoint")
    runs.add_argument("--overwrite", action="store_true", help="replace the run in RUN_DIR")
    runs.add_argument("--checkpoint-every", type=int, metavar="K", help="checkpoint every K steps (default 200)")
    runs.add_argument("--stop-after", type=int, metavar="N", help="stop after N steps (checkpointed); --resume "
                                                                  "continues")
    runs.add_argument("--eval-frames", type=int, help="test frames for amalgamate eval (default 500)")
    runs.add_argument("--quiet", "-q", action="store_true", help="no progress (bar or log lines) or hints")
    t.set_defaults(run=run_train)

    e = sub.add_parser("eval", help="metrics of a trained run (table, or JSON)",
                       description="Score the student against ground truth (mini zoo) and against its teachers; "
                                   "writes RUN_DIR/metrics.json, metrics.csv and examples.npz.",
                       epilog="example: amalgamate eval runs/dn --json")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--eval-frames", type=int, help="test frames (default: the run's setting)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--device", default="cpu", help="where the student and teachers run: cpu (default), cuda, cuda:N")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress (bar or log lines) or hints")
    e.set_defaults(run=run_eval)

    r = sub.add_parser("report", help="tables (seed Tables 1-3), curves and prediction figures of runs",
                       description="Markdown and CSV tables in the layout of the seed's Tables 1-3, a plotly HTML of "
                                   "the loss and weight curves, and a PNG grid of student / teacher / ground truth "
                                   "per run (runs without metrics are evaluated first).",
                       epilog="example: amalgamate report runs/dn runs/kd runs/kdn --out report/")
    r.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    r.add_argument("--out", metavar="DIR", help="report directory (default: RUN_DIR/report of the first run)")
    r.add_argument("--device", default="cpu", help="where runs are evaluated and timed: cpu (default), cuda, cuda:N")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress (bar or log lines) or hints")
    r.set_defaults(run=run_report)
    return parser


def _progress(args: argparse.Namespace) -> bool:
    """Progress unless --quiet: a bar on a terminal, plain timed lines in a log (:mod:`rsa_toolkit.progress`)."""
    return not args.quiet


#: The seed's Table 1 student: what ``amalgamate train --auto-aux`` trains when no --targets are given.
HEADLINE_TARGETS = ("depth", "edge2d", "normal")
#: Where runs go when no --out is given: runs/<method>-<targets>-<YYYYmmdd-HHMMSS>[-N] under the working directory.
RUNS_DIR = "runs"


def new_run_dir(method: str, targets: Sequence[str], *, root: str = RUNS_DIR, now: float | None = None) -> str:
    """A fresh run directory name, ``root/<method>-<target>-...-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``, ... added
    when that name is taken (a run started in the same second); ``root`` is created."""
    import re
    import time

    slug = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(part)).strip("_") or "x" for part in (method, *targets))
    stem = os.path.join(root, f"{slug}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}")
    os.makedirs(root, exist_ok=True)
    path, n = stem, 1
    while os.path.lexists(path):
        n += 1
        path = f"{stem}-{n}"
    return path


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from amalgamate.config import load_config_file

    settings: dict[str, Any] = load_config_file(args.config) if args.config else {}
    settings.update({field: getattr(args, option) for option, field in _SETTINGS.items()
                     if getattr(args, option) is not None})
    return settings


def run_train(args: argparse.Namespace) -> int:
    from rsa_toolkit import distributed

    from amalgamate.training.run import TrainingInterrupted, train

    if isinstance(args.resume, str):  # --resume RUN_DIR
        if args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
            raise UserInputError(f"--resume '{args.resume}' and --out '{args.out}' name different run directories; "
                                 "give one of them.")
        args.out, args.resume = args.resume, True
    if args.resume is True and not args.out:
        raise UserInputError("--resume needs the run directory: --resume RUN_DIR (or --out RUN_DIR --resume).")
    settings = _settings(args)
    if not args.resume and not settings.get("targets"):
        if not settings.get("auto_aux"):
            raise UserInputError("--targets is required: at least two target tasks, e.g. --targets depth normal (or "
                                 f"--auto-aux alone for the seed's Table 1 student: {' '.join(HEADLINE_TARGETS)}).")
        settings["targets"] = list(HEADLINE_TARGETS)
    speaks = distributed.is_main
    if not args.out:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: each process would name it by its own clock
            raise UserInputError("under torchrun, give the run directory with --out RUN_DIR (every process must "
                                 "name the same one).")
        args.out = new_run_dir(settings.get("method") or "soka", settings["targets"])
        print(f"run directory: {args.out}", flush=True)  # first, even with --quiet: the run's name is a result
    try:  # under torchrun every process runs this; rank 0 speaks
        result = train(args.out, settings, resume=args.resume, overwrite=args.overwrite, stop_after=args.stop_after,
                       progress=_progress(args),
                       notify=None if args.quiet else lambda m: speaks() and print(m, flush=True))
    except TrainingInterrupted as exc:
        if speaks():
            print(f"{PROG}: {exc}", file=sys.stderr)
        return 130
    finally:
        quiet = args.quiet or not distributed.is_main()
        distributed.shutdown()
    if not quiet:
        record = result.aux.record
        print(f"auxiliary: {record['chosen'] or 'none'} ({record['why']})")
        if record.get("ranking"):
            print("ranking: " + ", ".join(f"{c['name']} {c['score']:.3f}" for c in record["ranking"][:5]))
        last = result.last
        if last:
            losses = ", ".join(f"{t} {v:.4g} (w {last['weights'][t]:.3f})" for t, v in last["losses"].items())
            print(f"step {result.step}: {losses}")
        print(f"student: {result.student_parameters:,} parameters; the target teachers together: "
              f"{result.teacher_parameters:,} ({result.student_parameters / max(1, result.teacher_parameters):.2f}x)")
        if result.balanced_at:
            print(f"competition balanced at step {result.balanced_at}")
        if result.finished:
            print(f"wrote {args.out}/student.pt; next: amalgamate eval {args.out} && amalgamate report {args.out}")
        else:
            print(f"stopped after step {result.step}; continue with: amalgamate train --out {args.out} --resume")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from amalgamate.evaluation.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, eval_frames=args.eval_frames, device=args.device, progress=_progress(args))
    if args.json:
        print(json.dumps(result.to_json(), indent=1, sort_keys=True))
        return 0
    print(format_metrics(result))
    if not args.quiet:
        print(f"wrote {args.run_dir}/metrics.json and metrics.csv; next: amalgamate report {args.run_dir}")
    return 0


def format_metrics(result: Evaluation) -> str:
    """A plain-text table of an evaluation: one row per (model, task, reference)."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for row in result.metric_rows():
        rows.setdefault((row["model"], row["task"], row["reference"]), {})[row["metric"]] = row["value"]
    metrics = list(dict.fromkeys(m for values in rows.values() for m in values))
    header = ["model", "task", "vs", *metrics]
    body = [[m, t, r, *(_fmt(values.get(k)) for k in metrics)] for (m, t, r), values in rows.items()]
    params = result.parameters
    speed = result.inference_ms_per_image
    footer = (f"parameters: student {params.student:,} vs teachers {params.teachers_total:,} "
              f"({params.student_over_teachers:.2f}x); inference: student {speed.student:.2f} ms/image vs "
              f"teachers {speed.teachers:.2f} ({speed.student_over_teachers:.2f}x); "
              f"{result.eval_set.images} images: {result.eval_set.source}")
    return "\n".join([text_table(header, body, left=range(3)), footer])


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def run_report(args: argparse.Namespace) -> int:
    from amalgamate.evaluation.report import write_report

    from amalgamate.run_dir import REPORT_DIR

    out = args.out or os.path.join(args.run_dirs[0], REPORT_DIR)
    paths = write_report(args.run_dirs, out, device=args.device, progress=_progress(args))
    if not args.quiet:
        print(f"wrote {len(paths)} files to {out}: " + ", ".join(p.name for p in paths))
    return 0


# library parameter -> option dest, where they differ: the run directory of train/report is --out, the config file
# (load_config_file's path) --config, and settings read from options of other names (_SETTINGS) those options
LIBRARY_PARAMETERS = {"run_dir": "out", "out_dir": "out", "path": "config",
                      **{field: option for option, field in _SETTINGS.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    from rsa_toolkit.errors import FeatureCacheWarning, SmallProbeSetWarning  # light: no torch at start-up

    from amalgamate.run_files import RunWarning

    return run_command(build_parser(), argv, prog=PROG, parameters=LIBRARY_PARAMETERS,
                       interrupted="interrupted; a run continues from its last checkpoint with --resume",
                       warnings_now=(RunWarning, FeatureCacheWarning), warnings_after=(SmallProbeSetWarning,))


if __name__ == "__main__":
    sys.exit(main())
