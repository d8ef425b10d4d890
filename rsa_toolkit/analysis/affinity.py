"""Transfer affinities as Taskonomy computes them, and how much a transfer truth can be trusted.

Ordinal normalisation by the analytic hierarchy process (AHP; Zamir et al., "Taskonomy", CVPR 2018, §3.3). For one
target and S sources with per-image held-out losses ``L`` (S, M):

    W[i, j]  = fraction of the M images on which source i's readout has a lower loss than source j's
               (a tie counts half), clipped to [0.001, 0.999]
    W'[i, j] = W[i, j] / W[j, i]                     (a reciprocal "how many times better" matrix)
    a        = principal eigenvector of W', scaled to sum to 1

so a source that wins against many others on most images gets a large affinity, whatever the loss's units. The
plain loss gain (the baseline's loss minus the source's, over the baseline's) sits beside it as a second truth.

Reliability: a truth measured twice (two readout seeds, or two training splits) agrees with itself only so far. The
Spearman correlation between repeats of one target's column is the *ceiling* against which any predictor's Spearman
with that column is read; :func:`reliability` gives it per target, and :func:`split_half` the split-half form with the
Spearman-Brown correction.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from rsa_toolkit.errors import UserInputError

__all__ = ["win_rates", "ahp_affinities", "loss_gain", "reliability", "split_half"]

_CLIP = (0.001, 0.999)  # Taskonomy's clipping of win rates, so that W' stays finite


def win_rates(losses: np.ndarray) -> np.ndarray:
    """(S, S) fraction of images on which source i beats source j (lower loss; a tie counts half).

    ``losses``: (S, M) per-image held-out losses of S sources' readouts for one target.
    """
    losses = _check_losses(losses)
    s = losses.shape[0]
    w = np.empty((s, s), dtype=np.float64)
    for i in range(s):
        lower = (losses[i][None, :] < losses).mean(axis=1)
        equal = (losses[i][None, :] == losses).mean(axis=1)
        w[i] = lower + 0.5 * equal
    return w


def ahp_affinities(losses: np.ndarray) -> np.ndarray:
    """(S,) AHP affinities of S sources for one target from their per-image losses (S, M); they sum to 1."""
    w = np.clip(win_rates(losses), *_CLIP)
    reciprocal = w / w.T
    values, vectors = np.linalg.eig(reciprocal)
    principal = np.real(vectors[:, int(np.argmax(np.real(values)))])
    principal = np.abs(principal)  # Perron vector of a positive matrix: one sign; eig may return it negated
    return principal / principal.sum()


def loss_gain(losses: np.ndarray, baseline: np.ndarray | float) -> np.ndarray:
    """(S,) relative gain over a baseline: (baseline - mean loss) / baseline. ``losses``: (S, M) or (S,)."""
    losses = np.asarray(losses, dtype=np.float64)
    mean = losses.mean(axis=1) if losses.ndim == 2 else losses
    base = float(np.mean(baseline))
    if not base > 0:
        raise UserInputError(f"baseline loss must be positive, got {base!r}.")
    return (base - mean) / base


def reliability(repeats: np.ndarray) -> float:
    """Mean Spearman correlation over all pairs of repeats of one truth column. ``repeats``: (R, S), R >= 2.

    NaN when a repeat is constant (no ranking to agree on).
    """
    repeats = np.asarray(repeats, dtype=np.float64)
    if repeats.ndim != 2 or repeats.shape[0] < 2 or repeats.shape[1] < 3:
        raise UserInputError(f"repeats must be (R >= 2 repeats, S >= 3 sources), got shape {repeats.shape}.")
    rhos = [_spearman(repeats[a], repeats[b]) for a, b in itertools.combinations(range(repeats.shape[0]), 2)]
    return float(np.mean(rhos))


def split_half(losses: np.ndarray, *, seed: int = 0, n_splits: int = 20) -> float:
    """Split-half reliability of the AHP column of one target, Spearman-Brown corrected, averaged over random
    halvings of the M images (seeded). ``losses``: (S, M)."""
    losses = _check_losses(losses)
    rng = np.random.default_rng(seed)
    m = losses.shape[1]
    if m < 4:
        raise UserInputError(f"split-half reliability needs at least 4 images, got {m}.")
    rhos = []
    for _ in range(n_splits):
        perm = rng.permutation(m)
        a, b = perm[: m // 2], perm[m // 2:]
        r = _spearman(ahp_affinities(losses[:, a]), ahp_affinities(losses[:, b]))
        rhos.append(2 * r / (1 + r) if np.isfinite(r) and r > -1 else r)
    return float(np.nanmean(rhos))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def _check_losses(losses: np.ndarray) -> np.ndarray:
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 2 or losses.shape[0] < 2 or losses.shape[1] < 1:
        raise UserInputError(f"losses must be (S >= 2 sources, M >= 1 images), got shape {losses.shape}.")
    if not np.isfinite(losses).all():
        raise UserInputError("losses must be finite; a readout diverged or a file is damaged.")
    return losses
