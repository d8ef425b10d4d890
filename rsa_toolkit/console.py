"""Run a parsed command line the way every console script of the project does: help when nothing is asked, user
mistakes as one line and exit code 2, a closed pipe as a normal end, Ctrl-C as 130."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rsa_toolkit.errors import UserInputError


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, prog: str,
                interrupted: str = "interrupted") -> int:
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
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `rsa-toolkit tasks | head`: the reader left; not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit-time flush from failing again
        return 0
    except OSError as exc:  # a full or read-only disk met outside the writers that name their file: still one line
        import errno

        from rsa_toolkit.files import write_fault_message

        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):  # EACCES may be a read: keep its traceback
            raise
        message = write_fault_message(exc.filename or "the output", exc, fix="choose another output location")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
