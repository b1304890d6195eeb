"""The kernel latency model in an estimator's shape: ``KernelLatencyModel(settings)`` is the
unfitted estimator, ``.fit(rows, scope, profiled)`` returns the fitted one (``FittedModel``),
whose ``.predict(kernels)`` is a network's predicted time. All pure: no measuring, no store.

- **the fit**: time = features · coefficients (``harness.predict.kernels``), coefficients ≥ 0
  (non-negative least squares, scipy's ``nnls``), each row weighted by 1 / its measured
  time so the fit minimises relative error (the target is ±10 %) and a whole model's row by
  ``WHOLE_MODEL_WEIGHT`` more, then refitted once with rows whose relative residual is
  beyond 3 × the median absolute one down-weighted (a noisy fresh process should not steer
  the fit). The block size and the convs' feature set are chosen by 5-fold
  cross-validation (block among 1, 8 and 16). The interval of a prediction is the 5th–95th
  percentile of the cross-validated relative errors (of whole models when at least 3 were
  measured, else of every row).
- **in context**: a kernel inside a whole network runs slower than the same kernel timed
  alone in a probe (its weights and input no longer hot in the caches: depthwise convs
  about 1.25×, the FC about 1.5× on a 2-core Xeon, pointwise convs the same), by a factor
  of each kernel kind's own (``factors``: the median over the training whole models'
  profiled layers of that kind of in-network / fitted-alone time), so a prediction is the
  sum of each kernel times its kind's factor, times ``context``, the median over the
  training whole models of measured / fitted time with the factors applied (fitted on the
  training models only, never on held-out ones; their fastest samples, robust to a busy
  machine).

A linear model rather than nn-Meter's random forests: a few hundred samples (a few minutes of
measuring) instead of thousands, every coefficient reads as a throughput (ms per MMAC, per
MB) or an overhead (ms per kernel), and it extrapolates to α up to 2 where a forest's leaves
cannot.

The stored form (``FittedModel.to_json``, schema ``MODEL_SCHEMA``) is one flat JSON object:
the provenance's fields sit beside the fit's.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Final

import numpy as np

from harness.predict.kernels import COLUMNS, CONV_FEATURES, KIND_FEATURES, Kernel, Row
from mobilenet.errors import UserError

MODEL_SCHEMA: Final = "mnbench.latency-model/1"
BLOCK_CHOICES: Final[tuple[int, ...]] = (1, 8, 16)
FEATURE_SETS: Final[dict[str, tuple[str, ...]]] = {
    "full": CONV_FEATURES,
    "macs": ("n", "mmacs"),
}
"""The convs' feature columns a fit may use, chosen by cross-validation with the block: all
of them, or a count and MACs only. With few rows (an emulated board's fit has about 50 for
the plain layout's 30 columns) the full set overfits; emulated code's time is close to linear
in MACs."""
OUTLIER_MADS: Final = 3.0
CV_FOLDS: Final = 5
INTERVAL_QUANTILES: Final = (0.05, 0.95)
WHOLE_MODEL_WEIGHT = 1.0
"""A whole model's row counts this many times a probe's in the kernel fit. What a whole
model carries that the probes cannot (the kernels in their context in one graph: evicted
caches, the head's weights read cold) is its own factor, ``FittedModel.context``, so the
whole models need not pull the kernels' coefficients away from the probes."""
CONTEXT_MIN_MODELS: Final = 3
"""Whole models needed to fit the in-context factor (fewer: 1.0)."""
CONTEXT_MIN_LAYERS: Final = 3
"""Profiled layers of one kind needed for that kind's own in-context factor (fewer: 1.0)."""


def design(rows: Sequence[Row], block: int, features: str = "full") -> np.ndarray:
    """The rows' design matrix over ``COLUMNS``; a conv feature outside the ``FEATURE_SETS``
    entry ``features`` is left at 0, so the fit gives it no coefficient."""
    index = {name: i for i, name in enumerate(COLUMNS)}
    kept = FEATURE_SETS[features]
    matrix = np.zeros((len(rows), len(COLUMNS)))
    for r, row in enumerate(rows):
        for name, value in row.features(block).items():
            group, _, feature = name.rpartition(":")
            if KIND_FEATURES.get(group) == CONV_FEATURES and feature not in kept:
                continue
            matrix[r, index[name]] = value
    return matrix


def _nnls(matrix: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted NNLS with columns scaled to unit norm (columns without data stay 0)."""
    from scipy.optimize import nnls

    weighted = matrix * weights[:, None]
    scale = np.linalg.norm(weighted, axis=0)
    used = scale > 0
    coef = np.zeros(matrix.shape[1])
    if not used.any():
        return coef
    solution, _ = nnls(
        weighted[:, used] / scale[used], target * weights, maxiter=50 * matrix.shape[1]
    )
    coef[used] = solution / scale[used]
    return coef


def robust_fit(
    matrix: np.ndarray, latency_ms: np.ndarray, row_weights: np.ndarray | None = None
) -> np.ndarray:
    """NNLS on relative error (rows further weighted by ``row_weights``), then once more
    with outlying rows down-weighted."""
    weights = (1.0 if row_weights is None else row_weights) / latency_ms
    coef = _nnls(matrix, latency_ms, weights)
    relative = (matrix @ coef - latency_ms) / latency_ms
    spread = float(np.median(np.abs(relative))) or 1e-9
    limit = OUTLIER_MADS * spread
    soft = np.where(np.abs(relative) > limit, limit / np.maximum(np.abs(relative), 1e-12), 1.0)
    return _nnls(matrix, latency_ms, weights * soft)


def _folds(count: int, folds: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    return [order[i::folds] for i in range(min(folds, count))]


def row_weights(rows: Sequence[Row]) -> np.ndarray:
    """``WHOLE_MODEL_WEIGHT`` for whole models, 1 for probes."""
    return np.array([WHOLE_MODEL_WEIGHT if row.whole_model else 1.0 for row in rows])


def cross_validated(
    rows: Sequence[Row], block: int, seed: int = 0, features: str = "full"
) -> np.ndarray:
    """Relative error of each row predicted by a fit without its fold."""
    matrix = design(rows, block, features)
    target = np.array([row.latency_ms for row in rows])
    weights = row_weights(rows)
    errors = np.full(len(rows), np.nan)
    for fold in _folds(len(rows), CV_FOLDS, seed):
        train = np.ones(len(rows), dtype=bool)
        train[fold] = False
        if train.sum() == 0:
            continue
        coef = robust_fit(matrix[train], target[train], weights[train])
        errors[fold] = (matrix[fold] @ coef - target[fold]) / target[fold]
    return errors


@dataclass(frozen=True)
class Scope:
    """What a fitted model is valid for: one device × runtime × threads × precision."""

    device: str
    runtime: str
    threads: int
    precision: str = "fp32"

    @property
    def key(self) -> str:
        return f"{self.device}|{self.runtime}|{self.threads}|{self.precision}"


@dataclass(frozen=True)
class Provenance:
    """Where a fit's rows came from, given to the fit rather than estimated by it: the runs,
    the device's ceilings measured with them, whether kernel layouts were detected, and the
    cells' median / minimum time."""

    run_ids: tuple[int, ...] = ()
    peak_gflop_s: float | None = None
    bandwidth_gb_s: float | None = None
    detected: bool = False
    """Kernel layouts were detected with this machine's onnxruntime (a device of the same
    architecture); else every kernel is priced as one plain kind."""
    scale: float = 1.0
    """Median / minimum time of the training cells: kernels are fitted to the fastest
    sample of each cell (robust to a busy machine), predictions are of medians."""


@dataclass(frozen=True)
class FittedModel:
    """The fitted estimator: coefficients (ms per unit of each column of ``COLUMNS``), how
    well they fit, the in-context factors, and the provenance of its rows."""

    scope: Scope
    block: int
    coefficients: Mapping[str, float]
    interval: tuple[float, float]
    """Relative error quantiles (5th, 95th): a prediction p has interval p/(1+hi)..p/(1+lo)."""
    cv_within_10: float
    """Share of training rows whose cross-validated prediction is within ±10 %."""
    rows: int
    whole_models: int
    block_errors: Mapping[str, float] = field(default_factory=dict)
    """Median absolute cross-validated error for each block choice (``"8"``), and for each
    block with the other feature sets (``"8:macs"``)."""
    trained: tuple[str, ...] = ()
    """Kernel kinds with training data; an untrained plain-layout kind is priced as its
    blocked kind."""
    context: float = 1.0
    """Whole models' measured / fitted time (median over the training whole models, with
    ``factors`` applied): the kernels in one network against the same kernels timed alone."""
    factors: Mapping[str, float] = field(default_factory=dict)
    """Per kernel kind (``Kernel.kind``): the median over the training whole models' layers
    of that kind of their profiled time in the network / their fitted time alone. Kinds
    differ: a memory-bound depthwise conv loses its hot caches in a network, a compute-bound
    standard conv hardly notices. A kind without one runs at 1.0 (then ``context`` alone)."""
    features: str = "full"
    """The convs' feature set the fit chose (``FEATURE_SETS``)."""
    provenance: Provenance = Provenance()

    def to_json(self) -> str:
        data = asdict(self)
        data.update(data.pop("provenance"))
        data["schema"] = MODEL_SCHEMA
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FittedModel:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema") != MODEL_SCHEMA:
            raise UserError(
                "the stored latency model has an unknown format; refit it with "
                "`mnbench predict --refit`"
            )
        scope = data["scope"]
        features = str(data.get("features") or "full")
        if features not in FEATURE_SETS:
            raise UserError(
                f"the stored latency model uses feature set {features[:40]!r}, unknown here; "
                "refit it with `mnbench predict --refit`"
            )
        return cls(
            scope=Scope(
                str(scope["device"]),
                str(scope["runtime"]),
                int(scope["threads"]),
                str(scope["precision"]),
            ),
            block=int(data["block"]),
            coefficients={str(k): float(v) for k, v in data["coefficients"].items()},
            interval=(float(data["interval"][0]), float(data["interval"][1])),
            cv_within_10=float(data["cv_within_10"]),
            rows=int(data["rows"]),
            whole_models=int(data["whole_models"]),
            block_errors={str(k): float(v) for k, v in (data.get("block_errors") or {}).items()},
            trained=tuple(str(g) for g in data.get("trained") or ()),
            context=float(data.get("context") or 1.0),
            factors={str(k): float(v) for k, v in (data.get("factors") or {}).items()},
            features=features,
            provenance=Provenance(
                run_ids=tuple(int(r) for r in data.get("run_ids") or ()),
                peak_gflop_s=finite_float(data.get("peak_gflop_s")),
                bandwidth_gb_s=finite_float(data.get("bandwidth_gb_s")),
                detected=bool(data.get("detected")),
                scale=float(data.get("scale") or 1.0),
            ),
        )

    def summary(self) -> str:
        """One line: what the model is for, what it was fitted from, how well it fits."""
        scope, (low, high) = self.scope, self.interval
        priced = "count and MACs" if self.features == "macs" else "count, channels, MACs, bytes"
        return (
            f"latency model: {scope.device}, onnxruntime {scope.runtime}, {scope.threads} "
            f"threads, {scope.precision}; {self.rows} measurements ({self.whole_models} whole "
            f"models), runs {', '.join(map(str, self.provenance.run_ids))}; cross-validated "
            f"within ±10 %: {self.cv_within_10:.0%}; interval {low:+.0%}..{high:+.0%}; convs "
            f"priced by {priced}"
        )

    def predict(self, kernels: Iterable[Kernel], count: int = 0, moved_bytes: int = 0) -> float:
        """A whole network's predicted time (ms): ``network_ms`` times ``scale`` and
        ``context``."""
        return self.network_ms(kernels, count, moved_bytes) * self.factor

    @property
    def factor(self) -> float:
        """What every in-context kernel time is multiplied by in a prediction."""
        return self.provenance.scale * self.context

    def kernel_ms(self, item: Kernel) -> float:
        """The kernel's fitted time (before ``scale``)."""
        group = item.group
        if self.trained and group not in self.trained and item.base_group in self.trained:
            group = item.base_group
        return sum(
            self.coefficients.get(name, 0.0) * value
            for name, value in item.features(self.block, group).items()
        )

    def in_context_ms(self, item: Kernel) -> float:
        """The kernel's fitted time with its kind's in-context factor (before ``context``
        and ``scale``)."""
        return self.kernel_ms(item) * self.factors.get(item.kind, 1.0)

    def network_ms(self, kernels: Iterable[Kernel], count: int, moved_bytes: int) -> float:
        """A whole network's fitted time: its kernels in context, the per-inference overhead
        and its layout reorders (before ``context`` and ``scale``)."""
        return (
            sum(self.in_context_ms(item) for item in kernels)
            + self.coefficients.get("overhead:n", 0.0)
            + self.boundary_ms(count, moved_bytes)
        )

    def boundary_ms(self, count: int, moved_bytes: int) -> float:
        return (
            self.coefficients.get("boundary:n", 0.0) * count
            + self.coefficients.get("boundary:mbytes", 0.0) * moved_bytes / 1e6
        )

    def row_ms(self, row: Row) -> float:
        return sum(
            self.coefficients.get(name, 0.0) * value
            for name, value in row.features(self.block).items()
        )


def finite_float(value: object) -> float | None:
    """A stored number as a float; None when missing, not a number or not finite."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def select_design(
    rows: Sequence[Row], blocks: Sequence[int] = BLOCK_CHOICES, seed: int = 0
) -> tuple[int, str, np.ndarray, dict[str, float]]:
    """The layout block and feature set with the lowest median absolute cross-validated
    error: (block, feature set, each row's cross-validated error, every choice's score keyed
    ``"8"`` for the full set and ``"8:macs"`` for the others)."""
    scores: dict[str, float] = {}
    best: tuple[float, int, str, np.ndarray] | None = None
    for features in FEATURE_SETS:
        for block in blocks:
            errors = cross_validated(rows, block, seed, features)
            score = float(np.nanmedian(np.abs(errors)))
            scores[str(block) if features == "full" else f"{block}:{features}"] = score
            if best is None or score < best[0]:
                best = (score, block, features, errors)
    assert best is not None
    _, block, features, errors = best
    return block, features, errors, scores


@dataclass(frozen=True)
class FitSettings:
    """How the estimator chooses its design: the layout blocks cross-validation picks among,
    and the seed of its folds (the same rows and seed give the same fit)."""

    blocks: tuple[int, ...] = BLOCK_CHOICES
    seed: int = 0


@dataclass(frozen=True)
class KernelLatencyModel:
    """The unfitted estimator: its settings; ``fit`` returns the fitted one."""

    settings: FitSettings = FitSettings()

    def fit(
        self,
        rows: Sequence[Row],
        scope: Scope,
        profiled: Sequence[tuple[Kernel, float]] = (),
        provenance: Provenance = Provenance(),
    ) -> FittedModel:
        """Fit the kernel model to measured rows (deterministic for the same rows and
        settings); ``profiled``: the training whole models' layers as (kernel, its profiled
        ms in the network), for the per-kind in-context factors."""
        usable = [row for row in rows if math.isfinite(row.latency_ms) and row.latency_ms > 0]
        if len(usable) < len(COLUMNS) // 2:
            raise UserError(
                f"{len(usable)} usable measurements are too few to fit a latency model; "
                "measure more with `mnbench predict --refit`"
            )
        block, chosen, errors, block_errors = select_design(
            usable, self.settings.blocks, self.settings.seed
        )
        matrix = design(usable, block, chosen)
        target = np.array([row.latency_ms for row in usable])
        coef = robust_fit(matrix, target, row_weights(usable))
        whole = np.array([row.whole_model for row in usable])
        coefficients = {name: float(value) for name, value in zip(COLUMNS, coef, strict=True)}
        alone = FittedModel(scope, block, coefficients, (0.0, 0.0), math.nan, 0, 0)
        factors = kind_factors(alone, profiled)
        placed = replace(alone, factors=factors)
        fitted_whole = np.array(
            [
                placed.network_ms(row.kernels, row.boundaries, row.boundary_bytes)
                for row in usable
                if row.whole_model
            ]
        )
        context = in_context_factor(fitted_whole, target[whole])
        pool = errors[whole] if whole.sum() >= 3 else errors
        pool = pool[np.isfinite(pool)]
        low, high = (float(np.quantile(pool, q)) for q in INTERVAL_QUANTILES)
        finite = errors[np.isfinite(errors)]
        return FittedModel(
            scope=scope,
            block=block,
            coefficients=coefficients,
            interval=(min(low, 0.0), max(high, 0.0)),
            cv_within_10=float(np.mean(np.abs(finite) <= 0.10)) if finite.size else math.nan,
            rows=len(usable),
            whole_models=int(whole.sum()),
            block_errors=block_errors,
            trained=tuple(sorted({k.group for row in usable for k in row.kernels})),
            context=context,
            factors=factors,
            features=chosen,
            provenance=replace(
                provenance, run_ids=tuple(sorted(set(int(r) for r in provenance.run_ids)))
            ),
        )


def kind_factors(model: FittedModel, profiled: Sequence[tuple[Kernel, float]]) -> dict[str, float]:
    """Per kernel kind, the median of profiled-in-the-network / fitted-alone time over the
    profiled layers of that kind (kinds with fewer than ``CONTEXT_MIN_LAYERS``: none). The
    median, so a layer profiled while the machine was busy does not move it."""
    ratios: dict[str, list[float]] = {}
    for item, measured_ms in profiled:
        fitted_ms = model.kernel_ms(item)
        if fitted_ms > 0 and math.isfinite(measured_ms) and measured_ms > 0:
            ratios.setdefault(item.kind, []).append(measured_ms / fitted_ms)
    return {
        kind: float(statistics.median(values))
        for kind, values in sorted(ratios.items())
        if len(values) >= CONTEXT_MIN_LAYERS
    }


def in_context_factor(fitted_ms: np.ndarray, measured_ms: np.ndarray) -> float:
    """Median of measured / fitted time over whole models (1.0 with fewer than
    ``CONTEXT_MIN_MODELS``): the median, so one model measured on a busy machine does not
    move it."""
    ok = (fitted_ms > 0) & np.isfinite(measured_ms)
    if ok.sum() < CONTEXT_MIN_MODELS:
        return 1.0
    return float(np.median(measured_ms[ok] / fitted_ms[ok]))
