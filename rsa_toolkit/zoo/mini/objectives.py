"""What each mini-Taskonomy teacher learns: its input, its target, its loss and its trivial baseline.

Losses follow Taskonomy's conventions where our labels allow:

==================================================  ==========================================================
tasks                                               loss (the held-out figure in docs/ is the same quantity)
==================================================  ==========================================================
autoencoding, denoising, colorization, inpainting   L1 on RGB in [0, 1] (the whole image, as Taskonomy's
                                                    "impainting_whole")
normal, reshading                                   L1
depth_zbuffer, depth_euclidean                      L1 on log depth (depth in log space)
curvature                                           L2 (Taskonomy: L2 for curvature)
keypoints2d                                         L2 (ours: the heat map is sparse, and L1's best answer
                                                    to a sparse map is the all-zero map)
keypoints3d                                         binary cross-entropy to the heat map as soft targets (ours:
                                                    its blobs cover ~1% of the pixels; with L2 the first zoo's
                                                    teacher stayed at the mean map)
edge_texture, edge_occlusion                        binary cross-entropy (ours: our edges are exact 0/1 maps,
                                                    Taskonomy's were soft)
segment_unsup2d, segment_unsup25d                   metric loss on pixel embeddings: pairs of one segment
                                                    pulled together, pairs of different segments pushed past
                                                    a margin (each term averaged over its pairs)
segment_semantic, class_scene                       cross-entropy
class_object                                        soft cross-entropy to the class-area distribution
room_layout, vanishing_point                        L2 of each component divided by its spread over the
                                                    training frames (VECTOR_SCALES), so each counts alike
==================================================  ==========================================================

The trivial baseline of every task is the best constant prediction under its loss, fitted on the training frames
(per-channel median for L1, mean for L2, the class prior for cross-entropy, one shared embedding for the metric
loss); for denoising, colorization and inpainting the input itself is reported too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from rsa_toolkit.scenes import LABEL_SPECS, add_noise, inpainting_mask, to_gray
from rsa_toolkit.tasks import resolve_task

__all__ = ["Objective", "OBJECTIVES", "objective", "make_inputs", "make_targets", "SEGMENT_MARGIN", "VECTOR_SCALES"]

SEGMENT_MARGIN = 1.0
_PAIR_PIXELS = 128  # pixels sampled per image for the metric loss (128^2 pairs)


@dataclass(frozen=True)
class Objective:
    task: str
    loss_name: str
    loss: Callable[[Tensor, Tensor], Tensor]  # (prediction, target) -> mean loss
    constant: Callable[[Tensor], Tensor]  # training targets -> the best constant prediction, (1, C, 1, 1) or (1, K)
    accuracy: Callable[[Tensor, Tensor], Tensor] | None = None  # a second, readable figure for class-like tasks
    accuracy_name: str = ""


# --- inputs and targets ---------------------------------------------------------------------------------------------

def make_inputs(task: str, rgb: np.ndarray, seeds: np.ndarray) -> Tensor:
    """Network input (B, 3, H, W) in [-1, 1] from uint8 frames (B, H, W, 3), with the task's input transform:
    noise for denoising, gray for colorization (repeated to 3 channels), a hole for inpainting; seeded per frame."""
    x = rgb.astype(np.float32) / 255.0
    if task == "denoising":
        x = np.stack([add_noise(f, seed=int(s)) for f, s in zip(x, seeds)])
    elif task == "colorization":
        x = np.repeat(to_gray(x), 3, axis=-1)
    elif task == "inpainting":
        x = x * (1.0 - np.stack([inpainting_mask(x.shape[1], seed=int(s)) for s in seeds]))
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))) * 2.0 - 1.0


def make_targets(task: str, label: np.ndarray, rgb: np.ndarray) -> Tensor:
    """Training target of ``task`` from its stored label (B, ...) (rgb for the image tasks)."""
    spec = LABEL_SPECS[task]
    if spec.kind == "image" and spec.channels == 3 and task != "normal":
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).float() / 255.0
    if spec.kind == "ids":
        return torch.from_numpy(label[..., 0].astype(np.int64))
    y = torch.from_numpy(np.asarray(label, dtype=np.float32))
    if not spec.per_pixel:
        return y
    y = y.permute(0, 3, 1, 2).contiguous()
    return torch.log(y) if task.startswith("depth") else y


# --- losses ---------------------------------------------------------------------------------------------------------

def _l1(pred: Tensor, target: Tensor) -> Tensor:
    return (pred - target).abs().mean()


def _l2(pred: Tensor, target: Tensor) -> Tensor:
    return ((pred - target) ** 2).mean()


# Spread (standard deviation over the training split) of each image-level regression target, so that every
# component counts alike in the loss: raw L2 is dominated by yaw and position, and the small components (pitch, roll:
# the horizon's height and tilt, the easiest cues) barely move it. Measured on 8,000 training frames (seeds 0..7999);
# tests/scenes/test_mini_data.py checks them against freshly rendered frames. (room_layout's yaw, x and y were
# 0.9, 0.46 and 0.36 before its label moved to the quarter-turned room frame, shard version 3.)
VECTOR_SCALES: dict[str, tuple[float, ...]] = {
    "room_layout": (0.45, 0.18, 0.05, 0.42, 0.28, 0.22, 0.14, 0.14, 0.067),
    "vanishing_point": (0.43, 0.17, 0.09, 0.088, 0.13, 0.41, 0.048, 0.035, 0.18),
}


def _scaled_l2(scale: tuple[float, ...]) -> Callable[[Tensor, Tensor], Tensor]:
    inverse = 1.0 / torch.tensor(scale)

    def loss(pred: Tensor, target: Tensor) -> Tensor:
        return (((pred - target) * inverse) ** 2).mean()

    return loss


def _bce(pred: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(pred, target)


def _ce(pred: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(pred, target)


def _soft_ce(pred: Tensor, target: Tensor) -> Tensor:
    return -(target * F.log_softmax(pred, dim=-1)).sum(-1).mean()


def _pair_terms(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Distances and same-segment masks of pixel pairs sampled from each image (the same pixels for a given batch
    shape: the sample is drawn from a generator seeded by the shape, so evaluation is repeatable)."""
    b, d, h, w = pred.shape
    gen = torch.Generator().manual_seed(h * w + b)
    idx = torch.stack([torch.randperm(h * w, generator=gen)[:_PAIR_PIXELS] for _ in range(b)])
    emb = pred.flatten(2).gather(2, idx[:, None, :].expand(b, d, -1)).transpose(1, 2)  # (B, K, D)
    ids = target.flatten(1).gather(1, idx)  # (B, K)
    dist = torch.cdist(emb, emb)
    same = ids[:, :, None] == ids[:, None, :]
    off_diagonal = ~torch.eye(idx.shape[1], dtype=torch.bool)[None]
    return dist, same & off_diagonal, ~same


def _metric_loss(pred: Tensor, target: Tensor) -> Tensor:
    dist, same, diff = _pair_terms(pred, target)
    pull = (dist[same] ** 2).mean() if same.any() else dist.sum() * 0
    push = (F.relu(SEGMENT_MARGIN - dist[diff]) ** 2).mean() if diff.any() else dist.sum() * 0
    return pull + push


def _pair_accuracy(pred: Tensor, target: Tensor) -> Tensor:
    """Balanced accuracy of 'same segment' read as distance < margin / 2."""
    dist, same, diff = _pair_terms(pred, target)
    close = dist < SEGMENT_MARGIN / 2
    parts = [close[same].float().mean()] if same.any() else []
    parts += [(~close[diff]).float().mean()] if diff.any() else []
    return torch.stack(parts).mean()


def _class_accuracy(pred: Tensor, target: Tensor) -> Tensor:
    return (pred.argmax(1) == target).float().mean()


def _scene_accuracy(pred: Tensor, target: Tensor) -> Tensor:
    return (pred.argmax(-1) == target.argmax(-1)).float().mean()


# --- constant predictions (the trivial baseline) --------------------------------------------------------------------

def _median(targets: Tensor) -> Tensor:
    return targets.transpose(0, 1).flatten(1).median(dim=1).values.view(1, -1, 1, 1)


def _mean_map(targets: Tensor) -> Tensor:
    return targets.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)


def _mean_vector(targets: Tensor) -> Tensor:
    return targets.mean(dim=0, keepdim=True)


def _logit_rate(targets: Tensor) -> Tensor:
    rate = targets.mean().clamp(1e-6, 1 - 1e-6)
    return torch.log(rate / (1 - rate)).view(1, 1, 1, 1)


def _log_prior_map(targets: Tensor) -> Tensor:
    counts = torch.bincount(targets.flatten(), minlength=8).double() + 1e-6
    return torch.log(counts / counts.sum()).float().view(1, -1, 1, 1)


def _log_mean_distribution(targets: Tensor) -> Tensor:
    return torch.log(targets.mean(dim=0, keepdim=True).clamp_min(1e-6))


def _zero_embedding(targets: Tensor) -> Tensor:
    from rsa_toolkit.zoo.mini.net import EMBEDDING_DIM
    return torch.zeros(1, EMBEDDING_DIM, 1, 1)


def _objective(task: str) -> Objective:
    if task in ("autoencoding", "denoising", "colorization", "inpainting", "normal", "reshading",
                "depth_zbuffer", "depth_euclidean"):
        return Objective(task, "L1 (log depth)" if task.startswith("depth") else "L1", _l1, _median)
    if task in ("curvature", "keypoints2d"):
        return Objective(task, "L2", _l2, _mean_map)
    if task == "keypoints3d":
        return Objective(task, "soft BCE", _bce, _logit_rate)
    if task in VECTOR_SCALES:
        return Objective(task, "L2 (per-component scale)", _scaled_l2(VECTOR_SCALES[task]), _mean_vector)
    if task in ("edge_texture", "edge_occlusion"):
        return Objective(task, "BCE", _bce, _logit_rate)
    if task.startswith("segment_unsup"):
        return Objective(task, "metric", _metric_loss, _zero_embedding, _pair_accuracy, "pair accuracy")
    if task == "segment_semantic":
        return Objective(task, "CE", _ce, _log_prior_map, _class_accuracy, "pixel accuracy")
    if task == "class_scene":
        return Objective(task, "CE", _soft_ce, _log_mean_distribution, _scene_accuracy, "accuracy")
    if task == "class_object":
        return Objective(task, "soft CE", _soft_ce, _log_mean_distribution)
    raise AssertionError(f"no objective for task {task}")  # every registered task is covered above


OBJECTIVES: dict[str, Objective] = {task: _objective(task) for task in LABEL_SPECS}


def objective(task: str) -> Objective:
    return OBJECTIVES[resolve_task(task)]
