"""results.trials: the cross-trial interval covers the true median at its nominal rate.

Synthetic trials with a known between-process component: each fresh process has its own
multiplicative offset ``exp(N(0, sigma_between))`` and its samples a within-process noise
``exp(N(0, sigma_within))``; the trial's median is the median of its samples. Both
components are symmetric on the log scale, so the true median of a trial's median is the
configured latency exactly. Seeded: the counts below are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from results.trials import (
    MIN_TRIALS,
    cross_trial_interval,
    geometric_mean_ms,
    prediction_interval,
    sweep_difference,
)

TRUE_MS = 2.0
REPLICATIONS = 1000


def _trial_medians(
    rng: np.random.Generator, trials: int, sigma_between: float, sigma_within: float = 0.02
) -> list[float]:
    offsets = np.exp(rng.normal(0.0, sigma_between, trials))
    within = np.median(rng.lognormal(0.0, sigma_within, (trials, 101)), axis=1)
    return [float(v) for v in TRUE_MS * offsets * within]


def _coverage(trials: int, sigma_between: float, method: str, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(REPLICATIONS):
        interval = cross_trial_interval(
            _trial_medians(rng, trials, sigma_between),
            method="bootstrap" if method == "bootstrap" else "t_log",
        )
        assert interval.ci_low_ms is not None and interval.ci_high_ms is not None
        hits += interval.ci_low_ms <= TRUE_MS <= interval.ci_high_ms
    return hits / REPLICATIONS


@pytest.mark.parametrize(("trials", "sigma_between"), [(3, 0.25), (5, 0.1), (10, 0.35)])
def test_t_interval_on_log_medians_covers_at_its_nominal_rate(
    trials: int, sigma_between: float
) -> None:
    # Binomial standard error at 1000 replications is 0.007: +-0.025 is 3.5 of them.
    coverage = _coverage(trials, sigma_between, "t_log", seed=trials)
    assert 0.925 <= coverage <= 0.975, coverage


def test_bootstrap_undercovers_with_three_trials() -> None:
    # Why the t-interval is the one printed: three trials bound a bootstrap interval by
    # their range, which covers the median with probability 1 - 2 * 0.5**3 = 0.75.
    coverage = _coverage(3, 0.25, "bootstrap", seed=3)
    assert coverage < 0.85, coverage


def test_pooled_within_process_interval_misses_between_process_variance() -> None:
    # The interval the tables used to print: the bootstrap CI of the pooled samples. With a
    # between-process component it covers the true median far below 95 %.
    from results.stats import summarize

    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(200):
        offsets = np.exp(rng.normal(0.0, 0.2, 3))
        pooled = (TRUE_MS * offsets[:, None] * rng.lognormal(0.0, 0.02, (3, 101))).ravel()
        summary = summarize([float(v) for v in pooled], n_resamples=199)
        assert summary.ci_low_ms is not None and summary.ci_high_ms is not None
        hits += summary.ci_low_ms <= TRUE_MS <= summary.ci_high_ms
    assert hits / 200 < 0.5


def test_interval_formula_by_hand() -> None:
    medians = [1.3, 2.7, 1.9, 2.2]
    interval = cross_trial_interval(medians)
    logs = np.log(medians)
    half = 3.182446305284263 * logs.std(ddof=1) / math.sqrt(4)  # t(0.975, 3)
    assert interval.ci_low_ms == pytest.approx(math.exp(logs.mean() - half))
    assert interval.ci_high_ms == pytest.approx(math.exp(logs.mean() + half))
    assert interval.median_ms == pytest.approx(2.05)
    assert interval.spread == pytest.approx(logs.std(ddof=1))
    assert interval.range_ratio == pytest.approx(2.7 / 1.3)
    assert interval.reason is None
    assert interval.half_width == pytest.approx(
        (interval.ci_high_ms - interval.ci_low_ms) / 2 / 2.05  # type: ignore[operator]
    )
    assert interval.within(10.0)
    assert not interval.within(0.01)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_fewer_than_three_trials_give_no_interval_and_say_why(count: int) -> None:
    interval = cross_trial_interval([2.0, 2.2][:count])
    assert count < MIN_TRIALS
    assert interval.ci_low_ms is None and interval.ci_high_ms is None
    assert interval.reason is not None
    assert interval.half_width is None
    assert not interval.within(1.0)
    assert interval.trials == count
    if count:
        assert "at least 3" in interval.reason
        assert interval.median_ms is not None
    else:
        assert interval.median_ms is None


def test_equal_trials_give_a_point_interval() -> None:
    interval = cross_trial_interval([2.0, 2.0, 2.0])
    assert interval.ci_low_ms == pytest.approx(2.0)
    assert interval.ci_high_ms == pytest.approx(2.0)
    assert interval.spread == 0.0


@pytest.mark.parametrize("bad", [[1.0, 0.0, 2.0], [1.0, -1.0, 2.0], [1.0, math.nan, 2.0]])
def test_non_positive_or_nan_medians_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        cross_trial_interval(bad)


# A/A: two sweeps of the same cell ------------------------------------------------------


def _aa_rates(trials: int, sigma_between: float, seed: int) -> tuple[float, float, float]:
    """(CI contains the other median, Welch difference contains 1, prediction interval
    contains the other centre) over independent sweep pairs without any sweep-level shift."""
    rng = np.random.default_rng(seed)
    ci_hits = diff_hits = pred_hits = 0
    for _ in range(REPLICATIONS):
        first = _trial_medians(rng, trials, sigma_between)
        second = _trial_medians(rng, trials, sigma_between)
        interval = cross_trial_interval(first)
        other = cross_trial_interval(second)
        assert interval.ci_low_ms is not None and interval.ci_high_ms is not None
        assert other.median_ms is not None
        ci_hits += interval.ci_low_ms <= other.median_ms <= interval.ci_high_ms
        diff_hits += bool(sweep_difference(first, second).contains(1.0))
        predicted = prediction_interval(first, trials)
        centre = geometric_mean_ms(second)
        assert predicted is not None and centre is not None
        pred_hits += predicted[0] <= centre <= predicted[1]
    return ci_hits / REPLICATIONS, diff_hits / REPLICATIONS, pred_hits / REPLICATIONS


@pytest.mark.parametrize(("trials", "sigma_between"), [(3, 0.25), (5, 0.1), (10, 0.3)])
def test_aa_difference_and_prediction_intervals_hold_their_nominal_rate(
    trials: int, sigma_between: float
) -> None:
    ci_rate, diff_rate, pred_rate = _aa_rates(trials, sigma_between, seed=100 + trials)
    # Binomial SE at 1000 replications is 0.007; Welch is a little conservative at n = 3.
    assert 0.925 <= diff_rate <= 0.985, diff_rate
    assert 0.925 <= pred_rate <= 0.975, pred_rate
    # Containing the other sweep's median is no 95 % event, even for this exact interval:
    # P(|T| < t / sqrt(2)) = 91 % at 3 trials, less against a median, falling with n.
    ceiling = (
        2 * scipy_stats.t.cdf(scipy_stats.t.ppf(0.975, trials - 1) / math.sqrt(2), trials - 1) - 1
    )
    assert ci_rate <= ceiling + 0.02, (ci_rate, ceiling)
    assert ci_rate < diff_rate


def test_containment_of_the_other_centre_falls_with_more_trials() -> None:
    rates = [_aa_rates(n, 0.2, seed=7)[0] for n in (3, 10)]
    assert rates[1] < rates[0] - 0.03, rates


def test_a_sweep_level_shift_is_caught_by_the_difference_interval() -> None:
    rng = np.random.default_rng(11)
    misses = 0
    for _ in range(200):
        first = _trial_medians(rng, 5, 0.05)
        second = [1.3 * v for v in _trial_medians(rng, 5, 0.05)]
        misses += not sweep_difference(first, second).contains(1.0)
    assert misses > 190, misses


def test_sweep_difference_by_hand() -> None:
    first, second = [1.0, 2.0, 4.0], [2.0, 2.0, 8.0]
    logs_a, logs_b = np.log(first), np.log(second)
    var_a, var_b = np.var(logs_a, ddof=1) / 3, np.var(logs_b, ddof=1) / 3
    dof = (var_a + var_b) ** 2 / (var_a**2 / 2 + var_b**2 / 2)
    half = scipy_stats.t.ppf(0.975, dof) * math.sqrt(var_a + var_b)
    centre = logs_b.mean() - logs_a.mean()
    got = sweep_difference(first, second)
    assert got.ratio == pytest.approx(math.exp(centre))
    assert got.ci_low == pytest.approx(math.exp(centre - half))
    assert got.ci_high == pytest.approx(math.exp(centre + half))
    assert got.dof == pytest.approx(dof)
    assert got.contains(1.0) is True
    low, high = prediction_interval(first, 3) or (0.0, 0.0)
    spread = np.std(logs_a, ddof=1) * math.sqrt(2 / 3) * scipy_stats.t.ppf(0.975, 2)
    assert (low, high) == pytest.approx(
        (math.exp(logs_a.mean() - spread), math.exp(logs_a.mean() + spread))
    )
    assert geometric_mean_ms(first) == pytest.approx(2.0)


def test_aa_statistics_need_three_trials_a_side() -> None:
    short = sweep_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    assert short.ci_low is None and short.contains() is None and short.reason
    assert prediction_interval([1.0, 2.0], 3) is None
    assert geometric_mean_ms([]) is None
    same = sweep_difference([2.0, 2.0, 2.0], [2.0, 2.0, 2.0])
    assert same.contains(1.0) is True and same.dof is None
