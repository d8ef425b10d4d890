"""What the shipped mini-Taskonomy transfer measured: the run (time, recipe, convergence), how far each target's best
source beats pixels, the AHP top source and the truth's reliability per target, the flagged targets, and a heatmap of
the gain; written into the ``mini_transfer_run`` section of docs/evaluate.md and docs/img/mini_transfer.png. Reads
``data/mini_transfer`` (``rsa-toolkit mini transfer data/mini_transfer``); a few seconds.

    python benchmarks/mini_transfer_report.py
"""

from __future__ import annotations

import argparse
import csv
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


def _reliability(path: Path) -> dict[str, dict[str, str]]:
    return {row["target"]: row for row in csv.DictReader(path.read_text().splitlines())}


def _num(text: str) -> str:
    return "–" if text == "" else f"{float(text):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "mini_transfer")
    args = ap.parse_args()
    recipe = json.loads((args.data / "recipe.json").read_text())
    if "readouts" not in recipe:
        raise SystemExit(f"{args.data} was written by the old one-seed protocol (no per-image losses, no "
                         "reliability); run `rsa-toolkit mini transfer` again (docs/mini_taskonomy.md).")
    truth = load_ground_truth("mini-transfer") if args.data == ROOT / "data" / "mini_transfer" else \
        read_ground_truth_csv(args.data / "transfer.csv")  # transfer.csv, as `--truth mini-transfer` reads it
    sources, targets, gain = truth.sources, truth.targets, truth.values
    winrate = read_ground_truth_csv(args.data / "winrate.csv").values
    ahp = read_ground_truth_csv(args.data / "ahp.csv").values
    loss = read_ground_truth_csv(args.data / "loss.csv")
    rel = _reliability(args.data / "reliability.csv")
    pixels = loss.values[loss.sources.index("pixels")]
    scratch = 1.0 - loss.values[loss.sources.index("scratch")] / pixels
    heatmap(gain, sources, targets, ROOT / "docs" / "img" / "mini_transfer.png")

    config, steps = recipe["config"], recipe["readout_steps"]
    off = ~np.eye(len(gain), dtype=bool) & np.isfinite(gain)
    lines = [
        "",
        f"Produced by `rsa-toolkit mini transfer data/mini_transfer --budget {recipe['budget']} --jobs "
        f"{recipe['jobs']}` and summarised by `python benchmarks/mini_transfer_report.py`; do not edit by hand.",
        "",
        f"- **{recipe['readouts']} readouts** ({len(recipe['sources'])} sources incl. pixels and scratch × "
        f"{len(targets)} targets × {config['seeds']} seeds × {config['splits']} splits) on {recipe['machine']} "
        f"(torch {recipe['torch']}, device {recipe['device']}, {recipe['jobs']} processes): readout time summed "
        f"{recipe['readout_seconds']['sum'] / 3600:.1f} h (median {recipe['readout_seconds']['median']:.1f} s per "
        f"readout); the last call ran {recipe['wall_seconds_this_call'] / 60:.1f} min and trained "
        f"{recipe['readouts_trained_this_call']} of them.",
        f"- Recipe: {config['train_frames']:,} training frames per split, early stopping on {config['val_frames']} "
        f"val frames (every {config['eval_every']} steps, patience {config['patience']}, at most "
        f"{config['max_steps']} steps of {config['batch_size']}), decoder widths {config['decoder_widths']}, "
        f"{config['test_frames']} test frames; zoo manifest sha256 `{recipe['zoo_manifest_sha256'][:12]}…`.",
        f"- Convergence: median best step {steps['median_best_step']:.0f}; {steps['stopped_early']} readouts stopped "
        f"early, **{steps['hit_max_steps']} hit the step cap** (not converged).",
        f"- Off-diagonal gain over pixels: median {np.median(gain[off]):.3f}; {int((gain[off] > 0).sum())} of "
        f"{int(off.sum())} transfers beat pixels.",
        "- Flagged (no readout beats the constant prediction; blank in transfer.csv and ahp.csv): "
        + (", ".join(f"{t} ({r})" for t, r in recipe["flagged_targets"].items()) or "none") + ".",
        "",
        "![mini transfer](img/mini_transfer.png)",
        "",
        "Per target: the pixels readout's loss, the random encoder's gain, the task's own encoder, the best other "
        "source by gain and by AHP, and the truth's reliability (Spearman between seed repeats and between split "
        "repeats of the AHP column; its split-half over test frames):",
        "",
        "| target | pixels loss | scratch gain | own: gain (win rate) | best other: gain (win rate) | AHP top | "
        "seed ρ | split ρ | split-half |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for j, target in enumerate(targets):
        r = rel[target]
        if r["beats_constant"] != "True":
            lines.append(f"| {target} | {pixels[j]:.4g} | flagged: {r['reason']} | | | | | | |")
            continue
        own = sources.index(target)
        others = [i for i in range(len(sources)) if i != own]
        best = max(others, key=lambda i: gain[i, j])
        top = sources[int(np.nanargmax(ahp[:, j]))]
        lines.append(f"| {target} | {pixels[j]:.4g} | {scratch[j]:.3f} | {gain[own, j]:.3f} ({winrate[own, j]:.2f}) | "
                     f"{sources[best]}: {gain[best, j]:.3f} ({winrate[best, j]:.2f}) | {top} | "
                     f"{_num(r['seed_rho_ahp'])} | {_num(r['split_rho_ahp'])} | {_num(r['split_half_ahp'])} |")
    lines.append("")
    write_section(ROOT / "docs" / "evaluate.md", "mini_transfer_run", lines)
    print("wrote docs/evaluate.md (section mini_transfer_run) and docs/img/mini_transfer.png")


if __name__ == "__main__":
    main()
