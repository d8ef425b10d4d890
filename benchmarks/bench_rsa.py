"""Speed and memory of the RSA similarity pipeline, against rsatoolbox 0.3.2 and the bare matrix products.

For each N: T teachers' (N, D) float32 features (seeded, saved as .npy, memory-mapped as the CLI reads them) ->
T x T Spearman comparison of 1 - Pearson RDMs (per-feature centring first). Timed in the same run:

* ours, float64 and float32: end-to-end ``similarity_matrix`` (in a fresh subprocess, which also gives the peak
  RSS), the RDM stage (``compute_condensed_rdm`` for every teacher) and the compare stage (rank + one product);
* the bound: ``X @ X.T`` of each teacher's centred features, nothing else;
* rsatoolbox: ``calc_rdm(method='correlation')`` on the centred features, then ``compare(method='spearman')``
  (rank with scipy, centre, cosine: the same statistic as ours), with the max abs difference of the matrices.

Run from anywhere (numbers in docs/performance.md come from the second line; it takes ~10 minutes):
    python benchmarks/bench_rsa.py --quick
    python benchmarks/bench_rsa.py --sizes 500 2000 5000 --teachers 20 --features 2048
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from _doc_section import write_section

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("float64", "float32")
GB = 1e9


def teacher_features(n: int, teachers: int, dim: int, seed: int) -> list[np.ndarray]:
    """Teachers share a latent geometry in different amounts, so their similarities spread out; float32 (n, dim)."""
    shared = np.random.default_rng([seed, n]).standard_normal((n, 32))
    out = []
    for t in range(teachers):
        rng = np.random.default_rng([seed, n, t + 1])
        own = rng.standard_normal((n, 32))
        mix = 0.2 + 0.8 * t / max(1, teachers - 1)
        x = (mix * shared + (1 - mix) * own) @ rng.standard_normal((32, dim))
        x += 0.5 * rng.standard_normal((n, dim)) + 3.0 * rng.standard_normal(dim)  # noise + per-feature offsets
        out.append(x.astype(np.float32))
    return out


def make_features(folder: Path, n: int, teachers: int, dim: int, seed: int) -> list[Path]:
    """:func:`teacher_features`, saved as ``n<N>_teacher<t>.npy`` in ``folder``."""
    paths = []
    for t, x in enumerate(teacher_features(n, teachers, dim, seed)):
        paths.append(folder / f"n{n}_teacher{t:02d}.npy")
        np.save(paths[-1], x)
    return paths


def load(paths: list[Path]) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p, mmap_mode="r") for p in paths}


def centred(path: Path) -> np.ndarray:
    x = np.load(path).astype(np.float64)
    return x - x.mean(axis=0)


def best(fn, repeats: int):
    """(fastest wall time of ``repeats`` calls, result of the last call)."""
    times = []
    for _ in range(repeats):
        t0, out = time.perf_counter(), fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def peak_rss() -> int:
    """Peak RSS of this process in bytes: VmHWM, not ru_maxrss, which Linux carries over from the parent across
    fork + exec (a child of a 2 GB parent reports >= 2 GB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: may include the parent


def child(folder: str, n: str, dtype: str, out: str) -> None:
    """Hidden mode: one end-to-end run in a fresh process; prints JSON with its time and peak RSS."""
    from rsa_toolkit.rsa.similarity import similarity_matrix

    rss_import = peak_rss()
    paths = sorted(Path(folder).glob(f"n{n}_teacher*.npy"))
    t0 = time.perf_counter()
    result = similarity_matrix(load(paths), dtype=dtype)
    seconds = time.perf_counter() - t0
    np.save(out, result.matrix)
    print(json.dumps({"seconds": seconds, "rss": peak_rss(), "rss_import": rss_import}))


def end_to_end(folder: Path, n: int, dtype: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = folder / f"matrix_{n}_{dtype}.npy"
        cmd = [sys.executable, __file__, "--_child", str(folder), str(n), dtype, str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"end-to-end run failed (N = {n}, {dtype}):\n{proc.stderr}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    fastest = min(runs, key=lambda run: run["seconds"])
    return {**fastest, "rss": max(run["rss"] for run in runs), "matrix": np.load(out)}


def ours_stages(paths: list[Path], dtype: str, repeats: int) -> dict:
    from rsa_toolkit.rsa.compare import COMPARISONS, pairwise_similarity, prepare_for
    from rsa_toolkit.rsa.rdm import compute_condensed_rdm

    spearman = COMPARISONS.get("spearman")
    feats = load(paths)
    # Serial stages (one teacher at a time, BLAS on all cores): where the time goes. The end-to-end run may overlap
    # teachers, so it can be shorter than their sum.
    t_rdm, rdms = best(lambda: [compute_condensed_rdm(x, dtype=dtype, name=k) for k, x in feats.items()], repeats)
    # The compare stage as similarity_matrix runs it: prepare (rank) each RDM, then the Gram matrix.
    t_cmp, matrix = best(lambda: pairwise_similarity(spearman, [prepare_for(spearman, r) for r in rdms]), repeats)
    return {"rdm": t_rdm, "compare": t_cmp, "matrix": matrix}


def bare_products(paths: list[Path], dtype: str) -> float:
    total = 0.0
    for p in paths:
        x = np.ascontiguousarray(centred(p), dtype=dtype)
        t0 = time.perf_counter()
        _ = x @ x.T  # numpy hands x @ x.T to BLAS syrk (half the flops of a general product)
        total += time.perf_counter() - t0
    return total


def rsatoolbox_run(paths: list[Path]) -> dict:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare

    datasets = [Dataset(centred(p)) for p in paths]  # centring and loading not timed (ours includes them)
    t_rdm, rdms = best(lambda: calc_rdm(datasets, method="correlation"), 1)
    t_cmp, matrix = best(lambda: compare(rdms, rdms, method="spearman"), 1)
    return {"rdm": t_rdm, "compare": t_cmp, "total": t_rdm + t_cmp, "matrix": matrix}


def machine(load_start: tuple[float, ...]) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    lines = [f"- CPU: {cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}, {platform.system()}",
             "- " + ", ".join(f"{p} {version(p)}" for p in ("numpy", "scipy", "torch", "rsatoolbox")),
             "- load average (1, 5, 15 min) at start {:.2f} {:.2f} {:.2f}, at end {:.2f} {:.2f} {:.2f}"
             .format(*load_start, *os.getloadavg())]
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            lines.append(f"- {pool['user_api']}: {pool['internal_api']} {pool.get('version') or ''} "
                         f"({pool.get('architecture') or pool['prefix']}), {pool['num_threads']} threads, "
                         f"`{Path(pool['filepath']).name}`")
    except ImportError:
        lines.append("- BLAS: see numpy.show_config() (threadpoolctl not installed)")
    return lines


def fmt(value: float | None, spec: str = ".3g", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def table(n: int, r: dict, args: argparse.Namespace) -> list[str]:
    tb = r.get("rsatoolbox")
    rows = [("ours end-to-end (s)", lambda d: fmt(r[d]["e2e"]["seconds"])),
            ("ours RDM stage (s)", lambda d: fmt(r[d]["rdm"])),
            ("ours compare stage (s)", lambda d: fmt(r[d]["compare"])),
            ("bare X·Xᵀ of centred features, all teachers (s)", lambda d: fmt(r[d]["bare"])),
            ("RDM stage / bare products", lambda d: fmt(r[d]["rdm"] / r[d]["bare"], ".2f", "×")),
            ("rsatoolbox total = RDM + compare (s)",
             lambda d: "—" if tb is None else f"{tb['total']:.3g} = {tb['rdm']:.3g} + {tb['compare']:.3g}"),
            ("speed-up vs rsatoolbox (end-to-end)",
             lambda d: fmt(tb and tb["total"] / r[d]["e2e"]["seconds"], ".1f", "×")),
            ("stage speed-ups vs rsatoolbox: RDM / compare", lambda d: "—" if tb is None else
             f"{tb['rdm'] / r[d]['rdm']:.1f}× / {tb['compare'] / r[d]['compare']:.1f}×"),
            ("peak RSS, end-to-end (GB)", lambda d: fmt(r[d]["e2e"]["rss"] / GB, ".2f")),
            ("max abs diff vs rsatoolbox", lambda d: fmt(r[d].get("diff"), ".1e"))]
    head = [f"### N = {n} ({args.teachers} teachers × {args.features} features)", "",
            "| | float64 (default) | float32 |", "|---|---:|---:|"]
    return head + [f"| {label} | {cell('float64')} | {cell('float32')} |" for label, cell in rows] + [""]


def targets(results: dict) -> list[str]:
    out = []
    if 2000 in results and "rsatoolbox" in results[2000]:
        s = results[2000]["rsatoolbox"]["total"] / results[2000]["float64"]["e2e"]["seconds"]
        out.append(f"- N = 2000, ours ≥ 20× faster than rsatoolbox: {s:.1f}× — {'met' if s >= 20 else 'NOT met'}")
    for n, r in results.items():
        ratios = ", ".join(f"{d} {r[d]['rdm'] / r[d]['bare']:.2f}×" for d in DTYPES)
        ok = all(r[d]["rdm"] <= 1.5 * r[d]["bare"] for d in DTYPES)
        out.append(f"- N = {n}, RDM stage ≤ 1.5× bare products: {ratios} — {'met' if ok else 'NOT met'}")
    if 5000 in results:
        rss = {d: results[5000][d]["e2e"]["rss"] / GB for d in DTYPES}
        out.append(f"- N = 5000, peak RSS ≤ 4 GB: float64 {rss['float64']:.2f} GB, float32 {rss['float32']:.2f} GB"
                   f" — float64 {'met' if rss['float64'] <= 4 else 'NOT met'}, "
                   f"float32 {'met' if rss['float32'] <= 4 else 'NOT met'}")
    return out


MEANING = """\
## What the numbers mean

All times are wall-clock seconds for all teachers together: ours best of {rep} runs for N ≤ 2000, one run above;
rsatoolbox one run. Other processes on the machine slow every column (see the load average above), so compare
ratios within one run rather than absolute times across runs. "Ours end-to-end" is `similarity_matrix` with its
defaults in a fresh process, from memory-mapped `.npy` files to the T×T matrix; it includes reading and validating
the features, which rsatoolbox's timing does not (its datasets are built from centred arrays before the clock
starts). The stages are timed separately, one teacher at a time with BLAS on all cores: the RDM stage is
`compute_condensed_rdm` for every teacher; the compare stage ranks each RDM's upper triangle (`prepare_for`) and
forms the Gram matrix (`pairwise_similarity`). The end-to-end run may overlap teachers in threads, so it can take
less than the two stages together. "Bare X·Xᵀ" is the floor for any RDM code, the products alone, timed like the
RDM stage, so "RDM stage / bare products" is the overhead of validation, centring, scaling and condensing.
rsatoolbox's 'spearman' ranks with scipy, centres and takes cosines, i.e. Pearson of average ranks, the same
statistic as ours: the float64 difference is rounding; float32 RDM entries are rounded before ranking, which
reorders near-ties, hence its larger difference. Peak RSS is the child process's VmHWM (not `ru_maxrss`, which a
child inherits from its parent on Linux): the interpreter and imports ({imp:.2f} GB), the pipeline, and the
touched pages of the memory-mapped features; nothing from the baselines.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000], help="numbers of probe images N")
    ap.add_argument("--teachers", type=int, default=20)
    ap.add_argument("--features", type=int, default=2048)
    ap.add_argument("--skip-rsatoolbox-above", type=int, default=2000, help="no rsatoolbox run for larger N")
    ap.add_argument("--out", type=Path, default=None, help="markdown report (default docs/performance.md; "
                                                            "--quick: a temp file)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs of ours for N <= 2000 (1 above)")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (N = 60, 150; 4 teachers; 64 features)")
    ap.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        return child(*args._child)
    if args.quick:
        args.sizes, args.teachers, args.features = [60, 150], 4, 64
    out = args.out or (Path(tempfile.gettempdir()) / "performance-quick.md" if args.quick
                       else ROOT / "docs" / "performance.md")
    results: dict[int, dict] = {}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_rsa_") as tmp:
        for n in args.sizes:
            repeats = args.repeats if n <= 2000 else 1
            print(f"N = {n}: writing {args.teachers} teachers' features", file=sys.stderr, flush=True)
            paths = make_features(Path(tmp), n, args.teachers, args.features, args.seed)
            r: dict = {}
            for d in DTYPES:
                print(f"N = {n}, {d}: ours end-to-end, stages, bare products", file=sys.stderr, flush=True)
                r[d] = {"e2e": end_to_end(Path(tmp), n, d, repeats), **ours_stages(paths, d, repeats),
                        "bare": bare_products(paths, d)}
                assert np.allclose(r[d]["matrix"], r[d]["e2e"]["matrix"], atol=1e-9), "stages != end-to-end"
            if n <= args.skip_rsatoolbox_above:
                print(f"N = {n}: rsatoolbox", file=sys.stderr, flush=True)
                r["rsatoolbox"] = rsatoolbox_run(paths)
                for d in DTYPES:
                    r[d]["diff"] = float(np.abs(r[d]["e2e"]["matrix"] - r["rsatoolbox"]["matrix"]).max())
                    print(f"  max abs diff vs rsatoolbox ({d}): {r[d]['diff']:.2e}", file=sys.stderr, flush=True)
                assert r["float64"]["diff"] < 1e-6, "float64 result disagrees with rsatoolbox"
            results[n] = r
            for p in paths:
                p.unlink()
    imp = max(r[d]["e2e"]["rss_import"] for r in results.values() for d in DTYPES) / GB
    lines = ["# Performance: task-similarity matrix (RSA)", "", "Produced by `benchmarks/bench_rsa.py`; do not edit "
             "by hand.", "", "## Machine", "", *machine(load_start), "", "## Command", "",
             f"    python benchmarks/bench_rsa.py {shlex.join(sys.argv[1:])}", "",
             f"Features: seeded Gaussian, float32 `.npy`, memory-mapped. Comparison: Spearman of 1 − Pearson RDMs "
             f"after per-feature centring (the RSA recipe). rsatoolbox runs up to N = {args.skip_rsatoolbox_above}.",
             "", "## Targets", "", *targets(results), "", "## Results", ""]
    for n, r in results.items():
        lines += table(n, r, args)
    lines.append(MEANING.format(rep=args.repeats, imp=imp))
    # Between markers: the file's other sections (large probe sets, amalgamation) come from other benchmarks.
    write_section(out, "rsa_matrix", lines[2:])  # lines[0] is the title, which the file's own heading replaces
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
