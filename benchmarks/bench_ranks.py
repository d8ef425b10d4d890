"""Speed of Spearman's preparation (exact average ranks of each RDM's upper triangle) against one plain sort per
teacher (issue 19, item 2).

For each N: T teachers' features (seeded, as in bench_rsa.py: a shared latent geometry, noise and per-feature
offsets), their condensed 1 - Pearson RDMs from rsa_toolkit's own code, in float64 and float32, then, timed on the
same RDMs (wall-clock, best of --repeats runs, all teachers together):

* (a) the bound: ``np.sort`` of each teacher's condensed RDM, one teacher after another;
* (b) argsort-based ranks, the previous method: ``np.argsort``, then the tie groups from the values gathered in sorted
  order (``doubled_ranks(v, order=np.argsort(v))``), one teacher after another;
* (c) the preparation as ``compare_rdms`` runs it: ``prepare_all`` (ranks from one sort of packed key-index words,
  their mean and spread from the tie groups; teachers in threads, one per core); also (c1), the same one teacher
  after another (``prepare_for``), its cost per core;
* the stages: the RDM stage (``compute_condensed_rdm`` for every teacher, one after another, BLAS on all cores, as
  bench_rsa.py) and the compare stage (``prepare_all`` then ``pairwise_similarity``).

Every preparation's ranks are checked against (b)'s; (b) against scipy.stats.rankdata on the smallest N.
Targets: (c) <= 1.2 x (a); compare stage <= RDM stage.

    python benchmarks/bench_ranks.py --quick
    python benchmarks/bench_ranks.py                     # N = 2000, 5000; 20 teachers x 2048 features
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from bench_rsa import teacher_features

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("float64", "float32")




def best(fn, repeats: int, cpu: dict | None = None, key: str = ""):
    """(fastest wall time of ``repeats`` calls, result of the last call); ``cpu[key]``: the least CPU time of this
    thread (for serial code: its cost on one core, which other processes on the machine disturb less)."""
    times, cpu_times, out = [], [], None
    for _ in range(repeats):
        out = None  # the previous result's memory is free before the next run
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
    if cpu is not None:
        cpu[key] = min(cpu_times)
    return min(times), out


def measure(feats: list[np.ndarray], dtype: str, repeats: int, check_scipy: bool) -> dict:
    from rsa_toolkit.rsa.average_ranks import doubled_ranks
    from rsa_toolkit.rsa.compare import COMPARISONS, pairwise_similarity, prepare_all, prepare_for
    from rsa_toolkit.rsa.rdm import compute_condensed_rdm

    spearman = COMPARISONS.get("spearman")
    names = [f"teacher {t}" for t in range(len(feats))]
    r: dict = {}
    r["rdm"], rdms = best(lambda: np.stack([compute_condensed_rdm(x, dtype=dtype) for x in feats]), 1)
    r["rdm_dtype"], r["entries"] = str(rdms.dtype), rdms.shape[1]
    cpu: dict = {}
    r["sort"], _ = best(lambda: [np.sort(v) for v in rdms], repeats, cpu, "sort")
    r["argsort"], old = best(lambda: [doubled_ranks(v, order=np.argsort(v)) for v in rdms], repeats)
    r["new"], new = best(lambda: prepare_all(spearman, rdms, names=names), repeats)
    r["new_serial"], serial = best(lambda: [prepare_for(spearman, v) for v in rdms], repeats, cpu, "new_serial")
    r["cpu_ratio"] = cpu["new_serial"] / cpu["sort"]
    for a, b, c in zip(old, new, serial):
        if not (np.array_equal(a, b.values) and np.array_equal(a, c.values)):
            sys.exit(f"ranks differ between the argsort path and the packed sort ({dtype})")
    if check_scipy:
        from scipy.stats import rankdata

        if not np.array_equal(old[0], 2 * rankdata(rdms[0])):
            sys.exit(f"argsort-path ranks differ from scipy.stats.rankdata ({dtype})")
    r["ties"] = 1 - np.mean([len(np.unique(v)) / len(v) for v in rdms[:2]])
    del old, new, serial
    r["compare"], _ = best(lambda: pairwise_similarity(spearman, prepare_all(spearman, rdms, names=names)), repeats)
    return r


def machine(load_start: tuple[float, ...]) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return [f"- CPU: {cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}, numpy "
            f"{version('numpy')}",
            "- load average (1, 5, 15 min) at start {:.2f} {:.2f} {:.2f}, at end {:.2f} {:.2f} {:.2f}"
            .format(*load_start, *os.getloadavg())]


def table(n: int, teachers: int, dim: int, res: dict) -> list[str]:
    def cell(d: str, key: str, ratio: bool = True) -> str:
        r = res[d]
        return f"{r[key]:.3g}" + (f" ({r[key] / r['sort']:.2f}×)" if ratio else "")

    rows = [("RDM entries per teacher (dtype)", lambda d: f"{res[d]['entries']:,} ({res[d]['rdm_dtype']})"),
            ("tied entries (share)", lambda d: f"{res[d]['ties']:.1%}"),
            ("(a) np.sort per teacher, serial: the bound (s)", lambda d: cell(d, "sort", False)),
            ("(b) argsort-based ranks, serial (s, × a)", lambda d: cell(d, "argsort")),
            ("(c) preparation, prepare_all on all cores (s, × a)", lambda d: cell(d, "new")),
            ("(c1) preparation, serial (s, × a)", lambda d: cell(d, "new_serial")),
            ("(c1) / (a) in CPU time, one core", lambda d: f"{res[d]['cpu_ratio']:.2f}×"),
            ("(b) / (c)", lambda d: f"{res[d]['argsort'] / res[d]['new']:.2f}×"),
            ("RDM stage, serial (s)", lambda d: f"{res[d]['rdm']:.3g}"),
            ("compare stage: prepare_all + Gram (s, / RDM stage)",
             lambda d: f"{res[d]['compare']:.3g} ({res[d]['compare'] / res[d]['rdm']:.2f}×)")]
    head = [f"### N = {n} ({teachers} teachers × {dim} features)", "", "| | float64 | float32 |", "|---|---:|---:|"]
    return head + [f"| {label} | {fn('float64')} | {fn('float32')} |" for label, fn in rows] + [""]


def targets(results: dict) -> list[str]:
    out = []
    for n, res in results.items():
        for d in DTYPES:
            r = res[d]
            ratio, stages = r["new"] / r["sort"], r["compare"] / r["rdm"]
            out.append(f"- N = {n}, {d}: preparation ≤ 1.2× sort: {ratio:.2f}× — "
                       f"{'met' if ratio <= 1.2 else 'NOT met'}; compare stage ≤ RDM stage: {stages:.2f}× — "
                       f"{'met' if stages <= 1 else 'NOT met'}")
    return out


MEANING = """\
## What the numbers mean

Wall-clock seconds for all teachers together, best of {rep} runs (the RDM stage: one run). (a) is the bound of the
issue: a plain `np.sort` of each teacher's condensed RDM, one teacher after another; the ratios "× a" divide by it.
(c) may use every core (teachers in threads, one per core, as `compare_rdms` does; `similarity_matrix` overlaps its
teachers the same way, RDM and ranks together), so on a machine with c cores it can reach (c1) / c; "(c1) / (a) in
CPU time" is the cost of the preparation on one core in units of the sort, from the thread's CPU time, which other
processes disturb less than the wall clock (it tells what c cores would give: about that ratio / c). (b) is the
argsort the ranks used before (NumPy's argsort of floats is several times slower than its sort), with the tie groups
found from the values gathered in sorted order; its time does not include the mean and norm of the ranks, which the
old preparation computed in two more passes and (c) takes from the tie groups. The RDM stage is timed like
bench_rsa.py's (one teacher at a time, BLAS on all cores); the compare stage is the preparation plus the Gram
matrix. Other processes slow every column (see the load average): compare ratios within one run.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000], help="numbers of probe images N")
    ap.add_argument("--teachers", type=int, default=20)
    ap.add_argument("--features", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs of each preparation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="markdown report (default docs/performance-ranks.md; --quick: a temp file)")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (N = 200, 400; 4 teachers; 64 features)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.teachers, args.features = [200, 400], 4, 64
    out = args.out or (Path(tempfile.gettempdir()) / "performance-ranks-quick.md" if args.quick
                       else ROOT / "docs" / "performance-ranks.md")
    load_start = os.getloadavg()
    results: dict[int, dict] = {}
    for i, n in enumerate(args.sizes):
        feats = teacher_features(n, args.teachers, args.features, args.seed)
        results[n] = {}
        for d in DTYPES:
            print(f"N = {n}, {d}", file=sys.stderr, flush=True)
            results[n][d] = measure(feats, d, args.repeats, check_scipy=i == 0)
        del feats
    lines = ["# Performance: Spearman's ranks", "", "Produced by `benchmarks/bench_ranks.py`; do not edit by hand.",
             "", "## Machine", "", *machine(load_start), "", "## Command", "",
             f"    python benchmarks/bench_ranks.py {shlex.join(sys.argv[1:])}", "", "## Targets", "",
             *targets(results), "", "## Results", ""]
    for n, res in results.items():
        lines += table(n, args.teachers, args.features, res)
    lines.append(MEANING.format(rep=args.repeats))
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, out)
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
