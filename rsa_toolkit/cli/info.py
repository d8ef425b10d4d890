"""``rsa-toolkit tasks`` (the task registry) and ``rsa-toolkit demo-features`` (synthetic features to try things)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.store import write_features_dir
from rsa_toolkit.features.synthetic import make_synthetic_features
from rsa_toolkit.tasks import TASK_TYPES, list_tasks
from rsa_toolkit.cli._options import add_common


def add_parsers(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tasks", help="list the 20 tasks, their types and aliases",
                       description="List the task registry: canonical names, task type, output and aliases.")
    t.add_argument("--type", default=None, help=f"only one type: {', '.join(TASK_TYPES)}")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(run=run_tasks)

    d = sub.add_parser("demo-features", help="write synthetic features for the 20 tasks, to try the toolkit",
                       description="Write one synthetic <task>.npy per task (N x 8 x 16 x 16) with a known task "
                                   "structure (see rsa_toolkit.features.synthetic). Not real teachers.",
                       epilog="example: rsa-toolkit demo-features demo-features && "
                              "rsa-toolkit matrix --features demo-features --out sim.png")
    d.add_argument("directory", help="output directory (created if missing)")
    d.add_argument("--images", type=int, default=200, help="number of probe images N (default 200)")
    add_common(d)
    d.set_defaults(run=run_demo_features)


def run_tasks(args: argparse.Namespace) -> int:
    tasks = list_tasks(type=args.type)
    if args.json:
        print(json.dumps([{"name": t.name, "type": t.type, "output": t.output, "aliases": list(t.aliases)}
                          for t in tasks], indent=2))
        return 0
    width = max(len(t.name) for t in tasks)
    for t in tasks:
        print(f"{t.name.ljust(width)}  {t.type.ljust(17)}  {t.output.ljust(22)}  {', '.join(t.aliases)}")
    return 0


def run_demo_features(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"'{directory}' exists and is not a directory.")
    if not directory.parent.is_dir():
        raise UserInputError(f"cannot create '{directory}': its parent directory does not exist.")
    features = make_synthetic_features(args.images, seed=args.seed)
    ids = [f"synthetic_{i:05d}" for i in range(args.images)]
    write_features_dir(features, directory, image_ids=ids)
    if not args.quiet:
        print(f"wrote {len(features)} teachers x {args.images} images to {directory}")
        print(f"next: rsa-toolkit matrix --features {directory} --out sim.png", file=sys.stderr)
    return 0
