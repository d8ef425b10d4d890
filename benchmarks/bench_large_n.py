"""Large probe sets: the out-of-core similarity matrix against the in-memory one, and N = 20,000 images within 8 GB.

T teachers' (N, D) float32 features (seeded, saved as .npy and memory-mapped, as cached features arrive) -> Spearman
of 1 - Pearson RDMs (the defaults, float64), each run in a fresh subprocess that reports its wall time and peak RSS
(VmHWM) and samples the scratch directory's size every half second:

(a) an N where both modes fit (default 4,000): ``similarity_matrix`` in memory and out of core (forced), the plan's
    estimate beside the measured peak, and the max |difference| of the two matrices (0: the same numbers are
    computed in the same order);
(b) N = 20,000 under ``max_memory="8G"`` (the mode chosen by the plan: out of core), with the peak disk use.

The table goes to docs/performance.md between the ``large_n`` markers (--quick: a temp file).

    python benchmarks/bench_large_n.py --quick
    python benchmarks/bench_large_n.py --both 4000 --large 20000 --teachers 20 --features 2048
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from _doc_section import write_section
from bench_rsa import load, machine, make_features, peak_rss

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9


def child(folder: str, n: str, mode: str, max_memory: str, dtype: str, scratch: str, out: str) -> None:
    """Hidden mode: one run in a fresh process; prints JSON with its time, peak RSS, plan and peak scratch use."""
    from rsa_toolkit.rsa.similarity import similarity_matrix

    paths = sorted(Path(folder).glob(f"n{n}_teacher*.npy"))
    out_of_core = {"memory": False, "disk": True, "auto": None}[mode]
    disk = DiskSampler(Path(scratch))
    t0 = time.perf_counter()
    with disk:
        result = similarity_matrix(load(paths), dtype=dtype, out_of_core=out_of_core, scratch=scratch,
                                   max_memory=None if max_memory == "-" else max_memory)
    seconds = time.perf_counter() - t0
    np.save(out, result.matrix)
    plan = result.memory
    print(json.dumps({"seconds": seconds, "rss": peak_rss(), "out_of_core": plan.out_of_core, "jobs": plan.n_jobs,
                      "estimate": plan.needed, "budget": plan.budget, "disk_plan": plan.disk,
                      "disk_peak": disk.peak}))


class DiskSampler:
    """Largest total size of the files under ``root`` while the block runs (sampled every half second)."""

    def __init__(self, root: Path) -> None:
        self.root, self.peak, self._stop = root, 0, threading.Event()

    def __enter__(self) -> DiskSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                size = sum(f.stat().st_blocks * 512 for f in self.root.rglob("*") if f.is_file())
            except OSError:  # a file removed while listed
                continue
            self.peak = max(self.peak, size)


def run(folder: Path, n: int, mode: str, max_memory: str, dtype: str) -> dict:
    scratch = folder / "scratch"
    scratch.mkdir(exist_ok=True)
    out = folder / f"matrix_{n}_{mode}.npy"
    cmd = [sys.executable, __file__, "--_child", str(folder), str(n), mode, max_memory, dtype, str(scratch), str(out)]
    print(f"N = {n}, {mode}: {shlex.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"run failed (N = {n}, {mode}):\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {result}", file=sys.stderr, flush=True)
    return {**result, "matrix": np.load(out)}


def row(label: str, r: dict, diff: float | None) -> str:
    mode = "out of core" if r["out_of_core"] else "in memory"
    budget = "—" if r["budget"] is None else f"{r['budget'] / GB:.2f}"
    disk = f"{r['disk_peak'] / GB:.2f} ({r['disk_plan'] / GB:.2f})" if r["out_of_core"] else "—"
    return (f"| {label} | {mode} | {r['jobs']} | {r['seconds']:.1f} | **{r['rss'] / GB:.2f}** | "
            f"{r['estimate'] / GB:.2f} | {budget} | {disk} | {'—' if diff is None else f'{diff:.1e}'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--both", type=int, default=4000, help="N for the in-memory vs out-of-core comparison")
    ap.add_argument("--large", type=int, default=20000, help="N for the out-of-core run under --max-memory (0: skip)")
    ap.add_argument("--max-memory", default="8G", help="memory limit of the large run (default 8G)")
    ap.add_argument("--teachers", type=int, default=20)
    ap.add_argument("--features", type=int, default=2048)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="markdown file (default docs/performance.md; --quick: a "
                                                           "temp file)")
    ap.add_argument("--quick", action="store_true", help="smoke run: N = 300 and 600, 4 teachers, 64 features")
    ap.add_argument("--_child", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        return child(*args._child)
    if args.quick:
        args.both, args.large, args.teachers, args.features, args.max_memory = 300, 600, 4, 64, "400M"
    out = args.out or (Path(tempfile.gettempdir()) / "performance-large-n-quick.md" if args.quick
                       else ROOT / "docs" / "performance.md")
    load_start = __import__("os").getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_large_n_") as tmp:
        folder = Path(tmp)
        make_features(folder, args.both, args.teachers, args.features, args.seed)
        memory = run(folder, args.both, "memory", "-", args.dtype)
        disk = run(folder, args.both, "disk", "-", args.dtype)
        diff = float(np.abs(memory["matrix"] - disk["matrix"]).max())
        rows += [row(f"N = {args.both}", memory, None), row(f"N = {args.both}", disk, diff)]
        for p in folder.glob(f"n{args.both}_*.npy"):
            p.unlink()
        if args.large:
            print(f"N = {args.large}: writing {args.teachers} teachers' features", file=sys.stderr, flush=True)
            make_features(folder, args.large, args.teachers, args.features, args.seed)
            large = run(folder, args.large, "auto", args.max_memory, args.dtype)
            rows.append(row(f"N = {args.large}, --max-memory {args.max_memory}", large, None))
    command = "python benchmarks/bench_large_n.py " + shlex.join(sys.argv[1:])
    lines = [f"Measured {datetime.now(timezone.utc):%Y-%m-%d} by `{command.strip()}`; {args.teachers} teachers x "
             f"{args.features} float32 features (memory-mapped `.npy`), Spearman of 1 − Pearson RDMs in {args.dtype}, "
             f"each run in a fresh process.", "", *machine(load_start), "",
             "| probe set | mode | teachers at once | time (s) | peak RSS (GB) | plan's estimate (GB) | budget (GB) | "
             "scratch: peak (plan), GB | max abs diff vs in memory |", "|---|---|---:|---:|---:|---:|---:|---:|---:|",
             *rows]
    write_section(out, "large_n", lines)
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
