"""Validation: predictions against held-out variants measured with fresh-process trials.

The truth of a variant is the median over its trials' medians with a distribution-free 95 %
interval (``trial_ci``); ``validate`` measures the held-out variants (interleaved, several
trials each) and scores the model's predictions on them: the share within ±5 % and ±10 % of
the measured median. None of ``HELD_OUT`` is measured for the fit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from harness.predict.prediction import predict_variant
from harness.predict.training import Session, measure_run

if TYPE_CHECKING:
    from harness.predict.estimator import FittedModel
    from mobilenet.spec import ModelSpec
    from results.store import Store

VALIDATE_LABEL: Final = "predict-validate"
VALIDATE_TRIALS: Final = 5
HELD_OUT: tuple[tuple[float, int, str, int], ...] = (
    *((a, r, "separable", 3) for a in (0.35, 0.6, 0.9) for r in (96, 176, 208, 256)),
    (0.5, 160, "separable", 5),
    (0.75, 192, "separable", 7),
    (0.25, 224, "separable", 7),
    (0.5, 128, "standard", 3),
    (0.25, 192, "standard", 3),
)
"""The default ``--validate`` set: 12 off-grid α × resolution, D_K 5 and 7, the standard
variant; none of them is measured for the fit."""
CHECK_HEADERS: Final = (
    "model",
    "pred ms",
    "measured ms",
    "CI low",
    "CI high",
    "CI ±",
    "trials",
    "error",
)
"""The table headers of ``Check``'s fields."""
NOISY_CI: Final = 0.03
"""A measured median whose 95 % interval is wider than ±this is reported as noisy."""


def relative_error(predicted_ms: float, measured_ms: float) -> float:
    return (predicted_ms - measured_ms) / measured_ms


def within_shares(errors: Iterable[float]) -> tuple[float, float]:
    """Share of relative errors within ±5 % and ±10 %."""
    values = np.array([e for e in errors if math.isfinite(e)])
    if values.size == 0:
        return math.nan, math.nan
    return float(np.mean(np.abs(values) <= 0.05)), float(np.mean(np.abs(values) <= 0.10))


@dataclass(frozen=True)
class Truth:
    """A measured variant: the median over its trials' medians and a 95 % interval of it."""

    name: str
    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    trials: int
    trial_medians: tuple[float, ...] = ()

    @property
    def fastest_ms(self) -> float:
        """The fastest trial's median: the variant in a fresh process while the host was at
        its quickest (on a shared host whole minutes run 1.3-2.5x slower)."""
        return min(self.trial_medians) if self.trial_medians else math.nan

    @property
    def ci_rel(self) -> float:
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.median_ms


def trial_ci(medians: Sequence[float]) -> tuple[float, float, float]:
    """Median of per-trial medians and a distribution-free 95 % CI of it (binomial order
    statistics; the widest, the extremes, below 6 trials)."""
    from scipy.stats import binom

    values = sorted(medians)
    n = len(values)
    centre = statistics.median(values)
    if n < 6:
        return centre, values[0], values[-1]
    k = int(binom.ppf(0.025, n, 0.5))
    low_index = max(0, k - 1)
    high_index = min(n - 1, n - k)
    return centre, values[low_index], values[high_index]


def truths_from_run(store: Store, run_id: int) -> dict[str, Truth]:
    """Per model of a run: the median of the trial medians and its interval."""
    results = store.results_frame([run_id])
    found: dict[str, Truth] = {}
    for record in results.to_dict("records"):
        medians = [float(m) for m in (record.get("trial_medians_ms") or []) if m is not None]
        if not medians:
            continue
        centre, low, high = trial_ci(medians)
        found[str(record["sha256"])] = Truth(
            str(record["name"]), centre, low, high, len(medians), tuple(medians)
        )
    return found


@dataclass(frozen=True)
class Check:
    """One held-out variant: its prediction beside its measured truth (NaN: not measured)."""

    name: str
    predicted_ms: float
    measured_ms: float
    ci_low_ms: float
    ci_high_ms: float
    ci_rel: float
    trials: int
    error: float


@dataclass(frozen=True)
class Validation:
    """A validation run's checks and scores."""

    run_id: int
    checks: tuple[Check, ...]
    within_5: float
    within_10: float
    noisy: int
    """Measured medians whose 95 % interval is wider than ``NOISY_CI``."""

    def summary(self, device: str) -> str:
        """One line: the shares within ±5 % and ±10 %, and how many truths are noisy."""
        return (
            f"{device}: {self.within_5:.0%} of {len(self.checks)} predictions within ±5 %, "
            f"{self.within_10:.0%} within ±10 % of the measured median (run {self.run_id}); "
            f"{self.noisy} measured medians have a 95 % interval wider than ±3 %"
        )


def validate(
    session: Session,
    store: Store,
    model: FittedModel,
    specs: Sequence[ModelSpec],
    models_dir: Path,
    *,
    trials: int,
    quiet: bool,
) -> Validation:
    """Measure ``specs`` ``trials`` times each (interleaved, one fresh process per trial)
    and check the model's predictions against them."""
    from harness.measure.sweep import prepare_models

    entries = prepare_models(specs, models_dir, store)
    run_id, _ = measure_run(
        session,
        store,
        entries,
        {e.sha256: trials for e in entries},
        VALIDATE_LABEL,
        models_dir,
        quiet,
        {"latency_model_runs": list(model.provenance.run_ids)},
    )
    truths = truths_from_run(store, run_id)
    checks = []
    for spec, entry in zip(specs, entries, strict=True):
        truth = truths.get(entry.sha256)
        p = predict_variant(model, spec.alpha, spec.resolution, spec.variant, spec.kernel)
        checks.append(
            Check(
                name=spec.name,
                predicted_ms=p.latency_ms,
                measured_ms=truth.median_ms if truth else math.nan,
                ci_low_ms=truth.ci_low_ms if truth else math.nan,
                ci_high_ms=truth.ci_high_ms if truth else math.nan,
                ci_rel=truth.ci_rel if truth else math.nan,
                trials=truth.trials if truth else 0,
                error=relative_error(p.latency_ms, truth.median_ms) if truth else math.nan,
            )
        )
    within_5, within_10 = within_shares(check.error for check in checks)
    noisy = sum(1 for truth in truths.values() if truth.ci_rel > NOISY_CI)
    return Validation(run_id, tuple(checks), within_5, within_10, noisy)
