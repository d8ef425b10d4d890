"""Measured transfer on mini-Taskonomy: how well each teacher's frozen representation serves every other task.

For every (source, target) pair of the 20 tasks: the source teacher's encoder is frozen, a small readout is trained
on its 8 x 16 x 16 representation to predict the target, and the target's held-out loss is measured. The same
readout trained from pixels (the frame folded into 48 x 16 x 16 by a 4 x 4 space-to-depth, so it sees every pixel
with the same capacity and budget) is the baseline, as Taskonomy's "from pixels" networks are. From the losses:

* ``loss[s, t]``: held-out loss of target t from source s (the target's own loss, docs/mini_taskonomy.md);
* ``gain[s, t] = 1 - loss[s, t] / loss[pixels, t]``: the share of the pixels-readout's loss that the source saves
  (higher is better; within a target column it orders sources as -loss does);
* ``winrate[s, t]``: the share of held-out frames on which the source's readout has a lower loss than the pixels
  readout (Taskonomy's win rate vs pixels).

The source encoder sees the target's input (noise for denoising, gray for colorization, a hole for inpainting), as a
Taskonomy transfer does. Readout: BatchNorm, two 3 x 3 convolutions (32 channels) at 16 x 16, then a 1 x 1
convolution upsampled x4 (pixel tasks) or a stride-2 convolution and a linear layer (image-level tasks).
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rsa_toolkit.files import atomic_path
from rsa_toolkit.validation import check_int
from rsa_toolkit.scenes import ALL_TASKS, LABEL_SPECS
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.lab.dataset import MiniTaskonomy
from rsa_toolkit.zoo.mini.net import output_channels
from rsa_toolkit.zoo.mini.objectives import objective
from rsa_toolkit.lab.train import one_cycle_adamw
from rsa_toolkit.zoo.mini.embedded import mini_teacher

__all__ = ["TransferConfig", "PIXELS", "Readout", "transfer_matrix", "write_transfer"]

PIXELS = "pixels"
_INPUT_KINDS = {"denoising": "denoising", "colorization": "colorization", "inpainting": "inpainting"}


@dataclass(frozen=True)
class TransferConfig:
    train_frames: int = 4000
    test_frames: int = 500
    steps: int = 200
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0


class Readout(nn.Module):
    def __init__(self, in_channels: int, task: str, width: int = 32) -> None:
        super().__init__()
        self.per_pixel = LABEL_SPECS[task].per_pixel
        out = output_channels(task)
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        if self.per_pixel:
            self.head = nn.Conv2d(width, out, 1)
        else:
            self.head = nn.Sequential(nn.Conv2d(width, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                      nn.Flatten(), nn.Linear(16 * 8 * 8, out))

    def forward(self, z: Tensor) -> Tensor:
        y = self.head(self.body(z))
        return F.interpolate(y, scale_factor=4, mode="bilinear", align_corners=False) if self.per_pixel else y


def _input_kind(target: str) -> str:
    return _INPUT_KINDS.get(target, "rgb")


@torch.inference_mode()
def _encode(encoder: nn.Module | None, inputs: Tensor, batch: int = 250) -> Tensor:
    """(N, 8, 16, 16) representations of a source encoder, or (``None``, the pixels baseline) the space-to-depth
    frames."""
    if encoder is None:
        return F.pixel_unshuffle(inputs, 4)
    return torch.cat([encoder(inputs[i:i + batch]) for i in range(0, len(inputs), batch)])


def _per_frame_losses(task: str, pred: Tensor, target: Tensor) -> Tensor:
    goal = objective(task)
    return torch.stack([goal.loss(pred[i:i + 1], target[i:i + 1]) for i in range(len(pred))])


def _fit_readout(task: str, z_train: Tensor, y_train: Tensor, config: TransferConfig, seed: int) -> Readout:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    readout = Readout(z_train.shape[1], task)
    goal = objective(task)
    opt, sched = one_cycle_adamw(readout.parameters(), lr=config.lr, steps=config.steps)
    readout.train()
    for _ in range(config.steps):
        idx = torch.from_numpy(rng.choice(len(z_train), config.batch_size, replace=False))
        loss = goal.loss(readout(z_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return readout.eval()


def _source_row(source: str, targets: Sequence[str], train_shard: str, test_shard: str,
                config: TransferConfig, verbose: bool = False) -> dict[str, np.ndarray]:
    """Per-frame held-out losses of every target from ``source``: {target: (test_frames,)}."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows: dict[str, np.ndarray] = {}
    by_kind: dict[str, list[str]] = {}
    for t in targets:
        by_kind.setdefault(_input_kind(t), []).append(t)
    # Loaded (and its weights' hash checked) once per source, not once per input kind.
    encoder = None if source == PIXELS else mini_teacher(source).build().encoder
    for kind, kind_targets in by_kind.items():
        data_task = kind if kind != "rgb" else "autoencoding"
        x_train, _ = MiniTaskonomy(data_task, shard=train_shard).batch(np.arange(config.train_frames))
        x_test, _ = MiniTaskonomy(data_task, shard=test_shard).batch(np.arange(config.test_frames))
        z_train, z_test = _encode(encoder, x_train), _encode(encoder, x_test)
        for target in kind_targets:
            _, y_train = MiniTaskonomy(target, shard=train_shard).batch(np.arange(config.train_frames))
            _, y_test = MiniTaskonomy(target, shard=test_shard).batch(np.arange(config.test_frames))
            seed = config.seed * 10_000 + ALL_TASKS.index(target)  # same readout init for every source
            readout = _fit_readout(target, z_train, y_train, config, seed)
            with torch.inference_mode():
                pred = torch.cat([readout(z_test[i:i + 250]) for i in range(0, len(z_test), 250)])
                rows[target] = _per_frame_losses(target, pred, y_test).numpy()
    if verbose:
        print(f"transfer: source {source} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def transfer_matrix(train_shard: str | os.PathLike[str], test_shard: str | os.PathLike[str], *,
                    tasks: Sequence[str] | None = None, config: TransferConfig = TransferConfig(),
                    jobs: int = 1, verbose: bool = False) -> dict[str, object]:
    """Held-out losses of every (source, target) readout and the pixels baseline; returns ``{"sources", "targets",
    "loss" (S+1, T), "gain" (S, T), "winrate" (S, T), "seconds"}`` with the pixels row last in ``loss``."""
    tasks = list(dict.fromkeys(resolve_task(t) for t in (tasks or ALL_TASKS)))
    jobs = check_int(jobs, name="jobs", minimum=1)
    sources = [*tasks, PIXELS]
    args = [(s, tasks, str(train_shard), str(test_shard), config, verbose) for s in sources]
    t0 = time.perf_counter()
    if jobs == 1:
        rows = [_source_row(*a) for a in args]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            rows = list(pool.map(_source_row, *zip(*args)))
    per_frame = np.array([[row[t] for t in tasks] for row in rows])  # (S+1, T, frames)
    loss = per_frame.mean(axis=2)
    pixels = per_frame[-1]
    return {"sources": tasks, "targets": tasks, "loss": loss,
            "gain": 1.0 - loss[:-1] / loss[-1][None, :],
            "winrate": (per_frame[:-1] < pixels[None]).mean(axis=2),
            "seconds": time.perf_counter() - t0}


