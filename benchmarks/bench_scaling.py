"""One process vs ``torchrun`` with two on this machine's CPU cores: student training and feature extraction.

Each configuration runs the real command in a fresh subprocess, in interleaved rounds (the best round counts), and
the section ``scaling_cpu`` of docs/scaling.md gets the table. On a CPU the question is only whether splitting the
work over processes costs more than it saves; on GPUs each process has a device of its own.

    python benchmarks/bench_scaling.py            # the documented run
    python benchmarks/bench_scaling.py --rounds 1 --steps 5 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def configurations(threads: int) -> dict[str, tuple[list[str], int]]:
    """name -> (launcher prefix, torch threads per process)."""
    return {f"1 process × {threads} threads": ([sys.executable, "-m"], threads),
            f"torchrun, 2 processes × {threads // 2 or 1} thread": ([*TORCHRUN, "-m"], threads // 2 or 1)}


def train_seconds_per_step(prefix: list[str], threads: int, work: Path, args: argparse.Namespace,
                           env: dict[str, str]) -> float:
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    run([*prefix, "amalgamate", "train", "--out", str(out), "--targets", "depth", "normal", "--aux",
         "segment_semantic", "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--train-frames",
         str(args.train_frames), "--threads", str(threads), "--quiet"], env)
    return json.loads((out / "run.json").read_text())["seconds_this_session"] / args.steps


def extract_seconds(prefix: list[str], work: Path, args: argparse.Namespace, env: dict[str, str]) -> float:
    cache, out = work / "extract-cache", work / "features"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return run([*prefix, "rsa_toolkit", "features", "--out", str(out), "--cache-dir", str(cache), "--quiet"], env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--train-frames", type=int, default=512)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    configs = configurations(threads)
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        work = Path(tmp)
        env = {**os.environ, "RSA_TOOLKIT_CACHE": str(work / "cache"), "PYTHONWARNINGS": "ignore"}
        # fill the frame and knowledge caches once, outside the timing
        train_seconds_per_step([sys.executable, "-m"], threads, work, argparse.Namespace(**{**vars(args), "steps": 1}),
                               env)
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.rounds):
            for name, (prefix, per_process) in configs.items():
                env_p = {**env, "OMP_NUM_THREADS": str(per_process)}
                for job, seconds in (("train", train_seconds_per_step(prefix, per_process, work, args, env_p)),
                                     ("extract", extract_seconds(prefix, work, args, env_p))):
                    best[job, name] = min(best.get((job, name), float("inf")), seconds)
    first = next(iter(configs))
    command = f"python benchmarks/bench_scaling.py --rounds {args.rounds} --steps {args.steps}"
    lines = ["", f"Produced by `{command}` on {threads} CPU cores, best of {args.rounds} interleaved rounds; do not "
             "edit by hand.", "",
             "| job | launch | time | vs one process |", "|---|---|---|---|"]
    for job, unit, what in (("train", "s / step", f"SOKA, depth + normal, global batch {args.batch_size}, "
                                                  "cached knowledge"),
                            ("extract", "s", "`rsa-toolkit features`: 20 mini teachers × 500 probe frames, "
                                             "empty cache")):
        for name in configs:
            lines.append(f"| {what} | {name} | {best[job, name]:.2f} {unit} | "
                         f"{best[job, name] / best[job, first]:.2f}× |")
    lines.append("")
    if args.no_write:
        print("\n".join(lines))
        return
    write_section(ROOT / "docs" / "scaling.md", "scaling_cpu", lines)
    print("wrote docs/scaling.md")


if __name__ == "__main__":
    main()
