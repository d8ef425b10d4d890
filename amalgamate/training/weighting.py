"""Loss-weighting strategies for the n task losses, behind one interface (:class:`Weighting`, registry
:data:`WEIGHTINGS`).

Each strategy holds n weights w (a buffer; they sum to n where the method says so), turns the task losses L (n,) into
one training loss with :meth:`Weighting.combine` (default ``sum_i w_i L_i``), and decides new weights in its one
abstract method :meth:`Weighting.update`, which returns what it decided, for the log. State (weights, initial
losses, windows, learned log-variances) lives in buffers and parameters, so ``state_dict`` checkpoints it.

==============  ===================================================================================================
``equal``       w_i = 1, fixed (plain KD)
``gradnorm``    GradNorm (Chen et al., ICML 2018, Alg. 1): w takes gradient steps on sum_i |w_i g_i - Gbar r_i^a|,
                first order (no double backward), see :class:`GradNorm`
``uncertainty`` homoscedastic uncertainty (Kendall et al., CVPR 2018): ``sum_i exp(-s_i) L_i + s_i``, s learned
``dwa``         dynamic weight average (Liu et al., CVPR 2019): ``w_i = n softmax_i(r_i / T)``,
                ``r_i = L_i(k-1) / L_i(k-2)`` over windows of steps
``imtl-l``      IMTL-L (Liu et al., ICLR 2021): learned loss scales, ``sum_i exp(s_i) L_i - s_i``
``famo``        FAMO (Liu et al., NeurIPS 2023): softmax logits moved by the tasks' log-loss decrease
==============  ===================================================================================================

Where the weights act: the trainer applies them on the **shared encoder's** path only (the collaboration loss
``sum_i w_i L_i``); each task head is trained on its own unweighted loss, which a constant w_i could only rescale
(AdamW cancels the scale; see :mod:`amalgamate.training.trainer`). Learned weight parameters (``uncertainty``,
``imtl-l``) are trained on :meth:`Weighting.combine` of the detached losses.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from rsa_toolkit.registry import Registry
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int, check_number

__all__ = ["Weighting", "WEIGHTINGS", "EqualWeighting", "GradNorm", "UncertaintyWeighting", "DynamicWeightAverage",
           "IMTLL", "FAMO", "build_weighting"]

WEIGHTINGS: Registry[type["Weighting"]] = Registry("weighting")


class Weighting(nn.Module, metaclass=abc.ABCMeta):
    """n task weights and the rule that moves them. ``needs_grad_norms``: :meth:`update` wants the per-task gradient
    norms ``||grad_W L_i||`` on the last shared layer's weight W. ``linear``: :meth:`combine` is ``sum_i w_i L_i``
    (descriptive: no learned weight parameters). ``freezes_when_balanced``: once the balance criterion is met, the
    weights stay fixed and training goes on in SOKA's collaboration regime (``stop_competition_when_balanced``).
    That alternation is the seed's rule for its GradNorm competition; the other balancers, as published, move their
    weights to the end, and their criterion is only logged. (Learned-scale balancers move a weight by at most about
    the optimiser's rate per step, below the 5e-4 threshold from the start: the rule froze them after 50 steps.)"""

    needs_grad_norms = False
    linear = True
    freezes_when_balanced = False

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = check_int(n, name="n", minimum=1, form="a weighting needs the number of tasks (an integer >= 1), "
                                                         "got {value!r}.")
        self.register_buffer("weights", torch.ones(n))

    def combine(self, losses: Tensor) -> Tensor:
        """The weighted training loss from the task losses (n,): ``sum_i w_i L_i``, plus the terms that train learned
        weights (their parameters' only loss)."""
        return (self.weights * losses).sum()

    def active(self) -> bool:
        """Whether this step's :meth:`update` may move the weights (False during a warm-up that only gathers
        statistics, and between the decisions of a balancer that decides once per window); the balance criterion
        counts active steps only."""
        return True

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
    """GradNorm (Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing", ICML 2018, Alg. 1).

    Notation: g_i = ||grad_W L_i|| the gradient norm of task i's (unweighted) loss on the last shared layer's weight
    W, G_i = w_i g_i, Gbar = mean_i G_i, training rates r_i = (L_i(t) / L_i(0)) / mean_j (L_j(t) / L_j(0)). The
    weights are parameters that take gradient steps on

        L_grad = sum_i |G_i - T_i|,   T_i = Gbar r_i^alpha   (held constant: no gradient through T),

    whose gradient is ``dL_grad / dw_i = g_i sign(G_i - T_i)`` (first order: no double backward). One step of
    plain gradient descent with rate ``lr`` on ``L_grad / Gbar`` (Gbar held constant like T, so the step does not
    depend on the arbitrary scale of grad_W: the paper trains w with the network's Adam, which is scale-free too):

        w_i <- w_i - lr (g_i / Gbar) sign(G_i - T_i),   then w <- max(w, min_weight),  w <- n w / sum_j w_j.

    ``lr = 0.025`` by default (the order of the step sizes in the paper's examples); ``scale_free=False`` takes the
    paper's raw gradient ``g_i sign(.)`` instead. L_i(0) is the mean of the losses of the first ``warmup`` updates
    (default 20; the first random-init batch is a noisy, inflated reference), and the weights do not move before it
    is set (:meth:`active` is False until then). A task that trains more slowly (larger r_i) gets a larger weight.
    """

    needs_grad_norms = True
    freezes_when_balanced = True

    def __init__(self, n: int, *, alpha: float = 1.5, lr: float = 0.025, warmup: int = 20,
                 min_weight: float = 0.05, scale_free: bool = True) -> None:
        super().__init__(n)
        self.alpha = check_number(alpha, name="gradnorm alpha", minimum=0)
        check_int(warmup, name="gradnorm warmup", minimum=1,
                  expected="an integer >= 1 (steps averaged for L_i(0))")
        self.warmup, self.scale_free = warmup, bool(scale_free)
        self.lr = _check_positive(lr, "gradnorm lr")
        self.min_weight = _check_positive(min_weight, "gradnorm min_weight")
        if self.min_weight >= 1:
            raise UserInputError(f"gradnorm min_weight must be below 1 (the mean weight), got {min_weight!r}.")
        self.register_buffer("initial_losses", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("warmup_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("warmup_steps", torch.zeros((), dtype=torch.int64))

    def active(self) -> bool:
        return int(self.warmup_steps) >= self.warmup

    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        if grad_norms is None:
            raise ValueError("GradNorm.update needs the per-task gradient norms")
        losses = losses.detach().to(self.warmup_sum)
        g = grad_norms.detach().to(self.warmup_sum)
        if not self.active():  # warm-up: average the losses for L_i(0); the weights stay
            self.warmup_sum += losses
            self.warmup_steps += 1
            if self.active():
                self.initial_losses.copy_((self.warmup_sum / self.warmup).clamp_min(1e-12))
            return {"weights": self.weights.tolist(), "grad_norms": g.tolist()}
        ratio = losses / self.initial_losses
        rates = ratio / ratio.mean().clamp_min(1e-12)
        w = self.weights.to(g)
        G = w * g
        mean_norm = G.mean()
        targets = mean_norm * rates ** self.alpha  # constants: no gradient flows through them
        grad = g * torch.sign(G - targets)  # d/dw_i sum_j |w_j g_j - T_j|
        if self.scale_free:
            grad = grad / mean_norm.clamp_min(1e-12)
        new = (w - self.lr * grad).clamp_min(self.min_weight)
        self.weights.copy_((new * self.n / new.sum()).to(self.weights.dtype))
        return {"weights": self.weights.tolist(), "grad_norms": g.tolist(), "rates": rates.tolist(),
                "targets": targets.tolist(), "grad_loss": float((G - targets).abs().sum())}


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

    def active(self) -> bool:
        # Only a step that closes a window decides the weights; between decisions they are held by design, and
        # counting those held steps as "still" met the balance criterion 50 steps after the first decision in every
        # run. Before two windows are complete, w = 1 by definition, which is no balance either.
        return int(self.windows) >= 1 and int(self.window_steps) == self.window - 1

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


@WEIGHTINGS.register("imtl-l")
class IMTLL(Weighting):
    """IMTL-L, the loss-balance part of Impartial Multi-Task Learning (Liu et al., "Towards Impartial Multi-task
    Learning", ICLR 2021, Sec. 3.2): learned scales s (n,), loss ``sum_i exp(s_i) L_i - s_i``. Its gradient in s_i
    is ``exp(s_i) L_i - 1``, so each scaled loss is driven to 1 (``exp(s_i) = 1 / L_i`` at the optimum). The s are
    parameters, trained with the heads' optimiser on the detached losses; the weights are ``exp(s_i)``."""

    linear = False

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.scales = nn.Parameter(torch.zeros(n))

    def combine(self, losses: Tensor) -> Tensor:
        return (torch.exp(self.scales) * losses - self.scales).sum()

    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        self.weights.copy_(torch.exp(self.scales.detach()))
        return {"weights": self.weights.tolist(), "scales": self.scales.detach().tolist()}


@WEIGHTINGS.register("famo")
class FAMO(Weighting):
    """FAMO (Liu, Liu, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023, Alg. 1).

    Logits xi (n,), z = softmax(xi). The model's loss is ``sum_i z_i log L_i / c`` with ``c = sum_j z_j / L_j``
    (constant), i.e. the linear weights ``w_i = n (z_i / L_i) / sum_j (z_j / L_j)`` (the paper's sum to 1; times n
    here, like every weighting). After a step, with the log-loss decrease ``delta_i = log L_i(t-1) - log L_i(t)``,
    the logits take one Adam step (``lr`` 0.025, betas (0.9, 0.999), L2 decay ``gamma`` 0.01: the paper's
    defaults) on the gradient ``d = J_softmax(xi)^T delta``, ``d_j = z_j (delta_j - sum_i z_i delta_i)``: a task
    whose loss fell more loses weight. delta uses this step's losses against the previous step's (the next batch's,
    not a second forward on the same batch: no extra pass); the first update only records the losses. Losses are
    shifted by ``eps`` (1e-8) before the log (our distillation losses have minimum 0)."""

    def __init__(self, n: int, *, lr: float = 0.025, gamma: float = 0.01, eps: float = 1e-8) -> None:
        super().__init__(n)
        self.lr = _check_positive(lr, "famo lr")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma < 0:
            raise UserInputError(f"famo gamma must be a number >= 0, got {gamma!r}.")
        self.gamma = float(gamma)
        self.eps = _check_positive(eps, "famo eps")
        self.register_buffer("logits", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("previous", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("adam_m", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("adam_v", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    def update(self, losses: Tensor, *, grad_norms: Tensor | None = None) -> dict[str, list[float]]:
        losses = losses.detach().to(self.logits).clamp_min(0.0) + self.eps
        decided: dict[str, list[float]] = {}
        if int(self.updates) > 0:
            delta = torch.log(self.previous) - torch.log(losses)
            z = torch.softmax(self.logits, dim=0)
            d = z * (delta - (z * delta).sum()) + self.gamma * self.logits  # Adam's weight_decay: L2 on xi
            t = int(self.updates)  # Adam's step count (the first logit step is t = 1)
            beta1, beta2, adam_eps = 0.9, 0.999, 1e-8
            self.adam_m.mul_(beta1).add_((1 - beta1) * d)
            self.adam_v.mul_(beta2).add_((1 - beta2) * d * d)
            m_hat = self.adam_m / (1 - beta1 ** t)
            v_hat = self.adam_v / (1 - beta2 ** t)
            self.logits.sub_(self.lr * m_hat / (v_hat.sqrt() + adam_eps))
            decided["delta"] = delta.tolist()
        self.previous.copy_(losses)
        self.updates += 1
        z = torch.softmax(self.logits, dim=0)
        w = (z / losses) / (z / losses).sum() * self.n
        self.weights.copy_(w.to(self.weights.dtype))
        return {"weights": self.weights.tolist(), "logits": self.logits.tolist(), **decided}


def build_weighting(name: str, n: int, **options: object) -> Weighting:
    """The weighting ``name`` for n tasks; ``options`` are its keyword hyperparameters (unknown ones are an error)."""
    cls = WEIGHTINGS.get(name)
    try:
        return cls(n, **options)
    except TypeError as exc:
        raise UserInputError(f"weighting '{name}': {exc}.") from None
