"""Options shared by several commands; choices come from the registries, so help and docs never drift."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.rsa.out_of_core import check_scratch
from rsa_toolkit.rsa.compare import COMPARISONS
from rsa_toolkit.validation import check_int
from rsa_toolkit.rsa.memory import parse_size
from rsa_toolkit.rsa.normalize import NORMALIZATIONS
from rsa_toolkit.rsa.rdm import RDM_METHODS


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress (bars or log lines) or hints")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random step (default 0)")


def add_rdm_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("RDM options")
    group.add_argument("--method", default="correlation",
                       help=f"dissimilarity or kernel: {', '.join(RDM_METHODS.names())} (default correlation)")
    group.add_argument("--normalization", "--norm", default="center",
                       help=f"feature normalisation: {', '.join(NORMALIZATIONS.names())} (default center)")
    group.add_argument("--groups", type=int, default=2, help="channel groups for --normalization group (default 2)")
    group.add_argument("--dtype", default="float64", help="float64 (default) or float32 (half the memory)")
    group.add_argument("--chunk-size", type=int, default=None, help="rows per block of the matrix product")


def add_comparison_options(parser: argparse.ArgumentParser, *, bootstrap_default: int) -> None:
    group = parser.add_argument_group("comparison options")
    group.add_argument("--comparison", default="spearman",
                       help=f"RDM comparison: {', '.join(COMPARISONS.names())} (default spearman)")
    group.add_argument("--bootstrap", type=int, default=bootstrap_default, metavar="B",
                       help=f"bootstrap resamples of the probe images (default {bootstrap_default}; 0 = none)")
    group.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")


def add_memory_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("large probe sets")
    group.add_argument("--max-memory", metavar="SIZE",
                       help="peak memory of the run, e.g. 8G (K, M, G, T: powers of 1024; default 3/4 of the "
                            "available memory); when the RDMs would not fit, they go to --scratch on disk "
                            "(out-of-core: same results; spearman, pearson, cosine; no --bootstrap)")
    group.add_argument("--scratch", metavar="DIR",
                       help="directory for the out-of-core files (default: the system temp directory, $TMPDIR); "
                            "they are removed at the end")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu (default; numpy), or cuda / cuda:N: the RDM and "
                                                        "comparison math runs on that GPU")


def similarity_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """similarity_matrix's options from the command line, checked (call it before any long work)."""
    check_int(args.bootstrap, name="--bootstrap", minimum=0, expected="0 (none) or a positive number of resamples")
    if args.scratch is not None:  # checked always, not only when the run goes out of core
        check_scratch(args.scratch)
    check_cache_dir(args)
    max_memory = None if args.max_memory is None else parse_size(args.max_memory)  # its error names --max-memory
    return dict(method=args.method, normalization=args.normalization, comparison=args.comparison, dtype=args.dtype,
                chunk_size=args.chunk_size, groups=args.groups, n_bootstrap=args.bootstrap,
                confidence=args.confidence, seed=args.seed, progress=show_progress(args), device=rsa_device(args),
                max_memory=max_memory, scratch=args.scratch)


def rsa_device(args: argparse.Namespace) -> str | None:
    """The torch device of the RSA math: --device when it names a CUDA device, else None (numpy, the CPU path that
    is benchmarked and tested against the references). --device is checked on every path, so a malformed or
    unavailable device (``gpu7``, ``cuda`` without a GPU) fails here, before any long work, even where only numpy
    would run."""
    device = getattr(args, "device", None)
    if device is None or device == "cpu":  # the default: no torch import
        return None
    from rsa_toolkit.devices import resolve_device

    dev = resolve_device(device)  # its errors name --device (run_command rewrites device=)
    return str(device) if dev is not None and dev.type == "cuda" else None


def check_cache_dir(args: argparse.Namespace) -> None:
    """--cache-dir, when given, checked before any extraction: a directory (or a path that can be created as one
    under a writable directory)."""
    cache = getattr(args, "cache_dir", None)
    if not cache:
        return
    path = Path(cache).expanduser()
    if path.exists() and not path.is_dir():
        raise UserInputError(f"--cache-dir '{cache}' is not a directory; give a directory for the feature cache.")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(f"--cache-dir '{cache}': directory '{existing}' is not writable; choose another "
                             f"--cache-dir.")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress unless --quiet: :mod:`rsa_toolkit.progress` draws a bar on a terminal and writes plain timed lines
    (start, at least every ~10 s, end) when stderr is a log or a pipe."""
    return not args.quiet
