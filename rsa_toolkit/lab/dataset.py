"""A torch Dataset of mini-Taskonomy for one task: ``(input, target)`` pairs from a shard or rendered on the fly.

    >>> ds = MiniTaskonomy("depth", "test", count=100)                # rendered on the fly, seeds 2,000,000 + i
    >>> ds = MiniTaskonomy("depth", shard="shards/train-12000")       # from a shard (rsa-toolkit mini render)
    >>> x, y = ds[0]                      # x (3, 64, 64) in [-1, 1]; y as the task's loss wants it
    >>> xb, yb = ds.batch([0, 1, 2])      # a batch in one vectorised call (also DataLoader's __getitems__)

The input carries the task's transform (noise for denoising, gray for colorization, a hole for inpainting), seeded
by the frame's seed, so an item is the same on every call. Targets: see :func:`.objectives.make_targets`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.zoo.mini.net import check_frame_size
from rsa_toolkit.zoo.mini.objectives import make_inputs, make_targets
from rsa_toolkit.scenes.shards import load_shard, render_frames, split_seeds

__all__ = ["MiniTaskonomy"]


class MiniTaskonomy(Dataset):
    def __init__(self, task: str, split: str = "train", *, count: int | None = None, start: int = 0,
                 shard: str | os.PathLike[str] | None = None, size: int = 64) -> None:
        self.task = resolve_task(task)
        if shard is not None:
            meta, arrays = load_shard(shard, [self.task])
            self.split, self.size = meta["split"], check_frame_size(meta["size"])
            self.seeds = meta["first_seed"] + np.arange(meta["count"])
            self._rgb, self._label = arrays["rgb"], arrays[self.task]
        else:
            if count is None:
                raise UserInputError("MiniTaskonomy needs a shard directory or a frame count to render.")
            self.split, self.size = split, check_frame_size(size)
            self.seeds = split_seeds(split, count, start=start)
            self._rgb = self._label = None  # rendered per item

    def __len__(self) -> int:
        return len(self.seeds)

    def _frames(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._rgb is not None:
            return np.asarray(self._rgb[idx]), np.asarray(self._label[idx])
        frames = render_frames(self.seeds[idx], self.size, [self.task])
        return frames["rgb"], frames[self.task]

    def batch(self, indices: Sequence[int] | np.ndarray) -> tuple[Tensor, Tensor]:
        """Inputs (B, 3, H, W) and targets (B, ...) of frames ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"frame index out of range for {len(self)} frames")
        rgb, label = self._frames(idx)
        return make_inputs(self.task, rgb, self.seeds[idx]), make_targets(self.task, label, rgb)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.batch([i])
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[Tensor, Tensor]]:
        x, y = self.batch(indices)
        return list(zip(x, y))

    def targets(self, limit: int | None = None) -> Tensor:
        """The first ``limit`` targets (all by default), e.g. to fit a constant baseline."""
        return self.batch(np.arange(min(limit or len(self), len(self))))[1]


