"""When the competition of the task weights has balanced: a relative, smoothed criterion on how the weights move.

Per active step t (the weighting moved its weights, :meth:`amalgamate.training.weighting.Weighting.active`) the
relative change of each weight, taken as a log ratio ``c_i(t) = log(w_i(t) / w_i(t-1))``, is smoothed twice by an
exponential moving average, ``e_i <- ema e_i + (1 - ema) c_i`` and ``d_i <- ema d_i + (1 - ema) e_i`` (both started
at the first value). The competition counts as **balanced** once ``drift = mean_i |d_i|`` stays below ``threshold``
for ``window`` consecutive active steps. A steady drift of the weights by v per step gives drift -> |v|.

Why signed log changes, smoothed twice, and not ``mean_i |dw_i| / w_i``: GradNorm's weights take sign-gradient steps
of a fixed size (``lr``), so at the balance point they oscillate around it by a few percent per step for ever, and
any average of ``|dw|`` measures the learning rate, not the balance. Signed changes cancel in the average; log
ratios cancel exactly over an oscillation (a plain ratio +a/w then -a/(w+a) leaves a residue of order (a/w)^2, which
kept a stationary toy problem above 5e-4); and a second smoothing damps the limit cycle of the sign steps by
another factor (1 - ema) / (1 + ema), which one EMA of window ~50 steps did not (a noisy stationary toy problem
stayed near 1e-3, as high as a drifting one). On the toy problems of ``tests/amalgamate/test_amalgamate_balance.py``
(defaults: threshold 5e-4, window 50, ema 0.98) a stationary problem with 10 % noise balances after ~400 steps and one
whose gradient norms drift (sinusoidally, period 400 steps, amplitude 50 %) does not in 800.

:class:`BalanceCriterion` holds the state (a checkpoint stores :meth:`BalanceCriterion.state_dict`, plain numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rsa_toolkit.errors import UserInputError

__all__ = ["BalanceCriterion"]


class BalanceCriterion:
    """``threshold``: the drift (see the module docstring) below which the weights count as still;
    ``window``: for how many consecutive active steps; ``ema``: the smoothing factor in [0, 1)."""

    def __init__(self, *, threshold: float, window: int, ema: float) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
            raise UserInputError(f"balance-threshold must be a number >= 0, got {threshold!r}.")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise UserInputError(f"balance-window must be an integer >= 1, got {window!r}.")
        if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
            raise UserInputError(f"balance-ema must be a number in [0, 1), got {ema!r}.")
        self.threshold, self.window, self.ema = float(threshold), window, float(ema)
        self.average: list[float] | None = None  # e_i
        self.smoothed: list[float] | None = None  # d_i
        self.below = 0  # consecutive active steps with drift < threshold
        self.balanced_at: int | None = None
        self.reason: str | None = None

    @property
    def drift(self) -> float | None:
        return None if self.smoothed is None else sum(abs(d) for d in self.smoothed) / len(self.smoothed)

    def observe(self, before: Sequence[float], after: Sequence[float], *, step: int) -> bool:
        """Record one active step's weights (``before`` -> ``after``) at training step ``step`` (1-based); True on the
        step where the balance is first reached."""
        change = [math.log(a / b) if a > 0 and b > 0 else (0.0 if a == b else math.inf) for b, a in zip(before, after)]
        if self.average is None:
            self.average = list(change)
        else:
            self.average = [self.ema * e + (1.0 - self.ema) * c for e, c in zip(self.average, change)]
        if self.smoothed is None:
            self.smoothed = list(self.average)
        else:
            self.smoothed = [self.ema * d + (1.0 - self.ema) * e for d, e in zip(self.smoothed, self.average)]
        drift = self.drift
        self.below = self.below + 1 if drift is not None and drift < self.threshold else 0
        if self.balanced_at is None and self.below >= self.window:
            self.balanced_at = step
            self.reason = (f"the drift of the weights (mean |EMA^2({self.ema:g}) of log(w(t) / w(t-1))|) "
                           f"stayed below {self.threshold:g} for {self.window} steps; it is {drift:.3g}")
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"average": None if self.average is None else list(self.average),
                "smoothed": None if self.smoothed is None else list(self.smoothed), "below": self.below,
                "balanced_at": self.balanced_at, "reason": self.reason}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.average = None if state["average"] is None else [float(e) for e in state["average"]]
        self.smoothed = None if state["smoothed"] is None else [float(d) for d in state["smoothed"]]
        self.below, self.balanced_at, self.reason = int(state["below"]), state["balanced_at"], state["reason"]
