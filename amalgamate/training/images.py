"""The images a student learns from and is evaluated on.

Training needs no labels, so any image set works: a folder of photos (``--images DIR``), or frames of the
mini-Taskonomy train split, rendered once and kept in the cache (``<cache>/amalgamate/frames``). Evaluation on the
mini zoo uses frames of the test split with their exact labels.

An image set is a :class:`rsa_toolkit.images.probe.ProbeSet` (ids, a content hash over every pixel, ``load(i)`` ->
float32 (H, W, 3) in [0, 1]), so the knowledge cache keys on its content hash exactly as the feature cache does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rsa_toolkit.files import atomic_path
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.zoo.mini.net import INPUT_SIZE
from rsa_toolkit.zoo.mini.objectives import make_targets
from rsa_toolkit.scenes.shards import SHARD_VERSION, load_shard, render_frames, split_seeds
from rsa_toolkit.zoo.mini.embedded import RenderedProbe
from rsa_toolkit.images.preprocess import Preprocessing
from rsa_toolkit.images.probe import ProbeSet

__all__ = ["mini_frames", "shard_frames", "folder_images", "image_batch", "EvalFrames", "mini_eval_frames"]


def _frames_probe(frames: np.ndarray, seeds: np.ndarray, split: str) -> RenderedProbe:
    digest = hashlib.sha256(f"mini-frames:{split}:{frames.shape[1]}:{int(seeds[0])}:{len(seeds)}".encode())
    for start in range(0, len(frames), 512):  # memory-mapped frames are hashed in blocks
        digest.update(np.ascontiguousarray(frames[start:start + 512]).tobytes())
    return RenderedProbe(ids=[f"seed-{s}" for s in seeds], source=f"mini:{split} ({len(seeds)} frames)",
                         content_hash=digest.hexdigest(), paths=(), frames=frames)


def mini_frames(split: str, count: int, *, cache_dir: str | os.PathLike[str]) -> RenderedProbe:
    """``count`` frames of mini-Taskonomy ``split`` at 64 x 64 (RGB only), rendered on first use and then read from
    ``<cache_dir>/amalgamate/frames`` (memory-mapped)."""
    seeds = split_seeds(split, count)
    path = Path(cache_dir) / "amalgamate" / "frames" / f"{split}-{seeds[0]}-{count}-{INPUT_SIZE}px-v{SHARD_VERSION}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = render_frames(seeds, INPUT_SIZE, tasks=(), jobs=1)["rgb"]
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, frames)
    return _frames_probe(np.load(path, mmap_mode="r"), seeds, split)


def shard_frames(shard: str | os.PathLike[str]) -> RenderedProbe:
    """The frames of a shard written by ``rsa-toolkit mini render`` (RGB only, memory-mapped)."""
    meta, arrays = load_shard(shard, [])
    seeds = meta["first_seed"] + np.arange(meta["count"])
    return _frames_probe(arrays["rgb"], seeds, meta["split"])


def folder_images(folder: str | os.PathLike[str]) -> ProbeSet:
    """Every image in ``folder`` (sorted by name), checked once so that a broken file fails now."""
    from rsa_toolkit.images.probe import probe_from_folder

    probe, _ = probe_from_folder(folder, verify=False)
    if len(probe) < 1:
        raise UserInputError(f"images='{folder}' holds no images (png, jpg, ...); point it at a folder of images.",
                             parameter="images")
    return probe


def image_batch(images: ProbeSet, indices: Sequence[int] | np.ndarray, prep: Preprocessing) -> Tensor:
    """Images ``indices`` preprocessed by ``prep``: (B, 3, S, S) float32."""
    return torch.stack([prep(images.load(int(i))) for i in indices])


class EvalFrames:
    """Held-out mini-Taskonomy frames with exact labels: ``rgb`` (N, 64, 64, 3) uint8 and, per task, the target in
    the form its loss wants (:func:`rsa_toolkit.zoo.mini.objectives.make_targets`: log depth, unit normals, class ids,
    ...)."""

    def __init__(self, rgb: np.ndarray, labels: dict[str, np.ndarray], seeds: np.ndarray, source: str,
                 split: str = "test") -> None:
        self.rgb, self.labels, self.seeds, self.source = rgb, labels, seeds, source
        self.probe = _frames_probe(rgb, seeds, split)

    def __len__(self) -> int:
        return len(self.rgb)

    def targets(self, task: str, indices: np.ndarray) -> Tensor:
        return make_targets(task, np.asarray(self.labels[task][indices]), np.asarray(self.rgb[indices]))


def mini_eval_frames(tasks: Sequence[str], count: int, *, shard: str | os.PathLike[str] | None = None) -> EvalFrames:
    """``count`` test-split frames with the labels of ``tasks``: from ``shard`` if given (a test shard, or a val
    shard for choices such as the val sweep of the defaults), else rendered now."""
    if shard is not None:
        meta, arrays = load_shard(shard, list(tasks))
        if meta["split"] not in ("test", "val"):
            raise UserInputError(f"evaluation shard '{shard}' holds the {meta['split']} split; evaluate on a test "
                                 "shard (rsa-toolkit mini render DIR --split test), or a val shard for choices.")
        n = min(count, meta["count"])
        seeds = meta["first_seed"] + np.arange(n)
        return EvalFrames(arrays["rgb"][:n], {t: arrays[t][:n] for t in tasks}, seeds,
                          f"shard {shard} ({meta['split']} split)", meta["split"])
    seeds = split_seeds("test", count)
    frames = render_frames(seeds, INPUT_SIZE, tasks=tasks)
    return EvalFrames(frames["rgb"], {t: frames[t] for t in tasks}, seeds, f"mini:test ({count} frames, rendered)")
