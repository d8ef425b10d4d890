"""Losses of amalgamation: soft-target distillation, representation guidance and the optional conditional GAN term.

**Distillation** compares the student's raw output with the teacher's in the teacher's output space
(:mod:`amalgamate.spaces`), per task:

* value spaces (log depth, normals, RGB, embeddings, ...): L1 (default) or L2, ``mean |s - t|`` / ``mean (s - t)^2``;
* binary logits (edges): class-balanced BCE on the teacher's probabilities p = sigmoid(t/T), with the positive weight
  ``w+`` (the teacher maps' negative / positive pixel ratio, :func:`positive_weight`) and the student's logits
  offset by ``log w+``, minus the same loss at the teacher's logits, times T^2::

      l(s) = wBCE(s/T + log w+, p) - wBCE(t/T + log w+, p),  wBCE(x, p) = -w+ p log sig(x) - (1 - p) log(1 - sig(x))

  Its minimiser is exactly the teacher (d l / ds = 0 at s = t: sig(t/T + log w+) = w+ p / (w+ p + 1 - p)), so the
  student stays calibrated, and it is 0 there; but an edge pixel the student misses pulls w+ times harder than in
  plain BCE (gradient -w+ p instead of -p as sig(s) -> 0). Plain KL/BCE on maps with ~9 % edge pixels let the
  student collapse to "no edges" (accuracy 0.913 = the non-edge share); w+ = 1 gives back the KL of before;
* class logits: KL(softmax(t/T) || softmax(s/T)) along the class dimension, times T^2 (Hinton et al. 2015).

KL rather than cross-entropy: the gradients are the same, but a perfect student scores 0, so the loss ratios
L_i(t) / L_i(0) that GradNorm and DWA read are not offset by the teacher's entropy. An optional ``mask`` (B, 1, H, W)
(1 = valid) restricts a pixel loss to valid pixels (Taskonomy masks); an all-invalid batch gives 0, not NaN.

**Guidance** pulls the student's shared representation z (B, 8, 16, 16), through one learned 1 x 1 convolution
per guiding teacher (:class:`GuidanceAdapters`: each target teacher and the auxiliary), toward that teacher's
representation standardised by its own mean and standard deviation over the training images::

    L_guide = mean_k  mean | A_k(z) - (r_k - mu_k) / sigma_k |      (squared with norm="l2")

The adapters start as the identity and are trained with the shared encoder. Why adapters: the teachers'
representations are not one space (each was trained for its own task), so one z cannot equal all of them, and a
fixed mixture of them is a target no student can reach; a per-teacher linear read-out asks instead that z *contain*
each teacher's representation, linearly decodable (as in FitNets' regressors, Romero et al. 2015). Nothing the
student computes is in the targets, so they cannot drift toward the student (the fault of learnable mixing in the
public re-implementation).

**GAN** (optional, after a given step, as the seed): a conditional 5-layer patch discriminator per pixel task sees
(image, prediction); the student's per-task loss becomes ``0.996 distill + 0.004 GAN``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from amalgamate.spaces import OutputSpace

__all__ = ["NORMS", "GAN_MIX", "distillation_loss", "positive_weight", "GuidanceAdapters", "guidance_loss",
           "PatchDiscriminator", "as_probabilities", "gan_generator_loss", "gan_discriminator_loss"]

NORMS = ("l1", "l2")
GAN_MIX = (0.996, 0.004)  # (distillation, GAN) as in the seed


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def positive_weight(teacher_logits: Tensor, *, temperature: float = 1.0, limit: float = 100.0) -> float:
    """``w+ = (1 - pbar) / pbar`` with pbar the teacher's mean edge probability sigmoid(t/T) (float64), clamped to
    [1, ``limit``]: the negative / positive class balance of its maps (HED's weighting, Xie & Tu 2015)."""
    p = float(torch.sigmoid(teacher_logits.double() / temperature).mean())
    return float(min(max((1.0 - p) / max(p, 1e-12), 1.0), limit))


def distillation_loss(student: Tensor, teacher: Tensor, space: OutputSpace, *, norm: str = "l1",
                      temperature: float = 1.0, mask: Tensor | None = None, pos_weight: float = 1.0) -> Tensor:
    """Soft-target loss of one task: ``student`` and ``teacher`` raw outputs of the same shape, (B, C, H, W) or
    (B, K); a scalar tensor (see the module docstring). ``pos_weight``: w+ of binary maps (1: plain KL)."""
    if space.kind == "value":
        diff = student - teacher
        return _masked_mean(diff.abs() if norm == "l1" else diff * diff, mask)
    t = temperature
    if space.kind == "binary_logits":
        p = torch.sigmoid(teacher / t)
        shift = math.log(pos_weight)
        w = torch.tensor(pos_weight, dtype=student.dtype, device=student.device)
        kl = (F.binary_cross_entropy_with_logits(student / t + shift, p, reduction="none", pos_weight=w)
              - F.binary_cross_entropy_with_logits(teacher / t + shift, p, reduction="none", pos_weight=w))
        return _masked_mean(kl, mask) * t * t
    log_p = F.log_softmax(teacher / t, dim=1)
    kl = (log_p.exp() * (log_p - F.log_softmax(student / t, dim=1))).sum(dim=1, keepdim=True)
    return _masked_mean(kl, mask) * t * t


class GuidanceAdapters(nn.Module):
    """One 1 x 1 convolution per guiding teacher, from the student's representation (``channels`` in) to that
    teacher's (``channels`` out), started at the identity. ``roles``: the target tasks, then ``"auxiliary"`` when
    there is one (the roles of :class:`amalgamate.training.knowledge.KnowledgeBatch`)."""

    def __init__(self, roles: Sequence[str], channels: int) -> None:
        super().__init__()
        self.roles = list(roles)
        self.adapters = nn.ModuleDict({_module_key(r): nn.Conv2d(channels, channels, 1) for r in self.roles})
        with torch.no_grad():
            for conv in self.adapters.values():
                conv.weight.copy_(torch.eye(channels).reshape(channels, channels, 1, 1))
                conv.bias.zero_()

    def forward(self, z: Tensor, role: str) -> Tensor:
        return self.adapters[_module_key(role)](z)


def _module_key(role: str) -> str:
    return role.replace(".", "_")


def guidance_loss(z: Tensor, representations: Mapping[str, Tensor], stats: Mapping[str, tuple[float, float]],
                  adapters: GuidanceAdapters, *, norm: str = "l1") -> Tensor:
    """``mean_k mean |A_k(z) - (r_k - mu_k) / sigma_k|`` (squared for l2) over the guiding teachers k:
    ``representations`` and ``stats`` (mean, std) by role (target task or ``"auxiliary"``), z (B, C, 16, 16)."""
    parts = []
    for role in adapters.roles:
        mu, sigma = stats[role]
        diff = adapters(z, role) - (representations[role] - mu) / sigma
        parts.append(diff.abs().mean() if norm == "l1" else (diff * diff).mean())
    return torch.stack(parts).mean()


class PatchDiscriminator(nn.Module):
    """The 5-layer conditional patch discriminator (pix2pix's PatchGAN layout): (image, map) concatenated ->
    4 x 4 convolutions with strides 2, 2, 2, 1, 1 and widths w, 2w, 4w, 8w, 1 -> a grid of real/fake logits."""

    def __init__(self, in_channels: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = [in_channels, width, 2 * width, 4 * width, 8 * width]
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Conv2d(cin, cout, 4, 2 if i < 3 else 1, 1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor, prediction: Tensor) -> Tensor:
        return self.net(torch.cat([image, prediction], dim=1))


def as_probabilities(raw: Tensor, space: OutputSpace) -> Tensor:
    """What the discriminator sees: probabilities for logits (so that scale gives nothing away), values as they are."""
    if space.kind == "binary_logits":
        return torch.sigmoid(raw)
    if space.kind == "class_logits":
        return torch.softmax(raw, dim=1)
    return raw


def gan_generator_loss(discriminator: nn.Module, image: Tensor, fake: Tensor) -> Tensor:
    logits = discriminator(image, fake)
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def gan_discriminator_loss(discriminator: nn.Module, image: Tensor, real: Tensor, fake: Tensor) -> Tensor:
    real_logits = discriminator(image, real)
    fake_logits = discriminator(image, fake.detach())
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
