"""AHP affinities (Taskonomy §3.3) and reliability, against hand computations and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rsa_toolkit.analysis.affinity import ahp_affinities, loss_gain, reliability, split_half, win_rates
from rsa_toolkit.errors import UserInputError


def test_win_rates_by_hand_with_a_tie() -> None:
    losses = np.array([[1.0, 2.0, 3.0, 4.0],
                       [2.0, 2.0, 1.0, 5.0]])
    w = win_rates(losses)
    # source 0 beats 1 on image 0 (1 < 2) and image 3 (4 < 5), loses image 2, ties image 1
    assert w[0, 1] == pytest.approx((2 + 0.5) / 4)
    assert w[1, 0] == pytest.approx((1 + 0.5) / 4)
    assert np.allclose(np.diag(w), 0.5)
    assert np.allclose(w + w.T, 1.0)


def test_win_rates_equal_a_brute_force_loop() -> None:
    rng = np.random.default_rng(0)
    losses = rng.integers(0, 4, size=(5, 30)).astype(float)  # many ties
    w = win_rates(losses)
    for i in range(5):
        for j in range(5):
            expected = np.mean([1.0 if a < b else 0.5 if a == b else 0.0 for a, b in zip(losses[i], losses[j])])
            assert w[i, j] == pytest.approx(expected)


def test_ahp_recovers_the_ratios_of_a_consistent_matrix() -> None:
    # if W'[i, j] = a_i / a_j exactly, the principal eigenvector is a (up to scale)
    a = np.array([0.1, 0.2, 0.3, 0.4])
    ratio = a[:, None] / a[None, :]
    w = ratio / (1 + ratio)  # W / W^T = ratio when W + W^T = 1
    vals, vecs = np.linalg.eig(w / w.T)
    v = np.abs(np.real(vecs[:, np.argmax(np.real(vals))]))
    assert np.allclose(v / v.sum(), a)


def test_ahp_orders_sources_by_how_often_they_win() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(200)
    losses = np.stack([base + 0.3, base + 0.1, base, base + 0.2]) + 0.05 * rng.random((4, 200))
    aff = ahp_affinities(losses)
    assert aff.sum() == pytest.approx(1.0)
    assert list(np.argsort(-aff)) == [2, 1, 3, 0]
    # power iteration on the clipped reciprocal matrix gives the same vector
    w = np.clip(win_rates(losses), 0.001, 0.999)
    m = w / w.T
    v = np.ones(4)
    for _ in range(500):
        v = m @ v
        v /= v.sum()
    assert np.allclose(aff, v, atol=1e-10)


def test_loss_gain_and_reliability() -> None:
    assert np.allclose(loss_gain(np.array([[1.0, 3.0], [4.0, 4.0]]), 4.0), [0.5, 0.0])
    repeats = np.array([[1, 2, 3, 4], [1, 3, 2, 4], [4, 3, 2, 1]], dtype=float)
    pairs = [stats.spearmanr(repeats[a], repeats[b]).statistic for a, b in [(0, 1), (0, 2), (1, 2)]]
    assert reliability(repeats) == pytest.approx(np.mean(pairs))
    with pytest.raises(UserInputError, match=r"repeats must be \(R >= 2 repeats"):
        reliability(np.ones((1, 5)))


def test_split_half_is_high_for_a_clear_truth_and_seeded() -> None:
    rng = np.random.default_rng(2)
    losses = np.arange(6)[:, None] * 0.1 + rng.random((6, 400))
    r = split_half(losses, seed=3)
    assert r == split_half(losses, seed=3)
    assert 0.5 < r <= 1.0


def test_bad_losses_are_one_line() -> None:
    with pytest.raises(UserInputError, match=r"losses must be \(S >= 2 sources"):
        win_rates(np.ones(5))
    with pytest.raises(UserInputError, match="losses must be finite"):
        ahp_affinities(np.array([[1.0, np.nan], [1.0, 2.0]]))
