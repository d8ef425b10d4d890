"""The mini zoo in docs/mini_taskonomy.md: every teacher's held-out figure against its trivial baseline, the
task-similarity matrix of the 20 teachers on the default probe set, the paper-pattern checks, and the time of the
embedded default command (cold feature cache, then cached).

    python benchmarks/mini_zoo_report.py                 # the shipped zoo (data/mini_zoo); ~1 minute
    python benchmarks/mini_zoo_report.py --zoo DIR       # another trained zoo
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling helper below, when run as a script
from _doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 0.6  # issue 15's bar: a teacher's held-out loss at most this fraction of its trivial baseline's


def teacher_table(manifest: dict) -> list[str]:
    from rsa_toolkit.zoo.mini.embedded import other_figures

    lines = ["| task | loss | held-out | trivial baseline | ratio | other figure | parameters |",
             "|---|---|---:|---:|---:|---|---:|"]
    for task, r in manifest["teachers"].items():
        lines.append(f"| {task} | {r['loss_name']} | {r['loss']:.4g} | {r['baseline_loss']:.4g} | "
                     f"{r['loss_ratio']:.3f} | {other_figures(r) or '—'} | {r['parameters']:,} |")
    return lines


def summary(manifest: dict, zoo: Path) -> list[str]:
    teachers = manifest["teachers"].values()
    size = sum((zoo / r["file"]).stat().st_size for r in teachers)
    worst = max(teachers, key=lambda r: r["loss_ratio"])
    n_ok = sum(r["loss_ratio"] <= MARGIN for r in teachers)
    above = [f"{r['task']} {r['loss_ratio']:.3f}" for r in teachers if r["loss_ratio"] > MARGIN]
    lines = [f"- {len(manifest['teachers'])} teachers, {sum(r['parameters'] for r in teachers):,} parameters in all, "
             f"{size / 1e6:.1f} MB of fp16 weights."]
    # A teacher's entry comes from the last run that trained it; earlier runs' copies were replaced.
    owner = {t: i for i, run in enumerate(manifest["runs"]) for t in run["tasks"]}
    for i, run in enumerate(manifest["runs"]):
        cfg, tr = run["config"], run["train_shard"]
        kept = [t for t in run["tasks"] if owner.get(t) == i and t in manifest["teachers"]]
        replaced = [t for t in run["tasks"] if owner.get(t) != i]
        if not kept:
            lines.append(f"- Run {i + 1}, {len(run['tasks'])} teacher(s) ({', '.join(run['tasks'])}), all retrained "
                         f"later; {run['wall_seconds'] / 60:.0f} min wall-clock.")
            continue
        steps = sorted({manifest["teachers"][t]["steps"] for t in kept})
        lines.append(f"- Run {i + 1}, {len(run['tasks'])} teacher(s)"
                     + (f", of which {', '.join(replaced)} were retrained later" if replaced else "")
                     + f" ({', '.join(kept)}): "
                     f"{' or '.join(map(str, steps))} steps × {cfg['batch_size']} frames per teacher (AdamW, "
                     f"one-cycle, peak lr {cfg['lr']:g}, seed {cfg['seed']}) on {tr['count']} train frames (seeds "
                     f"{tr['first_seed']}…) at {tr['size']} px; {run['jobs']} process(es) of one thread; "
                     f"{run['wall_seconds'] / 60:.0f} min wall-clock ({run['machine']}, torch {run['torch']}).")
    te = manifest["runs"][-1]["test_shard"]
    lines.append(f"- Held out: {te['count']} test frames (seeds {te['first_seed']}…). {n_ok} of "
                 f"{len(manifest['teachers'])} teachers reach a held-out loss ≤ {MARGIN:g} × the trivial baseline's; "
                 f"the weakest is {worst['task']} at {worst['loss_ratio']:.3f}"
                 + (f"; above the bar: {', '.join(above)} (the text above says why)" if above else "") + ".")
    return lines


def similarity(zoo: Path, cache: Path):
    from rsa_toolkit.features.extract import zoo_features
    from rsa_toolkit.zoo.mini.embedded import mini_probe, mini_zoo
    from rsa_toolkit.rsa.similarity import similarity_matrix

    features = zoo_features(mini_zoo(zoo_dir=zoo), mini_probe(), cache_dir=cache)
    return similarity_matrix(features.as_dict(), n_bootstrap=100, seed=0)


def matrix_section(result, png: Path) -> list[str]:
    from rsa_toolkit.viz.plots import save_png, similarity_png_figure
    from rsa_toolkit.analysis.taxonomy import nearest_neighbours, pattern_checks, type_contrast

    save_png(similarity_png_figure(result.matrix, result.names, title="Mini-Taskonomy: task similarity (RSA)"), png)
    lines = [f"![mini matrix](img/{png.name})", "",
             f"*The {len(result.names)} mini teachers' representations (`encoder`, 8 × 16 × 16) on the default probe set "
             f"({result.n_images} frames): 1 − Pearson RDMs, Spearman comparison, dendrogram order.*", "",
             "| the paper's pattern | here | |", "|---|---|---|"]
    lines += [f"| {c.statement} | {'holds' if c.holds else 'does not hold'} | {c.detail} |"
              for c in pattern_checks(result.matrix, result.names)]
    lines += ["", "| type | mean similarity within | to the other types |", "|---|---:|---:|"]
    lines += [f"| {ty} | {w:.3f} | {b:.3f} |" for ty, (w, b) in type_contrast(result.matrix, result.names).items()]
    nn = nearest_neighbours(result.matrix, result.names)
    same = [np.mean([nearest_neighbours(s, result.names)[t] == n for s in result.bootstrap.samples])
            for t, n in nn.items()]
    lines += ["", "Nearest neighbour of each task, with the share of 100 bootstrap resamples of the probe frames "
                  "that agree: " + ", ".join(f"{t} → {n} ({p:.0%})" for (t, n), p in zip(nn.items(), same)) + "."]
    return lines


def time_default_command(cache: Path) -> list[str]:
    env = {**os.environ, "RSA_TOOLKIT_CACHE": str(cache)}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rsa_toolkit.cli.main", "matrix", "--out", "sim.png", "--quiet"],
                           cwd=tmp, env=env, check=True)
            times.append(time.perf_counter() - t0)
    return [f"`rsa-toolkit matrix --out sim.png` (the embedded default: 20 teachers, 500 rendered probe frames): "
            f"{times[0]:.1f} s with an empty feature cache, {times[1]:.1f} s cached "
            f"({platform.machine()}, {os.cpu_count()} cores)."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", type=Path, default=ROOT / "data" / "mini_zoo")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "mini_taskonomy.md")
    args = ap.parse_args()
    from rsa_toolkit.zoo.mini.embedded import read_manifest

    manifest = read_manifest(args.zoo)
    with tempfile.TemporaryDirectory() as tmp:
        result = similarity(args.zoo, Path(tmp) / "cache")
        timing = time_default_command(Path(tmp) / "cli-cache") if args.zoo == ROOT / "data" / "mini_zoo" else []
    lines = ["", "Produced by `python benchmarks/mini_zoo_report.py`; do not edit by hand.", "", *summary(manifest, args.zoo),
             "", *teacher_table(manifest), "", *timing, ""]
    write_section(args.out, "mini_zoo_teachers", lines)
    write_section(args.out, "mini_zoo_matrix", ["", *matrix_section(result, args.out.parent / "img" / "mini_sim.png"),
                                                ""])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
