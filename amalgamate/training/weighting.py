"""Loss-weighting strategies for the n task losses, behind one interface (:class:`Weighting`, registry
:data:`WEIGHTINGS`).

Each strategy holds n weights w (a buffer; they sum to n where the method says so), turns the task losses L (n,) into
one training loss with :meth:`Weighting.combine` (default ``sum_i w_i L_i``), and decides new weights in its one
abstract method :meth:`Weighting.update`, which returns what it decided, for the log. State (weights, initial
losses, windows, learned log-variances) lives in buffers and parameters, so ``state_dict`` checkpoints it.

==============  ===================================================================================================
``equal``       w_i = 1, fixed (plain KD)
``gradnorm``    GradNorm (Chen et al., ICML 2018) without the double backward, see :class:`GradNorm`
``uncertainty`` homoscedastic uncertainty (Kendall et al., CVPR 2018): ``sum_i exp(-s_i) L_i + s_i``, s learned
``dwa``         dynamic weight average (Liu et al., CVPR 2019): ``w_i = n softmax_i(r_i / T)``,
                ``r_i = L_i(k-1) / L_i(k-2)`` over windows of steps
==============  ===================================================================================================
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from rsa_toolkit.registry import Registry
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int, check_number

__all__ = ["Weighting", "WEIGHTINGS", "EqualWeighting", "GradNorm", "UncertaintyWeighting", "DynamicWeightAverage",
           "build_weighting"]

WEIGHTINGS: Registry[type["Weighting"]] = Registry("weighting")


class Weighting(nn.Module, metaclass=abc.ABCMeta):
    """n task weights and the rule that moves them. ``needs_grad_norms``: :meth:`update` wants the per-task gradient
    norms ``||grad_W L_i||`` on the last shared layer's weight W. ``linear``: :meth:`combine` is ``sum_i w_i L_i``
    (the trainer may then form the heads' gradients from per-task gradients)."""

    needs_grad_norms = False
    linear = True

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = check_int(n, name="n", minimum=1, form="a weighting needs the number of tasks (an integer >= 1), "
                                                         "got {value!r}.")
        self.register_buffer("weights", torch.ones(n))

    def combine(self, losses: Tensor) -> Tensor:
        """The training loss of the task heads (and of learned weights) from the task losses (n,)."""
        return (self.weights * losses).sum()

    @abc.abstractmethod
    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        """Decide the weights from this step's task losses (n,), detached; return what was decided."""


def _check_positive(value: object, name: str) -> float:
    return check_number(value, name=name, above=0, expected="a positive number")


@WEIGHTINGS.register("equal")
class EqualWeighting(Weighting):
    """w_i = 1 for every task, never changed: plain knowledge distillation."""

    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        return {"weights": self.weights.tolist()}


@WEIGHTINGS.register("gradnorm")
class GradNorm(Weighting):
    """GradNorm (Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing", ICML 2018), first order.

    With g_i = ||grad_W L_i|| the gradient norm of task i's loss on the last shared layer's weight W, G_i = w_i g_i,
    the mean Gbar = mean_i G_i, the training rates r_i = (L_i(t) / L_i(0)) / mean_j (L_j(t) / L_j(0)) and
    ``alpha`` (1.5), GradNorm wants G_i = Gbar r_i^alpha (targets held constant, as in the paper). Its loss
    ``sum_i |w_i g_i - Gbar r_i^alpha|`` is minimised exactly by w_i* = Gbar r_i^alpha / g_i, so no gradient of a
    gradient (double backward) is needed: the weights move a fraction ``rate`` toward w*, renormalised to sum to n,
    ``w <- n normalise((1 - rate) w + rate n w* / sum w*)``, and never below ``min_weight``. A task that trains more
    slowly (larger r_i) gets a larger weight. The g_i come from ``torch.autograd.grad(L_i, W)``, one per task.
    """

    needs_grad_norms = True

    def __init__(self, n: int, *, alpha: float = 1.5, rate: float = 0.1, min_weight: float = 1e-3) -> None:
        super().__init__(n)
        self.alpha = check_number(alpha, name="gradnorm alpha", minimum=0)
        self.rate = check_number(rate, name="gradnorm rate", above=0, maximum=1, expected="in (0, 1]")
        self.min_weight = _check_positive(min_weight, "gradnorm min_weight")
        self.register_buffer("initial_losses", torch.zeros(n))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        if grad_norms is None:
            raise ValueError("GradNorm.update needs the per-task gradient norms")
        losses, g = losses.detach().double(), grad_norms.detach().double()
        if not bool(self.started):
            self.initial_losses.copy_(losses.clamp_min(1e-12))
            self.started.fill_(True)
        ratio = losses / self.initial_losses.double()
        rates = ratio / ratio.mean().clamp_min(1e-12)
        w = self.weights.double()
        mean_norm = (w * g).mean()
        targets = mean_norm * rates ** self.alpha
        ideal = torch.where(g > 1e-12, targets / g.clamp_min(1e-12), w)  # a task without gradient keeps its weight
        ideal = ideal * self.n / ideal.sum()
        new = ((1.0 - self.rate) * w + self.rate * ideal).clamp_min(self.min_weight)
        self.weights.copy_((new * self.n / new.sum()).to(self.weights.dtype))
        return {"weights": self.weights.tolist(), "grad_norms": g.tolist(), "rates": rates.tolist(),
                "targets": targets.tolist()}


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(Weighting):
    """Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses", CVPR 2018: learned
    log-variances s (n,), loss ``sum_i exp(-s_i) L_i + s_i``; the weights are exp(-s_i). The s are parameters,
    trained with the task heads."""

    linear = False

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.log_vars = nn.Parameter(torch.zeros(n))

    def combine(self, losses: Tensor) -> Tensor:
        return (torch.exp(-self.log_vars) * losses + self.log_vars).sum()

    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        self.weights.copy_(torch.exp(-self.log_vars.detach()))
        return {"weights": self.weights.tolist(), "log_vars": self.log_vars.detach().tolist()}


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(Weighting):
    """Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019: w_i = n exp(r_i / T) /
    sum_j exp(r_j / T) with r_i = L_i(k-1) / L_i(k-2), the ratio of the mean losses of the last two windows of
    ``window`` steps (the paper's epochs); w = 1 until two windows are complete."""

    def __init__(self, n: int, *, temperature: float = 2.0, window: int = 50) -> None:
        super().__init__(n)
        self.temperature = _check_positive(temperature, "dwa temperature")
        self.window = check_int(window, name="dwa window", minimum=1)
        self.register_buffer("window_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("window_steps", torch.zeros((), dtype=torch.int64))
        self.register_buffer("history", torch.zeros(2, n, dtype=torch.float64))  # [k-2, k-1] window means
        self.register_buffer("windows", torch.zeros((), dtype=torch.int64))

    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        self.window_sum += losses.detach().double()
        self.window_steps += 1
        if int(self.window_steps) == self.window:
            self.history.copy_(torch.stack([self.history[1], self.window_sum / self.window]))
            self.window_sum.zero_()
            self.window_steps.zero_()
            self.windows += 1
            if int(self.windows) >= 2:
                ratio = self.history[1] / self.history[0].clamp_min(1e-12)
                self.weights.copy_((self.n * torch.softmax(ratio / self.temperature, dim=0)).float())
        return {"weights": self.weights.tolist()}


def build_weighting(name: str, n: int, **options: object) -> Weighting:
    """The weighting ``name`` for n tasks; ``options`` are its keyword hyperparameters (unknown ones are an error)."""
    cls = WEIGHTINGS.get(name)
    try:
        return cls(n, **options)
    except TypeError as exc:
        raise UserInputError(f"weighting '{name}': {exc}.") from None
