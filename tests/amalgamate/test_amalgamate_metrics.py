"""Metrics against hand-computed values: rmse, rel and δ with zero-valued pixels (no division by zero), depth in
metres after undoing the log, angular error of normals, accuracies, and batch-size invariance of the sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from amalgamate.evaluation.metrics import MetricSums, accuracy_sums, angular_sums, regression_sums, task_metric_sums
from amalgamate.spaces import SPACES


def _values(sums):
    out = {}
    for k, (s, c) in sums.items():
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
