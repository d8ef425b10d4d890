"""Loss-weighting strategies: GradNorm's Alg. 1 step (by hand, its warm-up, its renormalisation and floor, and on a
constructed two-task problem where one task trains slower), DWA, uncertainty, IMTL-L and FAMO by hand, the registry
and the checks of hyperparameters."""

from __future__ import annotations

import math

import pytest
import torch

from amalgamate.training.weighting import (FAMO, IMTLL, WEIGHTINGS, DynamicWeightAverage, EqualWeighting, GradNorm,
                                           UncertaintyWeighting, build_weighting)
from rsa_toolkit.errors import UserInputError


def test_registry_names_and_errors():
    assert WEIGHTINGS.names() == ["equal", "gradnorm", "uncertainty", "dwa", "imtl-l", "famo"]
    with pytest.raises(UserInputError, match="Unknown weighting 'gradnrom'. Did you mean 'gradnorm'"):
        build_weighting("gradnrom", 2)
    with pytest.raises(UserInputError, match="gradnorm alpha must be a number >= 0, got -1"):
        build_weighting("gradnorm", 2, alpha=-1)
    with pytest.raises(UserInputError, match="weighting 'gradnorm': .*unexpected keyword argument 'beta'"):
        build_weighting("gradnorm", 2, beta=1)
    with pytest.raises(UserInputError, match="dwa window must be an integer >= 1"):
        DynamicWeightAverage(2, window=0)
    with pytest.raises(UserInputError, match="gradnorm warmup must be an integer >= 1"):
        GradNorm(2, warmup=0)
    with pytest.raises(UserInputError, match="gradnorm lr must be a positive number, got 0"):
        GradNorm(2, lr=0)
    with pytest.raises(UserInputError, match="famo gamma must be a number >= 0"):
        FAMO(2, gamma=-1)


def test_equal_weights_never_move():
    w = EqualWeighting(3)
    assert w.update(torch.tensor([3.0, 1.0, 0.1]))["weights"] == [1.0, 1.0, 1.0]
    assert float(w.combine(torch.tensor([3.0, 1.0, 0.1]))) == pytest.approx(4.1)


