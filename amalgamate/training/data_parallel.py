"""Training one student on several processes (``torchrun``): what makes N ranks take the step one process would.

Each rank holds the whole student and the same global batch order, and works on its contiguous share of every
global batch (:func:`local_share`, the distributed sampler of a run). Three things make the ranks' step equal to a
single process's step on the whole batch:

* **DistributedDataParallel** wraps the student (:func:`wrap`): every backward through its forward averages the
  gradients over the ranks, in buckets overlapped with the backward (the SOKA collaboration step, the KD step).
* **Gradients DDP does not see** are averaged explicitly (:func:`average_gradients`): SOKA's competition takes
  per-task gradients with ``torch.autograd.grad`` on the last shared layer and the heads, outside DDP's hooks, and
  GradNorm's gradient norms are norms of the *averaged* gradients, so every rank computes the same norms, the same
  loss ratios (the losses are averaged too) and the same task weights. The learned weights of ``uncertainty`` and
  the discriminators, which DDP does not wrap, are averaged the same way.
* **BatchNorm over the global batch** (:class:`GlobalBatchNorm`): in training mode the student's BatchNorm layers
  use the mean and variance of the whole global batch, all-reduced (and differentiated through) across ranks.
  ``torch.nn.SyncBatchNorm`` does the same on GPUs only; this one runs on gloo (CPU) as well, so the CPU test can
  check the distributed step against the single-process one.

Teachers are never wrapped: their knowledge is read from the cache or computed under inference mode on each rank's
share. Loss values are averaged over ranks before they are checked, logged or given to the weighting, so the log of
a distributed run reads like a single-process run's. Masked losses (``--masks``) are the exception: each rank
normalises by its own valid pixels, so they weight pixels slightly differently from one process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from rsa_toolkit.distributed import all_reduce_mean, is_distributed, shard_bounds

__all__ = ["GlobalBatchNorm", "global_batchnorm", "wrap", "average_gradients", "local_share"]


class _SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over all ranks; its gradient is the sum of the ranks' gradients (every rank's loss
    depends on every rank's input through the sum). torch.distributed.nn's version of this is deprecated."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:  # noqa: ANN401 - autograd's context
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # noqa: ANN401
        return _SumOverRanks.apply(grad)


def _summed(tensor: Tensor) -> Tensor:
    return _SumOverRanks.apply(tensor)


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch over all ranks (plain BatchNorm2d in a
    single process or in eval mode). Same parameters and buffers, so its state dict is a BatchNorm2d's."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0, 2, 3]
        local = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        # two passes, like BatchNorm's own kernel: E[(x - mean)^2], not E[x^2] - mean^2, which cancels in float32
        sums = _summed(torch.cat([x.sum(dims), local]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = x - mean[None, :, None, None]
        var = _summed(centred.square().sum(dims)) / count
        self._track(mean.detach(), var.detach(), float(count))
        scale = torch.rsqrt(var + self.eps)
        out = centred * scale[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out

    @torch.no_grad()
    def _track(self, mean: Tensor, var: Tensor, count: float) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
        self.running_var.mul_(1 - momentum).add_(var * count / max(count - 1, 1.0), alpha=momentum)


def global_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d replaced, in place, by a :class:`GlobalBatchNorm` that holds the *same*
    parameter and buffer tensors (optimisers built on the old parameters keep training the new layers)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                          child.track_running_stats)
            for key, param in child.named_parameters(recurse=False):
                setattr(replacement, key, param)
            for key, buffer in child.named_buffers(recurse=False):
                replacement.register_buffer(key, buffer)
            setattr(module, name, replacement.train(child.training))
        else:
            global_batchnorm(child)
    return module


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The student under DistributedDataParallel, or the student itself in a single process.

    Buffers are not broadcast from rank 0 at every forward: with :class:`GlobalBatchNorm` the running statistics are
    the same on every rank already.
    """
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(global_batchnorm(model), device_ids=device_ids, broadcast_buffers=False)


def average_gradients(grads: Iterable[Tensor | None]) -> None:
    """Average gradients over the ranks in place (one all-reduce of their concatenation); None entries are skipped."""
    present = [g for g in grads if g is not None]
    if not is_distributed() or not present:
        return
    flat = all_reduce_mean(torch.cat([g.reshape(-1) for g in present]))
    offset = 0
    for g in present:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def local_share(indices: np.ndarray) -> np.ndarray:
    """This rank's contiguous share of a global batch (all of it in a single process)."""
    start, stop = shard_bounds(len(indices))
    return indices[start:stop]
