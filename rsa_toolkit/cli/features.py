"""``rsa-toolkit features`` (run a zoo over probe images, write a features directory) (``rsa-toolkit layers`` is in info.py)."""

from __future__ import annotations

import argparse
import sys

from rsa_toolkit.cli._options import add_common, show_progress
from rsa_toolkit.cli._sources import (add_source_options, build_teachers, extract_layers, layer_hints, open_probe,
                                     torchrun_extraction, uses_zoo)


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


def run_features(args: argparse.Namespace) -> int:
    from rsa_toolkit.features.extract import check_features_destination, save_features_dir

    uses_zoo(args)
    check_features_destination(args.out)  # before any extraction
    with torchrun_extraction(args), layer_hints(args):  # under torchrun every rank extracts its shard; rank 0 alone writes --out
        teachers = build_teachers(args)
        probe = open_probe(args)
        layers = args.layers or [None]
        for teacher in teachers:  # every layer name is checked before the first extraction
            teacher.check_layers([layer for layer in layers if layer])
        sets = extract_layers(args, teachers, probe, layers, progress=show_progress(args))
    target = save_features_dir(sets, args.out)
    if not args.quiet:
        print(f"wrote {len(teachers)} teachers x {len(probe)} images"
              + (f" x {len(layers)} layers" if len(layers) > 1 else "") + f" to {target}")
        hint = " --layer <layer>" if len(layers) > 1 else ""
        print(f"next: rsa-toolkit matrix --features {target}{hint} --out sim.png", file=sys.stderr)
    return 0
