"""benchmarks/transferability_table.py in quick mode on a small stand-in of the default probe set: a synthetic
seeds-and-splits truth (transfer.csv, ahp.csv, losses.npz, reliability.csv) gives every row and column of the table,
the CSV holds the table's numbers, the Taskonomy block equals ``--protocol dds``; an old one-seed truth gives "—" and
a reason for the AHP truth and the ceiling, never a number."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.analysis.evaluation import evaluate_measures
from rsa_toolkit.analysis.ground_truth import load_ground_truth
from rsa_toolkit.scenes import ALL_TASKS

ROOT = Path(__file__).resolve().parents[1]
MEASURES = ["rsa", "dds-zscore-cosine", "cka_linear"]
TRUTH_LABELS = ("mini truth (loss gain)", "mini truth (AHP win rate)", "Taskonomy affinity (DDS 17 × 17)")
pytestmark = pytest.mark.filterwarnings("ignore:probe set builtin.mini:UserWarning")  # the 24-frame stand-in
COLUMNS = ["measure", "ρ, diagonal included [95 % CI]", "without diagonal", "weighted τ", "top-1", "top-3",
           "time (s)"]


def _script():
    spec = importlib.util.spec_from_file_location("transferability_table",
                                                  ROOT / "benchmarks" / "transferability_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _write_rect(path: Path, values: np.ndarray, rows: list[str], cols: list[str]) -> None:
    lines = [",".join(["", *cols])] + [",".join([r, *map(repr, map(float, v))]) for r, v in zip(rows, values)]
    path.write_text("\n".join(lines) + "\n")


def _new_truth(out: Path) -> Path:
    """A seeds-and-splits run in miniature (2 seeds, 1 split, 6 test frames), its tables consistent with its losses."""
    rng = np.random.default_rng(3)
    tasks = list(ALL_TASKS)
    losses = {f"{s}/{t}": rng.uniform(0.5, 1.5, (2, 1, 6)) for s in [*tasks, "pixels"] for t in tasks}
    np.savez(out / "losses.npz", **losses)
    mean = np.array([[losses[f"{s}/{t}"].mean() for t in tasks] for s in tasks])
    pixels = np.array([losses[f"pixels/{t}"].mean() for t in tasks])
    _write_rect(out / "transfer.csv", 1 - mean / pixels, tasks, tasks)
    _write_rect(out / "ahp.csv", rng.dirichlet(np.ones(len(tasks)), len(tasks)).T, tasks, tasks)
    with open(out / "reliability.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["target", "seed_rho_ahp", "split_rho_ahp", "split_half_ahp", "seed_rho_gain",
                         "split_rho_gain", "beats_constant"])
        writer.writerows([t, 0.5 + j / 100, "", 0.4, 0.8 - j / 100, "", j != 3] for j, t in enumerate(tasks))
    (out / "recipe.json").write_text(json.dumps({"readouts": 1, "config": {
        "seeds": 2, "splits": 1, "train_frames": 100, "val_frames": 10, "max_steps": 50, "batch_size": 8,
        "test_frames": 6}}))
    return out


def _tables(doc: str) -> dict[str, list[list[str]]]:
    """Per truth label, the rows of its markdown table (cells stripped), the header first."""
    found, label = {}, None
    for line in doc.splitlines():
        bold = re.match(r"\*\*(.+?)\*\*: ", line)
        if bold and bold.group(1) in TRUTH_LABELS:
            label = bold.group(1)
        elif line.startswith("|") and label is not None:
            found.setdefault(label, []).append([c.strip() for c in line.strip("|").split("|")])
    return found


@pytest.fixture
def run(small_default_probe, tmp_path_factory, tmp_path):
    cache = tmp_path_factory.getbasetemp() / "table-cache"  # one feature extraction for both tests

    def run_script(truth: Path, *extra: str) -> tuple[str, list[dict[str, str]]]:
        doc, table = tmp_path / "doc.md", tmp_path / "table.csv"
        assert _script().main(["--quick", "--truth", str(truth), "--ci", "3", "--cache-dir", str(cache),
                               "--doc", str(doc), "--csv", str(table), *extra]) == 0
        return doc.read_text(), list(csv.DictReader(table.read_text().splitlines()))

    return run_script


def test_every_measure_and_truth_in_the_table_and_the_csv(run, tmp_path, tmp_path_factory):
    truth = tmp_path / "truth"
    truth.mkdir()
    doc, rows = run(_new_truth(truth), "--probe-bootstrap", "--measures", *MEASURES)
    tables = _tables(doc)
    assert list(tables) == list(TRUTH_LABELS)
    keys = {"mini truth (loss gain)": "mini-gain", "mini truth (AHP win rate)": "mini-ahp",
            "Taskonomy affinity (DDS 17 × 17)": "taskonomy-dds"}
    assert [(r["truth"], r["measure"]) for r in rows] == [(k, m) for k in keys.values() for m in [*MEASURES, "ceiling"]]
    by_key = {(r["truth"], r["measure"]): r for r in rows}
    for label, table in tables.items():
        assert table[0] == COLUMNS and table[1][0] == "---"
        body = table[2:]
        assert [re.search(r"\(`(.+)`\)$", r[0]).group(1) for r in body[:-1]] == MEASURES
        assert body[-1][0].startswith("**ceiling**")
        for cells, measure in zip(body[:-1], MEASURES):
            r = by_key[(keys[label], measure)]
            f = {k: float(r[k]) for k in ("rho_diag", "ci_low", "ci_high", "rho_nodiag", "weighted_tau", "top1",
                                          "top3", "seconds")}
            assert cells[1:] == [f"{f['rho_diag']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]",
                                 f"{f['rho_nodiag']:.3f}", f"{f['weighted_tau']:.3f}", f"{f['top1']:.2f}",
                                 f"{f['top3']:.2f}", f"{f['seconds']:.1f}"]
            assert f["ci_low"] <= f["ci_high"] and r["resamples"] == "3"
    # the ceiling: the mean seed-repeat Spearman over the targets that beat the constant (target 3 does not)
    gain_ceiling = np.mean([0.8 - j / 100 for j in range(20) if j != 3])
    assert float(by_key[("mini-gain", "ceiling")]["rho_diag"]) == pytest.approx(gain_ceiling)
    assert tables["mini truth (loss gain)"][-1][1] == f"{gain_ceiling:.3f}"
    assert float(by_key[("mini-ahp", "ceiling")]["rho_diag"]) == pytest.approx(np.mean([0.5 + j / 100 for j in range(20)
                                                                                        if j != 3]))
    assert by_key[("taskonomy-dds", "ceiling")]["rho_diag"] == "" and tables[TRUTH_LABELS[2]][-1][1] == "—"
    assert "of the ceiling" in doc and "Verdicts" in doc and "no losses.npz" not in doc
    # the Taskonomy block is the library's protocol dds
    from rsa_toolkit.features.extract import zoo_features
    from rsa_toolkit.images.probe import resolve_probe
    from rsa_toolkit.zoo.mini.embedded import mini_zoo

    features = zoo_features(mini_zoo(), resolve_probe("mini"),
                            cache_dir=tmp_path_factory.getbasetemp() / "table-cache").as_dict()
    dds, = evaluate_measures(features, load_ground_truth("taskonomy-affinity"), measures=["rsa"], protocol="dds")
    assert float(by_key[("taskonomy-dds", "rsa")]["rho_diag"]) == pytest.approx(
        dds.evaluations[0].mean_spearman_with_diagonal)


def test_an_old_one_seed_truth_leaves_ahp_and_the_ceiling_blank(run, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    _write_rect(old / "transfer.csv", np.random.default_rng(0).normal(size=(20, 20)), list(ALL_TASKS),
                list(ALL_TASKS))
    (old / "recipe.json").write_text(json.dumps({"config": {"train_frames": 4000, "test_frames": 500, "steps": 200,
                                                            "batch_size": 64, "seed": 0}}))
    doc, rows = run(old, "--measures", "rsa")
    assert list(_tables(doc)) == [TRUTH_LABELS[0], TRUTH_LABELS[2]]
    assert "— not in this table: no ahp.csv" in doc and "one readout seed (0)" in doc
    assert "no losses.npz, so the truth's own noise is not resampled" in doc
    assert "the truth has no ceiling (no reliability.csv" in doc and "of the ceiling:" not in doc
    ahp = [r for r in rows if r["truth"] == "mini-ahp"]
    assert [r["measure"] for r in ahp] == ["rsa", "ceiling"] and all(r["rho_diag"] == "" for r in ahp)
    assert ahp[0]["note"].startswith("no ahp.csv")
