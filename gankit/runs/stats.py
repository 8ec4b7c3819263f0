"""The statistics of honest comparisons: intervals over seeds and Welch's t-test.

- :func:`mean_interval`: the mean of n values with a 95% interval, Student t
  (``mean ± t(0.975, n-1) · s/√n``) or a seeded percentile bootstrap;
  :func:`interval_method` picks the bootstrap for values that cannot be
  negative, so their interval never crosses 0;
- :func:`difference`: the difference of two groups' means, its interval
  (Welch: standard error ``√(s₁²/n₁ + s₂²/n₂)``, Welch–Satterthwaite degrees
  of freedom; or a bootstrap) and Welch's two-sided p-value.

Student t's distribution function comes from the regularised incomplete beta
function (a continued fraction, as in Numerical Recipes §6.4), so no SciPy is
needed; ``tests/test_compare_stats.py`` checks it against SciPy's tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` (real, > 0) degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=4096)  # a band plot asks for the same few (p, df) thousands of times
def t_quantile(p: float, df: float) -> float:
    """The t with P(T ≤ t) = p (bisection on :func:`t_cdf`; exact to ~1e-12)."""
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


@dataclass
class Interval:
    mean: float
    low: float | None  # None: no interval (one value)
    high: float | None
    n: int

    def overlaps(self, other: "Interval") -> bool:
        if None in (self.low, self.high, other.low, other.high):
            return True  # without an interval nothing is told apart
        return self.low <= other.high and other.low <= self.high

    def contains(self, value: float) -> bool:
        return self.low is not None and self.low <= value <= self.high


def _bootstrap_means(values: np.ndarray, rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[idx].mean(axis=1)


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    alpha = (1.0 - LEVEL) / 2.0 * 100.0
    low, high = np.percentile(samples, [alpha, 100.0 - alpha])
    return float(low), float(high)


def mean_interval(values: list[float], method: str = "t", seed: int = 0,
                  resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """The mean and its 95% interval: Student t over the values, or a seeded percentile bootstrap.

    The bootstrap's interval lies within the values' range, so a quantity
    that cannot be negative keeps a non-negative interval (:func:`interval_method`).
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return Interval(mean, None, None, n)
    if method == "bootstrap":
        return Interval(mean, *_percentiles(_bootstrap_means(x, np.random.default_rng(seed), resamples)), n)
    half = t_quantile(0.5 + LEVEL / 2.0, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def interval_method(values: list[float], method: str) -> str:
    """The interval to use for these values: the bootstrap when none is negative, else ``method``.

    Student t's interval is symmetric, so for 3 values of a non-negative
    quantity (a loss, FID, SWD) it can reach far below 0, where no value can
    be; the percentile bootstrap stays within the values.
    """
    return "bootstrap" if values and min(values) >= 0 else method


@dataclass
class Difference:
    """``mean(b) - mean(a)`` with its 95% interval and Welch's two-sided p-value."""

    diff: float
    low: float | None
    high: float | None
    p: float | None  # None: fewer than two values on a side, or no spread at all
    df: float | None


def welch(a: list[float], b: list[float]) -> tuple[float | None, float | None, float | None]:
    """Welch's t statistic, its degrees of freedom and the two-sided p-value (None when undefined)."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(xa) < 2 or len(xb) < 2:
        return None, None, None
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    se2 = va + vb
    if se2 <= 0:
        return None, None, None
    t = float((xb.mean() - xa.mean()) / math.sqrt(se2))
    df = float(se2**2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)))
    return t, df, 2.0 * (1.0 - t_cdf(abs(t), df))


def difference(a: list[float], b: list[float], method: str = "t", seed: int = 0) -> Difference:
    """How group ``b`` differs from group ``a`` (the baseline)."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(xb.mean() - xa.mean())
    t, df, p = welch(a, b)
    if len(xa) < 2 or len(xb) < 2:
        return Difference(diff, None, None, None, None)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        low, high = _percentiles(_bootstrap_means(xb, rng) - _bootstrap_means(xa, rng))
        return Difference(diff, low, high, p, df)
    if df is None:  # no spread in either group: the difference is exact
        return Difference(diff, diff, diff, None, None)
    se = math.sqrt(xa.var(ddof=1) / len(xa) + xb.var(ddof=1) / len(xb))
    half = t_quantile(0.5 + LEVEL / 2.0, df) * se
    return Difference(diff, diff - half, diff + half, p, df)
