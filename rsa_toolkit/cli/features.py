"""``rsa-toolkit features`` (run a zoo over probe images, write a features directory) and ``rsa-toolkit layers``."""

from __future__ import annotations

import argparse
import sys

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.cli._options import add_common, show_progress
from rsa_toolkit.cli._sources import (add_source_options, build_teachers, extract_layer, open_probe, torchrun_extraction,
                       uses_zoo)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("features", help="extract a zoo's features on probe images into a features directory",
                       description="Run every teacher over the probe images (cached on disk) and write the "
                                   "features directory that `matrix --features` reads.",
                       epilog="example: rsa-toolkit features --weights-dir taskonomy/ --images probe/ --out feats/ "
                              "--layers block4 encoder_output")
    f.add_argument("--out", required=True, metavar="DIR", help="new directory to write (must not exist or be empty)")
    f.add_argument("--layers", nargs="+", metavar="LAYER",
                   help="layers to extract (default: each teacher's default layer); several give one "
                        "subdirectory per layer")
    add_source_options(f, features=False)
    add_common(f)
    f.set_defaults(run=run_features, features=None)

    ls = sub.add_parser("layers", help="list a teacher's tap-able layer names",
                        description="List the layers a teacher can be tapped at (the names --layer accepts).",
                        epilog="examples: rsa-toolkit layers depth;  rsa-toolkit layers my_cnn --zoo zoo.toml")
    ls.add_argument("teacher", help="a Taskonomy task name (or alias), or a teacher in --zoo")
    ls.add_argument("--zoo", metavar="FILE", help="zoo file that defines the teacher")
    ls.add_argument("--weights-dir", metavar="DIR", help="(Taskonomy layers are listed without weights)")
    ls.set_defaults(run=run_layers)


def run_features(args: argparse.Namespace) -> int:
    from rsa_toolkit.features.extract import save_features_dir

    uses_zoo(args)
    with torchrun_extraction(args):  # under torchrun every rank extracts its shard; rank 0 alone writes --out
        teachers = build_teachers(args)
        probe = open_probe(args)
        layers = args.layers or [None]
        for teacher in teachers:  # every layer name is checked before the first extraction
            teacher.check_layers([layer for layer in layers if layer])
        sets = [extract_layer(args, teachers, probe, layer, progress=show_progress(args)) for layer in layers]
    target = save_features_dir(sets, args.out)
    if not args.quiet:
        print(f"wrote {len(teachers)} teachers x {len(probe)} images"
              + (f" x {len(layers)} layers" if len(layers) > 1 else "") + f" to {target}")
        hint = " --layer <layer>" if len(layers) > 1 else ""
        print(f"next: rsa-toolkit matrix --features {target}{hint} --out sim.png", file=sys.stderr)
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from rsa_toolkit.tasks import try_resolve_task

    if args.zoo:
        from rsa_toolkit.zoo.zoo_file import load_zoo_file

        teachers = {t.name: t for t in load_zoo_file(args.zoo, weights_dir=args.weights_dir)}
        if args.teacher in teachers:
            teacher = teachers[args.teacher]
            for layer in teacher.layers:
                print(layer + ("  (default)" if layer == teacher.default_layer else ""))
            return 0
    task = try_resolve_task(args.teacher)
    if task is None:
        from rsa_toolkit.errors import unknown_name

        problem = f"Unknown teacher '{args.teacher}': not a Taskonomy task"
        known = list(teachers) if args.zoo else []
        if known:
            raise UserInputError(unknown_name(f"{problem} and not in zoo file '{args.zoo}'", args.teacher, known,
                                              listing="Teachers in the zoo file"))
        raise UserInputError(problem + (f" and not in zoo file '{args.zoo}'" if args.zoo else "")
                             + ". See `rsa-toolkit tasks`, or pass --zoo FILE.")
    from rsa_toolkit.zoo.taskonomy.encoder import TAP_LAYERS, tap_shapes

    shapes = tap_shapes(256)
    for layer in TAP_LAYERS:
        shape = "x".join(map(str, shapes[layer]))
        print(f"{layer}  {shape} for 256x256 input" + ("  (default)" if layer == "encoder_output" else ""))
    return 0
