"""Comparison statistics on synthetic samples with known shifts and known noise, checked
against scipy computed independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.commands.exits import comparison_exit_code
from results.compare import (
    bootstrap_ratio_ci,
    compare_frames,
    mann_whitney_p,
    verdict_for,
)
from results.errors import ResultsError


def trials(
    rng: np.random.Generator,
    median_ms: float,
    n_trials: int = 6,
    n: int = 200,
    noise: float = 0.02,
    between: float = 0.005,
) -> list[np.ndarray]:
    """Lognormal samples per trial, with a per-trial (between-process) offset."""
    out = []
    for _ in range(n_trials):
        centre = median_ms * np.exp(rng.normal(0, between))
        out.append(centre * np.exp(rng.normal(0, noise, n)))
    return out


def frame(cells: dict[str, list[np.ndarray]], sha: str = "s", status: str = "ok") -> pd.DataFrame:
    rows = []
    for name, per_trial in cells.items():
        for i, samples in enumerate(per_trial, start=1):
            rows.append(
                {
                    "sha256": f"{sha}-{name}",
                    "config_key": '{"threads": 1}',
                    "name": name,
                    "threads": 1,
                    "trial": i,
                    "status": status,
                    "reason": None if status == "ok" else "runner crashed",
                    "samples_ms": list(samples),
                    "p50_ms": float(np.median(samples)),
                    "flags": "",
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        (1.00, "unchanged"),
        (1.03, "unchanged"),
        (1.10, "slower"),
        (1.50, "slower"),
        (1 / 1.10, "faster"),
        (0.5, "faster"),
    ],
)
def test_known_shifts_get_the_right_verdict(shift: float, expected: str) -> None:
    rng = np.random.default_rng(42)
    base = frame({"m": trials(rng, 10.0)})
    cand = frame({"m": trials(rng, 10.0 * shift)})
    comparison = compare_frames(base, cand, 1, 2, threshold=0.05)
    (cell,) = comparison.cells
    assert cell.verdict == expected
    assert cell.ci_low <= shift * 1.01 and cell.ci_high >= shift * 0.99  # CI covers the truth
    assert cell.ratio == pytest.approx(shift, rel=0.02)


def test_noisy_small_shift_is_inconclusive_not_a_false_alarm() -> None:
    rng = np.random.default_rng(7)
    base = frame({"m": trials(rng, 10.0, n_trials=3, noise=0.2, between=0.08)})
    cand = frame({"m": trials(rng, 10.6, n_trials=3, noise=0.2, between=0.08)})
    (cell,) = compare_frames(base, cand, 1, 2).cells
    assert cell.verdict == "inconclusive"


def test_mann_whitney_and_bh_match_scipy() -> None:
    rng = np.random.default_rng(3)
    cells_a = {f"m{i}": trials(rng, 5.0 + i) for i in range(5)}
    cells_b = {f"m{i}": trials(rng, (5.0 + i) * (1.2 if i % 2 else 1.0)) for i in range(5)}
    comparison = compare_frames(frame(cells_a), frame(cells_b), 1, 2)
    raw = []
    for cell in comparison.cells:
        a = [float(np.median(t)) for t in cells_a[cell.name]]
        b = [float(np.median(t)) for t in cells_b[cell.name]]
        expected = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
        assert cell.p_value == pytest.approx(expected)
        assert mann_whitney_p(a, b) == pytest.approx(expected)
        raw.append(expected)
    adjusted = stats.false_discovery_control(raw, method="bh")
    assert [c.p_adjusted for c in comparison.cells] == pytest.approx(list(adjusted))
    ratios = [c.ratio for c in comparison.cells]
    assert comparison.geometric_mean_ratio == pytest.approx(float(stats.gmean(ratios)))
    assert {c.verdict for c in comparison.cells if c.name in ("m1", "m3")} == {"slower"}


def test_bootstrap_ci_is_seeded_and_ordered() -> None:
    rng = np.random.default_rng(0)
    a, b = trials(rng, 10.0), trials(rng, 12.0)
    first = bootstrap_ratio_ci(a, b, seed=1)
    assert first == bootstrap_ratio_ci(a, b, seed=1)
    ratio, low, high = first
    assert low < ratio < high
    assert low > 1.1 and high < 1.3


def test_verdict_rules() -> None:
    assert verdict_for(1.06, 1.2, 0.01, 0.05) == "slower"
    assert verdict_for(1.06, 1.2, 0.2, 0.05) == "inconclusive"  # not significant
    assert verdict_for(1.04, 1.2, 0.001, 0.05) == "inconclusive"  # CI straddles the bound
    assert verdict_for(0.97, 1.03, 0.5, 0.05) == "unchanged"
    assert verdict_for(0.8, 0.9, 0.01, 0.05) == "faster"


def test_failed_only_in_candidate_exits_1_and_incompatible_files_refused() -> None:
    rng = np.random.default_rng(1)
    base = frame({"m": trials(rng, 10.0)})
    cand = frame({"m": trials(rng, 10.0)}, status="failed")
    comparison = compare_frames(base, cand, 1, 2)
    assert [f.side for f in comparison.failed] == ["candidate"]
    assert comparison_exit_code(comparison) == 1
    other = frame({"m": trials(rng, 10.0)}, sha="different")
    with pytest.raises(ResultsError, match="--force"):
        compare_frames(base, other, 1, 2)
    forced = compare_frames(base, other, 1, 2, force=True)
    assert len(forced.cells) == 1 and forced.warnings


def test_exit_codes() -> None:
    rng = np.random.default_rng(5)
    same = compare_frames(frame({"m": trials(rng, 10.0)}), frame({"m": trials(rng, 10.0)}), 1, 2)
    assert comparison_exit_code(same) == 0
    slow = compare_frames(frame({"m": trials(rng, 10.0)}), frame({"m": trials(rng, 13.0)}), 1, 2)
    assert comparison_exit_code(slow) == 1
    few = compare_frames(
        frame({"m": trials(rng, 10.0, n_trials=2, between=0.05)}),
        frame({"m": trials(rng, 10.8, n_trials=2, between=0.05)}),
        1,
        2,
    )
    assert comparison_exit_code(few) == 3
