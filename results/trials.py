"""The interval a user can trust: the CI of the median over fresh-process trials.

Owns ``TrialInterval`` and ``cross_trial_interval``, and the two A/A statistics that say
whether two sweeps of the same cells agree (``sweep_difference``, ``prediction_interval``).
The unit of replication is the trial:
one fresh process that loads the model, warms up and measures. On a shared machine the
difference between two processes of the same model (placement, cache colouring, what the
neighbours do) is far larger than the noise within one process, so the pooled
within-process interval of ``results.stats.summarize`` says how well one process was
measured, not how well the model's latency is known. That interval stays as a secondary
figure (named "within-process" wherever it is shown).

Definitions, so the numbers can be recomputed elsewhere:

* each trial contributes one number, its median latency ``m_i``; the centre printed is the
  median of the ``m_i`` (``numpy.median``);
* the interval is a Student t-interval on ``log m_i``: with ``n`` trials, ``ybar`` and ``s``
  the mean and sample standard deviation (``ddof=1``) of ``log m_i``, it is
  ``exp(ybar ± t(1 - α/2, n - 1) · s / sqrt(n))``. Latency is positive and its between-process
  component multiplicative, so the log scale makes it symmetric; for a log-symmetric
  distribution the back-transformed mean of logs is its median. It is chosen over the
  percentile bootstrap of the median because of coverage with few trials: with 3 trials a
  bootstrap interval can never be wider than the range of the three, which covers the true
  median only 75 % of the time; the t-interval keeps its nominal 95 % from 3 trials on
  (``tests/results/test_trials.py`` measures both on synthetic data with a known
  between-process component);
* ``spread`` is the between-trial spread, the sample standard deviation of ``log m_i``
  (about the coefficient of variation of the trial medians when it is small);
  ``range_ratio`` is ``max m_i / min m_i``;
* ``half_width`` is the relative half-width ``(high - low) / 2 / centre``, the figure
  ``run --target-ci`` compares with its target;
* with fewer than ``MIN_TRIALS`` (3) trials no interval is given and ``reason`` says why:
  with 2 trials the t quantile is 12.7 and the interval says nothing, and 1 trial has no
  spread at all.

Comparing two sweeps of the same cell (an A/A test, ``benchmarks/aa.py``): whether sweep
A's 95 % CI contains sweep B's centre is *not* a 95 % event even for a perfect interval,
because B's centre has its own noise: for means of ``n`` normal values the probability is
``P(|T(n-1)| < t(0.975, n-1) / sqrt(2))``, 91 % for 3 trials, 88 % for 5, 84 % as ``n``
grows (lower still against B's median), so more trials lower it. Two statistics do have a
nominal 95 % rate when the sweeps do not differ, and are given here:

* ``sweep_difference``: the Welch t-interval of the difference of the two sweeps' mean log
  trial medians (each sweep's own variance, Welch-Satterthwaite degrees of freedom), as a
  ratio B / A; it contains 1 with probability about 95 % (a little above with 3 trials a
  side: Welch is conservative there);
* ``prediction_interval``: from one sweep's trials, the 95 % interval in which the other
  sweep's centre (the geometric mean of its ``m`` trial medians) falls,
  ``exp(ybar ± t(0.975, n - 1) · s · sqrt(1/n + 1/m))``; exact when the two sweeps share
  the between-process variance.

A sweep-level shift between the two sweeps (the machine's state changed) makes both miss
more often than 5 %: that is what they are there to show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

import numpy as np

MIN_TRIALS: Final = 3
"""Fewer trials than this give no cross-trial interval."""
CONFIDENCE_LEVEL: Final = 0.95
Method = Literal["t_log", "bootstrap"]
K = TypeVar("K")


@dataclass(frozen=True)
class TrialInterval:
    """The cross-trial summary of one cell; None where a value cannot be known."""

    trials: int
    median_ms: float | None
    ci_low_ms: float | None
    ci_high_ms: float | None
    spread: float | None
    range_ratio: float | None
    reason: str | None
    """Why there is no interval (None when there is one)."""

    @property
    def half_width(self) -> float | None:
        """Relative half-width of the interval around the centre."""
        if self.ci_low_ms is None or self.ci_high_ms is None or not self.median_ms:
            return None
        return (self.ci_high_ms - self.ci_low_ms) / 2.0 / self.median_ms

    def within(self, target: float) -> bool:
        """Whether the relative half-width is at most ``target`` (a fraction)."""
        width = self.half_width
        return width is not None and width <= target


def _t_quantile(probability: float, dof: float) -> float:
    from scipy import stats as scipy_stats  # imported here: it is slow to import

    return float(scipy_stats.t.ppf(probability, dof))


def _bootstrap(
    values: np.ndarray, confidence: float, seed: int, resamples: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    medians = np.median(values[picks], axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(low), float(high)


def cross_trial_interval(
    trial_medians_ms: Sequence[float],
    *,
    confidence_level: float = CONFIDENCE_LEVEL,
    method: Method = "t_log",
    seed: int = 0,
    resamples: int = 999,
) -> TrialInterval:
    """The CI of the median latency over trials, from each trial's median (milliseconds).

    ``method="bootstrap"`` (percentile bootstrap of the median, seeded) exists to compare
    coverage with; every table uses the default ``"t_log"``.
    """
    values = np.asarray([float(v) for v in trial_medians_ms], dtype=np.float64)
    if values.size and (not np.all(np.isfinite(values)) or np.any(values <= 0)):
        raise ValueError("trial medians must be finite positive latencies")
    n = int(values.size)
    if n == 0:
        return TrialInterval(0, None, None, None, None, None, "no successful trial")
    centre = float(np.median(values))
    logs = np.log(values)
    spread = float(np.std(logs, ddof=1)) if n >= 2 else None
    range_ratio = float(values.max() / values.min())
    if n < MIN_TRIALS:
        reason = f"{n} trial{'s' if n != 1 else ''}: an interval needs at least {MIN_TRIALS}"
        return TrialInterval(n, centre, None, None, spread, range_ratio, reason)
    if method == "bootstrap":
        low, high = _bootstrap(values, confidence_level, seed, resamples)
    else:
        assert spread is not None
        t = _t_quantile(0.5 + confidence_level / 2.0, n - 1)
        half = t * spread / math.sqrt(n)
        mean_log = float(np.mean(logs))
        low, high = math.exp(mean_log - half), math.exp(mean_log + half)
    return TrialInterval(n, centre, low, high, spread, range_ratio, None)


def _log_summary(trial_medians_ms: Sequence[float]) -> tuple[int, float, float] | None:
    """(n, mean, SD) of the log trial medians; None with fewer than ``MIN_TRIALS``."""
    values = np.asarray([float(v) for v in trial_medians_ms], dtype=np.float64)
    if values.size and (not np.all(np.isfinite(values)) or np.any(values <= 0)):
        raise ValueError("trial medians must be finite positive latencies")
    if values.size < MIN_TRIALS:
        return None
    logs = np.log(values)
    return int(values.size), float(np.mean(logs)), float(np.std(logs, ddof=1))


@dataclass(frozen=True)
class SweepDifference:
    """Sweep B against sweep A of one cell: the ratio of their centres and its CI."""

    ratio: float | None
    """exp(mean log B - mean log A): the ratio of the geometric means of trial medians."""
    ci_low: float | None
    ci_high: float | None
    dof: float | None
    """Welch-Satterthwaite degrees of freedom (None when either sweep has no spread)."""
    reason: str | None

    def contains(self, value: float = 1.0) -> bool | None:
        """Whether the interval contains ``value`` (None: there is no interval)."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low <= value <= self.ci_high


