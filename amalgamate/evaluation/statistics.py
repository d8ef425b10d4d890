"""Statistics for experiments on students: summaries over seeds, paired comparisons of arms, multiple comparisons.

DESIGN.md §7's evidence standards: arms are paired (same seeds, same data order), spread is the sample SD
(ddof = 1), intervals are 95 % t intervals, differences are tested with paired t-tests across seeds (the Wilcoxon
signed-rank test as a check that does not assume normal differences), p-values of a family of comparisons are
corrected with Holm's step-down method, and a comparison with corrected p >= 0.05 says "no detectable difference".

* :func:`summary` (x: (n,) values over seeds) -> :class:`Summary` (n, mean, sd, 95 % CI);
* :func:`paired_test` (a, b: (n,) paired values) -> :class:`PairedTest` (mean difference a - b, its CI, t, p_t,
  p_wilcoxon);
* :func:`holm` (p: (m,)) -> Holm-adjusted p-values (monotone, capped at 1);
* :func:`verdict` -> one line: "better", "worse" or "no detectable difference".

The t statistics are computed here (float64) and only the t and normal distributions come from scipy; the tests
compare with ``scipy.stats.ttest_rel`` / ``scipy.stats.t.interval``. NaN values (a metric with nothing valid) are
dropped (pairwise for paired tests); fewer than 2 values give NaN spread, intervals and p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Summary", "PairedTest", "summary", "paired_test", "holm", "verdict", "ALPHA"]

ALPHA = 0.05


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float  # sample SD, ddof = 1
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean_difference: float  # mean of a - b
    ci_low: float
    ci_high: float
    t: float
    p_t: float  # two-sided paired t-test
    p_wilcoxon: float  # two-sided Wilcoxon signed-rank test (exact for small n), the check


def _values(x: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    return a[np.isfinite(a)]


def summary(x: Sequence[float] | np.ndarray, *, confidence: float = 0.95) -> Summary:
    """Mean, sample SD (ddof = 1) and the t interval ``mean ± t_{n-1, (1+c)/2} sd / sqrt(n)`` of the finite values."""
    from scipy.stats import t as student_t

    a = _values(x)
    n = len(a)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(a.mean())
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    sd = float(a.std(ddof=1))
    half = float(student_t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def paired_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                confidence: float = 0.95) -> PairedTest:
    """Paired comparison of ``a`` and ``b`` (same seeds, same order): t = mean(d) / (sd(d) / sqrt(n)), d = a - b,
    two-sided p from t_{n-1}; and the Wilcoxon signed-rank p. Identical arms (all d = 0) give p = 1."""
    from scipy.stats import t as student_t
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"paired_test needs values of the same seeds: got {len(x)} and {len(y)}")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    n = len(d)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return PairedTest(n, mean, math.nan, math.nan, math.nan, math.nan, math.nan)
    s = summary(d, confidence=confidence)
    if s.sd == 0:
        t, p = (0.0, 1.0) if s.mean == 0 else (math.copysign(math.inf, s.mean), 0.0)
    else:
        t = s.mean / (s.sd / math.sqrt(n))
        p = float(2 * student_t.sf(abs(t), n - 1))
    p_w = 1.0 if not np.any(d) else float(wilcoxon(d).pvalue)
    return PairedTest(n, s.mean, s.ci_low, s.ci_high, float(t), p, p_w)


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment: sort ascending, ``p_(k) * (m - k + 1)`` (k = 1..m), running maximum, cap 1;
    NaN entries stay NaN and do not count in m."""
    values = np.asarray(p, dtype=np.float64).reshape(-1)
    out = np.full_like(values, np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    m = len(finite)
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(values[finite], kind="stable")]):
        running = max(running, min(1.0, values[i] * (m - rank)))
        out[i] = running
    return out


def verdict(mean_difference: float, p_adjusted: float, *, higher_is_better: bool, alpha: float = ALPHA) -> str:
    """"better" / "worse" (for the first arm of the pair) when the corrected p < alpha, else "no detectable
    difference"; "not tested" without a p-value."""
    if not math.isfinite(p_adjusted):
        return "not tested"
    if p_adjusted >= alpha:
        return "no detectable difference"
    return "better" if (mean_difference > 0) == higher_is_better else "worse"
