"""Rendered shards of mini-Taskonomy: the frames of one split, with every label, stored once as ``.npy`` arrays.

Splits are disjoint ranges of scene seeds, so a frame is named by its seed alone and no scene is in two splits:

========  =============================  =========================================================
split     seeds                          used for
========  =============================  =========================================================
train     0, 1, 2, ...                   training the teachers (and, later, students)
val       1,000,000 + i                  early looks while developing; never for reported figures
test      2,000,000 + i                  every held-out figure in docs/
probe     3,000,000 + i                  the default RSA probe set (:func:`rsa_toolkit.zoo.mini.embedded.mini_probe`)
========  =============================  =========================================================

A shard is a directory: ``meta.json`` (split, seeds, size, renderer version) and one array per key, ``rgb.npy``
(N, H, W, 3) uint8 and ``<task>.npy`` for each task, in the compact dtype of :data:`STORAGE`; the four tasks whose
target is the image itself (:data:`RGB_TASKS`) read ``rgb.npy``. Rendering a 64 x 64
frame with all 20 labels takes about 11 ms on one core (docs/scenes.md); ``jobs`` processes share the work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from rsa_toolkit.files import atomic_path
from rsa_toolkit.validation import check_int
from rsa_toolkit.errors import UserInputError, closest_names
from rsa_toolkit.scenes import ALL_TASKS, LABEL_SPECS, render, sample_scene
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.zoo.mini.net import check_frame_size

__all__ = ["SPLIT_SEEDS", "STORAGE", "RGB_TASKS", "SHARD_VERSION", "shard_is_current", "split_seeds", "quantize_rgb",
           "render_frames", "write_shard", "load_shard"]

SPLIT_SEEDS: dict[str, int] = {"train": 0, "val": 1_000_000, "test": 2_000_000, "probe": 3_000_000}
SHARD_VERSION = 3  # bump when the renderer or the storage changes what a shard holds (3: room_layout's frame)

RGB_TASKS = ("autoencoding", "colorization", "denoising", "inpainting")  # target = the image

# How each label is stored. Exactness where it matters (depths, image-level vectors), half precision for bounded maps.
STORAGE: dict[str, np.dtype] = {
    task: np.dtype(np.uint8 if spec.kind == "binary" or task == "segment_semantic"
                   else np.uint16 if spec.kind == "ids"
                   else np.float32 if not spec.per_pixel or task.startswith("depth")
                   else np.float16)
    for task, spec in LABEL_SPECS.items() if task not in RGB_TASKS
}


def split_seeds(split: str, count: int, *, start: int = 0) -> np.ndarray:
    """Seeds of frames ``start .. start + count - 1`` of ``split``."""
    if split not in SPLIT_SEEDS:
        hints = closest_names(split, SPLIT_SEEDS)
        raise UserInputError(f"Unknown split '{split}'" + (f"; did you mean {hints[0]!r}?" if hints else ".")
                             + f" Splits: {', '.join(SPLIT_SEEDS)}.")
    count = check_int(count, name="count", minimum=1)
    return SPLIT_SEEDS[split] + start + np.arange(count, dtype=np.int64)


def quantize_rgb(rgb: np.ndarray) -> np.ndarray:
    """float [0, 1] (H, W, 3) -> uint8, as an image file would hold it (teachers never see unquantised frames)."""
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _render_one(args: tuple[int, int, tuple[str, ...]]) -> dict[str, np.ndarray]:
    seed, size, tasks = args
    frame = render(sample_scene(int(seed)), size, tasks=tasks)
    out = {"rgb": quantize_rgb(frame["rgb"])}
    for task in (t for t in tasks if t not in RGB_TASKS):
        # The 2D labels (Canny, Harris, Felzenszwalb) come from the float image; quantising moves a pixel by at
        # most 1/510, which can flip a handful of Canny pixels but no more; they are kept as rendered.
        out[task] = frame[task].astype(STORAGE[task])
    return out


def render_frames(seeds: Sequence[int], size: int, tasks: Sequence[str] | None = None, *,
                  jobs: int = 1) -> dict[str, np.ndarray]:
    """Render frames ``seeds`` at ``size``: ``{"rgb": (N, H, W, 3) uint8, task: (N, ...) in STORAGE dtype}``."""
    tasks = tuple(ALL_TASKS if tasks is None else dict.fromkeys(resolve_task(t) for t in tasks))
    jobs = check_int(jobs, name="jobs", minimum=1)
    work = [(int(s), size, tasks) for s in seeds]
    if jobs == 1 or len(work) < 2 * jobs:
        frames = [_render_one(w) for w in work]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            frames = list(pool.map(_render_one, work, chunksize=max(1, len(work) // (8 * jobs))))
    arrays = {key: np.stack([f[key] for f in frames]) for key in frames[0]}
    return {**arrays, **{t: arrays["rgb"] for t in tasks if t in RGB_TASKS}}


def write_shard(directory: str | os.PathLike[str], split: str, count: int, *, size: int = 64, start: int = 0,
                jobs: int = 1) -> Path:
    """Render ``count`` frames of ``split`` with all 20 labels into ``directory`` (created; replaced if present).

    Every array is written under a temporary name and renamed, ``meta.json`` last, so a shard with a ``meta.json``
    is complete.
    """
    directory = Path(directory)
    seeds = split_seeds(split, count, start=start)
    arrays = render_frames(seeds, check_frame_size(size), jobs=jobs)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").unlink(missing_ok=True)
    for key, array in arrays.items():
        if key in RGB_TASKS:
            continue
        with atomic_path(directory / f"{key}.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, array)
    meta = {"version": SHARD_VERSION, "split": split, "first_seed": int(seeds[0]), "count": int(count),
            "size": int(size), "keys": list(arrays)}
    with atomic_path(directory / "meta.json") as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def shard_is_current(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a complete shard of this toolkit's :data:`SHARD_VERSION` (a cache can re-render
    one that is not)."""
    meta_path = Path(directory) / "meta.json"
    try:
        return json.loads(meta_path.read_text()).get("version") == SHARD_VERSION
    except (OSError, ValueError):
        return False


def load_shard(directory: str | os.PathLike[str], keys: Sequence[str] | None = None, *,
               mmap: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a shard written by :func:`write_shard`; ``keys`` limits which arrays are opened."""
    directory = Path(directory)
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        raise UserInputError(f"'{directory}' is not a mini-Taskonomy shard (no meta.json); write one with "
                             "rsa-toolkit mini render.")
    meta = json.loads(meta_path.read_text())
    if meta.get("version") != SHARD_VERSION:
        raise UserInputError(f"shard '{directory}' has version {meta.get('version')}, this toolkit reads "
                             f"{SHARD_VERSION}; render it again.")
    wanted = meta["keys"] if keys is None else ["rgb", *(resolve_task(k) for k in keys if k != "rgb")]
    arrays = {k: np.load(directory / f"{k}.npy", mmap_mode="r" if mmap else None)
              for k in dict.fromkeys(wanted) if k not in RGB_TASKS}
    return meta, {**arrays, **{k: arrays["rgb"] for k in wanted if k in RGB_TASKS}}