def sweep_difference(
    first_ms: Sequence[float],
    second_ms: Sequence[float],
    *,
    confidence_level: float = CONFIDENCE_LEVEL,
) -> SweepDifference:
    """The Welch t-interval of the second sweep's trial medians against the first's, on the
    log scale, as a ratio second / first (see the module's docstring)."""
    first, second = _log_summary(first_ms), _log_summary(second_ms)
    if first is None or second is None:
        return SweepDifference(None, None, None, None, f"each sweep needs {MIN_TRIALS} trials")
    (n_a, mean_a, sd_a), (n_b, mean_b, sd_b) = first, second
    ratio = math.exp(mean_b - mean_a)
    var_a, var_b = sd_a**2 / n_a, sd_b**2 / n_b
    if var_a + var_b == 0:
        return SweepDifference(ratio, ratio, ratio, None, None)
    dof = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    half = _t_quantile(0.5 + confidence_level / 2.0, dof) * math.sqrt(var_a + var_b)
    return SweepDifference(
        ratio, math.exp(mean_b - mean_a - half), math.exp(mean_b - mean_a + half), dof, None
    )


def geometric_mean_ms(trial_medians_ms: Sequence[float]) -> float | None:
    """exp(mean log m_i): the centre ``prediction_interval`` predicts (None without trials)."""
    values = [float(v) for v in trial_medians_ms]
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def prediction_interval(
    trial_medians_ms: Sequence[float],
    other_trials: int,
    *,
    confidence_level: float = CONFIDENCE_LEVEL,
) -> tuple[float, float] | None:
    """Where another sweep's ``geometric_mean_ms`` over ``other_trials`` trials of the same
    cell falls, from this sweep's trials (milliseconds); None with fewer than 3 trials."""
    summary = _log_summary(trial_medians_ms)
    if summary is None or other_trials < 1:
        return None
    n, mean, sd = summary
    t = _t_quantile(0.5 + confidence_level / 2.0, n - 1)
    half = t * sd * math.sqrt(1.0 / n + 1.0 / other_trials)
    return math.exp(mean - half), math.exp(mean + half)


def short_of_target(
    cells: Sequence[tuple[K, Sequence[float], int]],
    *,
    target: float,
    max_trials: int,
    budget_left: int,
) -> list[K]:
    """The cells that get one more trial in the next round of an adaptive run.

    ``cells`` holds, in plan order, each cell's key, its successful trials' medians and how
    many trials it has used (failed ones included). A cell gets another trial while its
    cross-trial interval is missing or wider than ``target`` (relative half-width) and it
    has used fewer than ``max_trials``; at most ``budget_left`` cells are chosen, the ones
    furthest from the target first, so a short budget goes where it helps most.
    """
    wanting: list[tuple[float, int, K]] = []
    for index, (key, medians, used) in enumerate(cells):
        if used >= max_trials:
            continue
        interval = cross_trial_interval(medians)
        if interval.within(target):
            continue
        width = interval.half_width
        wanting.append((-(width if width is not None else math.inf), index, key))
    chosen = sorted(wanting, key=lambda item: item[:2])[: max(0, budget_left)]
    return [key for _, _, key in sorted(chosen, key=lambda item: item[1])]
