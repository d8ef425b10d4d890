"""What one training step does, per method: SOKA-Net's collaboration and competition, or one plain KD step.

**SOKA** (Luo et al., ECCV 2020). The first ``kd_warmup`` steps are distillation only (``sum_i L_i`` trains the whole
student; no guidance, no competition). Then each step alternates two parts, with two optimisers over disjoint
parameter sets (no ``requires_grad`` toggling: each backward names the parameters it feeds with ``inputs=``):

1. *collaboration*: the student's forward pass; loss ``sum_i w_i L_i + lambda L_guide`` with the current task weights
   w (constants here) and the guidance of the shared representation by each guiding teacher's representation through
   its adapter (:mod:`amalgamate.training.losses`); the **shared-encoder** optimiser steps (encoder and adapters).
2. *competition*: the updated encoder's trunk runs without a graph, its last shared layer (weight W) and the heads
   with one; per-task gradient norms ``||grad_W L_i||`` (``torch.autograd.grad``, one per task, no double backward)
   feed the weighting strategy (GradNorm by default), which moves the weights w; the **task heads** are trained on
   their own unweighted losses ``sum_i L_i`` (the weights act on the encoder only, see
   :mod:`amalgamate.training.trainer`), learned weight parameters on ``weighting.combine`` of the detached losses.
   One backward per task gives both the norm on W and the head's gradient (:func:`fused_competition`). Once the
   competition has balanced (:class:`amalgamate.training.balance.BalanceCriterion`, with
   ``stop_competition_when_balanced``, for a weighting that ``freezes_when_balanced``) the weights stay frozen and
   only the heads train here.

**KD** (``kd``, ``kd-n-to-n``): one joint step, ``sum_i L_i``, both optimisers step.

A step function takes the trainer (:class:`StepTrainer`: the parts of
:class:`amalgamate.training.trainer.Trainer` a step uses), the image batch x (B, 3, H, W) and the teachers'
knowledge of it, and returns ``{"distill": (n,) losses, "guide": scalar or None, "gan": {task: loss},
"decision": what the weighting decided}``. :data:`amalgamate.config.METHODS` says which method uses which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from rsa_toolkit.distributed import is_distributed

from amalgamate.training.data_parallel import average_gradients

if TYPE_CHECKING:
    from amalgamate.training.knowledge import KnowledgeBatch
    from amalgamate.training.weighting import Weighting

__all__ = ["StepTrainer", "soka_step", "kd_step", "fused_competition"]


class StepTrainer(Protocol):
    """What a step reads and changes of the trainer."""

    model: nn.Module  # the student itself
    net: nn.Module  # the student as the forward runs it (DDP under torchrun)
    weighting: Weighting
    optimizers: dict[str, torch.optim.Optimizer]  # "shared" (the encoder) and "heads" (+ learned weights)
    tasks: list[str]
    adapters: nn.ModuleDict  # the guidance adapters ("guidance"), empty when the run does not guide
    frozen: bool  # the competition ended (balanced, with stop_competition_when_balanced)
    guide_weight: float  # lambda; 0 when the method does not guide
    in_kd_warmup: bool  # SOKA's first kd_warmup steps: distillation only

    def shared_trained(self) -> list[nn.Parameter]: ...

    def task_losses(self, outputs: dict[str, Tensor], kb: KnowledgeBatch) -> Tensor: ...

    def checked_mean(self, losses: Tensor, names: list[str] | None = None) -> Tensor: ...

    def with_gan(self, distill: Tensor, x: Tensor, outputs: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]: ...

    def guidance_loss(self, z: Tensor, kb: KnowledgeBatch) -> Tensor: ...

    def balance(self, before: Tensor, after: Tensor) -> None: ...

    def train_discriminators(self, x: Tensor, kb: KnowledgeBatch, outputs: dict[str, Tensor]) -> None: ...


def soka_step(trainer: StepTrainer, x: Tensor, kb: KnowledgeBatch) -> dict[str, Any]:
    """One SOKA step: collaboration (the shared encoder), then competition (the heads and the weights); during the
    KD warm-up, one distillation-only step."""
    if trainer.in_kd_warmup:
        return _distillation_step(trainer, x, kb)
    model, weighting = trainer.model, trainer.weighting
    # collaboration: the shared encoder learns from the amalgamated knowledge
    z, outputs = trainer.net(x)
    distill = trainer.task_losses(outputs, kb)
    logged = trainer.checked_mean(distill)
    per_task, gan = trainer.with_gan(distill, x, outputs)
    loss = (weighting.weights.detach() * per_task).sum()
    guide = None
    if trainer.guide_weight > 0:
        guide = trainer.guidance_loss(z, kb)
        loss = loss + trainer.guide_weight * guide
        guide = trainer.checked_mean(guide[None], ["guidance"])[0]
    trainer.optimizers["shared"].zero_grad(set_to_none=True)
    shared = trainer.shared_trained()
    # Under DDP a backward must reach every parameter its forward used, or the reducer waits for the heads'
    # gradients forever; their share here is dropped (the competition zeroes the heads' gradients first).
    loss.backward(inputs=None if is_distributed() else shared)
    average_gradients(p.grad for p in trainer.adapters.parameters())  # outside DDP: averaged here
    trainer.optimizers["shared"].step()
    # competition: the heads and the loss weights, on the updated encoder
    with torch.no_grad():
        h = model.trunk(x)
    z2 = model.represent(h)
    outputs2 = model.decode(z2)
    distill2 = trainer.task_losses(outputs2, kb)
    global2 = trainer.checked_mean(distill2)  # the weighting sees the global batch's losses on every rank
    per_task2, _ = trainer.with_gan(distill2, x, outputs2)
    decision: dict[str, Any] = {}
    before = weighting.weights.detach().clone()
    competing = not trainer.frozen
    active = competing and weighting.active()  # the weights may move this step (not during a warm-up of its own)
    trainer.optimizers["heads"].zero_grad(set_to_none=True)
    if competing and weighting.needs_grad_norms:
        decision = fused_competition(trainer, per_task2, global2)
    else:
        if competing:
            decision = weighting.update(global2)
        heads = list(model.head_parameters())
        per_task2.sum().backward(inputs=heads)
        average_gradients(p.grad for p in heads)
    learned = list(weighting.parameters())
    if competing and learned:
        weighting.combine(per_task2.detach()).backward(inputs=learned)
        average_gradients(p.grad for p in learned)
    trainer.optimizers["heads"].step()
    if active:
        trainer.balance(before, weighting.weights.detach())
    trainer.train_discriminators(x, kb, outputs2)
    return {"distill": logged, "guide": guide, "gan": gan, "decision": decision}


def _distillation_step(trainer: StepTrainer, x: Tensor, kb: KnowledgeBatch) -> dict[str, Any]:
    """SOKA's KD warm-up: ``sum_i L_i`` trains the encoder and the heads; the weights, the adapters and the
    balance are left alone."""
    _, outputs = trainer.net(x)
    distill = trainer.task_losses(outputs, kb)
    logged = trainer.checked_mean(distill)
    per_task, gan = trainer.with_gan(distill, x, outputs)
    for o in trainer.optimizers.values():
        o.zero_grad(set_to_none=True)
    per_task.sum().backward(inputs=list(trainer.model.parameters()))  # DDP averages the student's gradients
    for o in trainer.optimizers.values():
        o.step()
    trainer.train_discriminators(x, kb, outputs)
    return {"distill": logged, "guide": None, "gan": gan, "decision": {}}


def fused_competition(trainer: StepTrainer, per_task: Tensor, distill: Tensor) -> dict[str, Any]:
    """Gradient norms and head gradients from one backward per task.

    Task i's loss reaches the last shared layer W only through head i, so one ``autograd.grad`` of L_i with respect
    to (W, head i) gives both its gradient norm g_i on W (for the weighting) and its head's gradient, which is the
    head's gradient of ``sum_j L_j``: the same update as a separate backward, for n backwards instead of 2n.
    """
    model, n = trainer.model, len(trainer.tasks)
    heads = [list(model.heads[t].parameters()) for t in trainer.tasks]
    grads = [torch.autograd.grad(per_task[i], [model.shared_weight(), *heads[i]], retain_graph=i < n - 1)
             for i in range(n)]
    average_gradients(g for task_grads in grads for g in task_grads)  # norms of the global batch's gradients
    decision = trainer.weighting.update(distill, grad_norms=torch.stack([g[0].norm() for g in grads]))
    for i in range(n):
        for p, g in zip(heads[i], grads[i][1:]):
            p.grad = g
    return decision


def kd_step(trainer: StepTrainer, x: Tensor, kb: KnowledgeBatch) -> dict[str, Any]:
    """One KD step: ``combine(L)`` (equal fixed weights: ``sum_i L_i``) trains the whole student at once."""
    _, outputs = trainer.net(x)
    distill = trainer.task_losses(outputs, kb)
    logged = trainer.checked_mean(distill)
    per_task, gan = trainer.with_gan(distill, x, outputs)
    decision = trainer.weighting.update(logged)
    for o in trainer.optimizers.values():
        o.zero_grad(set_to_none=True)
    trainer.weighting.combine(per_task).backward()  # DDP averages the student's gradients
    average_gradients(p.grad for p in trainer.weighting.parameters())
    for o in trainer.optimizers.values():
        o.step()
    trainer.train_discriminators(x, kb, outputs)
    return {"distill": logged, "guide": None, "gan": gan, "decision": decision}
