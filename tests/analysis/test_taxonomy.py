"""The paper-pattern checks on hand-made matrices."""

from __future__ import annotations

import numpy as np
import pytest

from rsa_toolkit.errors import UserInputError
from itertools import permutations

from rsa_toolkit.analysis.taxonomy import (cluster_permutation_test, nearest_neighbours, pattern_checks,
                                           type_contrast)
from rsa_toolkit.tasks import list_tasks

NAMES = ["depth", "distance", "normal", "edge2d", "autoencoding", "scene_class", "semantic"]
TYPES = ["3D", "3D", "3D", "2D", "2D", "semantic", "semantic"]


def _block_matrix(inside: float = 0.8, outside: float = 0.2) -> np.ndarray:
    same = np.equal.outer(TYPES, TYPES)
    s = np.where(same, inside, outside)
    s[0, 1] = s[1, 0] = 0.95  # the two depths
    np.fill_diagonal(s, 1.0)
    return s


def test_type_contrast_by_hand():
    s = _block_matrix()
    contrast = type_contrast(s, NAMES)
    within_3d = (0.95 + 0.8 + 0.8) / 3
    assert contrast["3D"] == pytest.approx((within_3d, 0.2))
    assert contrast["2D"] == pytest.approx((0.8, 0.2)) and contrast["semantic"] == pytest.approx((0.8, 0.2))


def _all_tasks_block(inside: float = 0.8, outside: float = 0.2) -> tuple[np.ndarray, list[str]]:
    tasks = list_tasks()
    types = [t.type for t in tasks]
    s = np.where(np.equal.outer(types, types), inside, outside)
    names = [t.name for t in tasks]
    i, j = names.index("depth_zbuffer"), names.index("depth_euclidean")
    s[i, j] = s[j, i] = 0.95
    np.fill_diagonal(s, 1.0)
    return s, names


def test_checks_hold_on_the_paper_pattern_and_fail_on_its_inverse():
    # 20 tasks: every type's cluster is significant (p < 0.05). On the 7-task matrix a 2-task type cannot be: its
    # smallest possible p is 1/C(7, 2) = 0.048; the two depths (0.95) beat the 2D pair and the semantic pair ties
    # with it, so p = 3/21.
    s, names = _all_tasks_block()
    checks = pattern_checks(s, names)
    assert all(c.holds for c in checks), checks
    assert all(c.p_value is not None and c.p_value < 0.05 for c in checks[:3])
    assert not {c.statement: c.holds for c in pattern_checks(_block_matrix(), NAMES)}["2D tasks cluster"]
    inverted = _block_matrix(inside=0.2, outside=0.8)
    inverted[0, 1] = inverted[1, 0] = 0.1
    checks = pattern_checks(inverted, NAMES)
    assert len(checks) == 4 and not any(c.holds for c in checks)


def test_nearest_neighbours_use_canonical_names():
    nn = nearest_neighbours(_block_matrix(), NAMES)
    assert nn["depth_zbuffer"] == "depth_euclidean" and nn["depth_euclidean"] == "depth_zbuffer"


def test_missing_tasks_skip_their_checks():
    s = _block_matrix()[2:, 2:]
    statements = [c.statement for c in pattern_checks(s, NAMES[2:])]
    assert not any("depth" in x for x in statements) and "3D tasks cluster" not in statements


def test_bad_input():
    with pytest.raises(UserInputError, match="square"):
        pattern_checks(np.ones((2, 3)), ["depth", "normal"])
    with pytest.raises(UserInputError, match="3 names"):
        pattern_checks(np.eye(2), ["depth", "normal", "edge2d"])
    with pytest.raises(UserInputError, match="Unknown task"):
        pattern_checks(np.eye(2), ["depth", "nromal"])


def _brute_force_p(s: np.ndarray, members: list[bool]) -> float:
    """Every permutation of the labels (n! of them), the contrast computed with loops: #{d >= d_obs} / n!."""
    n = len(s)

    def contrast(mask):
        inside = [i for i in range(n) if mask[i]]
        outside = [i for i in range(n) if not mask[i]]
        within = [s[i, j] for i in inside for j in inside if i != j]
        between = [s[i, j] for i in inside for j in outside]
        return sum(within) / len(within) - sum(between) / len(between)

    observed = contrast(members)
    perms = list(permutations(members))
    return sum(contrast(p) >= observed - 1e-12 for p in perms) / len(perms)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_p_equals_brute_force_on_six_tasks(seed):
    rng = np.random.default_rng(seed)
    s = rng.random((6, 6))
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    for members in ([True, True, True, False, False, False], [True, False, True, False, False, False]):
        d, p, exact = cluster_permutation_test(s, np.array(members))
        assert exact
        assert p == pytest.approx(_brute_force_p(s, members), abs=1e-12)
        inside = np.array(members)
        assert d == pytest.approx(s[np.ix_(inside, inside)][~np.eye(inside.sum(), dtype=bool)].mean()
                                  - s[np.ix_(inside, ~inside)].mean())


def test_permutation_p_on_a_named_six_task_matrix_and_monte_carlo():
    names = ["depth", "normal", "curvature", "edge2d", "autoencoding", "denoising"]  # 3 x 3D, 3 x 2D
    rng = np.random.default_rng(5)
    s = rng.random((6, 6))
    s = (s + s.T) / 2
    checks = {c.statement: c for c in pattern_checks(s, names)}
    three_d = checks["3D tasks cluster"]
    assert three_d.exact and three_d.p_value == pytest.approx(_brute_force_p(s, [True] * 3 + [False] * 3))
    assert three_d.holds == (three_d.p_value < 0.05) and "permutation p =" in three_d.detail
    # fewer permutations than label subsets: seeded Monte Carlo, (1 + count) / (1 + n), reproducible
    d, p, exact = cluster_permutation_test(s, np.array([True] * 3 + [False] * 3), n_permutations=7, seed=3)
    assert not exact and p in {(1 + k) / 8 for k in range(8)}
    assert (d, p) == cluster_permutation_test(s, np.array([True] * 3 + [False] * 3), n_permutations=7, seed=3)[:2]
