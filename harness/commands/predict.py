"""``mnbench predict``: a kernel-level latency model per device, fitted from a few minutes of
probes, and what it says before anything else is measured.

Fitting (first use on a device × threads × precision, or ``--refit``): layer probes sampled
from the family (``harness.predict.latency_model.sample_configs``: stem, depthwise, pointwise,
standard
and head kernels at random α, resolution, D_K and block) and a few whole models off the
usual grids are measured like any run (same runner, transports and store; one fresh
process per trial, a short stopping rule); a first fit's cross-validated errors pick the
configurations to sample again and around (nn-Meter's adaptive sampling) while the
measuring budget lasts; the final fit is stored (``Store.add_latency_model``) with the runs
it came from, so it can be refitted from them (``--from-runs``).

Using it: predictions for the grid flags' variants (whole model with an interval, per
block with ``--blocks``); ``--budget-ms B`` lists the variants predicted to fit with their
reference top-1 and the latency–accuracy Pareto front, and prints the ``mnbench run``
commands that measure the chosen ones; ``--validate`` measures held-out variants with
several fresh-process trials each (interleaved) and prints the share of predictions within
±5 % and ±10 % of the measured median, with the measurement's own interval.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.commands import SUMMARIES
from harness.commands.options import (
    add_cooldown_arguments,
    add_db_argument,
    add_device_arguments,
    cooldown_from_args,
    cpu_arg,
)
from mobilenet.errors import UserError
from mobilenet.validate import float_arg, int_arg

if TYPE_CHECKING:
    from devices.device import DeviceConfig
    from harness.measure.plan import ModelEntry, RunnerSettings
    from harness.measure.session import MeasurementSession
    from harness.measure.sweep import Sweep
    from harness.predict.latency_model import (
        FittedModel,
        Prediction,
        ProbeConfig,
        Row,
        Scope,
        Truth,
    )
    from mobilenet.spec import ModelSpec
    from results.store import Store

FIT_LABEL = "predict-fit"
PROFILE_LABEL = "predict-profile"
VALIDATE_LABEL = "predict-validate"
DEFAULT_BUDGET_S = 300.0
DEFAULT_PROBES = 110
FIT_MIN_TIME_S = 0.2
FIT_MAX_TIME_S = 2.0
FIT_TARGET_CI = 0.02
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
TRAINING_MODEL_TRIALS = 3
PROBE_TRIALS = 2
"""Trials per sampled probe in round 1, each in another runner process, trial-major so a
probe's two trials are minutes apart: a probe's row is its fastest sample over both, so one
measured while the host was in a slow spell (on a shared host the whole machine runs
1.3-2.5x slower for minutes at a time) does not price its kernel."""
FIT_PROFILE_RUNS = 8
"""Profiled inferences per training whole model (the first is left out): medians of 7 per
node are enough for a kind's factor, and on the emulated board 20 inferences of 0.5 x 160
take 9 s."""
PROBE_MAX_TIME_S = 1.0
PROBE_WARMUP_S = 0.5
FIT_BATCH = 16
"""Measurements per runner process in the fit: the probes are training data, not trials, so
they need not pay a process start each (0.3 s here, about 3 s on the emulated board). A
probe's trials stay in separate processes minutes apart: the plan is trial-major and a batch
holds each model once."""
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
SEARCH_ALPHAS = (0.25, 0.35, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25, 1.4)
SEARCH_RESOLUTIONS = (96, 128, 160, 192, 224, 256)
VALIDATE_TRIALS = 5
ADAPTIVE_SHARE = 0.3
"""At most this share of the measuring budget goes to adaptive samples."""

EXAMPLES = """examples:
  mnbench predict                                fit (first time, ~5 min) and predict the grid
  mnbench predict --alpha 0.6 --resolution 200 --kernel 5 --blocks
  mnbench predict --budget-ms 5                  variants predicted to fit 5 ms, Pareto front
  mnbench predict --device pi4 --threads 4 --refit --budget-s 600
  mnbench predict --validate --trials 6          measure held-out variants: share within 10 %
  mnbench predict --from-runs 12 13              refit from stored training runs

