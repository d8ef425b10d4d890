"""Statistics of the experiments against scipy.stats (t interval, paired t-test, Wilcoxon) and Holm's correction by
hand, with the verdict strings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from amalgamate.evaluation.statistics import holm, paired_test, summary, verdict


def test_summary_against_scipy():
    x = np.array([0.81, 0.84, 0.79, 0.88, 0.83])
    s = summary(x)
    assert s.n == 5 and s.mean == pytest.approx(x.mean()) and s.sd == pytest.approx(np.std(x, ddof=1))
    low, high = stats.t.interval(0.95, 4, loc=x.mean(), scale=stats.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high))
    assert summary([1.0, math.nan, 3.0]).mean == 2.0  # NaN (nothing valid) dropped
    one = summary([2.0])
    assert one.mean == 2.0 and math.isnan(one.sd) and math.isnan(one.ci_low)


def test_paired_test_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.1, 5)
    b = a - 0.05 + rng.normal(0, 0.03, 5)
    r = paired_test(a, b)
    ref = stats.ttest_rel(a, b)
    assert r.t == pytest.approx(ref.statistic) and r.p_t == pytest.approx(ref.pvalue)
    assert r.p_wilcoxon == pytest.approx(stats.wilcoxon(a - b).pvalue)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(a - b), scale=stats.sem(a - b))
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high))
    same = paired_test(a, a)
    assert same.p_t == 1.0 and same.p_wilcoxon == 1.0
    with pytest.raises(ValueError, match="same seeds"):
        paired_test(a, b[:3])


def test_holm_by_hand_and_verdicts():
    # m = 4 finite p (NaN stays out): sorted 0.01, 0.02, 0.04, 0.5 times 4, 3, 2, 1 = 0.04, 0.06, 0.08, 0.5
    adjusted = holm([0.04, 0.01, math.nan, 0.02, 0.5])
    assert adjusted[[1, 3, 0, 4]].tolist() == pytest.approx([0.04, 0.06, 0.08, 0.5])
    assert math.isnan(adjusted[2])
    assert holm([0.3, 0.6]).tolist() == pytest.approx([0.6, 0.6])
    assert verdict(-0.1, 0.01, higher_is_better=False) == "better"
    assert verdict(-0.1, 0.01, higher_is_better=True) == "worse"
    assert verdict(-0.1, 0.05, higher_is_better=False) == "no detectable difference"
    assert verdict(0.0, math.nan, higher_is_better=True) == "not tested"
