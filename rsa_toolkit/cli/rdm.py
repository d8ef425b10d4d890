"""``rsa-toolkit rdm`` (one teacher's RDM) and ``rsa-toolkit compare`` (two RDM files)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rsa_toolkit.console import scrub_unsafe_advice
from rsa_toolkit.files import atomic_path, check_output_path, write_faults
from rsa_toolkit.rsa.compare import compare_pair
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.store import READ_ERRORS
from rsa_toolkit.rsa.rdm import compute_rdm
from rsa_toolkit.cli._options import add_common, add_device_option, add_rdm_options, rsa_device


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rdm", help="one teacher's RDM to .npy or .png",
                       description="Compute one teacher's RDM (N x N) from its features.",
                       epilog="example: rsa-toolkit rdm --features feats/normal.npy --out normal_rdm.png")
    p.add_argument("--features", required=True, metavar="FILE", help="a <teacher>.npy file, or .npz with --layer")
    p.add_argument("--layer", default=None, help="array name inside an .npz file")
    p.add_argument("--out", required=True, help="rdm.npy (the matrix) or rdm.png (a picture of it)")
    add_rdm_options(p)
    add_device_option(p)
    add_common(p)
    p.set_defaults(run=run_rdm)

    c = sub.add_parser("compare", help="compare two RDM files",
                       description="Compare two RDMs saved as .npy (square N x N, or condensed upper triangles).",
                       epilog="example: rsa-toolkit compare depth_rdm.npy normal_rdm.npy --comparison spearman")
    c.add_argument("first", help="first RDM (.npy)")
    c.add_argument("second", help="second RDM (.npy)")
    c.add_argument("--comparison", default="spearman", help="spearman (default), pearson, kendall_tau_b, cka, ...")
    c.add_argument("--kind", default="dissimilarity", help="dissimilarity (default) or kernel")
    c.add_argument("--json", action="store_true", help="print JSON")
    add_device_option(c)
    add_common(c)
    c.set_defaults(run=run_compare)


def run_rdm(args: argparse.Namespace) -> int:
    rsa_device(args)  # a bad --device fails before the features are read
    out = check_output_path(args.out)
    if out.suffix.lower() not in (".npy", ".png"):
        raise UserInputError(f"--out '{out}': expected a file name ending in .npy or .png.")
    features = _read_array(Path(args.features), args.layer)
    rdm = compute_rdm(features, method=args.method, normalization=args.normalization, dtype=args.dtype,
                      chunk_size=args.chunk_size, groups=args.groups, name=Path(args.features).stem,
                      device=rsa_device(args))
    if out.suffix.lower() == ".npy":
        with write_faults(out), atomic_path(out) as tmp:
            np.save(tmp, rdm, allow_pickle=False)
    else:
        from rsa_toolkit.viz.plots import rdm_png_figure, save_png

        figure = rdm_png_figure(rdm, title=f"{Path(args.features).stem}: {args.method} RDM")
        with write_faults(out):
            save_png(figure, out)
    if not args.quiet:
        print(f"wrote {out} ({rdm.shape[0]} x {rdm.shape[1]})")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    rsa_device(args)  # a bad --device fails before the files are read
    a, b = _read_array(Path(args.first), None), _read_array(Path(args.second), None)
    value = compare_pair(a, b, method=args.comparison, kind=args.kind, device=rsa_device(args))
    if args.json:
        print(json.dumps({"comparison": args.comparison, "value": value}))
    else:
        print(f"{args.comparison}: {value:.6f}")
    return 0


def _read_array(path: Path, layer: str | None) -> np.ndarray:
    if not path.is_file():
        raise UserInputError(f"'{path}' is not a file; expected a .npy (or .npz) array file.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except READ_ERRORS as exc:
        raise UserInputError(f"could not read '{path}': {_reason(exc)}.") from None
    if isinstance(loaded, np.ndarray):
        if layer is not None:
            raise UserInputError(f"--layer applies to .npz files; '{path}' holds a single array.")
        return loaded
    with loaded:
        keys = list(loaded.files)
        if layer is None and len(keys) == 1:
            layer = keys[0]
        if layer not in keys:
            raise UserInputError(f"'{path}' holds arrays {', '.join(keys)}; choose one with --layer.")
        try:
            return loaded[layer]
        except READ_ERRORS as exc:
            raise UserInputError(f"could not read array '{layer}' of '{path}': {_reason(exc)}.") from None


def _reason(exc: BaseException) -> str:
    """numpy's reason, without its advice to unpickle (allow_pickle): that can run arbitrary code."""
    return scrub_unsafe_advice(str(exc).strip() or type(exc).__name__).rstrip(".")
