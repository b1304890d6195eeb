"""The one confidence interval of the median: distribution-free, from order statistics.

With K ~ Binomial(n, q) and F its CDF, the interval runs from the sorted sample of rank
``lo`` (the largest k with F(k) <= alpha/2) to that of rank ``hi`` (the smallest k with
F(k) >= 1 - alpha/2), so it covers the q-quantile with probability >= the confidence
(asv_runner's ``statistics.quantile_ci``). The agent's stopping rule uses it within one
process (``--target-ci`` is a bound on its relative half-width), and the host reports the
same interval from the stored samples.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

CONFIDENCE = 0.95


def _binom_pmf(n: int, k: int, p: float) -> float:
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    log_pmf = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )
    return math.exp(log_pmf)


def order_statistic_ci_ranks(
    n: int, q: float = 0.5, confidence: float = CONFIDENCE
) -> tuple[int | None, int | None]:
    """0-based ranks (lo, hi) of the sorted samples bounding a CI of the q-quantile.

    ``None`` means the bound is unbounded (too few samples).
    """
    if n < 1:
        return None, None
    alpha = 1.0 - confidence
    pa = alpha / 2.0
    pb = 1.0 - pa
    # Skip the far lower tail: below nq - 12 sd the binomial mass is < 1e-30.
    sd = math.sqrt(n * q * (1.0 - q))
    k0 = max(0, int(n * q - 12.0 * sd) - 1)
    lo = k0 - 1 if k0 > 0 else None
    cdf = 0.0
    for k in range(k0, n):
        cdf += _binom_pmf(n, k, q)
        if cdf <= pa:
            lo = k
        if cdf >= pb:
            return lo, k
    return lo, None


def quantile_ci(
    values: Sequence[float], q: float = 0.5, confidence: float = CONFIDENCE
) -> tuple[float, float | None, float | None]:
    """(quantile, ci_low, ci_high) of ``values``; a bound is ``None`` when unbounded.

    The quantile interpolates linearly between order statistics (numpy's default and
    asv's ``quantile``); the CI is the order-statistic interval above.
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("no values")
    z = (n - 1) * q
    j = math.floor(z)
    frac = z - j
    m = ordered[-1] if j >= n - 1 else (1.0 - frac) * ordered[j] + frac * ordered[j + 1]
    lo, hi = order_statistic_ci_ranks(n, q, confidence)
    return (
        m,
        ordered[lo] if lo is not None else None,
        ordered[hi] if hi is not None else None,
    )


def relative_ci_half_width(median: float, ci_low: float | None, ci_high: float | None) -> float:
    """Half the CI width over the median; infinite when the CI is unbounded."""
    if ci_low is None or ci_high is None or median <= 0:
        return math.inf
    return (ci_high - ci_low) / 2.0 / median


def median_ci_sorted(sorted_ns: Any) -> tuple[float, float | None, float | None]:
    """Median and 95 % CI bounds of an already-sorted numpy array (the loop's fast path)."""
    n = int(sorted_ns.shape[0])
    mid = (n - 1) / 2.0
    median = float(sorted_ns[math.floor(mid)] + sorted_ns[math.ceil(mid)]) / 2.0
    lo, hi = order_statistic_ci_ranks(n)
    return (
        median,
        float(sorted_ns[lo]) if lo is not None else None,
        float(sorted_ns[hi]) if hi is not None else None,
    )
