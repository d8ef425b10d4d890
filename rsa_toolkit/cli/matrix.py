"""``rsa-toolkit matrix``: features -> RDMs -> task-similarity matrix, saved as PNG, HTML, CSV and NPZ."""

from __future__ import annotations

import argparse
import importlib
import sys
from concurrent.futures import Future, ThreadPoolExecutor

from rsa_toolkit.features.store import FeatureSet
from rsa_toolkit.viz.outputs import OutputSet, save_similarity, similarity_output_paths
from rsa_toolkit.files import file_sha256
from rsa_toolkit.provenance import provenance
from rsa_toolkit.rsa.similarity import SimilarityResult, similarity_matrix
from rsa_toolkit.cli._options import (add_common, add_comparison_options, add_memory_options, add_rdm_options, show_progress,
                       similarity_kwargs)
from rsa_toolkit.cli._sources import add_source_options, feature_sets, uses_mini_zoo

HELP = "task-similarity matrix of a zoo (PNG + interactive HTML + CSV + NPZ)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help=HELP, description=HELP + ".",
                       epilog="examples: rsa-toolkit matrix --features feats/ --out sim.png --bootstrap 100;  "
                              "rsa-toolkit matrix --weights-dir taskonomy/ --images probe/ --out sim.png")
    p.add_argument("--out", default="sim.png", help="output file; .png/.html/.csv/.npz are all written beside it")
    p.add_argument("--layer", default=None,
                   help="layer to compare (default: the only one, or each teacher's default), or 'all'")
    p.add_argument("--graph", action="store_true", help="also write the task graph (PNG, HTML, GraphML)")
    p.add_argument("--save-rdms", action="store_true",
                   help="also keep every teacher's RDM in the NPZ (T x N(N-1)/2 values: large; out of core they are "
                        "kept on the scratch disk until written)")
    add_source_options(p)
    add_rdm_options(p)
    add_comparison_options(p, bootstrap_default=0)
    add_memory_options(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    similarity_output_paths(args.out, graph=args.graph)  # a bad --out fails before any (possibly long) work
    options = similarity_kwargs(args)  # and so do bad RSA options
    options["keep_rdms"] = args.save_rdms  # RDMs that are not saved need not be kept: less memory
    reports = []
    # The writers' imports (matplotlib, scipy.cluster, networkx: ~0.6 s) and the features' checksums (~0.2 s for
    # 20 x 16 MB) wait on nothing the comparison computes, so they run beside it, on the core it leaves idle while
    # one thread orchestrates its teachers: the whole command is 0.1-0.2 s shorter at N = 2,000 (docs/performance.md).
    # One stage for all layers: a bad later layer must not leave the earlier layers' files behind.
    with ThreadPoolExecutor(1) as beside, OutputSet() as stage:
        writers = beside.submit(_import_writers)
        for label, features in feature_sets(args, progress=show_progress(args)):
            sums = beside.submit(feature_checksums, features)
            result = compute(features, options, layer_label=label)
            writers.result()
            written = save_similarity(result, args.out, provenance=record(features, args, sums), graph=args.graph,
                                      seed=args.seed, save_rdms=args.save_rdms, stage=stage)
            reports.append(f"{len(result.names)} teachers x {result.n_images} images"
                           + (f", layer {result.layer}" if result.layer else "")
                           + (" (out of core" + ("" if args.save_rdms else "; RDMs not kept") + ")"
                              if result.memory.out_of_core else "") + ": wrote "
                           + ", ".join(map(str, written)))
    if not args.quiet:
        print("\n".join(reports))
        source = (f"--features {args.features} " if args.features else "" if uses_mini_zoo(args)
                  else "<same teachers and --images> ")
        print(f"next: rsa-toolkit pick-aux {source}--targets <task> [<task> ...]", file=sys.stderr)
    return 0


def compute(features: FeatureSet, options: dict[str, object], *, layer_label: str | None = None) -> SimilarityResult:
    return similarity_matrix(features.as_dict(), layer=layer_label or features.layer, **options)


def feature_checksums(features: FeatureSet) -> dict[str, str]:
    """SHA-256 of each teacher's feature file, by teacher name: the provenance of the result."""
    return {name: file_sha256(p) for name, p in zip(features.names, features.files)}


def record(features: FeatureSet, args: argparse.Namespace,
           checksums: Future[dict[str, str]] | None = None) -> dict[str, object]:
    options = {k: getattr(args, k) for k in ("method", "normalization", "groups", "comparison", "dtype", "bootstrap",
                                             "confidence", "seed")}
    return provenance(
        options=options, layer=features.layer, image_ids=features.image_ids,
        features=checksums.result() if checksums else feature_checksums(features), **features.details,
    )


def _import_writers() -> None:
    for module in ("rsa_toolkit.analysis.graph", "rsa_toolkit.viz.graph_figures", "rsa_toolkit.viz.plots"):
        importlib.import_module(module)