def _warm(g: GradNorm, *losses: list[float]) -> None:
    for value in losses:
        g.update(torch.tensor(value), grad_norms=torch.tensor([1.0] * len(value)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradnorm_step_by_hand(dtype):
    """Alg. 1 on two tasks, every number written out.

    warm-up (2 steps): losses (1, 2) and (3, 2) -> L(0) = (2, 2); the weights stay (1, 1).
    step: L = (1, 1.5), g = (2, 1):  L / L(0) = (0.5, 0.75), mean 0.625 -> r = (0.8, 1.2)
          G = w g = (2, 1), Gbar = 1.5;  T = 1.5 r^1.5 = (1.0733126, 1.9718012)
          dL_grad/dw = g sign(G - T) = (2 * (+1), 1 * (-1)) = (2, -1)
      scale-free (default): step on L_grad / Gbar: (2, -1) / 1.5 = (1.3333, -0.6667)
          w = (1, 1) - 0.1 (1.3333, -0.6667) = (0.866667, 1.066667), sum 1.933333 -> x 2 / sum = (0.896552, 1.103448)
      raw (scale_free=False): w = (1, 1) - 0.1 (2, -1) = (0.8, 1.1), sum 1.9 -> (0.842105, 1.157895)
    """
    for scale_free, expected in ((True, [0.896552, 1.103448]), (False, [0.842105, 1.157895])):
        g = GradNorm(2, alpha=1.5, lr=0.1, warmup=2, scale_free=scale_free).to(dtype)
        _warm(g, [1.0, 2.0], [3.0, 2.0])
        assert g.weights.tolist() == [1.0, 1.0] and g.initial_losses.tolist() == [2.0, 2.0]
        decided = g.update(torch.tensor([1.0, 1.5], dtype=dtype), grad_norms=torch.tensor([2.0, 1.0], dtype=dtype))
        assert decided["rates"] == pytest.approx([0.8, 1.2])
        assert decided["targets"] == pytest.approx([1.0733126, 1.9718012], rel=1e-6)
        assert g.weights.tolist() == pytest.approx(expected, rel=1e-5)
        assert float(g.weights.sum()) == pytest.approx(2.0)


def test_gradnorm_warmup_averages_the_initial_losses_and_moves_nothing():
    g = GradNorm(2, warmup=3, lr=0.5)
    for i, losses in enumerate(([4.0, 1.0], [2.0, 1.0], [3.0, 4.0])):
        assert not g.active()
        decided = g.update(torch.tensor(losses), grad_norms=torch.tensor([5.0, 0.1]))  # very unequal norms
        assert g.weights.tolist() == [1.0, 1.0] and "rates" not in decided
    assert g.active() and g.initial_losses.tolist() == pytest.approx([3.0, 2.0])  # the mean, not the first batch
    g.update(torch.tensor([3.0, 2.0]), grad_norms=torch.tensor([5.0, 0.1]))
    assert g.weights[0] < 1.0 < g.weights[1]  # now it moves: the task with the large gradient norm loses weight


def test_gradnorm_renormalises_after_the_floor():
    """raw step: w = (1, 1), L = L(0) -> r = (1, 1); g = (3, 1): G = (3, 1), Gbar = 2, T = (2, 2), gradient (3, -1);
    w - 1.0 (3, -1) = (-2, 2) -> floor 0.3 -> (0.3, 2) -> x 2 / 2.3 = (0.2608696, 1.7391304)."""
    g = GradNorm(2, lr=1.0, warmup=1, min_weight=0.3, scale_free=False)
    _warm(g, [1.0, 1.0])
    g.update(torch.tensor([1.0, 1.0]), grad_norms=torch.tensor([3.0, 1.0]))
    assert g.weights.tolist() == pytest.approx([0.2608696, 1.7391304], rel=1e-6)
    assert float(g.weights.sum()) == pytest.approx(2.0)


def test_gradnorm_state_round_trip():
    g = GradNorm(3, warmup=2)
    _warm(g, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    g.update(torch.tensor([1.0, 1.0, 1.0]), grad_norms=torch.tensor([1.0, 2.0, 0.5]))
    other = GradNorm(3, warmup=2)
    other.load_state_dict(g.state_dict())
    assert torch.equal(other.weights, g.weights) and torch.equal(other.initial_losses, g.initial_losses)
    assert other.active()
    with pytest.raises(ValueError, match="needs the per-task gradient norms"):
        g.update(torch.tensor([1.0, 1.0, 1.0]))


def test_gradnorm_moves_weight_to_the_slower_task():
    """Two tasks share a layer W; task A (stiff) trains fast, task B (flat) slowly. GradNorm's per-task gradient
    norms are first-order gradients on W (no graph of the gradient is built), and the weight of B grows."""
    torch.manual_seed(0)
    w_shared = torch.nn.Parameter(torch.zeros(4))
    goal_a, goal_b = torch.randn(4), torch.randn(4)
    weighting = GradNorm(2, alpha=1.5, lr=0.05, warmup=3)
    opt = torch.optim.SGD([w_shared], lr=0.05)
    history = []
    for _ in range(40):
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


def test_dwa_is_active_only_on_the_steps_that_decide():
    """Before two windows are complete DWA's weights are 1 by definition, and between its decisions they are held:
    the balance criterion must read neither as a balance (the first froze DWA at w = 1 after 50 steps; the second
    logged every DWA run as balanced 50 steps after its first decision)."""
    d = DynamicWeightAverage(2, window=2)
    seen, moved = [], []
    for k in range(8):
        seen.append(d.active())
        before = d.weights.clone()
        d.update(torch.tensor([1.0 + k, 2.0]))  # task 0's loss rises, so each decision moves the weights
        moved.append(not torch.equal(before, d.weights))
    assert seen == [False, False, False, True, False, True, False, True]
    assert moved == seen


def test_only_gradnorm_freezes_when_balanced():
    assert [name for name in WEIGHTINGS.names() if WEIGHTINGS.get(name).freezes_when_balanced] == ["gradnorm"]


def test_uncertainty_weighting_by_hand():
    u = UncertaintyWeighting(2)
    losses = torch.tensor([2.0, 3.0])
    assert float(u.combine(losses).detach()) == pytest.approx(5.0)
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([math.log(2.0), 0.0]))
    assert float(u.combine(losses).detach()) == pytest.approx(2.0 / 2 + math.log(2.0) + 3.0)
    assert u.update(losses)["weights"] == pytest.approx([0.5, 1.0])
    assert [name for name, _ in u.named_parameters()] == ["log_vars"]


def test_imtl_l_by_hand():
    """IMTL-L: loss sum_i e^{s_i} L_i - s_i; d/ds_i = e^{s_i} L_i - 1. From s = 0 with L = (2, 0.5): loss 2.5,
    gradient (1, -0.5); one SGD step of 0.1: s = (-0.1, 0.05), weights e^s = (0.904837, 1.051271)."""
    m = IMTLL(2)
    losses = torch.tensor([2.0, 0.5])
    loss = m.combine(losses)
    assert float(loss.detach()) == pytest.approx(2.5)
    loss.backward()
    assert m.scales.grad.tolist() == pytest.approx([1.0, -0.5])
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    assert m.update(losses)["weights"] == pytest.approx([0.904837, 1.051271], rel=1e-6)
    assert [name for name, _ in m.named_parameters()] == ["scales"] and not m.linear


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_famo_by_hand(dtype):
    """FAMO, two tasks, every number written out.

    update 1, L = (1, 2): logits 0, z = (0.5, 0.5); w = 2 (z / L) / sum(z / L) = 2 (0.5, 0.25) / 0.75 = (4/3, 2/3).
    update 2, L = (0.5, 1.8): delta = log L(1) - log L(2) = (log 2, log(2 / 1.8)) = (0.693147, 0.105361);
      z . delta = 0.399254; d = z (delta - z . delta) = (0.146947, -0.146947) (+ gamma * logits = 0);
      Adam's first step: m_hat = d, v_hat = d^2 -> logits = -0.025 d / |d| = (-0.025, 0.025);
      z = softmax = (0.487503, 0.512497); z / L = (0.975005, 0.284721); w = 2 (z / L) / 1.259726 = (1.547966, 0.452034).
    """
    f = FAMO(2).to(dtype)
    assert f.update(torch.tensor([1.0, 2.0], dtype=dtype))["weights"] == pytest.approx([4 / 3, 2 / 3], rel=1e-6)
    decided = f.update(torch.tensor([0.5, 1.8], dtype=dtype))
    assert decided["delta"] == pytest.approx([0.693147, 0.105361], rel=1e-5)
    assert f.logits.tolist() == pytest.approx([-0.025, 0.025], rel=1e-5)
    assert decided["weights"] == pytest.approx([1.547966, 0.452034], rel=1e-5)
    assert float(f.weights.sum()) == pytest.approx(2.0)
    other = FAMO(2).to(dtype)
    other.load_state_dict(f.state_dict())
    a, b = f.update(torch.tensor([0.4, 1.7], dtype=dtype)), other.update(torch.tensor([0.4, 1.7], dtype=dtype))
    assert a["weights"] == b["weights"]
