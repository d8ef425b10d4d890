"""The whole command as the unit (issue 19): ``rsa-toolkit matrix --features DIR --out sim.png`` timed as a
subprocess, against rsatoolbox 0.3.2 and the bound, in the same run.

* ours: the console script, default outputs (PNG, HTML, CSV, JSON, NPZ), wall time of the whole process (imports,
  loading the features, RDMs, ranks, Gram product, writing every file), best of ``--repeats``;
* rsatoolbox: ``calc_rdm(method='correlation')`` on the centred features, then ``compare(method='spearman')`` (same
  statistic; loading and centring not timed, in its favour), with the max abs difference of the matrices;
* the bound: for every teacher the bare product ``X @ X.T`` of its centred features plus one plain ``np.sort`` of its
  condensed RDM (what any exact Spearman RSA must at least do), nothing else.

Targets (N = 2,000 x 20 teachers x 2,048 features): ours >= 25x rsatoolbox, ours <= 2x the bound.

    python benchmarks/bench_cli.py                      # N = 2,000, 20 teachers, 2,048 features (~3 minutes)
    python benchmarks/bench_cli.py --sizes 500 --teachers 5 --features 256 --no-docs   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _doc_section import write_section
from bench_rsa import centred, machine, make_features, rsatoolbox_run

ROOT = Path(__file__).resolve().parents[1]


def whole_command(folder: Path, repeats: int) -> tuple[float, np.ndarray, list[str], float]:
    """(best wall time of the console script, its matrix, its teacher order, size of its outputs in MB)."""
    out = folder / "out"
    times = []
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        cmd = [shutil.which("rsa-toolkit") or "rsa-toolkit", "matrix", "--features", str(folder / "features"),
               "--out", str(out / "sim.png"), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode:
            sys.exit(f"rsa-toolkit matrix failed:\n{proc.stderr}")
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    saved = np.load(out / "sim.npz")
    return min(times), saved["similarity"], [str(name) for name in saved["names"]], size


def bound(paths: list[Path]) -> tuple[float, float]:
    """(seconds of the bare products, seconds of one np.sort per teacher's condensed RDM)."""
    t_prod = t_sort = 0.0
    for p in paths:
        x = np.ascontiguousarray(centred(p))
        t0 = time.perf_counter()
        gram = x @ x.T
        t_prod += time.perf_counter() - t0
        condensed = gram[np.triu_indices(len(gram), 1)]
        t0 = time.perf_counter()
        np.sort(condensed)
        t_sort += time.perf_counter() - t0
    return t_prod, t_sort


def run_size(n: int, args: argparse.Namespace, tmp: Path) -> dict:
    folder = tmp / f"n{n}"
    (folder / "features").mkdir(parents=True)
    paths = make_features(folder / "features", n, args.teachers, args.features, args.seed)
    for p in paths:  # the CLI names teachers by file stem
        p.rename(p.with_name(p.name.split("_", 1)[1]))
    paths = sorted((folder / "features").glob("*.npy"))
    ours, matrix, names, size = whole_command(folder, args.repeats)
    order = [names.index(p.stem) for p in paths]
    matrix = matrix[np.ix_(order, order)]
    t_prod, t_sort = bound(paths)
    tbx = rsatoolbox_run(paths) if not args.skip_rsatoolbox else None
    diff = float(np.abs(np.asarray(tbx["matrix"]) - matrix).max()) if tbx else None
    return {"n": n, "ours": ours, "outputs_mb": size, "products": t_prod, "sorts": t_sort,
            "bound": t_prod + t_sort, "rsatoolbox": tbx["total"] if tbx else None, "max_diff": diff}


def table(results: list[dict], args: argparse.Namespace, load_start: tuple[float, ...]) -> list[str]:
    lines = [f"Command: `python benchmarks/bench_cli.py --sizes {' '.join(map(str, args.sizes))} --teachers "
             f"{args.teachers} --features {args.features}`; {args.teachers} teachers x {args.features} float32 "
             "features; best of "
             f"{args.repeats} runs of the whole console script.", "", *machine(load_start), "",
             "| N | whole command (s) | outputs (MB) | bound: products + sorts (s) | rsatoolbox (s) | "
             "rsatoolbox / ours | ours / bound | max abs diff |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        speedup = f"{r['rsatoolbox'] / r['ours']:.1f}x" if r["rsatoolbox"] else "—"
        diff = f"{r['max_diff']:.1e}" if r["max_diff"] is not None else "—"
        tbx = f"{r['rsatoolbox']:.1f}" if r["rsatoolbox"] else "—"
        lines.append(f"| {r['n']:,} | {r['ours']:.2f} | {r['outputs_mb']:.1f} | {r['products']:.2f} + "
                     f"{r['sorts']:.2f} = {r['bound']:.2f} | {tbx} | {speedup} | {r['ours'] / r['bound']:.2f}x | "
                     f"{diff} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000])
    parser.add_argument("--teachers", type=int, default=20)
    parser.add_argument("--features", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-rsatoolbox", action="store_true")
    parser.add_argument("--no-docs", action="store_true", help="print the table only")
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_size(n, args, Path(tmp)) for n in args.sizes]
    lines = table(results, args, load_start)
    if not args.no_docs:
        write_section(ROOT / "docs" / "performance.md", "bench_cli", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
