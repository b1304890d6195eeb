"""What ``mnbench predict`` asks of the latency model and what it gets back: the request, the
outcome, and ``serve``, the one call that turns one into the other.

A model is the device's newest stored one (for its threads), or fitted now when there is none
or a refit is asked for (``harness.predict.training``), or refitted from stored runs without
measuring; then the request's variants are predicted, and either validated against
measurements (``harness.predict.validation``) or searched for a latency budget
(``harness.predict.search``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.predict.estimator import FittedModel, Scope
from harness.predict.prediction import Prediction, predict_variant
from harness.predict.search import Budget, BudgetSearch, search_budget
from harness.predict.stored import (
    fit_from_runs,
    latest_model,
    runtime_of,
    store_fit,
    threads_of,
)
from harness.predict.training import FitPlan, Session, Target, fit_new, open_session
from harness.predict.validation import Validation, validate

if TYPE_CHECKING:
    from devices.device import DeviceConfig
    from mobilenet.spec import ModelSpec
    from results.guards import CooldownPolicy
    from results.store import Store


@dataclass(frozen=True)
class PredictRequest:
    """One ``mnbench predict``: the variants, where the model comes from, what to do with it."""

    specs: tuple[ModelSpec, ...]
    db: Path | str
    models_dir: Path
    device: DeviceConfig | None
    """The device to fit on or validate on (None: refit from stored runs only)."""
    threads: int | None = None
    cpus: str | None = None
    cooldown: CooldownPolicy | None = None
    refit: bool = False
    from_runs: tuple[int, ...] = ()
    """Refit from these stored runs (measures nothing)."""
    plan: FitPlan = field(default_factory=FitPlan)
    validate_trials: int | None = None
    """Measure the variants this many times each and check the predictions (None: not)."""
    budget: Budget | None = None
    quiet: bool = False

    @property
    def target(self) -> Target:
        """Where to measure (only asked of a request that names its device)."""
        assert self.device is not None, "a request that measures names its device"
        return Target(self.device, self.threads, self.cpus, self.cooldown)


@dataclass(frozen=True)
class PredictOutcome:
    """The model used, its predictions of the request's variants, and the validation or the
    budget search when asked for."""

    model: FittedModel
    predictions: tuple[Prediction, ...]
    validation: Validation | None = None
    search: BudgetSearch | None = None


def serve(request: PredictRequest) -> PredictOutcome:
    """Find or fit the model, predict the request's variants, validate or search them."""
    from results.store import Store

    with Store.open(request.db, create=not request.from_runs) as store:
        session: Session | None = None
        try:
            if request.from_runs:
                model = refit_from_runs(store, request.from_runs, request.threads)
            else:
                model, session = _stored_or_new(store, request)
            predictions = tuple(
                predict_variant(model, s.alpha, s.resolution, s.variant, s.kernel)
                for s in request.specs
            )
            if request.validate_trials is not None:
                if session is None:
                    session = open_session(request.target, store)
                else:  # the fit's session profiles; validating need not
                    session.measuring.use_settings(request.plan.runner_settings())
                checked = validate(
                    session,
                    store,
                    model,
                    request.specs,
                    request.models_dir,
                    trials=request.validate_trials,
                    quiet=request.quiet,
                )
                return PredictOutcome(model, predictions, validation=checked)
        finally:
            if session is not None:
                session.close()
    if request.budget is None:
        return PredictOutcome(model, predictions)
    return PredictOutcome(
        model, predictions, search=search_budget(predictions, request.budget, model.scope)
    )


def refit_from_runs(store: Store, run_ids: tuple[int, ...], threads: int | None) -> FittedModel:
    """Refit from stored runs (``threads``: None, the runs' own) and store the fit."""
    for run_id in run_ids:
        store.get_run(run_id)  # refuses an unknown run
    runs = sorted(set(run_ids))
    first = store.get_run(runs[0])
    chosen = threads or threads_of(store, runs)
    scope = Scope(first.device, runtime_of(store, runs), chosen)
    fitted = fit_from_runs(store, runs, scope)
    model_id = store_fit(store, scope, fitted)
    print(f"latency model {model_id} refitted from runs {runs}", file=sys.stderr)
    return fitted


def _stored_or_new(store: Store, request: PredictRequest) -> tuple[FittedModel, Session | None]:
    """The device's newest stored model, or a new fit (``--refit``, or none stored); the
    session a fit opened stays open for validating."""
    target = request.target
    if not request.refit and request.threads is not None:
        found = latest_model(store, target.device.name, request.threads)
        if found is not None:
            return found, None
    session = open_session(target, store, request.plan.fit_settings())
    try:
        stored = None
        if not request.refit:
            stored = latest_model(store, session.device.name, session.threads)
        if stored is None:
            plan, quiet = request.plan, request.quiet
            stored = fit_new(session, store, request.models_dir, plan, quiet=quiet)
        return stored, session
    except BaseException:
        session.close()
        raise
