"""Paired analysis of interleaved bursts, and sequential verdicts that stop when decided.

The design (``mnbench regress``): per cell, process pairs (a baseline and a candidate
process started together) are the unit of replication; inside a pair the two processes
alternate bursts of K inferences while the other one is suspended. This module owns what
is computed from those bursts:

- **burst value**: the median of the burst's samples; **burst ratio** ``r_j = log(B_j /
  A_j)`` for the j-th burst of each side; **pair summary** ``d = mean_j r_j`` (the log of
  the geometric-mean burst ratio), so drift shared by the two processes cancels inside the
  pair (duet benchmarking's idea, Bulej et al. 2020);
- **cell estimate**: ``exp(mean d)`` over pairs with a Student-t CI on the log ratios
  across pairs (the process pair is the replicate; pyperf's lesson that processes differ),
  and both variance components: within a pair (sd of ``r_j`` around its pair's mean) and
  between pairs (method of moments: ``var(d) - var_within / M``, floored at 0);
- **sequential verdicts** (Pinpoint's SAME / DIFFERENT / UNKNOWN): after each round
  of pairs a cell at a look is ``unchanged`` when its CI lies within ``±threshold``,
  ``slower``/``faster`` when its CI lies wholly beyond the threshold *and* its
  Benjamini–Hochberg-adjusted p-value (two-sided one-sample t on ``d``, adjusted across
  the cells) is below the look's alpha; otherwise it gets another pair, until
  ``max_pairs`` (or the caller's time budget) → ``inconclusive``.

Repeated looks: alpha is spent over the looks with the Lan–DeMets spending function of
Pocock type, ``alpha(t) = alpha * ln(1 + (e - 1) t)``, ``t = n / max_pairs`` (Lan & DeMets
1983, *Biometrika* 70:659; Kim & DeMets 1987). Look ``i`` uses the increment
``alpha(t_i) - alpha(t_{i-1})`` as the (two-sided) level of its CI and of its test; the
increments sum to ``alpha``, so by Bonferroni's inequality the chance that *any* look's CI
misses the true ratio is at most ``alpha`` whatever the correlation between looks -- a
conservative form of the repeated confidence intervals of Jennison & Turnbull (1989).
Looks are on a geometric schedule (every pair up to 6, then ×1.3), so few looks share
the alpha and each is not much wider than a fixed-sample CI. The Pocock shape spends early
(quick answers for clear cases); O'Brien–Fleming would keep the early CIs almost infinitely
wide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

Side = Literal["A", "B"]
Verdict = Literal["slower", "faster", "unchanged", "inconclusive"]

DEFAULT_ALPHA: Final = 0.05
DEFAULT_MIN_PAIRS: Final = 3
DEFAULT_MAX_PAIRS: Final = 30
LOOK_GROWTH: Final = 1.3
DENSE_LOOKS_UP_TO: Final = 6


@dataclass(frozen=True)
class Burst:
    """One timed burst of one side inside a process pair."""

    pair: int
    position: int  # 0-based order inside the pair, over both sides
    side: Side
    start_unix: float
    samples_ms: tuple[float, ...]

    @property
    def value_ms(self) -> float:
        return float(np.median(self.samples_ms))


def burst_log_ratios(bursts: Sequence[Burst]) -> list[float]:
    """``log(B_j / A_j)`` for the j-th burst of each side of one pair (in position order)."""
    ordered = sorted(bursts, key=lambda b: b.position)
    a = [b.value_ms for b in ordered if b.side == "A"]
    b = [b.value_ms for b in ordered if b.side == "B"]
    return [math.log(y / x) for x, y in zip(a, b, strict=False) if x > 0 and y > 0]


@dataclass(frozen=True)
class Estimate:
    """The cell's ratio candidate/baseline over its pairs, with a CI at ``confidence``."""

    pairs: int
    ratio: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    within_sd: float | None  # log-ratio sd of one burst pair inside a process pair
    between_sd: float | None  # log-ratio sd of a process pair's true ratio across pairs
    pair_sd: float | None  # observed sd of the pair summaries


