"""Metrics against hand-computed values: rmse, rel and δ with zero-valued pixels (no division by zero), depth in
metres after undoing the log, angular error of normals, accuracies, and batch-size invariance of the sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from amalgamate.evaluation.metrics import (F_THRESHOLDS, MetricSums, accuracy_sums, angular_sums, edge_f_sums, f_score,
                                          regression_sums, task_metric_sums)
from amalgamate.spaces import SPACES


def _values(sums):
    out = {}
    for k, (s, c) in sums.items():
        if k.startswith("_f_"):
            continue
        v = s / c if c else math.nan
        out[k] = math.sqrt(v) if k == "rmse" and c else v
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_regression_with_zero_valued_pixels(dtype):
    # an edge-like map: zeros in the ground truth must not be divided by
    g = torch.tensor([0.0, 0.0, 1.0, 2.0, 4.0], dtype=dtype)
    p = torch.tensor([0.5, 0.0, 1.2, 1.0, 0.0], dtype=dtype)
    v = _values(regression_sums(p, g))
    assert v["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 0.04 + 1 + 16) / 5))
    assert v["rel"] == pytest.approx((0.2 / 1 + 1 / 2 + 4 / 4) / 3)  # only |g| > 0
    # δ on g > 0: ratios 1.2 (hit both), 2 (miss δ1, miss δ2 since 2 > 1.5625), p = 0 (a miss, not inf/0)
    assert v["delta1"] == pytest.approx(1 / 3) and v["delta2"] == pytest.approx(1 / 3)
    assert all(math.isfinite(x) for x in v.values())


def test_all_zero_ground_truth_gives_nan_not_an_error():
    v = _values(regression_sums(torch.ones(4), torch.zeros(4)))
    assert v["rmse"] == 1.0 and math.isnan(v["rel"]) and math.isnan(v["delta1"])


def test_mask_and_non_finite_targets_are_left_out():
    g = torch.tensor([1.0, float("nan"), 2.0, 3.0])
    p = torch.tensor([2.0, 5.0, 2.0, 100.0])
    v = _values(regression_sums(p, g, torch.tensor([True, True, True, False])))
    assert v["rmse"] == pytest.approx(math.sqrt(1 / 2)) and v["rel"] == pytest.approx(0.5)
    assert v["delta1"] == pytest.approx(0.5)


def test_depth_metrics_are_in_metres_after_undoing_the_log():
    space = SPACES.get("log_depth")
    truth = torch.log(torch.tensor([[[[1.0, 2.0], [4.0, 8.0]]]]))  # the mini label: log metres
    pred = torch.log(torch.tensor([[[[1.0, 2.4], [4.0, 4.0]]]]))
    v = _values(task_metric_sums("depth_zbuffer", space, pred, truth, truth=True))
    assert v["rmse"] == pytest.approx(math.sqrt((0 + 0.16 + 0 + 16) / 4))  # metres, not log units
    assert v["rel"] == pytest.approx((0 + 0.2 + 0 + 0.5) / 4)
    assert v["delta1"] == pytest.approx(3 / 4) and v["delta2"] == pytest.approx(3 / 4)
    # against a teacher: the same conversion on both sides
    v = _values(task_metric_sums("depth_zbuffer", space, pred, truth, truth=False))
    assert v["rel"] == pytest.approx((0 + 0.2 + 0 + 0.5) / 4)


def test_angular_error_of_normals():
    g = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]).T.reshape(1, 3, 2, 2)
    p = torch.tensor([[2.0, 0, 0], [1, 0, 0], [0, 0, -1], [1, 0, 0]]).T.reshape(1, 3, 2, 2)
    v = _values(angular_sums(p, g))  # the zero ground-truth normal is left out
    assert v["angle"] == pytest.approx((0 + 90 + 180) / 3) and v["angle_11"] == pytest.approx(1 / 3)
    zero_pred = torch.zeros(1, 3, 1, 1)
    assert _values(angular_sums(zero_pred, torch.tensor([0.0, 0, 1]).view(1, 3, 1, 1)))["angle"] == 90.0


def test_accuracies():
    assert _values(accuracy_sums(torch.tensor([1, 2, 3]), torch.tensor([1, 0, 3])))["accuracy"] == pytest.approx(2 / 3)
    classes = SPACES.get("class_logits")
    logits = torch.tensor([[0.1, 2.0, 0.0], [3.0, 0.0, 0.0]])
    onehot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # class_scene labels are one-hot vectors
    assert _values(task_metric_sums("class_scene", classes, logits, onehot, truth=True))["accuracy"] == 0.5
    teacher = torch.tensor([[0.0, 5.0, 0.0], [1.0, 0.0, 0.0]])
    assert _values(task_metric_sums("class_scene", classes, logits, teacher, truth=False))["accuracy"] == 1.0
    edges = SPACES.get("edge_logits")
    v = _values(task_metric_sums("edge_texture", edges, torch.tensor([[[[5.0, -5.0, 5.0]]]]),
                                 torch.tensor([[[[1.0, 0.0, 0.0]]]]), truth=True))
    assert v["accuracy"] == pytest.approx(2 / 3) and math.isfinite(v["rel"])  # rel over the one edge pixel only
    assert v["rel"] == pytest.approx(1 - 1 / (1 + math.exp(-5.0)))


def test_sums_do_not_depend_on_the_batch_size():
    rng = np.random.default_rng(0)
    p, g = torch.from_numpy(rng.random((6, 1, 4, 4)) + 0.1), torch.from_numpy(rng.random((6, 1, 4, 4)) + 0.1)
    whole, parts = MetricSums(), MetricSums()
    whole.add("k", regression_sums(p, g))
    for i in range(0, 6, 4):
        parts.add("k", regression_sums(p[i:i + 4], g[i:i + 4]))
    a, b = whole.result("k"), parts.result("k")
    assert list(a) == ["rmse", "rel", "delta1", "delta2"]
    assert a == pytest.approx(b)
    assert a["rmse"] == pytest.approx(float(torch.sqrt(((p - g) ** 2).mean())))


def test_time_together_reports_every_call_per_image():
    import time

    from amalgamate.evaluation.evaluate import time_together

    calls = {"slow": lambda: time.sleep(0.01), "fast": lambda: None}
    ms = time_together(calls, n_images=4, rounds=2)
    assert set(ms) == {"slow", "fast"} and ms["slow"] >= 10.0 / 4 > ms["fast"] >= 0.0


def _brute_force_ods(prob: np.ndarray, edges: np.ndarray) -> float:
    """Best F over the thresholds, one pixel at a time."""
    best = 0.0
    for t in F_THRESHOLDS:
        tp = fp = fn = 0
        for p, g in zip(prob.ravel(), edges.ravel()):
            if p > t and g:
                tp += 1
            elif p > t:
                fp += 1
            elif g:
                fn += 1
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn)
        best = max(best, 2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return best


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edge_f_score_against_a_brute_force_loop_and_batches(dtype):
    rng = np.random.default_rng(1)
    edges = rng.random((5, 1, 6, 6)) < 0.15
    prob = np.clip(0.3 * edges + 0.7 * rng.random(edges.shape), 0, 1)  # informative but imperfect
    expected = _brute_force_ods(prob, edges)
    whole, parts = MetricSums(), MetricSums()
    whole.add("k", edge_f_sums(torch.from_numpy(prob).to(dtype), torch.from_numpy(edges)))
    for i in range(0, 5, 2):
        parts.add("k", edge_f_sums(torch.from_numpy(prob[i:i + 2]).to(dtype), torch.from_numpy(edges[i:i + 2])))
    assert 0 < expected < 1
    assert whole.result("k")["f_score"] == pytest.approx(expected)
    assert parts.result("k")["f_score"] == pytest.approx(expected)  # one threshold for the whole set (ODS)
    assert f_score(edge_f_sums(torch.from_numpy(prob), torch.from_numpy(edges))) == pytest.approx(expected)


def test_a_collapsed_no_edge_predictor_scores_f_zero_not_its_accuracy():
    edges = SPACES.get("edge_logits")
    truth = torch.zeros(1, 1, 10, 10)
    truth[0, 0, 0, :9] = 1.0  # 9 % edge pixels, as the mini edge maps
    sums = MetricSums()
    sums.add("k", task_metric_sums("edge_texture", edges, torch.full((1, 1, 10, 10), -20.0), truth, truth=True))
    v = sums.result("k")
    assert v["accuracy"] == pytest.approx(0.91) and v["f_score"] == 0.0
    assert list(v)[0] == "f_score"  # the primary edge metric comes first
    perfect = MetricSums()
    perfect.add("k", task_metric_sums("edge_texture", edges, (truth - 0.5) * 40, truth, truth=True))
    assert perfect.result("k")["f_score"] == 1.0
    nothing = MetricSums()  # no true edge anywhere: F is undefined
    nothing.add("k", task_metric_sums("edge_texture", edges, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2),
                                      truth=True))
    assert math.isnan(nothing.result("k")["f_score"])
    # against a teacher: its probabilities binarised at 0.5
    teacher = (truth - 0.5) * 40
    vs_teacher = MetricSums()
    vs_teacher.add("k", task_metric_sums("edge_texture", edges, teacher, teacher, truth=False))
    assert vs_teacher.result("k")["f_score"] == 1.0


def test_evaluation_takes_test_or_val_shards_and_refuses_train(tmp_path):
    from amalgamate.training.images import mini_eval_frames
    from rsa_toolkit.errors import UserInputError
    from rsa_toolkit.scenes.shards import write_shard

    val = mini_eval_frames(["edge_texture"], 2, shard=write_shard(tmp_path / "val", "val", 2))
    assert len(val.seeds) == 2 and val.seeds[0] == 1_000_000  # the val split's first frame
    with pytest.raises(UserInputError, match="holds the train split; evaluate on a test shard"):
        mini_eval_frames(["edge_texture"], 2, shard=write_shard(tmp_path / "train", "train", 2))
