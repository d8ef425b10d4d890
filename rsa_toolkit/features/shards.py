"""A cache entry computed in shards: which probe rows each rank computes, the part file it writes them to, and how
rank 0 joins the parts into the one ``.npy`` file a single-process run writes.

Shards are whole batches: with ``B`` images per forward pass the ``ceil(N / B)`` batches are split into contiguous
runs by :func:`rsa_toolkit.distributed.shard_bounds`, so every batch holds the same images as in a single-process
run. That is what makes the features bit-for-bit the same: a model in eval mode computes each image independently in
exact arithmetic, but CPU and GPU kernels may sum in another order for another batch size (last-digit float32
differences). The price is balance: ranks' shares differ by up to one batch, not one image.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rsa_toolkit.distributed import shard_bounds

__all__ = ["shard_rows", "part_path", "write_npy_header", "concatenate_npy"]


def shard_rows(n: int, batch_size: int, parts: int | None = None, index: int | None = None) -> tuple[int, int]:
    """[start, stop) of the probe rows part ``index`` (default: this rank) of ``parts`` (default: the world size)
    computes: whole batches of ``batch_size``; empty (start == stop) when there are fewer batches than parts."""
    first, last = shard_bounds(-(-n // batch_size), parts, index)
    return min(first * batch_size, n), min(last * batch_size, n)


def part_path(entry: Path, index: int) -> Path:
    """Where part ``index`` of the cache entry ``entry`` is written: beside it, hidden like the other temporaries,
    so the rename that publishes the entry stays on one file system."""
    return entry.with_name(f".{entry.stem}.part{index}{entry.suffix}")


def write_npy_header(file: BinaryIO, shape: tuple[int, ...]) -> None:
    """The header of a C-ordered float32 ``.npy`` array of ``shape``; the rows' raw bytes follow."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(file, header)


def concatenate_npy(parts: Sequence[Path], target: Path) -> None:
    """Write the rows of the float32 ``.npy`` files ``parts``, in the order given, to ``target`` as one ``.npy``.

    The header of the whole array, then each part's data bytes copied as they are (never loaded, never converted),
    so ``target`` is byte for byte the file a single pass writes. ``parts`` (at least one) must agree on all but
    their first axis.
    """
    shapes, offsets = [], []
    for part in parts:
        with part.open("rb") as fh:
            if np.lib.format.read_magic(fh) != (1, 0):  # parts come from write_npy_header
                raise ValueError(f"{part}: not a version 1.0 .npy file")
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            if fortran or dtype != np.float32 or (shapes and shape[1:] != shapes[0][1:]):
                raise ValueError(f"{part}: a part of shape {shape} ({dtype}) does not continue {shapes[:1]} float32")
            shapes.append(shape)
            offsets.append(fh.tell())
    with target.open("wb") as out:
        write_npy_header(out, (sum(s[0] for s in shapes), *shapes[0][1:]))
        for part, offset in zip(parts, offsets):
            with part.open("rb") as fh:
                fh.seek(offset)
                shutil.copyfileobj(fh, out, 1 << 22)
