"""results.stats against numpy and scipy computed independently, on crafted data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from results.stats import summarize, summarize_reported


def _lognormal(n: int, sigma: float = 0.03, seed: int = 1) -> list[float]:
    return [float(v) for v in 5.0 * np.random.default_rng(seed).lognormal(0.0, sigma, n)]


def test_summary_matches_numpy_and_scipy() -> None:
    samples = _lognormal(300)
    summary = summarize(samples, requested_samples=100, seed=7)
    values = np.array(samples)
    assert summary.n == 300
    assert summary.median_ms == pytest.approx(np.median(values))
    assert summary.p90_ms == pytest.approx(np.quantile(values, 0.9, method="linear"))
    assert summary.p99_ms == pytest.approx(np.quantile(values, 0.99, method="linear"))
    assert summary.mean_ms == pytest.approx(values.mean())
    assert summary.std_ms == pytest.approx(values.std(ddof=1))
    assert summary.min_ms == values.min()
    assert summary.max_ms == values.max()
    assert summary.cv == pytest.approx(values.std(ddof=1) / values.mean())
    expected = scipy_stats.bootstrap(
        (values,),
        np.median,
        n_resamples=999,
        method="percentile",
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert summary.ci_low_ms == pytest.approx(expected.low)
    assert summary.ci_high_ms == pytest.approx(expected.high)
    assert summary.ci_low_ms is not None and summary.ci_high_ms is not None
    assert summary.median_ms is not None
    assert summary.ci_low_ms < summary.median_ms < summary.ci_high_ms
    assert summary.flags == ()
    assert summary.source == "samples"


def test_ci_is_seeded_and_seed_matters() -> None:
    samples = _lognormal(80, sigma=0.2)
    assert summarize(samples, seed=3) == summarize(samples, seed=3)
    intervals = {
        (summarize(samples, seed=seed).ci_low_ms, summarize(samples, seed=seed).ci_high_ms)
        for seed in range(4)
    }
    assert len(intervals) > 1


def test_tukey_outlier_counts_on_crafted_data() -> None:
    body = [10.0 + i / 100 for i in range(101)]  # 10.00 .. 11.00, quartiles near 10.25/10.75
    crafted = [*body, 1.0, 2.0, 20.0, 30.0, 40.0]
    values = np.array(crafted)
    q1, q3 = np.percentile(values, [25, 75])
    iqr = q3 - q1
    expected = (int(np.sum(values < q1 - 1.5 * iqr)), int(np.sum(values > q3 + 1.5 * iqr)))
    summary = summarize(crafted)
    assert (summary.outliers_low, summary.outliers_high) == expected == (2, 3)
    assert summary.n == len(crafted)  # counted, never dropped
    assert summary.max_ms == 40.0 and summary.min_ms == 1.0
    assert (summarize(body).outliers_low, summarize(body).outliers_high) == (0, 0)
    # Fences are strict: 30 x 10.0 and 30 x 10.5 put them at 9.25 and 11.25.
    spiky = [10.0] * 30 + [10.5] * 30 + [40.0, 41.0, 2.0, 11.25, 9.25]
    spiky_summary = summarize(spiky)
    assert (spiky_summary.outliers_low, spiky_summary.outliers_high) == (1, 2)


@pytest.mark.parametrize(
    ("samples", "requested", "flags"),
    [
        ([10.0, 10.1, 9.9, 10.0, 10.2] * 10, None, ()),
        ([10.0, 10.1, 9.9, 10.0, 10.2] * 10, 100, ("few_samples",)),
        ([5.0, 15.0] * 20, None, ("high_cv",)),
        ([10.0] * 40 + [4.9], None, ("far_min",)),
        ([10.0] * 40 + [15.1], None, ("far_max",)),
        ([10.0] * 40 + [15.0], None, ()),  # exactly 50 % is not "more than"
        ([10.0] * 40 + [4.0, 16.0, 30.0], 50, ("high_cv", "far_min", "far_max", "few_samples")),
    ],
)
def test_flags(samples: list[float], requested: int | None, flags: tuple[str, ...]) -> None:
    assert summarize(samples, requested_samples=requested).flags == flags


def test_single_sample_and_all_equal_do_not_warn() -> None:
    one = summarize([3.5], requested_samples=1)
    assert (one.n, one.median_ms, one.min_ms, one.max_ms) == (1, 3.5, 3.5, 3.5)
    assert one.std_ms is None and one.cv is None
    assert one.ci_low_ms is None and one.ci_high_ms is None
    assert one.flags == ()
    equal = summarize([2.0] * 50)
    assert (equal.ci_low_ms, equal.ci_high_ms) == (2.0, 2.0)
    assert equal.std_ms == 0.0 and equal.cv == 0.0
    assert (equal.outliers_low, equal.outliers_high) == (0, 0)
    # Heavy ties break BCa; the percentile bootstrap must not warn (warnings are errors).
    tied = summarize([1.0] * 30 + [2.0])
    assert tied.ci_low_ms == tied.ci_high_ms == 1.0


def test_no_samples() -> None:
    empty = summarize([], requested_samples=10)
    assert empty.n == 0 and empty.median_ms is None and empty.flags == ("no_samples",)


def test_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])


def test_summarize_reported() -> None:
    reported = {
        "mean": 10.4,
        "p50": 10.0,
        "p90": 11.0,
        "p95": 11.5,
        "p99": 16.0,
        "min": 4.0,
        "max": 12.0,
    }
    summary = summarize_reported(reported, n=200)
    assert summary.source == "reported"
    assert (summary.n, summary.median_ms, summary.p90_ms, summary.p99_ms) == (200, 10.0, 11.0, 16.0)
    assert (summary.mean_ms, summary.min_ms, summary.max_ms) == (10.4, 4.0, 12.0)
    assert summary.ci_low_ms is None and summary.ci_high_ms is None and summary.std_ms is None
    assert summary.flags == ("far_min",)
    partial = summarize_reported({"p50": 3.0, "p90": None, "max": "x"})
    assert partial.median_ms == 3.0 and partial.p90_ms is None and partial.max_ms is None
    assert summarize_reported({}).flags == ("no_samples",)
