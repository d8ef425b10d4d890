"""Which similarity measure predicts transfer best? Each measure's task-similarity matrix of the mini zoo (on the
default probe set) is scored against the measured mini-Taskonomy transfer (``rsa-toolkit evaluate`` arithmetic),
with a bootstrap confidence interval over probe frames for each mean; written into docs/evaluate.md.

    python benchmarks/measures_vs_transfer.py              # ~3 minutes once the mini zoo's features are cached
    python benchmarks/measures_vs_transfer.py --bootstrap 20 --out /tmp/x.md

Measures: the RSA recipe (Dwivedi & Roig 2019) and variants, the DDS paper's best combinations (Dwivedi et al.
2020: z-scored features with cosine RDMs or a Laplacian kernel), and linear / RBF / debiased CKA (Kornblith et al.
2019).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling helper below, when run as a script
from _doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# (label, normalization, RDM method, comparison)
MEASURES = (
    ("RSA, the default: centred features, 1 − Pearson, Spearman (the CVPR 2019 recipe)", "center", "correlation",
     "spearman"),
    ("RSA, no normalisation: 1 − Pearson, Spearman", "none", "correlation", "spearman"),
    ("RSA: centred, 1 − Pearson, Pearson", "center", "correlation", "pearson"),
    ("DDS: z-score, cosine, Spearman", "zscore", "cosine", "spearman"),
    ("DDS: z-score, Laplacian kernel (1 − K), Spearman", "zscore", "laplacian", "spearman"),
    ("DDS: z-score, Euclidean, Spearman", "zscore", "euclidean", "spearman"),
    ("DDS: instance norm, cosine, Spearman", "instance", "cosine", "spearman"),
    ("linear CKA", "none", "linear", "cka"),
    ("debiased linear CKA", "none", "linear", "cka_debiased"),
    ("RBF CKA", "none", "rbf", "cka"),
)


def score(result, truth, names) -> tuple[float, float, float, float, float]:
    """(mean Spearman with diagonal, its CI low, high, mean without diagonal, top-1 hit rate)."""
    from rsa_toolkit.analysis.evaluation import evaluate_similarity

    full = evaluate_similarity(result.matrix, names, truth)
    boot = [evaluate_similarity(s, names, truth).mean_spearman_with_diagonal for s in result.bootstrap.samples]
    low, high = np.percentile(boot, [2.5, 97.5])
    return (full.mean_spearman_with_diagonal, low, high, full.mean_spearman_without_diagonal, full.top1_hit_rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--truth", default="mini-transfer", help="ground truth (default mini-transfer)")
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "evaluate.md")
    args = ap.parse_args()
    from rsa_toolkit.features.extract import zoo_features
    from rsa_toolkit.analysis.ground_truth import load_ground_truth
    from rsa_toolkit.zoo.mini.embedded import mini_probe, mini_zoo
    from rsa_toolkit.rsa.similarity import similarity_matrix

    truth = load_ground_truth(args.truth)
    with tempfile.TemporaryDirectory() as tmp:
        features = zoo_features(mini_zoo(), mini_probe(), cache_dir=Path(tmp)).as_dict()
        rows = []
        for label, norm, method, comparison in MEASURES:
            result = similarity_matrix(features, normalization=norm, method=method, comparison=comparison,
                                       n_bootstrap=args.bootstrap, seed=0)
            rows.append((label, norm, method, comparison, *score(result, truth, result.names)))
            print(f"{label}: {rows[-1][4]:.3f} [{rows[-1][5]:.3f}, {rows[-1][6]:.3f}]", file=sys.stderr)
    best = max(rows, key=lambda r: r[4])
    lines = ["", f"Produced by `python benchmarks/measures_vs_transfer.py --truth {args.truth} --bootstrap "
                 f"{args.bootstrap}`; do not edit by hand. The 20 mini teachers' `encoder` features on the default "
                 f"probe set (500 frames); ground truth `{args.truth}`; 95% percentile intervals over "
             f"{args.bootstrap} bootstrap resamples of the probe frames.", "",
             "| measure | options | mean Spearman, diagonal included [95% CI] | without diagonal | top-1 hit rate |",
             "|---|---|---:|---:|---:|"]
    for label, norm, method, comparison, mean, low, high, no_diag, top1 in rows:
        options = f"`--normalization {norm} --method {method} --comparison {comparison}`"
        lines.append(f"| {label} | {options} | "
                     f"{mean:.3f} [{low:.3f}, {high:.3f}] | {no_diag:.3f} | {top1:.2f} |")
    lines += ["", f"Best: {best[0]}, {best[4]:.3f} (goal: ≥ 0.8) — {'met' if best[4] >= 0.8 else 'NOT met'}.", ""]
    write_section(args.out, "measures_vs_transfer", lines)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
