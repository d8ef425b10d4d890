"""Per-task metrics of a student (or a teacher) against ground truth or against a teacher's outputs.

The seed's tables (Luo et al., ECCV 2020, Tables 1-2) report, per task, rmse, rel and the threshold accuracies
δ < 1.25 and δ < 1.25²; we add the mean angular error for normals and the accuracy for class tasks. Every quantity
is read in physical units first (:mod:`amalgamate.spaces`: depth in metres after undoing the log, edges as
probabilities, classes by argmax), and every ratio is masked, never divided by zero:

* ``rmse = sqrt(mean (p - g)^2)`` over valid pixels (finite target; depth: target > 0);
* ``rel = mean |p - g| / |g|`` over valid pixels with ``|g| > eps`` (a zero-valued edge pixel is left out, not
  divided by);
* ``delta1`` / ``delta2``: the fraction of valid pixels with ``g > eps`` where ``max(p / g, g / p) < 1.25`` (1.25^2);
  a prediction <= eps there counts as a miss;
* ``angle``: mean angle in degrees between predicted and true normals (pixels with a non-zero true normal; a zero
  prediction counts as 90 degrees), and ``angle_11``: the fraction under 11.25 degrees;
* ``accuracy``: argmax agreement (pixel accuracy for segmentation, top-1 for image-level classes; for edges,
  ``p > 0.5`` against ``g > 0.5``); ``pair_accuracy`` for unsupervised segments against ground truth;
* ``f_score`` (binary maps, the primary edge metric): ODS-style F, the best over the thresholds
  :data:`F_THRESHOLDS` (0.01, 0.02, ..., 0.99) of ``F = 2 P R / (P + R)``, with precision P and recall R of the
  student's probability ``p > threshold`` against the edge map (the ground truth's 0/1, or the teacher's probability
  binarised at 0.5), counted over the whole evaluation set at each threshold (one threshold for the data set, as in
  BSDS's ODS; pixel-exact, no boundary-matching tolerance). F is 0 where nothing true is found (a collapsed
  "no edge" predictor scores 0, where its accuracy is the non-edge share), NaN where the map has no edge at all.
  Accuracy stays for edges but is not the primary: on maps with ~9 % edge pixels, predicting none scores 0.91.

A metric with no valid pixel is NaN (reported as missing). Sums accumulate in float64 over batches
(:class:`MetricSums`), so the result does not depend on the batch size; functional forms return the sums.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from rsa_toolkit.zoo.mini.objectives import objective

from amalgamate.spaces import OutputSpace, depth_metres

__all__ = ["EPS", "regression_sums", "angular_sums", "accuracy_sums", "edge_f_sums", "f_score", "task_metric_sums",
           "MetricSums", "METRIC_ORDER", "F_THRESHOLDS", "physical"]

EPS = 1e-6
METRIC_ORDER = ("f_score", "rmse", "rel", "delta1", "delta2", "angle", "angle_11", "accuracy", "pair_accuracy")
F_THRESHOLDS = tuple(k / 100 for k in range(1, 100))
_F_COUNTS = ("tp", "fp", "fn")  # per threshold, under the private keys "_f_<count>_<k>"
Sums = dict[str, tuple[float, float]]  # metric -> (sum, count); rmse sums squared errors


def regression_sums(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, eps: float = EPS) -> Sums:
    """rmse, rel, delta1, delta2 sums of ``pred`` against ``target`` (same shape) over ``mask`` (bool, same shape)."""
    p, g = pred.double(), target.double()
    valid = torch.isfinite(g) & torch.isfinite(p)
    if mask is not None:
        valid &= mask
    err = torch.where(valid, p - g, torch.zeros_like(g))
    out: Sums = {"rmse": (float((err * err).sum()), float(valid.sum()))}
    rel_valid = valid & (g.abs() > eps)
    safe_g = torch.where(rel_valid, g, torch.ones_like(g))
    out["rel"] = (float(torch.where(rel_valid, err.abs() / safe_g.abs(), torch.zeros_like(g)).sum()),
                  float(rel_valid.sum()))
    pos = valid & (g > eps)
    hit_p = pos & (p > eps)
    ratio = torch.where(hit_p, torch.maximum(p / torch.where(pos, g, 1.0), g / torch.where(hit_p, p, 1.0)),
                        torch.full_like(g, math.inf))
    for name, threshold in (("delta1", 1.25), ("delta2", 1.25 ** 2)):
        out[name] = (float((pos & (ratio < threshold)).sum()), float(pos.sum()))
    return out


def angular_sums(pred: Tensor, target: Tensor, *, eps: float = EPS) -> Sums:
    """Angle sums of normals (B, 3, H, W): pixels with a non-zero true normal; a zero prediction is 90 degrees."""
    p, g = pred.double(), target.double()
    gn, pn = g.norm(dim=1), p.norm(dim=1)
    valid = torch.isfinite(gn) & (gn > eps)
    cos = (p * g).sum(dim=1) / (pn * gn).clamp_min(eps)
    cos = torch.where(pn > eps, cos, torch.zeros_like(cos)).clamp(-1.0, 1.0)
    angle = torch.rad2deg(torch.acos(cos))
    n = float(valid.sum())
    return {"angle": (float(angle[valid].sum()), n), "angle_11": (float((angle[valid] < 11.25).sum()), n)}


def accuracy_sums(pred_labels: Tensor, true_labels: Tensor) -> Sums:
    return {"accuracy": (float((pred_labels == true_labels).sum()), float(true_labels.numel()))}


def edge_f_sums(prob: Tensor, edges: Tensor) -> Sums:
    """Counts of true positives, false positives and false negatives of ``prob > t`` against ``edges`` (bool, same
    shape) at every threshold t of :data:`F_THRESHOLDS`, under private keys that :func:`f_score` reads."""
    thresholds = torch.tensor(F_THRESHOLDS, dtype=torch.float64, device=prob.device)
    p, g = prob.double().reshape(-1), edges.reshape(-1)
    out: Sums = {}
    for start in range(0, p.numel(), 1 << 18):  # (99, chunk) booleans at a time
        chunk_p, chunk_g = p[start:start + (1 << 18)], g[start:start + (1 << 18)]
        predicted = chunk_p[None, :] > thresholds[:, None]
        tp = (predicted & chunk_g[None, :]).sum(dim=1)
        fp = predicted.sum(dim=1) - tp
        fn = chunk_g.sum() - tp
        for name, counts in zip(_F_COUNTS, (tp, fp, fn)):
            for k, c in enumerate(counts.tolist()):
                key = f"_f_{name}_{k}"
                out[key] = (out.get(key, (0.0, 1.0))[0] + float(c), 1.0)
    return out


def f_score(sums: Mapping[str, tuple[float, float]]) -> float:
    """The ODS F from the counts of :func:`edge_f_sums` (summed over batches): max over thresholds of 2PR / (P + R);
    0 where nothing true is found, NaN without any true edge."""
    best = math.nan
    for k in range(len(F_THRESHOLDS)):
        tp, fp, fn = (sums[f"_f_{name}_{k}"][0] for name in _F_COUNTS)
        if tp + fn == 0:
            return math.nan
        f = 2 * tp / (2 * tp + fp + fn)  # = 2PR / (P + R), and 0 when tp = 0
        best = f if math.isnan(best) else max(best, f)
    return best


def physical(raw: Tensor, space: OutputSpace) -> Tensor:
    """A raw output in readable units: depth in metres, edge probabilities, class labels (argmax); others as is."""
    if space.name in ("log_depth", "taskonomy_depth"):
        return depth_metres(raw, space.name)
    if space.kind == "binary_logits":
        return torch.sigmoid(raw.double())
    if space.kind == "class_logits":
        return raw.argmax(dim=1)
    return raw.double()


def _truth_physical(task: str, space: OutputSpace, target: Tensor) -> Tensor:
    """Mini-Taskonomy ground truth (in the form of :func:`rsa_toolkit.zoo.mini.objectives.make_targets`) in the units of
    :func:`physical`: log depth -> metres, class vectors -> argmax, ids and maps as they are."""
    if space.name == "log_depth":
        return torch.exp(target.double())
    if space.kind == "class_logits":
        return target.argmax(dim=1) if target.is_floating_point() else target
    return target.double() if target.is_floating_point() else target


def task_metric_sums(task: str, space: OutputSpace, pred: Tensor, reference: Tensor, *, truth: bool) -> Sums:
    """Metric sums of raw output ``pred`` of ``task`` against ``reference``: ground truth (``truth=True``, the mini
    label in loss form) or a teacher's raw output (same space)."""
    if truth and space.name == "embedding":
        acc = float(objective(task).accuracy(pred.float(), reference))
        return {"pair_accuracy": (acc * len(pred), float(len(pred)))}
    p = physical(pred, space)
    g = _truth_physical(task, space, reference) if truth else physical(reference, space)
    if space.kind == "class_logits":
        return accuracy_sums(p, g)
    if space.name == "normal":
        return {**{"rmse": regression_sums(p, g)["rmse"]}, **angular_sums(p, g)}
    if space.name == "embedding" or (p.ndim == 2 and space.kind == "value"):  # embeddings, image-level vectors
        return {"rmse": regression_sums(p, g)["rmse"]}
    mask = g > 0 if space.name in ("log_depth", "taskonomy_depth") else None
    out = regression_sums(p, g, mask)
    if space.kind == "binary_logits":
        out.update(accuracy_sums(p > 0.5, g > 0.5))
        out.update(edge_f_sums(p, g > 0.5))
    return out


class MetricSums:
    """Sums of every metric per key (e.g. ``(model, task, reference)``), accumulated over batches."""

    def __init__(self) -> None:
        self._sums: dict[object, dict[str, list[float]]] = {}

    def add(self, key: object, sums: Mapping[str, tuple[float, float]]) -> None:
        entry = self._sums.setdefault(key, {})
        for name, (s, c) in sums.items():
            acc = entry.setdefault(name, [0.0, 0.0])
            acc[0] += s
            acc[1] += c

    def result(self, key: object) -> dict[str, float]:
        """Metric values of ``key`` in :data:`METRIC_ORDER`; NaN where nothing was valid."""
        out = {}
        entry = self._sums.get(key, {})
        if "_f_tp_0" in entry:
            out["f_score"] = f_score({k: (v[0], v[1]) for k, v in entry.items() if k.startswith("_f_")})
        for name in sorted((k for k in entry if not k.startswith("_f_")), key=METRIC_ORDER.index):
            s, c = entry[name]
            value = s / c if c > 0 else math.nan
            out[name] = math.sqrt(value) if name == "rmse" and c > 0 else value
        return out