def write_transfer(result: dict[str, object], out_dir: str | os.PathLike[str], config: TransferConfig, *,
                   train_shard: str, test_shard: str, jobs: int) -> Path:
    """``transfer.csv`` (the gain, the ground truth `rsa-toolkit evaluate --truth mini-transfer` reads),
    ``winrate.csv``, ``loss.csv`` (with the pixels row) and ``recipe.json`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources, targets = result["sources"], result["targets"]
    tables = {"transfer.csv": (result["gain"], sources), "winrate.csv": (result["winrate"], sources),
              "loss.csv": (result["loss"], [*sources, PIXELS])}
    for name, (values, rows) in tables.items():
        with atomic_path(out / name) as tmp:
            _write_rect_csv(values, rows, targets, tmp)
    recipe = {"what": "held-out loss of a readout trained on a frozen source encoder, per (source, target); "
                      "transfer.csv = 1 - loss / loss of the same readout from pixels; rows = sources",
              "config": asdict(config), "jobs": jobs, "seconds": result["seconds"], "torch": torch.__version__,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "train_shard": str(train_shard),
              "test_shard": str(test_shard), "zoo_manifest_sha256": _zoo_manifest_hash()}
    with atomic_path(out / "recipe.json") as tmp:
        tmp.write_text(json.dumps(recipe, indent=2) + "\n")
    return out


def _write_rect_csv(values: np.ndarray, rows: Sequence[str], cols: Sequence[str], path: Path) -> None:
    """As sim.csv: first row the targets, first column the sources, full float precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *cols])
    writer.writerows([r, *(repr(float(v)) for v in row)] for r, row in zip(rows, values))
    path.write_text(buffer.getvalue())


def _zoo_manifest_hash() -> str:
    from rsa_toolkit.files import file_sha256
    from rsa_toolkit.zoo.mini.embedded import MANIFEST, default_zoo_dir

    return file_sha256(default_zoo_dir() / MANIFEST)
