"""The shipped mini zoo (data/mini_zoo): complete, intact, within its size budget, every teacher better than its
trivial baseline on frames it never saw, and its task-similarity matrix showing the paper's pattern."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rsa_toolkit.cli.main import main
from rsa_toolkit.zoo.mini.net import build_teacher_net
from rsa_toolkit.scenes.shards import write_shard
from rsa_toolkit.files import file_sha256
from rsa_toolkit.lab.train import evaluate_teacher
from rsa_toolkit.zoo.mini.embedded import default_zoo_dir, mini_teacher, read_manifest
from rsa_toolkit.scenes import ALL_TASKS
from rsa_toolkit.analysis.taxonomy import nearest_neighbours, pattern_checks

MARGIN = 0.6  # recorded held-out loss (1,000 test frames) at most this fraction of the trivial baseline's
FRESH_MARGIN = 0.8  # 64 fresh frames and a baseline fitted on 200 are noisier than the recorded figures


@pytest.fixture(scope="module")
def manifest():
    return read_manifest()


def test_every_task_ships_intact_within_budget(manifest):
    assert list(manifest["teachers"]) == list(ALL_TASKS)
    total = 0
    for task, entry in manifest["teachers"].items():
        path = default_zoo_dir() / entry["file"]
        assert file_sha256(path) == entry["sha256"], task
        assert entry["parameters"] == sum(p.numel() for p in build_teacher_net(task).parameters())
        total += path.stat().st_size
    assert total <= 30e6


def test_recorded_held_out_figures_beat_the_baseline(manifest):
    weak = {t: round(e["loss_ratio"], 3) for t, e in manifest["teachers"].items() if e["loss_ratio"] > MARGIN}
    assert not weak, f"teachers above {MARGIN} of their trivial baseline: {weak}"


@pytest.fixture(scope="module")
def fresh_shards(tmp_path_factory):
    """Frames no teacher saw (test seeds beyond the shipped test shard) and a few training frames for the baseline."""
    root = tmp_path_factory.mktemp("fresh")
    return (write_shard(root / "train", "train", 200, jobs=2),
            write_shard(root / "test", "test", 64, start=500_000, jobs=2))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["depth_zbuffer", "normal", "segment_semantic", "class_scene", "edge_occlusion"])
def test_teachers_beat_the_baseline_on_fresh_frames(task, fresh_shards):
    net = mini_teacher(task).build()
    figures = evaluate_teacher(net, task, fresh_shards[1], fresh_shards[0])
    assert figures["loss_ratio"] <= FRESH_MARGIN, figures


@pytest.mark.slow
def test_default_matrix_shows_the_paper_pattern(default_matrix):
    out, matrix, names = default_matrix
    assert names == list(ALL_TASKS) and all((out / f"sim.{ext}").is_file() for ext in ("png", "html", "csv", "npz"))
    nn = nearest_neighbours(matrix, names)
    assert nn["depth_zbuffer"] == "depth_euclidean" and nn["depth_euclidean"] == "depth_zbuffer"
    # The clusters are reported with a permutation p-value and hold only at p < 0.05; whether the mini zoo's 3D
    # cluster is significant is a finding, not a property to pin. Pinned: the statistic and its p are computed.
    checks = {c.statement: c for c in pattern_checks(matrix, names)}
    for ty in ("3D", "2D", "semantic"):
        check = checks[f"{ty} tasks cluster"]
        assert 0 < check.p_value <= 1 and check.holds == (check.p_value < 0.05), check
        assert f"permutation p = {check.p_value:.4g}" in check.detail
    print({s: (round(c.statistic, 3), c.p_value) for s, c in checks.items() if c.p_value is not None})


@pytest.mark.slow
def test_default_pick_aux(default_matrix, capsys):
    out, matrix, names = default_matrix
    capsys.readouterr()
    assert main(["pick-aux", "--targets", "depth", "normal", "--json", "--cache-dir", str(out / "cache"),
                 "--quiet", "--bootstrap", "20"]) == 0
    ranking = json.loads(capsys.readouterr().out)
    assert len(ranking) == 18 and {"depth_zbuffer", "normal"}.isdisjoint(r["name"] for r in ranking)
    # The ranking is the matrix's: the mean similarity to the two targets, best first.
    targets = [names.index("depth_zbuffer"), names.index("normal")]
    mean = {n: matrix[i, targets].mean() for i, n in enumerate(names) if i not in targets}
    assert [r["name"] for r in ranking] == sorted(mean, key=lambda n: -mean[n])
    assert "depth_euclidean" in [r["name"] for r in ranking[:3]]


def test_shipped_transfer_was_measured_on_the_shipped_zoo():
    from rsa_toolkit.analysis.ground_truth import load_ground_truth

    root = default_zoo_dir().parent / "mini_transfer"
    recipe = json.loads((root / "recipe.json").read_text())
    assert recipe["zoo_manifest_sha256"] == file_sha256(default_zoo_dir() / "manifest.json")
    truth = load_ground_truth("mini-transfer")
    assert truth.sources == truth.targets == list(ALL_TASKS)
    with open(root / "loss.csv") as fh:
        rows = list(csv.reader(fh))
    loss = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    assert [r[0] for r in rows[1:]] == [*ALL_TASKS, "pixels", "scratch", "constant"]
    scored = [t for t in ALL_TASKS if t not in recipe["flagged_targets"]]
    cols = [ALL_TASKS.index(t) for t in scored]
    assert np.isfinite(truth.values[:, cols]).all() and np.isnan(np.delete(truth.values, cols, axis=1)).all()
    # gain = 1 - loss / loss(pixels), from the mean losses (written from float64 means)
    np.testing.assert_allclose(truth.values[:, cols], 1.0 - loss[:20, cols] / loss[20, cols], atol=1e-9)


def test_shipped_transfer_carries_its_own_noise():
    """Per-seed, per-split, per-image losses (>= 3 seeds, 2 splits), whose means are loss.csv; a reliability row per
    target; every target beats the constant prediction or is flagged with its reason."""
    root = default_zoo_dir().parent / "mini_transfer"
    recipe = json.loads((root / "recipe.json").read_text())
    assert len(recipe["seeds"]) >= 3 and len(recipe["splits"]) >= 2
    with open(root / "loss.csv") as fh:
        rows = {r[0]: r[1:] for r in list(csv.reader(fh))[1:]}
    with np.load(root / "losses.npz") as losses:
        for source in [*ALL_TASKS, "pixels", "scratch"]:
            for j, target in enumerate(ALL_TASKS):
                per = losses[f"{source}/{target}"]
                assert per.shape == (len(recipe["seeds"]), len(recipe["splits"]), recipe["test_frames"])
                assert float(rows[source][j]) == pytest.approx(per.mean(), rel=1e-6)
    with open(root / "reliability.csv") as fh:
        reliability = {r["target"]: r for r in csv.DictReader(fh)}
    assert list(reliability) == list(ALL_TASKS)
    for target, r in reliability.items():
        beats = float(r["best_loss"]) < float(r["constant_loss"])
        assert (r["beats_constant"] == "True") == beats
        assert beats or (target in recipe["flagged_targets"] and r["reason"]), target


@pytest.mark.slow
def test_default_matrix_against_the_shipped_transfer(default_matrix, capsys):
    """The figures docs/evaluate.md reports for the default recipe, each teacher on its own input kind (mean
    per-target Spearman 0.5978, top-3 13/20; with --teacher-inputs clean 0.5989 and 12/20)."""
    out, _, _ = default_matrix
    capsys.readouterr()
    assert main(["evaluate", "--matrix", str(out / "sim.csv"), "--truth", "mini-transfer", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)["evaluations"][0]
    assert evaluation["mean_spearman_with_diagonal"] == pytest.approx(0.5978, abs=5e-4)
    assert round(evaluation["top3_hit_rate"] * 20) == 13