the model: per kernel (stem, depthwise, pointwise, standard conv, pool, FC, softmax)
time = a + b x MMACs + c x MB moved, all >= 0, fitted by non-negative least squares on
relative error; plus a per-inference overhead. Interval: the 5th-95th percentile of the
cross-validated errors.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.commands.grid import add_grid_arguments

    parser = sub.add_parser(
        "predict",
        help=SUMMARIES["predict"],
        description="Fit (once per device x runtime x threads x precision, or with --refit) a "
        "kernel-level latency model from sampled layer probes and a few whole models, store "
        "it, and predict any alpha, resolution, D_K and variant: whole-model latency with an "
        "interval, per block, the variants that fit a latency budget, and a validation "
        "against held-out measurements.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_device_arguments(parser)
    add_grid_arguments(parser)
    parser.add_argument(
        "--threads",
        type=int_arg("--threads"),
        default=None,
        metavar="N",
        help="intra-op threads (default: all cores of the device)",
    )
    parser.add_argument(
        "--cpus",
        type=cpu_arg(),
        default=None,
        metavar="LIST",
        help="pin to cores: 0,1 or 4-7 or big/little",
    )
    parser.add_argument("--refit", action="store_true", help="measure new probes and refit")
    parser.add_argument(
        "--from-runs",
        nargs="+",
        type=int,
        default=None,
        metavar="RUN_ID",
        help="refit from these stored runs (measures nothing)",
    )
    parser.add_argument(
        "--budget-s",
        type=float_arg("--budget-s"),
        default=DEFAULT_BUDGET_S,
        metavar="S",
        help=f"seconds of measuring for a fit (default {DEFAULT_BUDGET_S:g})",
    )
    parser.add_argument(
        "--probes",
        type=int_arg("--probes"),
        default=DEFAULT_PROBES,
        metavar="N",
        help=f"sampled probes of the first round (default {DEFAULT_PROBES})",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument(
        "--budget-ms",
        type=float_arg("--budget-ms"),
        default=None,
        metavar="B",
        help="list the variants predicted to run within B ms, with top-1 and the Pareto front",
    )
    parser.add_argument("--blocks", action="store_true", help="also print per-block times")
    parser.add_argument(
        "--validate",
        action="store_true",
        help="measure held-out variants (default 17 off-grid ones, or the grid flags') and "
        "print the share of predictions within 5 and 10 percent",
    )
    parser.add_argument(
        "--trials",
        type=int_arg("--trials"),
        default=VALIDATE_TRIALS,
        metavar="K",
        help=f"fresh-process trials per validated variant (default {VALIDATE_TRIALS})",
    )
    add_cooldown_arguments(parser)
    add_db_argument(parser)
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where probe and model files go (default ./models)",
    )
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output (default table)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------- measuring


@dataclass
class Session:
    """An open device with its resolved threads and CPUs, for fitting and validating."""

    device: DeviceConfig
    measuring: MeasurementSession
    threads: int
    cpus: list[int] | None
    facts: dict[str, Any]

    @property
    def sweep(self) -> Sweep:
        return self.measuring.sweep

    def close(self) -> None:
        self.measuring.close()


def open_session(
    args: argparse.Namespace, store: Store, settings: RunnerSettings | None = None
) -> Session:
    from harness.commands.options import resolve
    from harness.measure.session import MeasurementSession

    device = resolve(args)
    chosen = settings or validate_settings()
    measuring = MeasurementSession(device, chosen, store=store, cooldown=cooldown_from_args(args))
    try:
        threads = [args.threads] if args.threads else None
        selection = measuring.select(args.cpus or device.cpus, threads)
    except BaseException:
        measuring.close()
        raise
    return Session(device, measuring, selection.threads[0], selection.cpus, measuring.facts)


def validate_settings() -> RunnerSettings:
    """The runner settings of ``--validate`` (and of a session given none)."""
    from harness.measure.plan import RunnerSettings

    return RunnerSettings(
        target_ci=FIT_TARGET_CI, min_time_s=FIT_MIN_TIME_S, max_time_s=FIT_MAX_TIME_S
    )


def fit_settings() -> RunnerSettings:
    """The fit's timed runner settings: ``FIT_BATCH`` measurements per runner process, at
    most ``PROBE_WARMUP_S`` of warm-up and ``PROBE_MAX_TIME_S`` of timing each (a cell's row
    is its fastest sample, which needs few; on the emulated board a standard-conv probe's
    inference takes 250 ms, and the 2 s caps made one probe cost 7 s)."""
    return replace(
        validate_settings(),
        max_time_s=PROBE_MAX_TIME_S,
        warmup_max_time_s=PROBE_WARMUP_S,
        batch=FIT_BATCH,
    )


def profile_settings() -> RunnerSettings:
    """The profile run's settings: the training whole models' per-node profiles, in a
    separate session after one timed inference (``PROFILE_LABEL``; its timings are not
    training rows), ``FIT_PROFILE_RUNS`` profiled inferences each."""
    return replace(
        fit_settings(),
        fixed=1,
        warmup_max_time_s=0.0,
        profile=True,
        profile_runs=FIT_PROFILE_RUNS,
    )


def _measure(
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
    outcome = run_plan(session.sweep, run_id, plan, None if quiet else ProgressBar())
    for what, reason in outcome.failures[:5]:
        print(f"failed: {what}: {reason}", file=sys.stderr)
    return run_id, time.monotonic() - start


def probe_entries(
    configs: Sequence[ProbeConfig], models_dir: Path, store: Store
) -> list[ModelEntry]:
    from harness.measure.sweep import prepare_probes
    from mobilenet.probes import family_probe

    probes = [family_probe(c.alpha, c.resolution, c.kernel, c.block, c.role) for c in configs]
    unique = list({p.name: p for p in probes}.values())
    return prepare_probes(unique, models_dir, store)


def model_entries(
    variants: Sequence[tuple[float, int, str, int]], models_dir: Path, store: Store
) -> list[ModelEntry]:
    from harness.measure.sweep import prepare_models
    from mobilenet.spec import ModelSpec

    specs = [ModelSpec(a, r, v, k) for a, r, v, k in variants]  # type: ignore[arg-type]
    return prepare_models(specs, models_dir, store)


def measure_training(
    session: Session,
    store: Store,
    models_dir: Path,
    *,
    budget_s: float,
    probes: int,
    seed: int,
    quiet: bool,
) -> list[int]:
    """Round 1 (sampled probes ``PROBE_TRIALS`` times, whole models
    ``TRAINING_MODEL_TRIALS`` times), then
    adaptive samples around the configurations whose cross-validated error is above 10 %
    while the budget lasts."""
    from harness.predict.latency_model import (
        ERROR_THRESHOLD,
        neighbours,
        sample_configs,
        select_design,
    )

    started = time.monotonic()
    session.measuring.record_limits(session.threads, session.cpus)
    configs = sample_configs(probes, seed)
    entries = probe_entries(configs, models_dir, store)
    wholes = model_entries(TRAINING_MODELS, models_dir, store)
    trials = {e.sha256: PROBE_TRIALS for e in entries} | {
        e.sha256: TRAINING_MODEL_TRIALS for e in wholes
    }
    first, seconds = _measure(
        session,
        store,
        [*entries, *wholes],
        trials,
        FIT_LABEL,
        models_dir,
        quiet,
        {"round": 1, "seed": seed, "probes": probes},
    )
    session.measuring.use_settings(profile_settings())
    try:
        profiled, _ = _measure(
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
        session.measuring.use_settings(fit_settings())
    runs = [first, profiled]
    per_measurement_s = seconds / max(1, sum(trials.values()))
    remaining_s = budget_s - (time.monotonic() - started)
    extra = int(min(remaining_s, budget_s * ADAPTIVE_SHARE) / max(per_measurement_s, 1e-3))
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
    second, _ = _measure(
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


def detects_here(store: Store, run_ids: Sequence[int]) -> bool:
    """Kernel layouts can be read from this machine's onnxruntime when the device is of the
    same architecture (the local machine, or a board of the same kind). The architecture is
    the one the runner reported where it measured (``host_before.machine`` of each
    measurement: an aarch64 board emulated on an x86-64 host reports aarch64), the run's
    device facts only for runs without such a report."""
    import platform

    machines = set()
    for run_id in run_ids:
        reported = measured_machines(store, run_id)
        machines |= reported or {_machine(store.get_run(run_id).device_facts)}
    return machines == {platform.machine()}


def measured_machines(store: Store, run_id: int) -> set[str]:
    """The machines the runner reported in a run's measurements (empty when none did)."""
    found: set[str] = set()
    for row in store.measurement_rows([run_id]):
        try:
            document = json.loads(row.get("document") or "{}")
        except ValueError:
            continue
        host = document.get("host_before") if isinstance(document, dict) else None
        machine = host.get("machine") if isinstance(host, dict) else None
        if isinstance(machine, str) and machine:
            found.add(machine)
    return found


def _machine(facts: Any) -> str:
    """The device's architecture from its facts (``machine``, or the kernel string's last
    word: ``Linux 6.1.0 aarch64``)."""
    machine = facts.get("machine")
    if isinstance(machine, str) and machine:
        return machine
    kernel = facts.get("kernel")
    return kernel.split()[-1] if isinstance(kernel, str) and kernel.split() else ""


def training_rows(store: Store, run_ids: Sequence[int]) -> list[Row]:
    from harness.predict.latency_model import rows_from_frames

    results = store.results_frame(list(run_ids))
    return rows_from_frames(
        store.probes_frame(list(run_ids), results), results, detects_here(store, run_ids)
    )


def timed_runs(store: Store, run_ids: Sequence[int]) -> list[int]:
    """The runs whose timings are training rows: all but the profile runs."""
    return [r for r in run_ids if store.get_run(r).label != PROFILE_LABEL]


def fit_from_runs(store: Store, run_ids: Sequence[int], scope: Scope) -> FittedModel:
    """Fit from stored runs (deterministic: the same runs give the same model): training
    rows and the median/minimum scale from the timed runs, per-node profiles from any."""
    from harness.predict.latency_model import (
        fit,
        median_over_min,
        profiled_layers,
        rows_from_frames,
    )

    limits: dict[str, Any] = {}
    for run_id in run_ids:
        found = store.get_run(run_id).device_facts.get("limits")
        if isinstance(found, dict) and found.get("status") == "ok":
            limits = found
    timed = timed_runs(store, run_ids)
    everything = store.results_frame(list(run_ids))
    results = everything[everything["run_id"].isin(timed)]
    probes = store.probes_frame(timed, results)
    detected = detects_here(store, run_ids)
    return fit(
        rows_from_frames(probes, results, detected),
        scope,
        run_ids=run_ids,
        peak_gflop_s=_float_or_none(limits.get("peak_gflop_s")),
        bandwidth_gb_s=_float_or_none(limits.get("bandwidth_gb_s")),
        detected=detected,
        scale=median_over_min(store.measurements_frame(timed)),
        profiled=profiled_layers(store.profiles_frame(list(run_ids)), everything, detected),
    )


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def runtime_of(store: Store, run_ids: Sequence[int]) -> str:
    for run_id in run_ids:
        version = store.get_run(run_id).runtime_version
        if version:
            return version
    raise UserError(
        f"runs {', '.join(map(str, run_ids))} have no successful measurement to fit from; "
        "check the device with `mnbench devices check` and refit"
    )


def store_fit(store: Store, scope: Scope, model: FittedModel) -> int:
    return store.add_latency_model(
        device=scope.device,
        runtime_version=scope.runtime,
        threads=scope.threads,
        precision=scope.precision,
        run_ids=model.run_ids,
        model_json=model.to_json(),
    )


# ----------------------------------------------------------------------------- the verb


def run(args: argparse.Namespace) -> int:
    from harness.commands.options import default_models_dir
    from harness.predict.latency_model import FittedModel, Scope, predict
    from mobilenet.spec import KERNELS
    from results.store import Store, default_db_path

    precisions = list(dict.fromkeys(args.precision or ["fp32"]))
    if precisions != ["fp32"]:
        raise UserError(
            "the latency model covers fp32 only (the probes are fp32); drop --precision"
        )
    for kernel in args.kernel or []:
        if kernel not in KERNELS:
            raise UserError(f"--kernel {kernel} is not allowed: give odd sizes from 1 to 11")
    specs = _specs(args)
    cooldown_from_args(args)  # a malformed --cooldown is refused before the store exists
    db_path = args.db or default_db_path()
    models_dir = args.models_dir or default_models_dir()
    with Store.open(db_path, create=not args.from_runs) as store:
        session: Session | None = None
        fitted: FittedModel | None = None
        try:
            if args.from_runs:
                for run_id in args.from_runs:
                    store.get_run(run_id)  # refuses an unknown run
                runs = sorted(set(args.from_runs))
                first = store.get_run(runs[0])
                threads = args.threads or _threads_of(store, runs)
                scope = Scope(first.device, runtime_of(store, runs), threads)
                fitted = fit_from_runs(store, runs, scope)
                model_id = store_fit(store, scope, fitted)
                print(f"latency model {model_id} refitted from runs {runs}", file=sys.stderr)
            else:
                device_name = _device_name(args)
                if not args.refit and args.threads is not None:
                    found = store.latest_latency_model(
                        device=device_name, threads=args.threads, precision="fp32"
                    )
                    fitted = FittedModel.from_json(found[3]) if found else None
                if fitted is None:
                    session = open_session(args, store, fit_settings())
                    found = None
                    if not args.refit:
                        found = store.latest_latency_model(
                            device=session.device.name, threads=session.threads, precision="fp32"
                        )
                    if found is not None:
                        fitted = FittedModel.from_json(found[3])
                    else:
                        fitted = _fit_new(args, store, session, models_dir)
            assert fitted is not None
            predictions = [
                predict(fitted, s.alpha, s.resolution, s.variant, s.kernel) for s in specs
            ]
            if args.validate:
                if session is None:
                    session = open_session(args, store)
                else:  # the fit's session profiles; validating need not
                    session.measuring.use_settings(validate_settings())
                return _validate(args, store, session, fitted, specs, models_dir)
        finally:
            if session is not None:
                session.close()
    assert fitted is not None
    _print_model(fitted)
    if args.budget_ms is not None:
        return _budget(args, fitted, predictions)
    _print_predictions(args, predictions)
    return 0


def _device_name(args: argparse.Namespace) -> str:
    from harness.commands.options import resolve

    return resolve(args).name


def _threads_of(store: Store, run_ids: Sequence[int]) -> int:
    for run_id in run_ids:
        threads = store.get_run(run_id).config.get("threads")
        if isinstance(threads, list) and threads:
            return int(threads[0])
    raise UserError("the runs do not record their thread count; pass --threads")


def _fit_new(
    args: argparse.Namespace, store: Store, session: Session, models_dir: Path
) -> FittedModel:
    from harness.predict.latency_model import Scope

    print(
        f"fitting a latency model for {session.device.name}, {session.threads} threads "
        f"(about {args.budget_s:g} s of measuring)",
        file=sys.stderr,
    )
    runs = measure_training(
        session,
        store,
        models_dir,
        budget_s=args.budget_s,
        probes=args.probes,
        seed=args.seed,
        quiet=args.quiet,
    )
    scope = Scope(session.device.name, runtime_of(store, runs), session.threads)
    fitted = fit_from_runs(store, runs, scope)
    model_id = store_fit(store, scope, fitted)
    print(f"latency model {model_id} stored (runs {', '.join(map(str, runs))})", file=sys.stderr)
    return fitted


def _specs(args: argparse.Namespace) -> list[ModelSpec]:
    from mobilenet.spec import ModelSpec

    given = args.alpha or args.resolution or args.rho or args.variant or args.kernel
    if given:
        from harness.commands.grid import specs_from_args

        return specs_from_args(args)
    if args.validate:
        return [ModelSpec(a, r, v, k) for a, r, v, k in HELD_OUT]  # type: ignore[arg-type]
    if args.budget_ms is not None:
        return [ModelSpec(a, r) for a in SEARCH_ALPHAS for r in SEARCH_RESOLUTIONS]
    from harness.commands.grid import specs_from_args

    return specs_from_args(args)


def _print_model(model: FittedModel) -> None:
    scope = model.scope
    low, high = model.interval
    print(
        f"latency model: {scope.device}, onnxruntime {scope.runtime}, {scope.threads} threads, "
        f"{scope.precision}; {model.rows} measurements ({model.whole_models} whole models), "
        f"runs {', '.join(map(str, model.run_ids))}; cross-validated within ±10 %: "
        f"{model.cv_within_10:.0%}; interval {low:+.0%}..{high:+.0%}; convs priced by "
        f"{'count and MACs' if model.features == 'macs' else 'count, channels, MACs, bytes'}",
        file=sys.stderr,
    )


def _rows(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "alpha": p.alpha,
            "resolution": p.resolution,
            "variant": p.variant,
            "D_K": p.kernel,
            "macs": p.macs,
            "predicted_ms": p.latency_ms,
            "low_ms": p.low_ms,
            "high_ms": p.high_ms,
        }
        for p in predictions
    ]


def _emit(args: argparse.Namespace, headers: Sequence[str], records: list[dict[str, Any]]) -> None:
    from mobilenet.table import format_table

    if args.format == "json":
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
    elif args.format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]) if records else headers)
        writer.writeheader()
        writer.writerows(records)
    else:
        print(format_table(headers, [list(r.values()) for r in records]))


