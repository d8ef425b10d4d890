"""Entry point of ``rsa-toolkit``: builds the parser, runs a command, turns user mistakes into exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rsa_toolkit.cli import evaluate, features, info, matrix, mini, pick_aux, rdm, weights
from rsa_toolkit.console import run_command

PROG = "rsa-toolkit"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Representational similarity analysis of a teacher zoo: task-similarity matrices and "
                    "auxiliary-teacher ranking.",
        epilog="start here: rsa-toolkit demo-features demo && rsa-toolkit matrix --features demo --out sim.png",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    matrix.add_parser(sub)
    pick_aux.add_parser(sub)
    evaluate.add_parser(sub)
    features.add_parsers(sub)
    rdm.add_parsers(sub)
    info.add_parsers(sub)
    mini.add_parsers(sub)
    weights.add_parsers(sub)
    return parser


# library parameters whose option has another name: save_features_dir(directory) is `features --out DIR`,
# build_zoo(zoo_file=) is --zoo
LIBRARY_PARAMETERS = {"directory": "out", "zoo_file": "zoo"}


def main(argv: Sequence[str] | None = None) -> int:
    from rsa_toolkit.errors import FeatureCacheWarning, SmallProbeSetWarning, TruthZooWarning  # light: no torch

    return run_command(build_parser(), argv, prog=PROG, parameters=LIBRARY_PARAMETERS,
                       warnings_now=(FeatureCacheWarning,), warnings_after=(SmallProbeSetWarning, TruthZooWarning))


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("rsa-toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
