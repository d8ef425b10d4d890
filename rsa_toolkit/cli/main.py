"""Entry point of ``rsa-toolkit``: builds the parser, runs a command, turns user mistakes into exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import UserInputError
from . import evaluate, features, info, matrix, mini, pick_aux, rdm

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)  # usage errors exit 2 inside argparse
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except UserInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `rsa-toolkit tasks | head`: the reader left; not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit-time flush from failing again
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("rsa-toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