def estimate(pairs: Sequence[Sequence[float]], confidence: float = 0.95) -> Estimate:
    """Ratio, t-CI across pairs and the variance components, from per-pair burst log ratios."""
    from scipy import stats

    kept = [list(r) for r in pairs if len(r)]
    summaries = np.array([sum(r) / len(r) for r in kept], dtype=np.float64)
    n = len(summaries)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, confidence, 1.0, None, None, None)
    mean = float(summaries.mean())
    within_vars = [_variance(r) for r in kept if len(r) >= 2]
    within_sd = math.sqrt(sum(within_vars) / len(within_vars)) if within_vars else None
    if n < 2:
        return Estimate(1, math.exp(mean), 0.0, math.inf, confidence, 1.0, within_sd, None, None)
    sd = float(summaries.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0.0:
        half, p = 0.0, (1.0 if mean == 0.0 else 0.0)
    else:
        half = float(stats.t.ppf(1 - (1 - confidence) / 2, n - 1)) * se
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    between_sd = None
    if within_sd is not None:
        bursts_per_pair = sum(len(r) for r in kept) / n
        between_sd = math.sqrt(max(0.0, sd**2 - within_sd**2 / bursts_per_pair))
    return Estimate(
        n,
        math.exp(mean),
        math.exp(mean - half),
        math.exp(mean + half),
        confidence,
        p,
        within_sd,
        between_sd,
        sd,
    )


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def looks(max_pairs: int, min_pairs: int = DEFAULT_MIN_PAIRS) -> list[int]:
    """The pair counts at which a cell is looked at: every pair up to 6, then ×1.3, and
    ``max_pairs`` itself."""
    points: list[int] = []
    n = min_pairs
    while n < max_pairs:
        points.append(n)
        n = n + 1 if n < DENSE_LOOKS_UP_TO else max(n + 1, math.ceil(n * LOOK_GROWTH))
    points.append(max_pairs)
    return sorted(set(p for p in points if p >= min(min_pairs, max_pairs)))


def spent_alpha(fraction: float, alpha: float = DEFAULT_ALPHA) -> float:
    """Lan–DeMets Pocock-type spending: the alpha spent by information fraction ``t``."""
    t = min(max(fraction, 0.0), 1.0)
    return alpha * math.log(1 + (math.e - 1) * t)


def look_alpha(
    n: int,
    last_look: int,
    max_pairs: int,
    alpha: float = DEFAULT_ALPHA,
) -> float:
    """The alpha of a look at ``n`` pairs when the previous look was at ``last_look``."""
    return spent_alpha(n / max_pairs, alpha) - spent_alpha(last_look / max_pairs, alpha)


def verdict_for(
    low: float, high: float, p_adjusted: float, threshold: float, alpha: float
) -> Verdict:
    upper, lower = 1 + threshold, 1 / (1 + threshold)
    if p_adjusted < alpha and low > upper:
        return "slower"
    if p_adjusted < alpha and high < lower:
        return "faster"
    if lower <= low and high <= upper:
        return "unchanged"
    return "inconclusive"


@dataclass
class CellState:
    """Where one cell stands: its pairs so far, its latest look and its verdict."""

    pairs: list[list[float]] = field(default_factory=list)
    estimate: Estimate | None = None
    look_alpha: float | None = None
    p_adjusted: float = 1.0
    verdict: Verdict = "inconclusive"
    decided: bool = False
    out_of_budget: bool = False
    last_look: int = 0


class SequentialAnalysis:
    """The sequential rule over rounds of pairs, for live runs and re-analysis alike.

    ``add(cell, log_ratios)`` records one more pair for a cell; ``look()`` then evaluates
    every undecided cell that has just reached a look, with Benjamini–Hochberg across the
    cells' latest p-values. A decided cell never gets more pairs.
    """

    def __init__(
        self,
        cells: Sequence[str],
        threshold: float,
        alpha: float = DEFAULT_ALPHA,
        max_pairs: int = DEFAULT_MAX_PAIRS,
        min_pairs: int = DEFAULT_MIN_PAIRS,
    ) -> None:
        self.threshold = threshold
        self.alpha = alpha
        self.max_pairs = max_pairs
        self.min_pairs = min(min_pairs, max_pairs)
        self.cells: dict[str, CellState] = {cell: CellState() for cell in cells}
        self.schedule = set(looks(max_pairs, self.min_pairs))
        self._pending: set[str] = set()
        self._final: set[str] = set()

    def undecided(self) -> list[str]:
        return [
            c
            for c, s in self.cells.items()
            if not s.decided and not s.out_of_budget and len(s.pairs) < self.max_pairs
        ]

    def add(self, cell: str, log_ratios: Sequence[float]) -> None:
        state = self.cells[cell]
        if state.decided:
            raise ValueError(f"{cell} is already decided")
        state.pairs.append(list(log_ratios))
        self._pending.add(cell)

    def stop(self, cell: str) -> None:
        """The caller's budget for this cell ran out: the next ``look()`` is its last one
        (spending the alpha between its previous look and now), whatever it shows."""
        state = self.cells[cell]
        state.out_of_budget = True
        if len(state.pairs) > state.last_look and len(state.pairs) >= self.min_pairs:
            self._final.add(cell)

    def look(self) -> None:
        from scipy import stats

        looked: list[str] = []
        for cell in sorted(self._pending | self._final):
            state = self.cells[cell]
            n = len(state.pairs)
            if state.decided or n <= state.last_look:
                continue
            if n not in self.schedule and cell not in self._final:
                continue
            level = look_alpha(n, state.last_look, self.max_pairs, self.alpha)
            state.last_look = n
            state.look_alpha = level
            state.estimate = estimate(state.pairs, 1 - level)
            looked.append(cell)
        self._pending.clear()
        self._final.clear()
        if not looked:
            return
        with_p = [c for c, s in self.cells.items() if s.estimate is not None]
        p_values = [self.cells[c].estimate.p_value for c in with_p]  # type: ignore[union-attr]
        adjusted = (
            stats.false_discovery_control(p_values, method="bh") if len(p_values) > 1 else p_values
        )
        for cell, p_adj in zip(with_p, adjusted, strict=True):
            self.cells[cell].p_adjusted = float(p_adj)
        for cell in looked:
            state = self.cells[cell]
            assert state.estimate is not None and state.look_alpha is not None
            verdict = verdict_for(
                state.estimate.ci_low,
                state.estimate.ci_high,
                state.p_adjusted,
                self.threshold,
                state.look_alpha,
            )
            state.verdict = verdict
            state.decided = verdict != "inconclusive"


def replay(
    pairs_by_cell: Mapping[str, Sequence[Sequence[float]]],
    threshold: float,
    alpha: float = DEFAULT_ALPHA,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    min_pairs: int = DEFAULT_MIN_PAIRS,
) -> SequentialAnalysis:
    """Re-run the sequential rule on stored pairs, one round at a time (as measured).

    A cell whose stored pairs end before it was decided (its budget ran out) stays
    inconclusive at its last look.
    """
    analysis = SequentialAnalysis(list(pairs_by_cell), threshold, alpha, max_pairs, min_pairs)
    rounds = max((len(p) for p in pairs_by_cell.values()), default=0)
    for index in range(rounds + 1):  # the extra round ends cells cut short by their budget
        for cell in analysis.undecided():
            stored = pairs_by_cell[cell]
            if index < len(stored):
                analysis.add(cell, stored[index])
            else:
                analysis.stop(cell)
        analysis.look()
    return analysis
