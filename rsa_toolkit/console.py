"""Run a parsed command line the way every console script of the project does: help when nothing is asked, user
mistakes as one line and exit code 2, a closed pipe as a normal end, Ctrl-C as 130; and the two ways commands print
results: aligned text tables (:func:`text_table`) and JSON (:func:`json_safe`).

Library errors name function parameters (``device='cuda:7'``); :func:`run_command` rewrites them to the command
line's options (``--device cuda:7``), the one place where parameters become flags."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence

from rsa_toolkit.errors import UserInputError

__all__ = ["run_command", "as_command_line", "scrub_unsafe_advice", "text_table", "json_safe", "ZOO_FILE_TRUST"]


#: What every --zoo help says (both CLIs): a zoo file runs code.
ZOO_FILE_TRUST = ("A zoo file is code: it imports the modules and runs the callables it names, like a Python script, "
                  "so use only zoo files from a trusted source.")

def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, prog: str,
                interrupted: str = "interrupted", parameters: Mapping[str, str] | None = None,
                warnings_now: tuple[type[Warning], ...] = (), warnings_after: tuple[type[Warning], ...] = ()) -> int:
    """Parse ``argv`` and run the chosen command. ``parameters`` maps library parameter names to the ``dest`` of the
    option that sets them where the two differ (``{"directory": "out"}``); see :func:`as_command_line`.

    Warnings meant for the user print as one line ``<prog>: warning: ...`` (no source location): those of
    ``warnings_now`` (something damaged was worked around) when they happen; those of ``warnings_after`` (advice on
    reading the results, e.g. a small probe set) once the command has succeeded, so a command that stops at a user
    mistake still says one line.
    """
    import warnings

    after: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202 - warnings' hook
        if issubclass(category, warnings_after):
            after.append(str(message))
        elif issubclass(category, warnings_now):
            print(f"{prog}: warning: {message}", file=sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        previous = warnings.showwarning
        for category in (*warnings_now, *warnings_after):
            warnings.simplefilter("always", category)
        warnings.showwarning = show
        code = _run_command(parser, argv, prog=prog, interrupted=interrupted, parameters=parameters)
    if code == 0:
        for message in dict.fromkeys(after):  # each piece of advice once
            print(f"{prog}: warning: {message}", file=sys.stderr)
    return code


def _run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, prog: str, interrupted: str,
                 parameters: Mapping[str, str] | None) -> int:
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
        message = scrub_unsafe_advice(as_command_line(exc, parser, args, parameters))
        print(f"{prog}: error: {message}", file=sys.stderr)
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


# Sentences of library exception texts that we embed in our messages and must never pass on: advice to unpickle
# (torch's "weights_only=False", numpy's "allow_pickle="/"pickle.load()") can run arbitrary code.
_NUMPY_PICKLE = re.compile(r"This file contains pickled \(object\) data\.[^.]*(?:allow_pickle|pickle\.load)[^\n]*",
                           re.IGNORECASE)
_NUMPY_PICKLE_ERROR = re.compile(r"(?:Object arrays|Cannot load file containing pickled data) [^.]*allow_pickle"
                                 r"\s*=\s*False[^.]*\.?", re.IGNORECASE)
_UNSAFE = re.compile(r"weights_only\W{0,3}(?:=|set to|argument)\W{0,3}False|allow_pickle(?!\W{0,3}=\W{0,3}False)|"
                     r"pickle\.load\(|safe_globals|trusted source|if you trust", re.IGNORECASE)


def scrub_unsafe_advice(text: str) -> str:
    """``text`` without any advice to load a file unsafely that a library's exception text brought into it: numpy's
    "This file contains pickled (object) data ... allow_pickle" becomes what it means for us (the file is not a
    NumPy array file; pickles are never loaded), and sentences recommending ``weights_only=False``,
    ``allow_pickle=True``, ``pickle.load()`` or torch's safe-globals allowlist are dropped. Our own words stay."""
    text = _NUMPY_PICKLE.sub("it is not a NumPy array file (no .npy header; a pickle or other data, which "
                             "rsa-toolkit never unpickles).", text)
    text = _NUMPY_PICKLE_ERROR.sub("it holds Python objects (an object array), which rsa-toolkit never unpickles",
                                   text)
    kept: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if not _UNSAFE.search(sentence):
            kept.append(sentence)
            continue
        closing = sentence.count(")") - sentence.count("(")  # keep the parentheses balanced
        if closing > 0 and kept:
            kept[-1] = kept[-1].rstrip(".") + ")" * closing + "."
    return " ".join(kept).strip()


def as_command_line(exc: UserInputError, parser: argparse.ArgumentParser, args: argparse.Namespace,
                    parameters: Mapping[str, str] | None = None) -> str:
    """``exc``'s message with its parameters written as the options that set them, found in the parser's own
    actions (dest -> option strings; ``parameters`` maps a parameter to its dest where the names differ): as the
    subject of the message (``eval_frames must be ...`` -> ``--eval-frames must be ...``, ``resume: ...`` ->
    ``--resume: ...``) and as ``parameter=`` anywhere: with a value (``device='cpu'`` -> ``--device 'cpu'``,
    ``scratch=DIR`` -> ``--scratch DIR``) or without (``drop aux=/auto_aux= (...)`` -> ``drop --aux/--auto-aux
    (...)``). Parameters without an option stay as they are."""
    message = str(exc)
    for parameter in exc.parameters:
        option = _option_for(parser, (parameters or {}).get(parameter, parameter), args)
        if option is not None:
            name = re.escape(parameter)
            message = re.sub(rf"^{name}(?= must |: )", lambda _: option, message)
            message = re.sub(rf"(?<![\w.-]){name}=(?=[\w'\"])", lambda _: f"{option} ", message)
            message = re.sub(rf"(?<![\w.-]){name}=", lambda _: option, message)
    return message


def _option_for(parser: argparse.ArgumentParser, dest: str, args: argparse.Namespace) -> str | None:
    """The long option of ``dest`` in the (sub)command that ``args`` runs, else in any (sub)command."""
    parsers = list(_parsers(parser))
    run = getattr(args, "run", None)
    chosen = [p for p in parsers if run is not None and p.get_default("run") is run]
    for p in chosen + parsers:
        for action in p._actions:
            if action.dest == dest and action.option_strings:
                return max(action.option_strings, key=len)
    return None


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: Iterable[int] = (),
               rstrip: bool = False) -> str:
    """Rows of cells as aligned columns two spaces apart, the header first: columns in ``left`` flush left, the
    others flush right; ``rstrip`` drops each line's trailing spaces."""
    left = set(left)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        text = "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return text.rstrip() if rstrip else text

    return "\n".join([line(header), *(line(row) for row in rows)])


def json_safe(value: object) -> object:
    """``value`` with every NaN or infinite float (an undefined number: JSON has none) as None, recursively through
    dicts, lists and tuples (tuples become lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
