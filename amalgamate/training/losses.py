"""Losses of amalgamation: soft-target distillation, representation guidance and the optional conditional GAN term.

**Distillation** compares the student's raw output with the teacher's in the teacher's output space
(:mod:`amalgamate.spaces`), per task:

* value spaces (log depth, normals, RGB, embeddings, ...): L1 (default) or L2, ``mean |s - t|`` / ``mean (s - t)^2``;
* binary logits (edges): KL(Bern(sigmoid(t/T)) || Bern(sigmoid(s/T))) per pixel, times T^2;
* class logits: KL(softmax(t/T) || softmax(s/T)) along the class dimension, times T^2 (Hinton et al. 2015).

KL rather than cross-entropy: the gradients are the same, but a perfect student scores 0, so the loss ratios
L_i(t) / L_i(0) that GradNorm and DWA read are not offset by the teacher's entropy. An optional ``mask`` (B, 1, H, W)
(1 = valid) restricts a pixel loss to valid pixels (Taskonomy masks); an all-invalid batch gives 0, not NaN.

**Guidance** pulls the student's shared representation z (B, 8, 16, 16) toward a fixed convex mixture of the target
teachers' and the auxiliary's representations, each standardised by its own mean and standard deviation over the
training images: ``g = sum_k w_k (r_k - mu_k) / sigma_k``, loss ``mean |z - g|`` (L1) or squared (L2). The weights
w are fixed (:func:`mixing_weights`: the auxiliary gets ``aux_share``, the targets share the rest equally); the
student's own representation is never part of the mixture, so the target cannot drift toward the student (the fault
of learnable mixing in the public re-implementation). :func:`mixed_guidance_target` takes the representations by
role (the targets' by task, the auxiliary's on its own) with a :class:`GuidanceMix` of the same roles.

**GAN** (optional, after a given step, as the seed): a conditional 5-layer patch discriminator per pixel task sees
(image, prediction); the student's per-task loss becomes ``0.996 distill + 0.004 GAN``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rsa_toolkit.errors import UserInputError

from amalgamate.spaces import OutputSpace

__all__ = ["NORMS", "GAN_MIX", "distillation_loss", "mixing_weights", "guidance_target", "GuidanceMix", "guidance_mix",
           "mixed_guidance_target", "guidance_loss",
           "PatchDiscriminator", "as_probabilities", "gan_generator_loss", "gan_discriminator_loss"]

NORMS = ("l1", "l2")
GAN_MIX = (0.996, 0.004)  # (distillation, GAN) as in the seed


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def distillation_loss(student: Tensor, teacher: Tensor, space: OutputSpace, *, norm: str = "l1",
                      temperature: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """Soft-target loss of one task: ``student`` and ``teacher`` raw outputs of the same shape, (B, C, H, W) or
    (B, K); a scalar tensor (see the module docstring)."""
    if space.kind == "value":
        diff = student - teacher
        return _masked_mean(diff.abs() if norm == "l1" else diff * diff, mask)
    t = temperature
    if space.kind == "binary_logits":
        p = torch.sigmoid(teacher / t)
        kl = (F.binary_cross_entropy_with_logits(student / t, p, reduction="none")
              - F.binary_cross_entropy_with_logits(teacher / t, p, reduction="none"))
        return _masked_mean(kl, mask) * t * t
    log_p = F.log_softmax(teacher / t, dim=1)
    kl = (log_p.exp() * (log_p - F.log_softmax(student / t, dim=1))).sum(dim=1, keepdim=True)
    return _masked_mean(kl, mask) * t * t


def mixing_weights(n_targets: int, *, auxiliary: bool, aux_share: float) -> Tensor:
    """Fixed simplex weights of the guidance mixture: targets first (equal shares), the auxiliary last."""
    if not 0.0 <= aux_share < 1.0:
        raise UserInputError(f"aux_share must be in [0, 1), got {aux_share!r}; the targets keep the rest.")
    if not auxiliary:
        return torch.full((n_targets,), 1.0 / n_targets)
    return torch.tensor([(1.0 - aux_share) / n_targets] * n_targets + [aux_share])


def guidance_target(representations: Sequence[Tensor], stats: Sequence[tuple[float, float]],
                    weights: Tensor | Sequence[float]) -> Tensor:
    """``sum_k w_k (r_k - mu_k) / sigma_k`` over the teachers' representations (B, 8, 16, 16) each."""
    out = torch.zeros_like(representations[0])
    for r, (mu, sigma), w in zip(representations, stats, weights.tolist() if isinstance(weights, Tensor) else weights):
        out = out + (r - mu) * (w / sigma)
    return out


@dataclass(frozen=True)
class GuidanceMix:
    """The fixed weights of a run's guidance mixture, by role: ``targets`` (target task -> w_k, in target order) and
    ``auxiliary`` (None without an auxiliary)."""

    targets: dict[str, float]
    auxiliary: float | None = None


def guidance_mix(tasks: Sequence[str], *, auxiliary: bool, aux_share: float) -> GuidanceMix:
    """:func:`mixing_weights` of ``tasks`` (and the auxiliary), by role."""
    w = mixing_weights(len(tasks), auxiliary=auxiliary, aux_share=aux_share).tolist()
    return GuidanceMix(dict(zip(tasks, w)), w[len(tasks)] if auxiliary else None)


def mixed_guidance_target(representations: Mapping[str, Tensor], auxiliary: Tensor | None, *,
                          stats: Mapping[str, tuple[float, float]], auxiliary_stats: tuple[float, float] | None,
                          mix: GuidanceMix) -> Tensor:
    """:func:`guidance_target` of the target teachers' ``representations`` (task -> (B, 8, 16, 16)), then the
    ``auxiliary``'s, each with its (mean, std) and its weight in ``mix``."""
    if (auxiliary is None) != (mix.auxiliary is None) or (auxiliary is None) != (auxiliary_stats is None):
        raise ValueError("the auxiliary's representation, statistics and weight must be given together")
    tasks = list(mix.targets)
    reps = [representations[t] for t in tasks]
    moments = [stats[t] for t in tasks]
    weights = [mix.targets[t] for t in tasks]
    if auxiliary is not None:
        reps.append(auxiliary)
        moments.append(auxiliary_stats)  # type: ignore[arg-type]
        weights.append(mix.auxiliary)  # type: ignore[arg-type]
    return guidance_target(reps, moments, weights)


def guidance_loss(z: Tensor, target: Tensor, *, norm: str = "l1") -> Tensor:
    diff = z - target
    return diff.abs().mean() if norm == "l1" else (diff * diff).mean()


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
