"""Summary statistics of latency samples: the numbers every table and report shows.

Owns ``Summary`` and the two ways to make one: from raw samples (``summarize``) and from a
runner document that only carries summaries, such as Android's ``onnxruntime_perf_test``
output (``summarize_reported``). Sources: docs/measurement.md (median as the
headline, bootstrap CI of the median, Tukey outliers counted and never dropped, pyperf-style
instability warnings); Criterion.rs (Tukey fences at 1.5·IQR); pyperf (CV and min/max
distance warnings).

Definitions, so the numbers can be recomputed elsewhere:

* percentiles (median, p90, p99, Q1, Q3) use numpy's default linear interpolation between
  order statistics (``numpy.percentile(..., method="linear")``, type 7 of Hyndman & Fan);
* ``std_ms`` is the sample standard deviation (``ddof=1``), None below two samples;
  ``cv = std_ms / mean_ms``;
* the CI is a percentile bootstrap (``scipy.stats.bootstrap``) of the median, seeded, at
  95 %; it is exact ``(x, x)`` when all samples are equal and None below two samples.
  The percentile method is used rather than BCa because BCa divides by zero (and warns) on
  data with many ties, which latency samples at timer resolution often are;
* outliers are samples below ``Q1 - 1.5·IQR`` or above ``Q3 + 1.5·IQR``; only counted.

The CI *within one process* (``within_process_median_ci``) is the agent's own
order-statistic interval (``devices/agent/stats.py``), the one its stopping rule bounds.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from devices.agent.stats import quantile_ci

Flag = Literal["high_cv", "far_min", "far_max", "few_samples", "no_samples"]
SummarySource = Literal["samples", "reported", "none"]

HIGH_CV: Final = 0.10
"""A coefficient of variation above this flags the samples as unstable (pyperf: 10 %)."""
FAR_FRACTION: Final = 0.50
"""A min or max further than this fraction of the median from the median is flagged."""
TUKEY_K: Final = 1.5
CONFIDENCE_LEVEL: Final = 0.95
N_RESAMPLES: Final = 999
_BOOTSTRAP_BATCH_ELEMENTS: Final = 4_000_000
"""Resamples are drawn in batches of at most this many values to bound memory."""


@dataclass(frozen=True)
class Summary:
    """Statistics of one set of latency samples; None where a value cannot be known."""

    n: int
    median_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    std_ms: float | None
    min_ms: float | None
    max_ms: float | None
    cv: float | None
    ci_low_ms: float | None
    ci_high_ms: float | None
    outliers_low: int
    outliers_high: int
    flags: tuple[Flag, ...]
    source: SummarySource = "samples"


def _bootstrap_median_ci(
    values: np.ndarray, seed: int, n_resamples: int, confidence_level: float
) -> tuple[float, float]:
    from scipy import stats as scipy_stats  # imported here: it is slow to import

    kwargs: dict[str, object] = {}
    generator = np.random.default_rng(seed)
    # scipy >= 1.15 names the generator ``rng``; older releases call it ``random_state``.
    if "rng" in inspect.signature(scipy_stats.bootstrap).parameters:
        kwargs["rng"] = generator
    else:
        kwargs["random_state"] = generator
    result = scipy_stats.bootstrap(
        (values,),
        np.median,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        method="percentile",
        vectorized=True,
        axis=-1,
        batch=max(1, _BOOTSTRAP_BATCH_ELEMENTS // values.size),
        **kwargs,
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def _far_flags(median: float | None, low: float | None, high: float | None) -> list[Flag]:
    flags: list[Flag] = []
    if median is None or median <= 0:
        return flags
    if low is not None and (median - low) / median > FAR_FRACTION:
        flags.append("far_min")
    if high is not None and (high - median) / median > FAR_FRACTION:
        flags.append("far_max")
    return flags


def summarize(
    samples_ms: Sequence[float],
    requested_samples: int | None = None,
    seed: int = 0,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence_level: float = CONFIDENCE_LEVEL,
) -> Summary:
    """Summarize raw latency samples (milliseconds); never drops any sample.

    ``requested_samples`` is how many samples the measurement asked for (the runner's
    ``min_samples``, summed over pooled trials); fewer than that raises ``few_samples``.
    """
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("samples_ms must be a flat sequence of latencies")
    if not np.all(np.isfinite(values)):
        raise ValueError("samples_ms must be finite numbers")
    n = int(values.size)
    if n == 0:
        return Summary(
            n=0,
            median_ms=None,
            p90_ms=None,
            p99_ms=None,
            mean_ms=None,
            std_ms=None,
            min_ms=None,
            max_ms=None,
            cv=None,
            ci_low_ms=None,
            ci_high_ms=None,
            outliers_low=0,
            outliers_high=0,
            flags=("no_samples",),
            source="none",
        )
    q1, median, q3, p90, p99 = (
        float(v) for v in np.percentile(values, [25.0, 50.0, 75.0, 90.0, 99.0])
    )
    mean = float(np.mean(values))
    low = float(np.min(values))
    high = float(np.max(values))
    std = float(np.std(values, ddof=1)) if n >= 2 else None
    cv = std / mean if std is not None and mean > 0 else None

    ci_low: float | None
    ci_high: float | None
    if n < 2:
        ci_low = ci_high = None
    elif low == high:
        ci_low = ci_high = low
    else:
        ci_low, ci_high = _bootstrap_median_ci(values, seed, n_resamples, confidence_level)

    iqr = q3 - q1
    outliers_low = int(np.count_nonzero(values < q1 - TUKEY_K * iqr))
    outliers_high = int(np.count_nonzero(values > q3 + TUKEY_K * iqr))

    flags: list[Flag] = []
    if cv is not None and cv > HIGH_CV:
        flags.append("high_cv")
    flags.extend(_far_flags(median, low, high))
    if requested_samples is not None and n < requested_samples:
        flags.append("few_samples")
    return Summary(
        n=n,
        median_ms=median,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=mean,
        std_ms=std,
        min_ms=low,
        max_ms=high,
        cv=cv,
        ci_low_ms=ci_low,
        ci_high_ms=ci_high,
        outliers_low=outliers_low,
        outliers_high=outliers_high,
        flags=tuple(flags),
        source="samples",
    )


def _reported(reported_ms: Mapping[str, object], key: str) -> float | None:
    value = reported_ms.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def summarize_reported(reported_ms: Mapping[str, object], *, n: int = 0) -> Summary:
    """A Summary from a document's ``reported_ms`` (mean, p50, p90, p95, p99, min, max).

    Used when a runner could only report summaries. Any key may be missing; what cannot
    be known (std, CV, the CI, outlier counts) is None or 0. ``n`` is the iteration count
    the tool reported, if any. Only ``far_min``/``far_max`` can be judged from summaries.
    """
    median = _reported(reported_ms, "p50")
    values = {key: _reported(reported_ms, key) for key in ("mean", "p90", "p99", "min", "max")}
    if median is None and all(v is None for v in values.values()):
        return summarize([])
    return Summary(
        n=n,
        median_ms=median,
        p90_ms=values["p90"],
        p99_ms=values["p99"],
        mean_ms=values["mean"],
        std_ms=None,
        min_ms=values["min"],
        max_ms=values["max"],
        cv=None,
        ci_low_ms=None,
        ci_high_ms=None,
        outliers_low=0,
        outliers_high=0,
        flags=tuple(_far_flags(median, values["min"], values["max"])),
        source="reported",
    )


def within_process_median_ci(samples_ms: Sequence[float]) -> tuple[float | None, float | None]:
    """The 95 % CI of the median of one process's samples, as the agent's stopping rule
    defines it (order statistics); (None, None) without samples or when unbounded."""
    if not samples_ms:
        return None, None
    _median, low, high = quantile_ci(samples_ms)
    return low, high
