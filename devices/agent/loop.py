"""The timing loops: warm-up until stable, the measuring loop with its stopping rule, bursts.

Each timed inference is ``perf_counter_ns(); run_with_iobinding(); perf_counter_ns()`` plus
one list append, with the garbage collector off. The stopping rule (``measure``) is checked
at most every 0.2 s: after ``--min-samples`` samples and ``--min-time`` seconds it stops once
the 95 % CI of the median (``stats.py``) has a relative half-width <= ``--target-ci``;
``--max-time`` and ``--max-samples`` are hard caps; ``--fixed N`` is one ``burst`` of N.
``reference_ms`` times a fixed pure-Python loop before the model loads (the run's stability
figure).
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

from devices.agent.stats import median_ci_sorted, relative_ci_half_width

CHECK_INTERVAL_NS = 200000000  # the stopping rule is evaluated at most every 0.2 s
WARMUP_WINDOW_MIN_ITERATIONS = 5
WARMUP_WINDOW_MIN_NS = 100000000  # 0.1 s
WARMUP_STABLE_REL = 0.02
REFERENCE_LOOPS = 100000  # one repeat of the reference workload: this many loop iterations
REFERENCE_REPEATS = 5


def reference_ms() -> float:
    """The median time of a fixed pure-Python loop: the same work in every trial of a run.

    It depends on the core's clock and on what else shares it, not on the model, so its
    spread over a run says how much the device itself drifted (the report's stability).
    """
    times = []
    for _ in range(REFERENCE_REPEATS):
        start = time.perf_counter_ns()
        total = 0
        for i in range(REFERENCE_LOOPS):
            total += i * i % 7
        times.append(time.perf_counter_ns() - start)
    times.sort()
    return round(times[len(times) // 2] / 1e6, 6)


def warm_up(run: Any, binding: Any, max_iterations: int, max_time_s: float) -> tuple[int, float]:
    """Run until two consecutive windows have medians within 2 %, or a cap; (count, s)."""
    clock = time.perf_counter_ns
    start = clock()
    deadline = start + int(max_time_s * 1e9)
    count = 0
    previous_median: float | None = None
    window: list[int] = []
    window_start = start
    while count < max_iterations:
        t0 = clock()
        run(binding)
        t1 = clock()
        window.append(t1 - t0)
        count += 1
        if t1 >= deadline:
            break
        if (
            len(window) >= WARMUP_WINDOW_MIN_ITERATIONS
            and t1 - window_start >= WARMUP_WINDOW_MIN_NS
        ):
            window.sort()
            middle = len(window) // 2
            median = (window[middle] + window[(len(window) - 1) // 2]) / 2.0
            if (
                previous_median is not None
                and abs(median - previous_median) <= WARMUP_STABLE_REL * previous_median
            ):
                break
            previous_median = median
            window = []
            window_start = t1
    return count, (clock() - start) / 1e9


def measure(
    np: Any, run: Any, binding: Any, args: argparse.Namespace
) -> tuple[list[int], str, float]:
    """Timed samples in ns, the stop reason and the seconds spent measuring."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        if args.fixed is not None:
            return burst(run, binding, args.fixed), "fixed", (clock() - start) / 1e9
        min_ns = int(args.min_time * 1e9)
        max_ns = int(args.max_time * 1e9)
        deadline = start + max_ns
        next_check = start + min_ns
        reason = "max_samples"
        for _ in range(args.max_samples):
            t0 = clock()
            run(binding)
            t1 = clock()
            append(t1 - t0)
            if t1 >= next_check:
                if t1 >= deadline:
                    reason = "max_time"
                    break
                if len(samples) >= args.min_samples:
                    ordered = np.sort(np.asarray(samples, dtype=np.int64))
                    median, low, high = median_ci_sorted(ordered)
                    if relative_ci_half_width(median, low, high) <= args.target_ci:
                        reason = "ci_target"
                        break
                next_check = min(clock() + CHECK_INTERVAL_NS, deadline)
        return samples, reason, (clock() - start) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()


def burst(run: Any, binding: Any, count: int) -> list[int]:
    """``count`` inferences back to back, each timed in ns, the garbage collector off."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(count):
            t0 = clock()
            run(binding)
            t1 = clock()
            append(t1 - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples
