"""Cost curves (issue 19, item 5): time and peak memory of the similarity matrix against the probe-set size N, in
memory and out of core, so a user can predict a run before starting it.

For each N (default 500 ... 20,000), T teachers' (N, D) float32 features (seeded, memory-mapped `.npy`) -> Spearman
of 1 - Pearson RDMs in float64 (the defaults), each run in a fresh process (``bench_large_n.run``: wall time, peak RSS
as VmHWM, the plan's estimate). In memory runs up to ``--max-in-memory`` (20 teachers at N = 20,000 would need
48 GB); out of core runs at every N under ``--max-memory`` (default 8G, issue 19's budget). GPU points come from
the JSON that ``benchmarks/gpu_benchmark.py`` writes (``--gpu FILE``), when a GPU run exists; none is invented.

Writes docs/img/cost_curves.png, docs/cost_curves.csv (one row per run) and the table between the ``cost_curves``
markers of docs/performance.md.

    python benchmarks/bench_cost_curves.py                      # ~12 minutes on 2 cores
    python benchmarks/bench_cost_curves.py --quick              # smoke run into a temp folder
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from _doc_section import write_section
from bench_large_n import GB, run
from bench_rsa import machine, make_features

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("device", "mode", "n", "teachers", "features", "seconds", "peak_gb", "estimate_gb", "jobs")


def measure(args: argparse.Namespace) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_cost_curves_") as tmp:
        for n in args.sizes:
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            make_features(folder, n, args.teachers, args.features, args.seed)
            modes = [("memory", "-")] if n <= args.max_in_memory else []
            for mode, budget in [*modes, ("disk", args.max_memory)]:
                r = run(folder, n, mode, budget, "float64")
                rows.append({"device": "cpu", "mode": "out of core" if r["out_of_core"] else "in memory", "n": n,
                             "teachers": args.teachers, "features": args.features, "seconds": r["seconds"],
                             "peak_gb": r["rss"] / GB, "estimate_gb": r["estimate"] / GB, "jobs": r["jobs"]})
            for p in folder.iterdir():
                if p.is_file():
                    p.unlink()
    return rows


def gpu_rows(path: Path | None) -> list[dict]:
    """The GPU script's RSA points (``rsa`` entries of its results JSON), in this file's columns."""
    if path is None:
        return []
    results = json.loads(path.read_text())
    return [{"device": results.get("gpu", "cuda"), "mode": r["mode"], "n": r["n"], "teachers": r["teachers"],
             "features": r["features"], "seconds": r["seconds"], "peak_gb": r["peak_gb"], "estimate_gb": "",
             "jobs": r.get("jobs", "")} for r in results.get("rsa", [])]


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    time_ax, memory_ax = fig.subplots(1, 2)
    for device, mode in dict.fromkeys((r["device"], r["mode"]) for r in rows):
        pts = sorted((r["n"], r["seconds"], r["peak_gb"]) for r in rows if (r["device"], r["mode"]) == (device, mode))
        label = f"{mode}, {device}"
        style = dict(marker="o" if mode == "in memory" else "s", linestyle="-" if device == "cpu" else "--")
        time_ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
        memory_ax.plot([p[0] for p in pts], [p[2] for p in pts], label=label, **style)
    teachers, features = rows[0]["teachers"], rows[0]["features"]
    for ax, what in ((time_ax, "wall time (s)"), (memory_ax, "peak RSS (GB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("probe images N")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    time_ax.set_title(f"time, {teachers} teachers x {features} features")
    memory_ax.set_title("peak memory (out of core: under --max-memory)")
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def write_csv(rows: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    os.replace(tmp, path)


def table(rows: list[dict], command: str, load_start: tuple[float, ...], max_memory: str) -> list[str]:
    lines = [f"Measured {datetime.now(timezone.utc):%Y-%m-%d} by `{command}`; out of core under --max-memory "
             f"{max_memory}. Plot: docs/img/cost_curves.png; every run: docs/cost_curves.csv.", "",
             *machine(load_start), "", "![cost curves](img/cost_curves.png)", "",
             "| N | device | mode | teachers at once | time (s) | peak RSS (GB) | plan's estimate (GB) |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["n"], r["device"], r["mode"])):
        estimate = f"{r['estimate_gb']:.2f}" if r["estimate_gb"] != "" else "—"
        lines.append(f"| {r['n']:,} | {r['device']} | {r['mode']} | {r['jobs']} | {r['seconds']:.3g} | "
                     f"{r['peak_gb']:.2f} | {estimate} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000, 10000, 20000])
    ap.add_argument("--max-in-memory", type=int, default=10000, help="largest N run in memory too")
    ap.add_argument("--max-memory", default="8G", help="out-of-core budget (default 8G)")
    ap.add_argument("--teachers", type=int, default=20)
    ap.add_argument("--features", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpu", type=Path, default=None, help="results JSON of benchmarks/gpu_benchmark.py")
    ap.add_argument("--quick", action="store_true", help="smoke run: N = 200, 400; 4 teachers x 64; temp outputs")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.max_in_memory, args.teachers, args.features, args.max_memory = [200, 400], 400, 4, 64, "1G"
    load_start = os.getloadavg()
    rows = measure(args) + gpu_rows(args.gpu)
    docs = Path(tempfile.mkdtemp(prefix="cost_curves_docs_")) if args.quick else ROOT / "docs"
    (docs / "img").mkdir(exist_ok=True)
    plot(rows, docs / "img" / "cost_curves.png")
    write_csv(rows, docs / "cost_curves.csv")
    command = ("python benchmarks/bench_cost_curves.py " + shlex.join(sys.argv[1:])).strip()
    lines = table(rows, command, load_start, args.max_memory)
    write_section(docs / "performance.md", "cost_curves", lines)
    print("\n".join(lines))
    print(f"wrote {docs}", file=sys.stderr)


if __name__ == "__main__":
    main()
