"""``rsa-toolkit mini``: render mini-Taskonomy shards, train the 20 teachers, show the shipped zoo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.cli._options import add_common

_DEFAULT_SHARDS = "~/.cache/rsa-toolkit/mini-shards"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    mini = sub.add_parser("mini", help="mini-Taskonomy: render shards, train the teacher zoo, show it",
                          description="The embedded mini-Taskonomy: rendered scenes with exact labels for the 20 "
                                      "tasks and one small teacher per task (docs/mini_taskonomy.md).")
    mini_sub = mini.add_subparsers(title="mini commands", metavar="COMMAND")

    r = mini_sub.add_parser("render", help="render one split's frames and labels into a shard directory",
                            description="Render COUNT frames of SPLIT (train, val, test, probe) with all 20 labels.",
                            epilog="example: rsa-toolkit mini render shards/test --split test --count 1000")
    r.add_argument("directory", help="shard directory (created; replaced if present)")
    r.add_argument("--split", default="train", help="train (default), val, test or probe")
    r.add_argument("--count", type=int, default=1000, help="frames (default 1000)")
    r.add_argument("--size", type=int, default=64, help="pixels per side (default 64, the teachers' input)")
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    add_common(r)
    r.set_defaults(run=run_render)

    t = mini_sub.add_parser("train", help="train teachers from scratch (renders the shards first if missing)",
                            description="Train one teacher per task on the train shard, keep the state with the "
                                        "lowest val loss, score it on the test shard against the trivial "
                                        "baseline, write <task>.pt (fp16) and "
                                        "manifest.json into OUT.",
                            epilog="example (the shipped zoo): rsa-toolkit mini train data/mini_zoo")
    t.add_argument("out", help="zoo directory to write (created; other teachers' entries are kept)")
    t.add_argument("--tasks", nargs="+", metavar="TASK", help="tasks to train (default all 20; aliases work)")
    t.add_argument("--shards", default=_DEFAULT_SHARDS, help=f"where the train/test shards live (default "
                                                              f"{_DEFAULT_SHARDS})")
    t.add_argument("--train-frames", type=int, default=8000, help="training frames (default 8000)")
    t.add_argument("--val-frames", type=int, default=1000,
                   help="val frames for model selection: each teacher is kept at its lowest val loss (default 1000)")
    t.add_argument("--test-frames", type=int, default=1000, help="held-out frames (default 1000)")
    t.add_argument("--steps", type=int, default=None,
                   help="optimiser steps per teacher (default 500; slow tasks get a multiple: SLOW_TASKS in lab/train.py)")
    t.add_argument("--batch-size", type=int, default=None, help="frames per step (default 32)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate, one-cycle schedule (default 2e-3)")
    t.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="teachers trained at once, one thread each (default: all cores)")
    add_common(t)
    t.set_defaults(run=run_train)

    x = mini_sub.add_parser("transfer", help="measure transfer: readouts on every frozen teacher for every task",
                            description="For every (source, target) pair, every readout seed and every training "
                                        "split, train a Taskonomy-style readout (two 3x3 convolutions, then the "
                                        "target's decoder; output bias at the constant prediction; early stopping on "
                                        "val) on the frozen source encoder, and the same readout from pixels and from "
                                        "a random encoder; write the per-image test losses, the gain over pixels "
                                        "(transfer.csv), AHP affinities (ahp.csv), reliability.csv and recipe.json "
                                        "into OUT (docs/mini_taskonomy.md). Resumable: finished readouts are kept in "
                                        "OUT/parts and skipped when the command runs again.",
                            epilog="example (the shipped ground truth): rsa-toolkit mini transfer data/mini_transfer "
                                   "--budget 2h --jobs 2")
    x.add_argument("out", help="directory to write (created; a rerun continues from OUT/parts)")
    x.add_argument("--tasks", nargs="+", metavar="TASK", help="tasks, as sources and targets (default all 20)")
    x.add_argument("--shards", default=_DEFAULT_SHARDS, help=f"train/val/test shards, rendered first if missing "
                                                              f"(default {_DEFAULT_SHARDS})")
    x.add_argument("--budget", default="full", help=f"preset recipe: {', '.join(_budget_names())} (default full; "
                                                    "the flags below override it)")
    x.add_argument("--seeds", type=int, default=None, help="readout seeds per pair (default 3)")
    x.add_argument("--splits", type=int, default=None, help="training splits, disjoint train frames (default 2)")
    x.add_argument("--train-frames", type=int, default=None, help="training frames per split (preset)")
    x.add_argument("--val-frames", type=int, default=None, help="val frames for early stopping (preset)")
    x.add_argument("--test-frames", type=int, default=None, help="held-out frames scored per image (preset)")
    x.add_argument("--max-steps", "--steps", dest="max_steps", type=int, default=None,
                   help="most optimiser steps per readout (preset)")
    x.add_argument("--eval-every", type=int, default=None, help="steps between val evaluations (preset)")
    x.add_argument("--patience", type=int, default=None, help="val evaluations without improvement before "
                                                              "stopping (preset)")
    x.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="processes, one source each (default: all cores)")
    x.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps: where readouts train")
    add_common(x)
    x.set_defaults(run=run_transfer)

    s = mini_sub.add_parser("show", help="the zoo's teachers: parameters, steps, held-out loss vs baseline",
                            description="Print the manifest of a mini zoo (default: the shipped one).")
    s.add_argument("directory", nargs="?", default=None, help="zoo directory (default: the shipped data/mini_zoo)")
    s.add_argument("--json", action="store_true", help="print the manifest as JSON")
    s.set_defaults(run=run_show)


def run_render(args: argparse.Namespace) -> int:
    from rsa_toolkit.scenes.shards import write_shard

    directory = _new_dir(args.directory)
    write_shard(directory, args.split, args.count, size=args.size, jobs=args.jobs)
    if not args.quiet:
        print(f"wrote {args.count} {args.split} frames ({args.size} px, all 20 labels) to {directory}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from rsa_toolkit.lab.train import TrainConfig, train_zoo

    out = _new_dir(args.out)
    paths = _shards(args, train=args.train_frames, test=args.test_frames, val=args.val_frames)
    defaults = TrainConfig()
    config = TrainConfig(steps=args.steps or defaults.steps, batch_size=args.batch_size or defaults.batch_size,
                         lr=args.lr or defaults.lr, seed=args.seed)
    manifest = train_zoo(out, train_shard=paths["train"], val_shard=paths["val"], test_shard=paths["test"],
                         tasks=args.tasks, config=config, jobs=args.jobs, log_every=0 if args.quiet else 100)
    if not args.quiet:
        _print_table(manifest)
        run = manifest["runs"][-1]
        print(f"wrote {len(run['tasks'])} teachers to {out} in {run['wall_seconds']:.0f} s")
    return 0


def _budget_names() -> list[str]:
    from rsa_toolkit.lab.transfer_config import BUDGETS  # plain data: --help needs no torch

    return list(BUDGETS)


def run_transfer(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rsa_toolkit.devices import resolve_device
    from rsa_toolkit.lab.transfer_config import BUDGETS
    from rsa_toolkit.lab.transfer_tables import run_transfer as run

    if args.budget not in BUDGETS:
        raise UserInputError(unknown_name(f"Unknown budget '{args.budget}'", args.budget, BUDGETS))
    overrides = {k: getattr(args, k) for k in ("seeds", "splits", "train_frames", "val_frames", "test_frames",
                                               "max_steps", "eval_every", "patience") if getattr(args, k) is not None}
    config = replace(BUDGETS[args.budget], seed=args.seed, **overrides)
    device = str(resolve_device(args.device))
    out = _new_dir(args.out)
    # The teachers' own train shard: readouts train on frames the teachers trained on; selected on val, scored on test.
    paths = _shards(args, train=max(config.splits * config.train_frames, 8000), test=max(config.test_frames, 1000),
                    val=max(config.val_frames, 1000))
    result = run(out, paths, tasks=args.tasks, config=config, jobs=args.jobs, device=device, budget=args.budget,
                 verbose=not args.quiet)
    if not args.quiet:
        n = len(result["tasks"])
        print(f"wrote the {n} x {n} transfer tables ({len(result['sources'])} readout sources, {config.seeds} seeds x "
              f"{config.splits} splits; {result['trained']} readouts trained now) to {out} in "
              f"{result['seconds'] / 60:.1f} min")
        for target, reason in result["flagged"].items():
            print(f"flagged, not scored: {target}: {reason}")
        print(f"next: rsa-toolkit evaluate --zoo mini --truth {out / 'transfer.csv'} --truth {out / 'ahp.csv'}")
    return 0


def _shards(args: argparse.Namespace, *, train: int, test: int, val: int | None = None) -> dict[str, Path]:
    """The train and test (and val) shards of these sizes under --shards, rendered first if missing or written by
    another renderer version."""
    from rsa_toolkit.scenes.shards import shard_is_current, write_shard

    root = Path(args.shards).expanduser()
    paths = {}
    for split, count in (("train", train), ("test", test), *((("val", val),) if val else ())):
        paths[split] = root / f"{split}-{count}"
        if not shard_is_current(paths[split]):
            if not args.quiet:
                print(f"rendering {count} {split} frames into {paths[split]}", file=sys.stderr)
            write_shard(paths[split], split, count, jobs=args.jobs)
    return paths


def run_show(args: argparse.Namespace) -> int:
    from rsa_toolkit.zoo.mini.embedded import read_manifest

    manifest = read_manifest(args.directory)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        _print_table(manifest)
    return 0


def _print_table(manifest: dict) -> None:
    from rsa_toolkit.zoo.mini.embedded import other_figures

    print(f"{'task':18s} {'params':>8s} {'loss':14s} {'held-out':>9s} {'baseline':>9s} {'ratio':>6s}  other")
    for task, r in manifest["teachers"].items():
        print(f"{task:18s} {r['parameters']:8d} {r['loss_name']:14s} {r['loss']:9.4g} {r['baseline_loss']:9.4g} "
              f"{r['loss_ratio']:6.3f}  {other_figures(r)}")


def _new_dir(path: str) -> Path:
    directory = Path(path).expanduser()
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"'{directory}' exists and is not a directory.")
    if not directory.parent.is_dir():
        raise UserInputError(f"cannot create '{directory}': its parent directory does not exist.")
    return directory
