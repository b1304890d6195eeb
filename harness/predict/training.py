"""The fit protocol: measure what a latency model is fitted from, fit it and store it.

Layer probes sampled from the family (``harness.predict.sampling``: stem, depthwise,
pointwise, standard and head kernels at random α, resolution, D_K and block) and a few whole
models off the usual grids are measured like any run (same runner, transports and store; a
short stopping rule); the whole models are profiled once more in a run of their own; a first
fit's cross-validated errors pick the configurations to sample again and around (nn-Meter's
adaptive sampling) while the measuring budget lasts; the final fit is stored with the runs it
came from (``harness.predict.stored``), so it can be refitted from them.

Every tuning constant of the protocol is a field of ``FitPlan``. ``Session`` is the open
device the protocol (and ``--validate``) measures on.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.predict.sampling import ERROR_THRESHOLD, ProbeConfig, neighbours, sample_configs

if TYPE_CHECKING:
    from devices.device import DeviceConfig
    from harness.measure.plan import ModelEntry, RunnerSettings
    from harness.measure.session import MeasurementSession, Selection
    from harness.predict.estimator import FittedModel
    from results.guards import CooldownPolicy
    from results.store import Store

TRAINING_MODELS: tuple[tuple[float, int, str, int], ...] = (
    (0.8, 144, "separable", 3),
    (0.625, 200, "separable", 3),
    (0.4, 232, "separable", 3),
    (1.25, 112, "separable", 5),
    (0.375, 120, "standard", 3),
    (0.3, 112, "separable", 3),
    (0.45, 184, "separable", 3),
    (1.125, 168, "separable", 3),
)
"""Whole models measured for the fit (α, resolution, variant, D_K): off the 16-cell grid and
off the held-out variants of ``--validate``, so neither is a training point; 0.625, 1.25
and 1.125 have channel counts the blocked layout takes whole (like the grid's α), 0.8, 0.4,
0.3 and 0.45 do not; 0.3 × 112 is as small as the smallest held-out models. Their median
measured / fitted time is the model's in-context factor."""


@dataclass(frozen=True)
class FitPlan:
    """How a fit measures: its budget, its samples and the runner's settings."""

    budget_s: float = 300.0
    """Seconds of measuring for a fit (``--budget-s``)."""
    probes: int = 110
    """Sampled probes of the first round (``--probes``)."""
    seed: int = 0
    """The sampling seed (``--seed``)."""
    training_models: tuple[tuple[float, int, str, int], ...] = TRAINING_MODELS
    training_model_trials: int = 3
    probe_trials: int = 2
    """Trials per sampled probe in round 1, each in another runner process, trial-major so
    a probe's two trials are minutes apart: a probe's row is its fastest sample over both, so
    one measured while the host was in a slow spell (on a shared host the whole machine runs
    1.3-2.5x slower for minutes at a time) does not price its kernel."""
    profile_runs: int = 8
    """Profiled inferences per training whole model (the first is left out): medians of 7
    per node are enough for a kind's factor, and on the emulated board 20 inferences of
    0.5 x 160 take 9 s."""
    target_ci: float = 0.02
    min_time_s: float = 0.2
    max_time_s: float = 2.0
    probe_max_time_s: float = 1.0
    probe_warmup_s: float = 0.5
    batch: int = 16
    """Measurements per runner process in the fit: the probes are training data, not trials,
    so they need not pay a process start each (docs/prediction.md has the figures).
    A probe's trials stay in separate processes minutes apart: the plan is trial-major and a
    batch holds each model once."""
    adaptive_share: float = 0.3
    """At most this share of the measuring budget goes to adaptive samples."""

    def runner_settings(self) -> RunnerSettings:
        """The runner settings of ``--validate`` (and of a session given none)."""
        from harness.measure.plan import RunnerSettings

        return RunnerSettings(
            target_ci=self.target_ci, min_time_s=self.min_time_s, max_time_s=self.max_time_s
        )

    def fit_settings(self) -> RunnerSettings:
        """The fit's timed runner settings: ``batch`` measurements per runner process, at
        most ``probe_warmup_s`` of warm-up and ``probe_max_time_s`` of timing each (a cell's
        row is its fastest sample, which needs few; on a slow board longer caps make a
        standard-conv probe cost seconds)."""
        return replace(
            self.runner_settings(),
            max_time_s=self.probe_max_time_s,
            warmup_max_time_s=self.probe_warmup_s,
            batch=self.batch,
        )

    def profile_settings(self) -> RunnerSettings:
        """The profile run's settings: the training whole models' per-node profiles, in a
        separate session after one timed inference (``PROFILE_LABEL``; its timings are not
        training rows), ``profile_runs`` profiled inferences each."""
        return replace(
            self.fit_settings(),
            fixed=1,
            warmup_max_time_s=0.0,
            profile=True,
            profile_runs=self.profile_runs,
        )


# ----------------------------------------------------------------------------- the session


@dataclass(frozen=True)
class Target:
    """Where to measure: the device, and the threads (None: all its cores), cores (None: the
    device's own selection) and cooldown asked for."""

    device: DeviceConfig
    threads: int | None = None
    cpus: str | None = None
    cooldown: CooldownPolicy | None = None


@dataclass(frozen=True)
class Session:
    """A measuring session with the threads and CPUs chosen for fitting and validating: the
    device, its facts and the measuring method are the measuring session's own, read through."""

    measuring: MeasurementSession
    selection: Selection

    @property
    def device(self) -> DeviceConfig:
        return self.measuring.device

    @property
    def threads(self) -> int:
        return self.selection.threads[0]

    @property
    def cpus(self) -> list[int] | None:
        return self.selection.cpus

    @property
    def facts(self) -> dict[str, Any]:
        return self.measuring.facts

    def close(self) -> None:
        self.measuring.close()


def open_session(target: Target, store: Store, settings: RunnerSettings | None = None) -> Session:
    """Open the target device for measuring (``FitPlan().runner_settings()`` unless given)."""
    from harness.measure.session import MeasurementSession

    device = target.device
    chosen = settings or FitPlan().runner_settings()
    measuring = MeasurementSession(device, chosen, store=store, cooldown=target.cooldown)
    try:
        threads = [target.threads] if target.threads else None
        selection = measuring.select(target.cpus or device.cpus, threads)
    except BaseException:
        measuring.close()
        raise
    return Session(measuring, selection)


def measure_run(
    session: Session,
    store: Store,
    models: Sequence[ModelEntry],
    trials: dict[str, int],
    label: str,
    models_dir: Path,
    quiet: bool,
    extra: dict[str, Any],
) -> tuple[int, float]:
    """One run: every model for its number of trials, trial-major. (run id, seconds)."""
    from harness.measure.plan import PlanItem
    from harness.measure.session import Selection
    from harness.measure.sweep import ProgressBar, run_plan

    run_id = session.measuring.create_run(
        models,
        Selection(session.cpus, [session.threads]),
        max(trials.values()),
        device_arg=session.device.name,
        models_dir=models_dir,
        label=label,
        holder=None,
        extra_config={"predict": extra},
    )
    pinned = tuple(session.cpus) if session.cpus else None
    plan = [
        PlanItem(model, session.threads, trial, pinned)
        for trial in range(1, max(trials.values()) + 1)
        for model in models
        if trial <= trials[model.sha256]
    ]
    print(
        f"run {run_id}: {len(plan)} measurements ({label}), {session.threads} threads, "
        f"on {session.device.name}",
        file=sys.stderr,
    )
    start = time.monotonic()
    outcome = run_plan(session.measuring, run_id, plan, None if quiet else ProgressBar())
    for what, reason in outcome.failures[:5]:
        print(f"failed: {what}: {reason}", file=sys.stderr)
    return run_id, time.monotonic() - start


# ----------------------------------------------------------------------------- the fit


def probe_entries(
    configs: Sequence[ProbeConfig], models_dir: Path, store: Store
) -> list[ModelEntry]:
    """The probes of ``configs`` written and registered, each once."""
    from harness.measure.sweep import prepare_probes
    from mobilenet.probes import family_probe

    probes = [family_probe(c.alpha, c.resolution, c.kernel, c.block, c.role) for c in configs]
    unique = list({p.name: p for p in probes}.values())
    return prepare_probes(unique, models_dir, store)


def model_entries(
    variants: Sequence[tuple[float, int, str, int]], models_dir: Path, store: Store
) -> list[ModelEntry]:
    """The whole models (α, resolution, variant, D_K) written and registered."""
    from harness.measure.sweep import prepare_models
    from mobilenet.spec import ModelSpec

    specs = [ModelSpec(a, r, v, k) for a, r, v, k in variants]  # type: ignore[arg-type]
    return prepare_models(specs, models_dir, store)


def measure_training(
    session: Session, store: Store, models_dir: Path, plan: FitPlan, *, quiet: bool
) -> list[int]:
    """Round 1 (sampled probes ``probe_trials`` times, whole models
    ``training_model_trials`` times, then the whole models' profiles), then adaptive samples
    around the configurations whose cross-validated error is above 10 % while the budget
    lasts. The runs measured."""
    from harness.predict.estimator import select_design
    from harness.predict.stored import FIT_LABEL, PROFILE_LABEL, timed_runs, training_rows

    started = time.monotonic()
    seed = plan.seed
    session.measuring.record_limits(session.threads, session.cpus)
    configs = sample_configs(plan.probes, seed)
    entries = probe_entries(configs, models_dir, store)
    wholes = model_entries(plan.training_models, models_dir, store)
    trials = {e.sha256: plan.probe_trials for e in entries} | {
        e.sha256: plan.training_model_trials for e in wholes
    }
    first, seconds = measure_run(
        session,
        store,
        [*entries, *wholes],
        trials,
        FIT_LABEL,
        models_dir,
        quiet,
        {"round": 1, "seed": seed, "probes": plan.probes},
    )
    session.measuring.use_settings(plan.profile_settings())
    try:
        profiled, _ = measure_run(
            session,
            store,
            wholes,
            {e.sha256: 1 for e in wholes},
            PROFILE_LABEL,
            models_dir,
            quiet,
            {"round": 1, "seed": seed, "profiles": len(wholes)},
        )
    finally:
        session.measuring.use_settings(plan.fit_settings())
    runs = [first, profiled]
    per_measurement_s = seconds / max(1, sum(trials.values()))
    remaining_s = plan.budget_s - (time.monotonic() - started)
    adaptive_s = min(remaining_s, plan.budget_s * plan.adaptive_share)
    extra = int(adaptive_s / max(per_measurement_s, 1e-3))
    if extra < 2:
        return runs
    rows = training_rows(store, timed_runs(store, runs))
    _block, _features, errors, _scores = select_design(rows, seed=seed)
    by_name = {e.name: c for e, c in zip(probe_names(configs), configs, strict=True)}
    ranked = sorted(
        (
            (abs(err), by_name[row.source])
            for row, err in zip(rows, errors, strict=True)
            if row.source in by_name and math.isfinite(err) and abs(err) > ERROR_THRESHOLD
        ),
        key=lambda pair: -pair[0],
    )
    chosen: list[ProbeConfig] = []
    for _, config in ranked:
        if len(chosen) + 2 > extra:
            break
        chosen += [config, *neighbours(config, 1, seed)]
    if not chosen:
        return runs
    retry = probe_entries(chosen, models_dir, store)
    second, _ = measure_run(
        session,
        store,
        retry,
        {e.sha256: 1 for e in retry},
        FIT_LABEL,
        models_dir,
        quiet,
        {"round": 2, "seed": seed, "above": ERROR_THRESHOLD, "configs": len(ranked)},
    )
    return [*runs, second]


def probe_names(configs: Sequence[ProbeConfig]) -> list[Any]:
    """Objects with the probe's ``name`` for each configuration (no file is written)."""
    from mobilenet.probes import family_probe

    return [family_probe(c.alpha, c.resolution, c.kernel, c.block, c.role) for c in configs]


def fit_new(
    session: Session, store: Store, models_dir: Path, plan: FitPlan, *, quiet: bool
) -> FittedModel:
    """Measure the training runs on the session's device, fit from them and store the fit."""
    from harness.predict.estimator import Scope
    from harness.predict.stored import fit_from_runs, runtime_of, store_fit

    print(
        f"fitting a latency model for {session.device.name}, {session.threads} threads "
        f"(about {plan.budget_s:g} s of measuring)",
        file=sys.stderr,
    )
    runs = measure_training(session, store, models_dir, plan, quiet=quiet)
    scope = Scope(session.device.name, runtime_of(store, runs), session.threads)
    fitted = fit_from_runs(store, runs, scope)
    model_id = store_fit(store, scope, fitted)
    print(f"latency model {model_id} stored (runs {', '.join(map(str, runs))})", file=sys.stderr)
    return fitted
