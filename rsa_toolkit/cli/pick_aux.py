"""``rsa-toolkit pick-aux``: rank auxiliary teachers for target tasks by RSA similarity."""

from __future__ import annotations

import argparse
import json

from rsa_toolkit.console import text_table
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int
from rsa_toolkit.viz.outputs import read_similarity_csv
from rsa_toolkit.analysis.ranking import AGGREGATES, Candidate, match_teachers, rank_auxiliaries
from rsa_toolkit.rsa.similarity import similarity_matrix
from rsa_toolkit.cli._options import (add_common, add_comparison_options, add_memory_options, add_rdm_options, rsa_device,
                       show_progress, similarity_kwargs)
from rsa_toolkit.cli._sources import add_source_options, feature_sets

HELP = "rank auxiliary teachers for target tasks"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pick-aux", help=HELP, description=HELP + " (mean similarity to the targets by default).",
                       epilog="examples: rsa-toolkit pick-aux --features feats/ --targets depth normal --top 5;  "
                              "rsa-toolkit pick-aux --weights-dir taskonomy/ --images probe/ --targets depth normal")
    p.add_argument("--matrix", metavar="CSV", help="rank from a similarity CSV written by `matrix` (no bootstrap)")
    p.add_argument("--targets", nargs="+", required=True, metavar="TASK",
                   help="target tasks (task names or aliases such as depth, normal, edge2d) or teacher names")
    p.add_argument("--top", type=int, default=None, metavar="K", help="show the K best candidates")
    p.add_argument("--aggregate", default="mean", help=f"over targets: {', '.join(AGGREGATES.names())}")
    p.add_argument("--layer", default=None, help="layer to compare (default: the only one, or each teacher's default)")
    p.add_argument("--json", action="store_true", help="print a JSON list, best first")
    add_source_options(p)
    add_rdm_options(p)
    add_comparison_options(p, bootstrap_default=100)
    add_memory_options(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_int(args.top, name="--top", minimum=1, optional=True, expected="at least 1")
    AGGREGATES.get(args.aggregate)
    if args.layer == "all":
        raise UserInputError("pick-aux ranks on one layer; choose --layer NAME (or leave it out).")
    if args.matrix:
        if args.features or args.weights_dir or args.zoo:
            raise UserInputError("give either --matrix CSV or a features source, not both.")
        rsa_device(args)  # --device is checked on every path, though a CSV needs no device
        matrix, names = read_similarity_csv(args.matrix)
        samples = None
    else:
        options = similarity_kwargs(args)  # bad options fail before the features are computed
        (_, features), = feature_sets(args, progress=show_progress(args))
        # Resolve targets before the similarity computation, so a typo fails at once.
        match_teachers(features.names, args.targets)
        result = similarity_matrix(features.as_dict(), **options)
        matrix, names = result.matrix, result.names
        samples = result.bootstrap.samples if result.bootstrap else None
    ranking = rank_auxiliaries(matrix, names, args.targets, aggregate=args.aggregate, samples=samples)
    shown = ranking[: args.top] if args.top else ranking
    if args.json:
        print(json.dumps([_as_json(c, rank) for rank, c in enumerate(shown, 1)], indent=2))
    else:
        print(_table(shown, args.aggregate))
    return 0


def _as_json(c: Candidate, rank: int) -> dict[str, object]:
    return {"rank": rank, "name": c.name, "score": c.score, "top1_probability": c.top1_probability,
            "per_target": c.per_target}


def _table(candidates: list[Candidate], aggregate: str) -> str:
    targets = list(candidates[0].per_target)
    header = ["rank", "candidate", f"{aggregate} sim", "P(top-1)", *targets]
    rows = [[str(r), c.name, f"{c.score:.4f}", "-" if c.top1_probability is None else f"{c.top1_probability:.2f}",
             *(f"{c.per_target[t]:.4f}" for t in targets)] for r, c in enumerate(candidates, 1)]
    return text_table(header, rows, left={1})
