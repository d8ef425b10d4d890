"""Running under ``torchrun``: the process group, this process's rank, and the few collectives the toolkit needs.

The toolkit does not launch processes itself: ``torchrun`` (torch.distributed's elastic launcher) starts N copies of
a command and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment.
:func:`init_from_env` joins the group those variables describe (gloo on CPU, nccl on CUDA) and does nothing in a
plain single-process run, so every command runs unchanged with or without ``torchrun``::

    torchrun --standalone --nproc_per_node 2 -m amalgamate train runs/ddp --targets depth normal
    torchrun --standalone --nproc_per_node 2 -m rsa_toolkit features --out feats/

Outside a process group every function here is the single-process identity: rank 0 of 1, reductions return their
input, barriers return at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from rsa_toolkit.devices import resolve_device

__all__ = ["init_from_env", "is_distributed", "in_step", "rank", "world_size", "is_main", "shard_bounds",
           "all_reduce_mean", "barrier", "broadcast_object", "main_first", "shutdown"]

_one_at_a_time = False  # inside main_first's block, where the ranks are not in step


def init_from_env(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); False, and nothing done, otherwise.

    The backend follows the device: nccl for CUDA, gloo for the CPU. Idempotent: a second call returns True.
    """
    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if device.type == "cuda":
        torch.cuda.set_device(resolve_device(device, local=True))
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def in_step() -> bool:
    """True in a process group outside :func:`main_first`'s block: every rank runs the same calls together, so work
    can be shared among them (feature extraction shards the probe images only then)."""
    return is_distributed() and not _one_at_a_time


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes files and prints."""
    return rank() == 0


def shard_bounds(n: int, parts: int | None = None, index: int | None = None) -> tuple[int, int]:
    """[start, stop) of part ``index`` (default: this rank) when n items are split into ``parts`` contiguous parts.

    The first n % parts parts hold one item more, so sizes differ by at most one and the parts concatenated in rank
    order are the whole range, in order.
    """
    parts = world_size() if parts is None else parts
    index = rank() if index is None else index
    base, extra = divmod(n, parts)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks, in place (and returned); the tensor itself in a single process."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects the processes made themselves, never user files)."""
    if not is_distributed():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it; for filling a cache the others then read.

    The ranks are not in step in the block (:func:`in_step` is False), so work that is otherwise shared runs whole:
    feature extraction computes everything on rank 0, and the other ranks find it in the cache.
    """
    global _one_at_a_time
    if not is_main():
        barrier()
    _one_at_a_time = True
    try:
        yield
    finally:
        _one_at_a_time = False
    if is_main():
        barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
