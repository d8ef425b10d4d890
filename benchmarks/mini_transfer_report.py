"""What the shipped mini-Taskonomy transfer measured: the run (time, recipe), how far each target's best source beats
pixels, and a heatmap of the gain; written into the ``mini_transfer_run`` section of docs/evaluate.md and
docs/img/mini_transfer.png. Reads ``data/mini_transfer`` (``rsa-toolkit mini transfer data/mini_transfer``); a few
seconds.

    python benchmarks/mini_transfer_report.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc_section import write_section  # noqa: E402

from rsa_toolkit.files import atomic_path  # noqa: E402
from rsa_toolkit.analysis.ground_truth import load_ground_truth, read_ground_truth_csv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def heatmap(gain: np.ndarray, sources: list[str], targets: list[str], path: Path) -> None:
    fig = Figure(figsize=(9.5, 8.5))
    ax = fig.add_subplot()
    # gain <= 1 by definition, unbounded below: the scale stops at -1 so that a few large losses do not wash it out
    image = ax.imshow(gain, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    ax.set_xticks(range(len(targets)), targets, rotation=90, fontsize=8)
    ax.set_yticks(range(len(sources)), sources, fontsize=8)
    ax.set_xlabel("target")
    ax.set_ylabel("source (frozen encoder)")
    ax.set_title("mini-Taskonomy transfer: gain over pixels, 1 − loss / loss(pixels)")
    fig.colorbar(image, ax=ax, shrink=0.8, extend="min")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        FigureCanvasAgg(fig).print_png(str(tmp))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "mini_transfer")
    args = ap.parse_args()
    recipe = json.loads((args.data / "recipe.json").read_text())
    truth = load_ground_truth("mini-transfer")  # transfer.csv, as `--truth mini-transfer` reads it
    sources, targets, gain = truth.sources, truth.targets, truth.values
    winrate = read_ground_truth_csv(args.data / "winrate.csv").values
    loss = read_ground_truth_csv(args.data / "loss.csv")
    pixels = loss.values[loss.sources.index("pixels")]
    heatmap(gain, sources, targets, ROOT / "docs" / "img" / "mini_transfer.png")

    config = recipe["config"]
    lines = [
        "",
        f"Produced by `rsa-toolkit mini transfer data/mini_transfer --jobs {recipe['jobs']}` and summarised by "
        "`python benchmarks/mini_transfer_report.py`; do not edit by hand.",
        "",
        f"- **Run time: {recipe['seconds'] / 60:.1f} min** on {recipe['machine']} ({recipe['jobs']} processes of one "
        f"thread; torch {recipe['torch']}), for {len(sources)} sources + pixels × {len(targets)} targets "
        f"= {(len(sources) + 1) * len(targets)} readouts.",
        f"- Recipe: {config['train_frames']:,} training frames, {config['steps']} steps of {config['batch_size']}, "
        f"{config['test_frames']} test frames, seed {config['seed']}; zoo manifest sha256 "
        f"`{recipe['zoo_manifest_sha256'][:12]}…`.",
        f"- Off-diagonal gain over pixels: median {np.median(gain[~np.eye(len(gain), dtype=bool)]):.3f}; "
        f"{int((gain[~np.eye(len(gain), dtype=bool)] > 0).sum())} of {len(gain) * (len(gain) - 1)} transfers beat "
        "pixels.",
        "",
        "![mini transfer](img/mini_transfer.png)",
        "",
        "Per target: the pixels readout's loss, the task's own encoder, and the best other source:",
        "",
        "| target | pixels loss | own encoder: gain (win rate) | best other source | its gain (win rate) |",
        "|---|---:|---:|---|---:|",
    ]
    for j, target in enumerate(targets):
        own = sources.index(target)
        others = [i for i in range(len(sources)) if i != own]
        best = max(others, key=lambda i: gain[i, j])
        lines.append(f"| {target} | {pixels[j]:.4g} | {gain[own, j]:.3f} ({winrate[own, j]:.2f}) | {sources[best]} | "
                     f"{gain[best, j]:.3f} ({winrate[best, j]:.2f}) |")
    lines.append("")
    write_section(ROOT / "docs" / "evaluate.md", "mini_transfer_run", lines)
    print("wrote docs/evaluate.md (section mini_transfer_run) and docs/img/mini_transfer.png")


if __name__ == "__main__":
    main()
