"""results.reliability: which cells are flagged, and why, from recorded trial documents."""

from __future__ import annotations

import numpy as np
import pytest

from results.reliability import cell_reliability, stability
from results.stats import Summary, summarize
from results.trials import short_of_target


def _reading(
    busy: int, steal: int = 0, scaling_max: int = 2_800_000, temp: float = 40.0
) -> dict[str, object]:
    return {
        "proc_stat": {
            "cpu": [busy, 10_000, steal],
            "cpu0": [busy, 5_000, 0],
            "cpu1": [0, 5_000, 0],
        },
        "clock_ticks_per_s": 100,
        "loadavg": [0.5, 0.4, 0.3],
        "cpus": [
            {
                "cpu": 0,
                "cur_khz": 2_000_000,
                "max_khz": 2_800_000,
                "scaling_max_khz": scaling_max,
                "scaling_min_khz": 300_000,
                "governor": "schedutil",
            }
        ],
        "thermal": [{"zone": "thermal_zone0", "type": "cpu", "temp_c": temp, "passive_c": None}],
    }


def _document(
    median_ms: float,
    *,
    other_ticks: int = 2,
    throttle: bool = False,
    waited_s: float | None = None,
    target: float | None = None,
) -> tuple[dict[str, object], Summary]:
    rng = np.random.default_rng(int(median_ms * 1000))
    samples = [float(v) for v in median_ms * rng.lognormal(0.0, 0.02, 200)]
    # 2 s of wall time on cpu0; the trial's own 1.9 s of CPU time plus other processes'.
    after = _reading(
        1000 + 190 + other_ticks,
        scaling_max=1_680_000 if throttle else 2_800_000,
        temp=70.0 if throttle else 41.0,
    )
    document: dict[str, object] = {
        "samples_ms": samples,
        "reference_ms": 4.0 + median_ms / 100,
        "guards": {
            "before": _reading(1000),
            "after": after,
            "wall_s": 2.0,
            "own_cpu_s": 1.9,
            "own_cpu_source": "children",
            "cpus": [0],
            "cooldown": {"waited_s": waited_s} if waited_s is not None else None,
            "hot_c": 75.0,
            "kind": "ssh",
        },
    }
    if target is not None:
        document["trial_target_ci"] = target
    return document, summarize(samples)


def _cell(medians: list[float], **kwargs: object) -> dict[str, object]:
    pairs = [_document(m, **kwargs) for m in medians]  # type: ignore[arg-type]
    return cell_reliability([d for d, _ in pairs], [s for _, s in pairs])


def test_a_quiet_cell_is_not_flagged() -> None:
    trust = _cell([2.00, 2.04, 1.97, 2.01])
    assert trust["flags"] == "" and trust["unreliable"] == ""
    assert trust["ci_reason"] == ""
    assert trust["ci_low_ms"] is not None and trust["ci_high_ms"] is not None
    assert trust["ci_low_ms"] < 2.0 < trust["ci_high_ms"]  # type: ignore[operator]
    assert trust["other_load"] == pytest.approx(0.01)
    assert trust["device_state"] == "governor schedutil (not pinned)"
    assert "scaling_governor" in str(trust["pin_command"])


def test_busy_and_throttled_trials_flag_the_cell_with_counts() -> None:
    busy = [_document(2.0, other_ticks=60), _document(2.02), _document(2.01, throttle=True)]
    trust = cell_reliability([d for d, _ in busy], [s for _, s in busy])
    flags = str(trust["flags"]).split(",")
    assert flags == ["busy", "throttled"]
    reasons = str(trust["unreliable"])
    assert "busy in 1 of 3 trials (other processes used 30% of the measured CPUs" in reasons
    assert "throttled in 1 of 3 trials (max frequency capped on cpu 0)" in reasons
    assert trust["hottest_c"] == 70.0


def test_spread_target_and_within_process_cv() -> None:
    spread = _cell([1.3, 2.7, 1.9])
    assert "spread" in str(spread["flags"]).split(",")
    missed = _cell([2.0, 2.1, 1.95], target=0.001)
    assert str(missed["flags"]) == "target_missed"
    assert "target ±0.1%" in str(missed["unreliable"])
    noisy_docs = []
    noisy_summaries = []
    rng = np.random.default_rng(5)
    for _ in range(3):
        samples = [float(v) for v in 2.0 * rng.lognormal(0.0, 0.3, 200)]
        noisy_docs.append({"samples_ms": samples})
        noisy_summaries.append(summarize(samples))
    noisy = cell_reliability(noisy_docs, noisy_summaries)
    assert "high_cv" in str(noisy["flags"])


def test_cooldown_waits_add_up_and_two_trials_give_a_reason() -> None:
    trust = _cell([2.0, 2.05], waited_s=4.5)
    assert trust["cooldown_s"] == 9.0
    assert trust["ci_low_ms"] is None
    assert trust["ci_reason"] == "2 trials: an interval needs at least 3"


def test_short_of_target_picks_widest_cells_within_budget() -> None:
    cells = [
        ("tight", [2.0, 2.01, 1.99], 3),
        ("wide", [1.3, 2.7, 1.9], 3),
        ("medium", [2.0, 2.2, 1.9], 3),
        ("full", [1.3, 2.7, 1.9], 10),
        ("two", [2.0, 2.1], 2),
    ]
    chosen = short_of_target(cells, target=0.02, max_trials=10, budget_left=10)
    assert chosen == ["wide", "medium", "two"]  # plan order kept
    assert short_of_target(cells, target=0.02, max_trials=10, budget_left=1) == ["two"]
    assert short_of_target(cells, target=0.02, max_trials=10, budget_left=0) == []
    assert short_of_target(cells, target=3.0, max_trials=10, budget_left=10) == ["two"]


def test_stability_figure() -> None:
    figure = stability([4.0, 4.1, 3.9, 4.4])
    assert figure is not None
    assert figure["trials"] == 4
    assert figure["range_ratio"] == pytest.approx(4.4 / 3.9)
    assert stability([4.0, 4.1]) is None
