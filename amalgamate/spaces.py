"""What a teacher's raw output means: the space the student imitates it in, and how to read it in physical units.

Distillation compares the student with the teacher in the teacher's own output space (Taskonomy trained depth in log
space, so the student does too), and metrics convert both to physical units first (depth in metres, normals as unit
vectors, edges as probabilities, classes by argmax). Getting this wrong is one of the faults of the public
re-implementation, which inverted log depth linearly (DESIGN.md §7).

======================  ==============  ================================================================
space                   kind            raw output
======================  ==============  ================================================================
``log_depth``           value           natural log of the depth in metres (the mini teachers)
``taskonomy_depth``     value           Taskonomy: ``2 log(1 + 512 d) / log(2^16) - 1`` (d in metres),
                                        i.e. log(1 + 16-bit depth) / log(2^16) rescaled to [-1, 1]
``normal``              value           unit-normal components in [-1, 1]
``rgb``                 value           an RGB image in [0, 1]
``embedding``           value           per-pixel embeddings (unsupervised segments)
``value``               value           any other map or vector, compared as is
``edge_logits``         binary_logits   per-pixel logits of a 0/1 edge map
``class_logits``        class_logits    logits over classes along dim 1: (B, K) or (B, K, H, W)
======================  ==============  ================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rsa_toolkit.registry import Registry
from rsa_toolkit.tasks import resolve_task

__all__ = ["OutputSpace", "SPACES", "output_space", "depth_metres", "TASKONOMY_DEPTH_UNITS"]

TASKONOMY_DEPTH_UNITS = 512.0  # Taskonomy's 16-bit depth PNGs count 1/512 m


@dataclass(frozen=True)
class OutputSpace:
    name: str
    kind: str  # "value", "binary_logits" or "class_logits": picks the distillation loss
    description: str


SPACES: Registry[OutputSpace] = Registry("output space")
for _space in (
    OutputSpace("log_depth", "value", "natural log of depth in metres"),
    OutputSpace("taskonomy_depth", "value", "Taskonomy log depth, log(1 + 512 d) / log(2^16) scaled to [-1, 1]"),
    OutputSpace("normal", "value", "unit normal components in [-1, 1]"),
    OutputSpace("rgb", "value", "RGB in [0, 1]"),
    OutputSpace("embedding", "value", "per-pixel embedding"),
    OutputSpace("value", "value", "a map or vector compared as is"),
    OutputSpace("edge_logits", "binary_logits", "per-pixel logits of a 0/1 edge map"),
    OutputSpace("class_logits", "class_logits", "logits over classes along dim 1"),
):
    SPACES.register(_space.name)(_space)

_MINI_SPACES = {
    "depth_zbuffer": "log_depth", "depth_euclidean": "log_depth", "normal": "normal",
    "edge_texture": "edge_logits", "edge_occlusion": "edge_logits",
    "segment_semantic": "class_logits", "class_scene": "class_logits", "class_object": "class_logits",
    "segment_unsup2d": "embedding", "segment_unsup25d": "embedding",
    "autoencoding": "rgb", "denoising": "rgb", "colorization": "rgb", "inpainting": "rgb",
}
_TASKONOMY_SPACES = {
    "depth_zbuffer": "taskonomy_depth", "depth_euclidean": "taskonomy_depth", "normal": "normal",
    "segment_semantic": "class_logits", "class_scene": "class_logits", "class_object": "class_logits",
    "segment_unsup2d": "embedding", "segment_unsup25d": "embedding",
}


_FAMILY_SPACES = {"mini": _MINI_SPACES, "taskonomy": _TASKONOMY_SPACES}


def output_space(task: str, family: str) -> OutputSpace:
    """The output space of ``task``'s teacher in zoo ``family`` ("mini" or "taskonomy",
    :attr:`amalgamate.zoo.TeacherZoo.family`); Taskonomy's edges and other maps are tanh regressions, so they are
    plain values there."""
    task = resolve_task(task)
    return SPACES.get(_FAMILY_SPACES[family].get(task, "value"))


def depth_metres(raw: Tensor, space: str) -> Tensor:
    """Depth in metres from a depth teacher's raw output (float64): ``exp`` for ``log_depth``; the inverse of
    Taskonomy's log(1 + d16) / log(2^16) in [-1, 1] for ``taskonomy_depth``. Never a linear rescaling."""
    raw = raw.double()
    if space == "log_depth":
        return torch.exp(raw)
    if space == "taskonomy_depth":
        return torch.expm1((raw.clamp(-1.0, 1.0) + 1.0) / 2.0 * math.log(2.0 ** 16)) / TASKONOMY_DEPTH_UNITS
    raise ValueError(f"not a depth space: {space}")
