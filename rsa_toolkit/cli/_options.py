"""Options shared by several commands; choices come from the registries, so help and docs never drift."""

from __future__ import annotations

import argparse
import sys

from ..compare import COMPARISONS
from ..errors import UserInputError
from ..normalize import NORMALIZATIONS
from ..rdm import RDM_METHODS


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or hints")
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


def similarity_kwargs(args: argparse.Namespace) -> dict[str, object]:
    if args.bootstrap < 0:
        raise UserInputError(f"--bootstrap must be 0 (none) or a positive number of resamples, got {args.bootstrap}.")
    return dict(method=args.method, normalization=args.normalization, comparison=args.comparison, dtype=args.dtype,
                chunk_size=args.chunk_size, groups=args.groups, n_bootstrap=args.bootstrap,
                confidence=args.confidence, seed=args.seed, progress=show_progress(args))


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal: redirected stderr (logs, pipes) gets the error line, not bar fragments."""
    return not args.quiet and sys.stderr.isatty()
