"""The paper-pattern checks on hand-made matrices."""

from __future__ import annotations

import numpy as np
import pytest

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.analysis.taxonomy import nearest_neighbours, pattern_checks, type_contrast

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


def test_checks_hold_on_the_paper_pattern_and_fail_on_its_inverse():
    assert all(c.holds for c in pattern_checks(_block_matrix(), NAMES))
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
