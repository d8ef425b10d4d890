"""The balance criterion of the competition: by hand on a few steps, reached on a toy problem whose gradients are
stationary (with noise) and not reached when they drift, and its state round trip."""

from __future__ import annotations

import math

import pytest
import torch

from amalgamate.training.balance import BalanceCriterion
from amalgamate.training.weighting import GradNorm
from rsa_toolkit.errors import UserInputError


def test_criterion_by_hand():
    """ema 0.5, window 2, threshold 0.01. Weights (1, 1) -> (2, 1): c = (log 2, 0), e = d = (0.693147, 0): drift
    0.346574. Then (2, 1) -> (2, 1): c = 0, e = (0.346574, 0), d = 0.5 * 0.693147 + 0.5 * 0.346574 = 0.519860: drift
    0.259930. Still weights, five more steps: e halves, d = (d + e) / 2."""
    c = BalanceCriterion(threshold=0.01, window=2, ema=0.5)
    assert not c.observe([1.0, 1.0], [2.0, 1.0], step=1)
    assert c.drift == pytest.approx(math.log(2) / 2)
    c.observe([2.0, 1.0], [2.0, 1.0], step=2)
    assert c.drift == pytest.approx((0.5 * math.log(2) + 0.25 * math.log(2)) / 2)
    e, d = math.log(2) / 2, 0.75 * math.log(2)
    step, reached = 2, None
    while reached is None:
        step += 1
        e, d = e / 2, (d + e / 2) / 2
        if c.observe([2.0, 1.0], [2.0, 1.0], step=step):
            reached = step
        assert c.drift == pytest.approx(d / 2)
    # drift < 0.01 first at the step where d / 2 < 0.01, and it must stay so for a second step
    first = next(s for s in range(3, 50) if _drift_after(s) < 0.01)
    assert reached == first + 1 and c.balanced_at == reached and "stayed below 0.01 for 2 steps" in c.reason


def _drift_after(step: int) -> float:
    e, d = math.log(2) / 2, 0.75 * math.log(2)
    for _ in range(3, step + 1):
        e, d = e / 2, (d + e / 2) / 2
    return d / 2


def _toy(drift_amplitude: float, steps: int = 800, noise: float = 0.1) -> BalanceCriterion:
    """GradNorm (defaults) on two tasks with constant losses (0.5, 0.8) and gradient norms (1 + s, 1 - s), times 10 %
    noise; s = amplitude * sin(2 pi t / 400)."""
    torch.manual_seed(0)
    g = GradNorm(2, warmup=5)
    criterion = BalanceCriterion(threshold=5e-4, window=50, ema=0.98)  # the config's defaults
    for t in range(steps):
        s = drift_amplitude * math.sin(2 * math.pi * t / 400)
        losses = torch.tensor([0.5, 0.8]) * (1 + noise * torch.randn(2))
        norms = torch.tensor([1.0 + s, 1.0 - s]) * (1 + noise * torch.randn(2))
        active, before = g.active(), g.weights.clone()
        g.update(losses, grad_norms=norms)
        if active:
            criterion.observe(before.tolist(), g.weights.tolist(), step=t + 1)
    return criterion


def test_reached_with_stationary_gradients_and_not_with_drifting_ones():
    stationary = _toy(0.0)
    assert stationary.balanced_at is not None and stationary.balanced_at < 800
    drifting = _toy(0.5)
    assert drifting.balanced_at is None and drifting.drift is not None


def test_state_round_trip_and_checks():
    a = BalanceCriterion(threshold=0.1, window=3, ema=0.9)
    a.observe([1.0, 1.0], [1.1, 0.9], step=1)
    b = BalanceCriterion(threshold=0.1, window=3, ema=0.9)
    b.load_state_dict(a.state_dict())
    assert a.observe([1.1, 0.9], [1.0, 1.0], step=2) == b.observe([1.1, 0.9], [1.0, 1.0], step=2)
    assert a.state_dict() == b.state_dict()
    with pytest.raises(UserInputError, match="balance-ema must be a number in \\[0, 1\\), got 1"):
        BalanceCriterion(threshold=0.1, window=3, ema=1)
    with pytest.raises(UserInputError, match="balance-window must be an integer >= 1, got 0"):
        BalanceCriterion(threshold=0.1, window=0, ema=0.5)