def _print_predictions(args: argparse.Namespace, predictions: Sequence[Prediction]) -> None:
    records = _rows(predictions)
    _emit(
        args,
        ("model", "α", "res", "variant", "D_K", "MACs", "pred ms", "low ms", "high ms"),
        records,
    )
    if args.blocks:
        block_records = [
            {"name": p.name, "block": block, "predicted_ms": ms}
            for p in predictions
            for block, ms in p.blocks_ms
        ]
        _emit(args, ("model", "block (0 stem, 14 head)", "pred ms"), block_records)


def _budget(args: argparse.Namespace, model: FittedModel, predictions: list[Prediction]) -> int:
    from reports.accuracy import accuracy_table, alpha_key
    from reports.charts import pareto_front

    accuracy = accuracy_table()
    top1 = {
        (alpha_key(a), int(r)): float(t)
        for a, r, p, t in zip(
            accuracy["alpha"],
            accuracy["resolution"],
            accuracy["precision"],
            accuracy["top1"],
            strict=True,
        )
        if p == "fp32"
    }
    fitting = sorted(
        (p for p in predictions if p.latency_ms <= args.budget_ms), key=lambda p: p.latency_ms
    )
    if not fitting:
        fastest = min(predictions, key=lambda p: p.latency_ms)
        raise UserError(
            f"no variant is predicted to run within {args.budget_ms:g} ms on "
            f"{model.scope.device}; the fastest is {fastest.name} at "
            f"{fastest.latency_ms:.2f} ms: raise --budget-ms or give smaller --alpha"
        )
    scored = [
        (p, top1.get((alpha_key(p.alpha), p.resolution)))
        if p.variant == "separable" and p.kernel == 3
        else (p, None)
        for p in fitting
    ]
    known = [(p, t) for p, t in scored if t is not None]
    front = {
        id(known[i][0])
        for i in pareto_front([p.latency_ms for p, _ in known], [t for _, t in known])
    }
    records = []
    for p, t in scored:
        record = _rows([p])[0]
        record["top1"] = t if t is not None else math.nan
        record["pareto"] = "yes" if id(p) in front else ""
        record["sure"] = "yes" if p.high_ms <= args.budget_ms else "interval crosses budget"
        records.append(record)
    _emit(
        args,
        (
            "model",
            "α",
            "res",
            "variant",
            "D_K",
            "MACs",
            "pred ms",
            "low ms",
            "high ms",
            "top-1 %",
            "Pareto",
            "within budget",
        ),
        records,
    )
    chosen = [p for p, _ in known if id(p) in front] or fitting[-1:]
    print(
        f"{len(fitting)} of {len(predictions)} variants predicted within {args.budget_ms:g} ms; "
        "measure the chosen ones to confirm:",
        file=sys.stderr,
    )
    device = ["--device", args.device] if args.device != "local" else []
    for p in chosen:
        argv = [
            "mnbench",
            "run",
            *device,
            "--threads",
            str(model.scope.threads),
            "--alpha",
            repr(p.alpha),
            "--resolution",
            str(p.resolution),
        ]
        if p.variant != "separable":
            argv += ["--variant", p.variant]
        if p.kernel != 3:
            argv += ["--kernel", str(p.kernel)]
        print("  " + shlex.join(argv), file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- validation


def truths_from_run(store: Store, run_id: int) -> dict[str, Truth]:
    """Per model of a run: the median of the trial medians and its interval."""
    from harness.predict.latency_model import Truth, trial_ci

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


def _validate(
    args: argparse.Namespace,
    store: Store,
    session: Session,
    model: FittedModel,
    specs: Sequence[ModelSpec],
    models_dir: Path,
) -> int:
    from harness.measure.sweep import prepare_models
    from harness.predict.latency_model import predict, relative_error, within_shares

    entries = prepare_models(specs, models_dir, store)
    run_id, _ = _measure(
        session,
        store,
        entries,
        {e.sha256: args.trials for e in entries},
        VALIDATE_LABEL,
        models_dir,
        args.quiet,
        {"latency_model_runs": list(model.run_ids)},
    )
    truths = truths_from_run(store, run_id)
    records = []
    errors = []
    for spec, entry in zip(specs, entries, strict=True):
        truth = truths.get(entry.sha256)
        p = predict(model, spec.alpha, spec.resolution, spec.variant, spec.kernel)
        error = relative_error(p.latency_ms, truth.median_ms) if truth else math.nan
        errors.append(error)
        records.append(
            {
                "name": spec.name,
                "predicted_ms": p.latency_ms,
                "measured_ms": truth.median_ms if truth else math.nan,
                "ci_low_ms": truth.ci_low_ms if truth else math.nan,
                "ci_high_ms": truth.ci_high_ms if truth else math.nan,
                "ci_rel": truth.ci_rel if truth else math.nan,
                "trials": truth.trials if truth else 0,
                "error": error,
            }
        )
    _print_model(model)
    _emit(
        args,
        ("model", "pred ms", "measured ms", "CI low", "CI high", "CI ±", "trials", "error"),
        records,
    )
    within_5, within_10 = within_shares(errors)
    noisy = sum(1 for truth in truths.values() if truth.ci_rel > 0.03)
    print(
        f"{model.scope.device}: {within_5:.0%} of {len(records)} predictions within ±5 %, "
        f"{within_10:.0%} within ±10 % of the measured median (run {run_id}); "
        f"{noisy} measured medians have a 95 % interval wider than ±3 %",
        file=sys.stderr,
    )
    return 0
