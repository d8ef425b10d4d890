"""benchmarks/soka_tables.py and the CSV of benchmarks/soka_results.py: fake finished runs -> CSV -> the doc's
tables, checked against scipy's paired t-test, a hand-computed Holm correction and hand-computed gaps; and the
shipped docs/results.md holds exactly what its shipped CSV generates."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ttest_rel

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(ROOT / "benchmarks"))
tables = _module("soka_tables")
results = _module("soka_results")

TEACHER = {"depth_zbuffer": {"rmse": 0.8, "rel": 0.25}, "normal": {"angle": 20.0, "rmse": 0.25}}
# per arm: (depth rmse, normal angle) offsets over 5 seeds; soka is the reference
SEEDS = 5
RNG = np.random.default_rng(0)
DEPTH = {"kd": 0.78 + RNG.normal(0, 0.01, SEEDS), "soka": 0.76 + RNG.normal(0, 0.01, SEEDS),
         "soka-worst": 0.79 + RNG.normal(0, 0.01, SEEDS)}
ANGLE = {"kd": 21.0 + RNG.normal(0, 0.3, SEEDS), "soka": 21.1 + RNG.normal(0, 0.3, SEEDS),
         "soka-worst": 22.5 + RNG.normal(0, 0.3, SEEDS)}
BALANCED = {"kd": [None] * SEEDS, "soka": [300, None, 320, 410, 450], "soka-worst": [None] * SEEDS}


def _fake_run(path: Path, arm: str, seed: int) -> None:
    path.mkdir(parents=True)
    student = {"depth_zbuffer": {"vs_truth": {"rmse": DEPTH[arm][seed], "rel": 0.24}, "vs_teacher": {"rmse": 0.2}},
               "normal": {"vs_truth": {"angle": ANGLE[arm][seed], "rmse": None}, "vs_teacher": {"angle": 9.0}}}
    teachers = {t: {"vs_truth": m} for t, m in TEACHER.items()}
    (path / "metrics.json").write_text(json.dumps({"student": student, "teachers": teachers}))
    (path / "run.json").write_text(json.dumps({"seconds_this_session": 100.0 + seed, "step": 200,
                                               "balanced_at": BALANCED[arm][seed]}))
    moved = {"depth_zbuffer": 0.5 + 0.1 * seed, "normal": 1.5 - 0.1 * seed}
    log = [{"step": 1, "weights": {"depth_zbuffer": 1.0, "normal": 1.0}},
           {"step": 2, "weights": moved, "drift": 1e-3 * seed}, {"step": 3, "weights": moved}]
    (path / "log.jsonl").write_text("\n".join(json.dumps(entry) for entry in log))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for arm in DEPTH:
        for seed in range(SEEDS):
            _fake_run(results.run_dir(out, "2 tasks", arm, seed), arm, seed)
    _fake_run(results.run_dir(out, "2 tasks", "kd-n-to-n", 0), "kd", 0)  # an arm with one seed of five: left out
    csv_path = out / "metrics.csv"
    assert results.write_csv(out, SEEDS, csv_path) == 3 * SEEDS
    return tables.read_csv(csv_path)


def _row(lines: list[str], *cells: str) -> list[str]:
    hits = [[c.strip() for c in line.strip("|").split("|")] for line in lines
            if all(f"| {c} |" in line for c in cells)]
    assert len(hits) == 1, (cells, lines)
    return hits[0]


def test_the_csv_holds_every_finished_run_and_only_those(table):
    arms, seeds = tables.present(table)
    assert arms == {"2 tasks": ("kd", "soka", "soka-worst")} and seeds == list(range(SEEDS))
    assert table[("soka", "2 tasks", "depth_zbuffer", "truth", "rmse")] == dict(enumerate(DEPTH["soka"]))
    assert np.isnan(table[("soka", "2 tasks", "normal", "truth", "rmse")][0])  # a null metric stays missing
    assert table[("teachers", "2 tasks", "normal", "truth", "angle")] == {s: 20.0 for s in range(SEEDS)}
    # the mean weight over the logged steps, the seconds per step and the balance step
    mean_weight = table[("soka", "2 tasks", "depth_zbuffer", "training", "mean_weight")]
    assert mean_weight[2] == pytest.approx((1 + 0.7 + 0.7) / 3)
    assert table[("kd", "2 tasks", "all", "training", "seconds_per_step")][3] == pytest.approx(103 / 200)
    assert table[("soka", "2 tasks", "all", "training", "balanced_at")][0] == 300
    assert np.isnan(table[("soka", "2 tasks", "all", "training", "balanced_at")][1])


def test_paired_tests_are_scipys_and_holm_is_corrected_over_the_family(table):
    arms, seeds = tables.present(table)
    lines = tables.comparison_rows(table, arms, seeds)
    raw = {(arm, task): ttest_rel(a["soka"], a[arm]).pvalue
           for arm in ("kd", "soka-worst") for task, a in (("depth_zbuffer", DEPTH), ("normal", ANGLE))}
    order = sorted(raw, key=raw.get)
    holm, running = {}, 0.0
    for rank, key in enumerate(order):  # Holm by hand: p_(k) * (m - k + 1), running maximum, capped at 1
        running = max(running, min(1.0, raw[key] * (len(order) - rank)))
        holm[key] = running
    labels = {"kd": "KD n-to-1", "soka-worst": "SOKA (worst aux)"}
    for (arm, task), p in raw.items():
        row = _row(lines, labels[arm], task)
        assert float(row[6]) == pytest.approx(p, rel=5e-3)
        assert float(row[8]) == pytest.approx(holm[(arm, task)], rel=5e-3)
        difference = np.mean((DEPTH if task == "depth_zbuffer" else ANGLE)["soka"]
                             - (DEPTH if task == "depth_zbuffer" else ANGLE)[arm])
        expected = ("no detectable difference" if holm[(arm, task)] >= 0.05
                    else "better" if difference < 0 else "worse")  # both primaries here: lower is better
        assert row[9] == expected
    assert _row(lines, "SOKA (worst aux)", "normal")[9] == "better"  # 1.4° apart with SD 0.3: detectable


def test_gap_to_the_teachers_is_signed_worse_positive_with_a_ci(table):
    arms, seeds = tables.present(table)
    lines = tables.gap_rows(table, arms, seeds)
    gap = 100 * (ANGLE["soka"] - 20.0) / 20.0
    half = 2.776445105 * gap.std(ddof=1) / np.sqrt(SEEDS)  # t_{4, 0.975}
    row = _row(lines, "SOKA (RSA aux)", "normal")
    assert row[6] == f"{gap.mean():+.1f} % [{gap.mean() - half:+.1f}, {gap.mean() + half:+.1f}]"
    assert gap.mean() - half < 5 < gap.mean() + half and row[7] == "undecided"  # 6.0 % [4.5, 7.5]
    depth = 100 * (DEPTH["soka"] - 0.8) / 0.8
    assert depth.mean() < 0 and _row(lines, "SOKA (RSA aux)", "depth_zbuffer")[7] == "yes"  # better than its teacher
    worst = _row(lines, "SOKA (worst aux)", "normal")
    assert worst[7] == "no"  # 12.5 % worse


def test_metric_table_shows_sample_sd_and_t_interval(table):
    arms, seeds = tables.present(table)
    lines = tables.metric_table(table, "2 tasks", arms["2 tasks"], seeds, primary_only=True)
    x = DEPTH["kd"]
    half = 2.776445105 * x.std(ddof=1) / np.sqrt(SEEDS)
    assert _row(lines, "KD n-to-1")[1] == f"{x.mean():.4g} ± {x.std(ddof=1):.2g} [{x.mean() - half:.4g}, " \
                                          f"{x.mean() + half:.4g}]"
    assert _row(lines, "Teachers")[1:] == ["0.8", "20"]


def test_balance_counts_runs_that_met_the_criterion(table):
    arms, seeds = tables.present(table)
    lines = tables.balance_rows(table, arms, seeds)
    assert _row(lines, "SOKA (RSA aux)")[2:] == ["4 of 5", "300, 320, 410, 450", "1.0e-03"]  # seed 1's last drift
    assert _row(lines, "SOKA (worst aux)")[2:] == ["0 of 5", "–", "0.0e+00, 1.0e-03, 2.0e-03, 3.0e-03, 4.0e-03"]
    assert not any("KD" in line for line in lines)  # KD does not coordinate
    with_other = dict(table)  # the other balancer (DWA) never ends a competition: no balance row
    with_other.update({("soka-other", *key[1:]): values for key, values in table.items() if key[0] == "soka"})
    other_arms, _ = tables.present(with_other)
    assert "soka-other" in other_arms["2 tasks"]
    assert not any("other balancer" in line for line in tables.balance_rows(with_other, other_arms, seeds))


def test_the_shipped_doc_holds_what_the_shipped_csv_generates():
    csv_path = ROOT / "docs" / "results_metrics.csv"
    if not csv_path.is_file():
        pytest.skip("no experiment CSV shipped yet")
    from _doc_section import markers

    doc = (ROOT / "docs" / "results.md").read_text()
    for name, lines in tables.sections(csv_path).items():
        start, end = markers(name)
        assert doc.split(start, 1)[1].split(end, 1)[0] == "\n".join(["", *lines, ""]), name
