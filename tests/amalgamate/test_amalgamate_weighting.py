"""Loss-weighting strategies: GradNorm's first-order rule (by hand, and on a constructed two-task problem where one
task trains slower), DWA and uncertainty weighting by hand, the registry and the checks of hyperparameters."""

from __future__ import annotations

import math

import pytest
import torch

from amalgamate.training.weighting import (WEIGHTINGS, DynamicWeightAverage, EqualWeighting, GradNorm, UncertaintyWeighting,
                                  build_weighting)
from rsa_toolkit.errors import UserInputError


def test_registry_names_and_errors():
    assert WEIGHTINGS.names() == ["equal", "gradnorm", "uncertainty", "dwa"]
    with pytest.raises(UserInputError, match="Unknown weighting 'gradnrom'. Did you mean 'gradnorm'"):
        build_weighting("gradnrom", 2)
    with pytest.raises(UserInputError, match="gradnorm alpha must be a number >= 0, got -1"):
        build_weighting("gradnorm", 2, alpha=-1)
    with pytest.raises(UserInputError, match="weighting 'gradnorm': .*unexpected keyword argument 'beta'"):
        build_weighting("gradnorm", 2, beta=1)
    with pytest.raises(UserInputError, match="dwa window must be an integer >= 1"):
        DynamicWeightAverage(2, window=0)


def test_equal_weights_never_move():
    w = EqualWeighting(3)
    assert w.update(torch.tensor([3.0, 1.0, 0.1]))["weights"] == [1.0, 1.0, 1.0]
    assert float(w.combine(torch.tensor([3.0, 1.0, 0.1]))) == pytest.approx(4.1)


def test_gradnorm_rule_by_hand():
    g = GradNorm(2, alpha=1.5, rate=1.0)
    g.update(torch.tensor([1.0, 1.0]), grad_norms=torch.tensor([1.0, 1.0]))  # step 0: L(0) recorded, r = (1, 1)
    assert g.weights.tolist() == pytest.approx([1.0, 1.0])
    decided = g.update(torch.tensor([0.2, 0.6]), grad_norms=torch.tensor([1.0, 2.0]))
    # ratios (0.2, 0.6) -> rates (0.5, 1.5); G = w g = (1, 2), mean 1.5; targets 1.5 r^1.5; w* = target / g
    rates = [0.5, 1.5]
    targets = [1.5 * r ** 1.5 for r in rates]
    ideal = [targets[0] / 1.0, targets[1] / 2.0]
    expected = [2 * v / sum(ideal) for v in ideal]
    assert decided["rates"] == pytest.approx(rates) and decided["targets"] == pytest.approx(targets)
    assert g.weights.tolist() == pytest.approx(expected)
    assert float(g.weights.sum()) == pytest.approx(2.0)
    # with rate 1 the weighted gradient norms are in the target ratio r_i^alpha after the update
    G = g.weights * torch.tensor([1.0, 2.0])
    assert float(G[1] / G[0]) == pytest.approx((1.5 / 0.5) ** 1.5)


def test_gradnorm_smoothing_floor_and_state():
    g = GradNorm(3, rate=0.1, min_weight=0.05)
    g.update(torch.tensor([1.0, 1.0, 1.0]), grad_norms=torch.tensor([1.0, 1.0, 1.0]))
    g.update(torch.tensor([1.0, 1.0, 1e-9]), grad_norms=torch.tensor([1.0, 1.0, 0.0]))  # no gradient: keeps w
    assert float(g.weights.sum()) == pytest.approx(3.0) and (g.weights >= 0.05 - 1e-6).all()
    other = GradNorm(3)
    other.load_state_dict(g.state_dict())
    assert torch.equal(other.weights, g.weights) and torch.equal(other.initial_losses, g.initial_losses)
    assert bool(other.started)
    with pytest.raises(ValueError, match="needs the per-task gradient norms"):
        g.update(torch.tensor([1.0, 1.0, 1.0]))


def test_gradnorm_moves_weight_to_the_slower_task():
    """Two tasks share a layer W; task A (stiff) trains fast, task B (flat) slowly. GradNorm's per-task gradient
    norms are first-order gradients on W (no graph of the gradient is built), and the weight of B grows."""
    torch.manual_seed(0)
    w_shared = torch.nn.Parameter(torch.zeros(4))
    goal_a, goal_b = torch.randn(4), torch.randn(4)
    weighting = GradNorm(2, alpha=1.5, rate=0.2)
    opt = torch.optim.SGD([w_shared], lr=0.05)
    history = []
    for _ in range(30):
        losses = torch.stack([5.0 * ((w_shared - goal_a) ** 2).sum(), 0.05 * ((w_shared - goal_b) ** 2).sum()])
        norms = torch.stack([torch.autograd.grad(losses[i], w_shared, retain_graph=True)[0].norm() for i in range(2)])
        assert not norms.requires_grad  # first order: no double backward
        weighting.update(losses.detach(), grad_norms=norms)
        opt.zero_grad()
        weighting.combine(losses).backward()
        opt.step()
        history.append(weighting.weights.tolist())
    assert history[-1][1] > 1.0 > history[-1][0]
    assert history[-1][1] > history[0][1]
    assert sum(history[-1]) == pytest.approx(2.0)


def test_dwa_by_hand():
    d = DynamicWeightAverage(2, temperature=2.0, window=1)
    assert d.update(torch.tensor([1.0, 1.0]))["weights"] == [1.0, 1.0]  # one window: not enough history
    decided = d.update(torch.tensor([0.5, 1.0]))
    e = [math.exp(0.5 / 2), math.exp(1.0 / 2)]
    assert decided["weights"] == pytest.approx([2 * e[0] / sum(e), 2 * e[1] / sum(e)])
    windowed = DynamicWeightAverage(2, window=2)
    for losses in ([1.0, 1.0], [3.0, 1.0], [1.0, 1.0], [1.0, 1.0]):  # window means (2, 1) then (1, 1)
        decided = windowed.update(torch.tensor(losses))
    e = [math.exp(0.5 / 2), math.exp(1.0 / 2)]
    assert decided["weights"] == pytest.approx([2 * e[0] / sum(e), 2 * e[1] / sum(e)])


def test_uncertainty_weighting_by_hand():
    u = UncertaintyWeighting(2)
    losses = torch.tensor([2.0, 3.0])
    assert float(u.combine(losses).detach()) == pytest.approx(5.0)
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([math.log(2.0), 0.0]))
    assert float(u.combine(losses).detach()) == pytest.approx(2.0 / 2 + math.log(2.0) + 3.0)
    assert u.update(losses)["weights"] == pytest.approx([0.5, 1.0])
    assert [name for name, _ in u.named_parameters()] == ["log_vars"]
