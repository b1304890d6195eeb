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
* ``high_cv``: the median over trials of the within-process robust CV (IQR / 1.349 /
  median) above 10 %: pooled samples mix processes, so the pooled CV says nothing about
  one process, and a plain CV over thousands of per-inference samples is dominated by the
  few preempted ones;
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

import numpy as np

from results.guards import (
    LOADAVG_PER_CPU_MAX,
    LOW_BATTERY_PCT,
    OTHER_LOAD_MAX,
    STEAL_MAX,
    judge_trial,
    pinning,
)
from results.stats import HIGH_CV, Summary
from results.trials import TrialInterval, cross_trial_interval

SPREAD_MAX: Final = 0.10
"""A between-trial spread (SD of log trial medians) above this flags ``spread``."""

FLAG_MEANINGS: Final[Mapping[str, str]] = {
    "throttled": "the device throttled its CPU frequency during a trial",
    "hot": "a thermal zone reached the device's temperature limit",
    "busy": f"other processes used more than {OTHER_LOAD_MAX:.0%} of the measured CPUs",
    "steal": f"the hypervisor took more than {STEAL_MAX:.0%} of the CPUs' time",
    "overloaded": f"the load average exceeded {LOADAVG_PER_CPU_MAX:g} runnable tasks per CPU",
    "low_battery": f"the phone's battery was below {LOW_BATTERY_PCT} % and not charging",
    "spread": f"trials (fresh processes) differ by more than {SPREAD_MAX:.0%} (SD of log medians)",
    "target_missed": "the run's cross-trial CI target was not reached",
    "high_cv": f"samples within one process vary by more than {HIGH_CV:.0%} (robust CV)",
    "few_samples": "fewer samples than requested",
    "no_samples": "no samples",
}


def _robust_cv(samples: object) -> float | None:
    """IQR / 1.349 / median of one trial's samples: the CV of a normal distribution with the
    same quartiles, not inflated by a single preempted inference as the plain CV is."""
    if not isinstance(samples, list) or len(samples) < 4:
        return None
    values = np.asarray([float(v) for v in samples], dtype=np.float64)
    q1, median, q3 = np.percentile(values, [25.0, 50.0, 75.0])
    return float((q3 - q1) / 1.349 / median) if median > 0 else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def cell_reliability(
    documents: Sequence[Mapping[str, object]],
    summaries: Sequence[Summary],
    pooled_flags: Sequence[str] = (),
) -> dict[str, object]:
    """The trust columns of one cell from its successful trials (same order in both).

    ``pooled_flags`` are the flags of the pooled summary; its ``few_samples`` (fewer samples
    than all trials asked for together) and ``no_samples`` are kept.
    """
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
    within = [w for d in documents if (w := _robust_cv(d.get("samples_ms"))) is not None]
    if within and statistics.median(within) > HIGH_CV:
        flags.append("high_cv")
        reasons.append(
            f"within-process spread {statistics.median(within):.0%} (IQR / 1.349 / median, "
            f"median of trials; limit {HIGH_CV:.0%})"
        )
    for sample_flag in ("few_samples", "no_samples"):
        if sample_flag in pooled_flags:
            flags.append(sample_flag)
            reasons.append(FLAG_MEANINGS[sample_flag])
    references = [r for d in documents if (r := _number(d.get("reference_ms"))) is not None]
    state, command = _device_state(documents)
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
        "device_state": state,
        "pin_command": command,
    }


def _device_state(documents: Sequence[Mapping[str, object]]) -> tuple[str, str]:
    """How the device stood at the first guarded trial, and the command that would pin it."""
    for document in documents:
        guards = document.get("guards")
        if not isinstance(guards, Mapping) or not isinstance(guards.get("before"), Mapping):
            continue
        before = guards["before"]
        assert isinstance(before, Mapping)
        root = guards.get("root_command")
        cpus = guards.get("cpus")
        state = pinning(
            before,
            cpus=[c for c in cpus if isinstance(c, int)] if isinstance(cpus, list) else None,
            root_command=root if isinstance(root, str) and root else "sudo sh -c",
        )
        parts: list[str] = []
        command = ""
        if state is None:
            parts.append("no cpufreq (frequencies not visible)")
        else:
            pinned = "pinned" if state.pinned else "not pinned"
            parts.append(f"governor {'/'.join(state.governors)} ({pinned})")
            command = " && ".join(state.commands)
        android = before.get("android")
        if isinstance(android, Mapping):
            level, charging = android.get("battery_level_pct"), android.get("charging")
            if level is not None:
                parts.append(f"battery {level} %{' charging' if charging else ''}")
            screen = android.get("screen_on")
            if screen is not None:
                parts.append(f"screen {'on' if screen else 'off'}")
            status = android.get("thermal_status")
            if status is not None:
                parts.append(f"thermal status {status}")
        return "; ".join(parts), command
    return "", ""


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
