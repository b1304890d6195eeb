"""Whether a cell's number can be trusted: its cross-trial interval, flags and the reasons.

Owns the cell-level columns every table, CSV, JSON and report shows about trust, computed
from a cell's successful trial documents and their per-trial summaries:

* ``ci_low_ms``/``ci_high_ms``: the cross-trial 95 % CI of the median (``results.trials``),
  ``ci_reason`` when there is none, ``spread`` (SD of log trial medians);
* ``within_ci_low_ms``/``within_ci_high_ms`` are set by the caller from the pooled samples
  (the within-process interval, a secondary figure);
* ``flags``: the reasons a cell is unreliable, each with a documented threshold
  (docs/measurement.md, "Flags"), and ``unreliable``: one line saying why, for people.

Flags of a cell:

* from the trials' guards (``results.guards.judge_trial``): ``throttled``, ``hot``,
  ``busy``, ``steal``, ``overloaded``, ``low_battery`` -- when any trial has it;
* ``spread``: the between-trial spread above ``SPREAD_MAX`` (10 %, pyperf's CV limit,
  applied to the unit of replication);
* ``target_missed``: an adaptive run (``run --target-ci``) ended before the cell's interval
  was within the target;
* ``high_cv``: the median over trials of the within-process CV above 10 % (pooled samples
  mix processes, so the pooled CV says nothing about one process);
* ``few_samples``/``no_samples`` as in ``results.stats``.

``far_min``/``far_max`` (one sample far from the median) are no longer flags: over
thousands of per-inference samples one preempted inference is expected, not instability;
tails are in p99 and max.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Final

from results.guards import judge_trial
from results.stats import HIGH_CV, Summary
from results.trials import TrialInterval, cross_trial_interval

SPREAD_MAX: Final = 0.10
"""A between-trial spread (SD of log trial medians) above this flags ``spread``."""

FLAG_MEANINGS: Final[Mapping[str, str]] = {
    "throttled": "the device throttled its CPU frequency during a trial",
    "hot": "a thermal zone reached the device's temperature limit",
    "busy": "other processes used more than 10 % of the measured CPUs",
    "steal": "the hypervisor took more than 5 % of the CPUs' time",
    "overloaded": "the load average exceeded 1.5 runnable tasks per CPU",
    "low_battery": "the phone's battery was below 25 % and not charging",
    "spread": "trials (fresh processes) differ by more than 10 % (SD of log medians)",
    "target_missed": "the run's cross-trial CI target was not reached",
    "high_cv": "samples within one process vary by more than 10 % (CV)",
    "few_samples": "fewer samples than requested",
    "no_samples": "no samples",
}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def cell_reliability(
    documents: Sequence[Mapping[str, object]], summaries: Sequence[Summary]
) -> dict[str, object]:
    """The trust columns of one cell from its successful trials (same order in both)."""
    medians = [s.median_ms for s in summaries if s.median_ms is not None and s.median_ms > 0]
    interval: TrialInterval = cross_trial_interval(medians)
    counts: Counter[str] = Counter()
    notes: dict[str, str] = {}
    hottest: list[float] = []
    other: list[float] = []
    waited = 0.0
    for document in documents:
        guards = document.get("guards")
        judgement = judge_trial(guards if isinstance(guards, Mapping) else None)
        for flag, note in judgement.notes:
            counts[flag] += 1
            notes.setdefault(flag, note)
        if judgement.throttling and judgement.throttling.hottest_after_c is not None:
            hottest.append(judgement.throttling.hottest_after_c)
        if judgement.load is not None:
            other.append(judgement.load.other_fraction)
        waited += judgement.cooldown_s or 0.0
    flags: list[str] = list(counts)
    reasons = [
        f"{flag} in {counts[flag]} of {len(documents)} trials ({notes[flag]})" for flag in flags
    ]
    if interval.spread is not None and interval.spread > SPREAD_MAX:
        flags.append("spread")
        reasons.append(
            f"trials differ by {interval.spread:.0%} (SD of log medians; limit {SPREAD_MAX:.0%})"
        )
    targets = [t for d in documents if (t := _number(d.get("trial_target_ci"))) is not None]
    if targets and not interval.within(min(targets)):
        flags.append("target_missed")
        width = interval.half_width
        got = f"±{width:.1%}" if width is not None else "none"
        reasons.append(
            f"cross-trial CI {got} after {interval.trials} trials, target ±{min(targets):.1%}"
        )
    cvs = [s.cv for s in summaries if s.cv is not None]
    if cvs and statistics.median(cvs) > HIGH_CV:
        flags.append("high_cv")
        reasons.append(
            f"within-process CV {statistics.median(cvs):.0%} (median of trials; limit "
            f"{HIGH_CV:.0%})"
        )
    for sample_flag in ("few_samples", "no_samples"):
        if any(sample_flag in s.flags for s in summaries):
            flags.append(sample_flag)
            reasons.append(FLAG_MEANINGS[sample_flag])
    references = [r for d in documents if (r := _number(d.get("reference_ms"))) is not None]
    return {
        "ci_low_ms": interval.ci_low_ms,
        "ci_high_ms": interval.ci_high_ms,
        "ci_reason": interval.reason or "",
        "spread": interval.spread,
        "flags": ",".join(flags),
        "unreliable": "; ".join(reasons),
        "hottest_c": max(hottest) if hottest else None,
        "other_load": max(other) if other else None,
        "cooldown_s": waited if any(d.get("guards") for d in documents) else None,
        "trial_reference_ms": references,
    }


def stability(reference_ms: Sequence[float]) -> dict[str, float | int] | None:
    """The run's stability figure from every trial's reference workload time.

    ``spread`` is the SD of the log times (about the CV), ``range_ratio`` slowest over
    fastest; None below 3 trials.
    """
    values = [v for v in reference_ms if v > 0]
    if len(values) < 3:
        return None
    interval = cross_trial_interval(values)
    assert interval.spread is not None and interval.range_ratio is not None
    return {
        "trials": len(values),
        "median_ms": statistics.median(values),
        "spread": interval.spread,
        "range_ratio": interval.range_ratio,
    }
