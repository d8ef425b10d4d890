"""``rsa-toolkit matrix``: features -> RDMs -> task-similarity matrix, saved as PNG, HTML, CSV and NPZ."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..features_io import FeatureSet, available_layers, load_features_dir
from ..outputs import save_similarity, similarity_output_paths
from ..provenance import file_sha256, provenance
from ..similarity import SimilarityResult, similarity_matrix
from ._options import add_common, add_comparison_options, add_rdm_options, similarity_kwargs

HELP = "task-similarity matrix of a zoo (PNG + interactive HTML + CSV + NPZ)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help=HELP, description=HELP + ".",
                       epilog="example: rsa-toolkit matrix --features feats/ --out sim.png --bootstrap 100")
    p.add_argument("--features", required=True, metavar="DIR",
                   help="directory of <teacher>.npy (N, ...) files, or <teacher>.npz with one array per layer")
    p.add_argument("--out", default="sim.png", help="output file; .png/.html/.csv/.npz are all written beside it")
    p.add_argument("--layer", default=None, help="layer of .npz features, or 'all' for one matrix per layer")
    p.add_argument("--graph", action="store_true", help="also write the task graph (PNG, HTML, GraphML)")
    add_rdm_options(p)
    add_comparison_options(p, bootstrap_default=0)
    add_common(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    layers = _layers(args.features, args.layer)
    for layer in layers:  # validate every output path before the first (possibly long) computation
        similarity_output_paths(args.out, layer=layer if args.layer == "all" else None, graph=args.graph)
    reports = []
    # One stage for all layers: a bad later layer must not leave the earlier layers' files behind.
    with contextlib.ExitStack() as stage:
        for layer in layers:
            features = load_features_dir(args.features, layer=layer)
            result = compute(features, args, layer_label=layer if args.layer == "all" else None)
            written = save_similarity(result, args.out, provenance=record(features, args), graph=args.graph,
                                      seed=args.seed, stage=stage)
            reports.append(f"{len(result.names)} teachers x {result.n_images} images"
                           + (f", layer {layer}" if layer else "") + ": wrote " + ", ".join(map(str, written)))
    if not args.quiet:
        print("\n".join(reports))
    if not args.quiet:
        print(f"next: rsa-toolkit pick-aux --features {args.features} --targets <task> [<task> ...]", file=sys.stderr)
    return 0


def compute(features: FeatureSet, args: argparse.Namespace, *, layer_label: str | None = None) -> SimilarityResult:
    return similarity_matrix(features.as_dict(), layer=layer_label or features.layer, **similarity_kwargs(args))


def record(features: FeatureSet, args: argparse.Namespace) -> dict[str, object]:
    options = {k: getattr(args, k) for k in ("method", "normalization", "groups", "comparison", "dtype", "bootstrap",
                                             "confidence", "seed")}
    return provenance(
        options=options, layer=features.layer, image_ids=features.image_ids,
        features={p.name: file_sha256(p) for p in features.files},
    )


def _layers(directory: str, layer: str | None) -> list[str | None]:
    if layer != "all":
        return [layer]
    return list(available_layers(directory)) or [None]
