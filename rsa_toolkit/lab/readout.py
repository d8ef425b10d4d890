"""Taskonomy's transfer readout on a frozen 8 x 16 x 16 representation, and its training with early stopping on val.

Readout (Zamir et al., "Taskonomy", CVPR 2018, §3.2: a transfer function of two convolutions on the frozen source
representation, followed by the target's decoder, trained on the target's loss):

    z (C, 16, 16) -> BatchNorm -> conv3x3 (C -> width) -> BN -> ReLU -> conv3x3 (width -> 8) -> BN -> ReLU
                  -> the target teacher's decoder architecture, freshly initialised:
                     :class:`~rsa_toolkit.zoo.mini.net.PixelDecoder` (learned upsampling 16 -> 64) for pixel targets,
                     :class:`~rsa_toolkit.zoo.mini.net.VectorHead` (a stride-2 convolution and a small MLP) otherwise.

The input BatchNorm puts every source on one scale (a teacher's representation, a random encoder's and the 48-channel
space-to-depth frames differ by orders of magnitude). The output layer's bias starts at the target's best constant
prediction under its loss (:attr:`~rsa_toolkit.zoo.mini.objectives.Objective.constant`: the mean for L2 targets, the
median for L1, the log prior for cross-entropy, the logit of the rate for BCE), so a readout starts at the trivial
baseline and must learn to leave it.

:func:`fit_readout` trains with AdamW (linear warm-up, then a constant rate), evaluates the val loss every
``eval_every`` steps (and before the first step), keeps the state with the lowest val loss, stops after ``patience``
evaluations without improvement or at ``max_steps``, and returns the network in that best state, in eval mode.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from rsa_toolkit.scenes import LABEL_SPECS
from rsa_toolkit.validation import check_int
from rsa_toolkit.zoo.mini.net import REPRESENTATION_SHAPE, PixelDecoder, VectorHead, output_channels

__all__ = ["TransferReadout", "FitResult", "fit_readout", "batched_loss"]


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class TransferReadout(nn.Module):
    """(B, in_channels, 16, 16) -> the target's output: (B, C, 64, 64) for pixel targets, (B, K) otherwise.

    ``transfer``: BatchNorm and two 3 x 3 convolutions back to the 8-channel representation shape; ``decoder``: the
    target teacher's decoder architecture (``decoder_widths`` for a :class:`PixelDecoder`, ``head_hidden`` for a
    :class:`VectorHead`). The initialisation follows the caller's torch seed.
    """

    def __init__(self, in_channels: int, task: str, *, width: int = 64,
                 decoder_widths: tuple[int, int, int] = (64, 48, 32), head_hidden: int = 128) -> None:
        super().__init__()
        self.task = task
        self.per_pixel = LABEL_SPECS[task].per_pixel
        rep = REPRESENTATION_SHAPE[0]
        self.transfer = nn.Sequential(nn.BatchNorm2d(in_channels), *_conv_bn_relu(in_channels, width),
                                      *_conv_bn_relu(width, rep))
        out = output_channels(task)
        self.decoder = PixelDecoder(out, tuple(decoder_widths)) if self.per_pixel else VectorHead(out, head_hidden)

    @property
    def output_layer(self) -> nn.Conv2d | nn.Linear:
        return self.decoder.out

    @torch.no_grad()
    def init_output_bias(self, constant: Tensor) -> None:
        """Set the output bias to the constant prediction ``constant`` ((1, C, 1, 1) or (1, K))."""
        self.output_layer.bias.copy_(constant.reshape(-1).to(self.output_layer.bias))

    def forward(self, z: Tensor) -> Tensor:
        return self.decoder(self.transfer(z))


@dataclass
class FitResult:
    best_step: int  # optimiser steps taken by the returned state (0: the initial state was never beaten on val)
    steps_run: int
    best_val_loss: float
    stopped_early: bool
    seconds: float  # wall time
    cpu_seconds: float  # this process's CPU time (the figure to extrapolate from on a shared machine)
    val_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, val loss) of every evaluation


@torch.no_grad()
def batched_loss(model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], z: Tensor, y: Tensor, *,
                 batch: int = 250) -> float:
    """Mean of ``loss`` over (z, y) in batches, each weighted by its size (float64 accumulation)."""
    total = 0.0
    for start in range(0, len(z), batch):
        total += float(loss(model(z[start:start + batch]), y[start:start + batch])) * len(z[start:start + batch])
    return total / len(z)


def fit_readout(model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], z_train: Tensor, y_train: Tensor,
                z_val: Tensor, y_val: Tensor, *, max_steps: int, eval_every: int, patience: int, batch_size: int,
                lr: float, weight_decay: float = 1e-4, warmup_steps: int = 0, seed: int = 0) -> FitResult:
    """Train ``model`` on (z_train, y_train) with early stopping on (z_val, y_val); leaves it in its best val state,
    in eval mode. Batches are drawn without replacement in epochs reshuffled by ``seed``; the inputs live on the
    model's device already."""
    max_steps = check_int(max_steps, name="max_steps", minimum=1)
    eval_every = check_int(eval_every, name="eval_every", minimum=1)
    patience = check_int(patience, name="patience", minimum=1)
    batch_size = min(check_int(batch_size, name="batch_size", minimum=1), len(z_train))
    warmup_steps = check_int(warmup_steps, name="warmup_steps", minimum=0)
    t0, c0 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / (warmup_steps + 1)))

    def evaluate(step: int) -> float:
        model.eval()
        value = batched_loss(model, loss, z_val, y_val)
        curve.append((step, value))
        model.train()
        return value

    curve: list[tuple[int, float]] = []
    best_val, best_step = evaluate(0), 0
    best_state = copy.deepcopy(model.state_dict())
    bad, step, stopped = 0, 0, False
    order, cursor = rng.permutation(len(z_train)), 0
    model.train()
    while step < max_steps:
        if cursor + batch_size > len(order):  # a new epoch: reshuffle
            order, cursor = rng.permutation(len(z_train)), 0
        idx = torch.from_numpy(np.sort(order[cursor:cursor + batch_size])).to(z_train.device)
        cursor += batch_size
        value = loss(model(z_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        sched.step()
        step += 1
        if step % eval_every == 0 or step == max_steps:
            val = evaluate(step)
            if val < best_val:
                best_val, best_step, bad = val, step, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
                if bad >= patience:
                    stopped = step < max_steps
                    break
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(best_step=best_step, steps_run=step, best_val_loss=best_val, stopped_early=stopped,
                     seconds=time.perf_counter() - t0,
                     cpu_seconds=time.process_time() - c0, val_curve=curve)
