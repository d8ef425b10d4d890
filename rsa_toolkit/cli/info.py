"""``rsa-toolkit tasks`` (the task registry), ``rsa-toolkit layers`` (a zoo's tap-able layers and their shapes) and
``rsa-toolkit demo-features`` (synthetic features to try things)."""

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
from rsa_toolkit.cli._sources import ZOO_TRUST, uses_mini_zoo


def add_parsers(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tasks", help="list the 20 tasks, their types and aliases",
                       description="List the task registry: canonical names, task type, output and aliases.")
    t.add_argument("--type", default=None, help=f"only one type: {', '.join(TASK_TYPES)}")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(run=run_tasks)

    ls = sub.add_parser("layers", help="list the teachers' tap-able layers with their output shapes",
                        description="List every layer each teacher can be tapped at (the names --layer and a zoo "
                                    "file's layers accept) with its output shape for one image at the teacher's "
                                    "input size, marking the default layer. The zoo is the embedded mini zoo unless "
                                    "--zoo FILE or --weights-dir names another. " + ZOO_TRUST,
                        epilog="examples: rsa-toolkit layers depth;  rsa-toolkit layers --zoo zoo.toml;  "
                               "rsa-toolkit layers normal --weights-dir ~/taskonomy --json")
    ls.add_argument("teachers", nargs="*", metavar="TEACHER",
                    help="teacher names (task aliases work); default: every teacher of the zoo")
    ls.add_argument("--zoo", metavar="FILE|mini", help="'mini' (the default) or a zoo file (TOML/JSON/YAML); "
                                                       "a zoo file runs the code it names: use trusted files only")
    ls.add_argument("--weights-dir", metavar="DIR", help="Taskonomy visualpriors checkpoints: list their encoders "
                                                         "(with --zoo FILE: both)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(run=run_layers, features=None)

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


def run_layers(args: argparse.Namespace) -> int:
    from rsa_toolkit.zoo.layer_shapes import layer_shapes

    teachers, requested, zoo = _layers_zoo(args)
    records = []
    for teacher in teachers:
        wanted = requested.get(teacher.name, [])
        records.append({
            "teacher": teacher.name, "source": teacher.source,
            "input_shape": [3, int(teacher.preprocessing.size), int(teacher.preprocessing.size)],
            "default_layer": teacher.default_layer,
            "layers": [{"name": s.name, "shape": None if s.shape is None else list(s.shape), "output": s.output,
                        "default": s.name == teacher.default_layer, "in_zoo_file": s.name in wanted}
                       for s in layer_shapes(teacher)],
            "missing_layers": [layer for layer in wanted if layer not in teacher.layers],
        })
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        _print_layers(records, zoo)
    for record in records:
        if record["missing_layers"]:
            print(f"rsa-toolkit: warning: zoo file '{zoo}', teacher '{record['teacher']}': no layer named "
                  f"{', '.join(map(repr, record['missing_layers']))}; choose from the layers listed.", file=sys.stderr)
    return 0


def _print_layers(records: list[dict], zoo: str) -> None:
    from rsa_toolkit.zoo.layer_shapes import LayerShape

    for i, record in enumerate(records):
        rows = [(layer["name"], LayerShape(layer["name"], None if layer["shape"] is None else tuple(layer["shape"]),
                                           layer["output"]).text(),
                 "  (default)" if layer["default"] else "") for layer in record["layers"]]
        rows += [(name, "MISSING: no such layer (named in the zoo file's layers)", "")
                 for name in record["missing_layers"]]
        size = "x".join(map(str, record["input_shape"][1:]))
        print(("\n" if i else "") + f"{record['teacher']}  ({zoo}: {record['source']}; shapes for one {size} image)")
        width = max(len(name) for name, _, _ in rows)
        for name, shape, mark in rows:
            print(f"  {name.ljust(width)}  {shape}{mark}")


def _layers_zoo(args: argparse.Namespace) -> tuple[list, dict[str, list[str]], str]:
    """(teachers asked for, {teacher: layers its zoo-file entry names}, the zoo in words)."""
    from rsa_toolkit.errors import unknown_name

    requested: dict[str, list[str]] = {}
    if uses_mini_zoo(args):
        from rsa_toolkit.zoo.mini.embedded import mini_zoo

        zoo, teachers = "mini zoo", mini_zoo()
    else:
        from rsa_toolkit.zoo.zoo_file import build_zoo, read_zoo_entries

        tasks = [_task_name(t) or t for t in args.teachers] if args.teachers and not args.zoo else None
        teachers = build_zoo(weights_dir=args.weights_dir, zoo_file=args.zoo, tasks=tasks, strict_layers=False)
        zoo = f"zoo file {args.zoo}" if args.zoo else "Taskonomy"
        if args.zoo:
            for entry in read_zoo_entries(args.zoo):
                if "model" in entry and isinstance(entry.get("layers"), list):
                    requested[str(entry.get("name"))] = [str(layer) for layer in entry["layers"]]
    if not args.teachers:
        return teachers, requested, zoo
    by_name = {t.name: t for t in teachers}
    chosen = []
    for name in dict.fromkeys(args.teachers):
        key = name if name in by_name else _task_name(name)
        if key not in by_name:
            raise UserInputError(unknown_name(f"Unknown teacher '{name}' in the {zoo}", name, by_name,
                                              listing="Teachers"))
        chosen.append(by_name[key])
    return chosen, requested, zoo


def _task_name(name: str) -> str | None:
    from rsa_toolkit.tasks import try_resolve_task

    task = try_resolve_task(name)
    return None if task is None else task.name
