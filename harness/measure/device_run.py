"""One device's run, end to end: the models prepared, the device probed, the run created and
measured (with a ``--target-ci``, rounds of adaptive trials), and an interrupted run resumed
from what its store holds.

``measure_run`` takes a ``MeasureRequest`` naming one device, ``resume_run`` a
``ResumeRequest``; both give the outcome with the run's results frame, which the command
prints (``summary_rows``, ``pin_note``). What the store holds is read like the command line:
a stored cool-down, plan or interpreter is checked before it is used, never run.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.measure.adaptive import AdaptivePlan, adaptive_from_config, run_adaptive
from harness.measure.plan import ModelEntry, PlanItem, make_plan
from harness.measure.session import MeasurementSession, Selection
from harness.measure.stored import StoredPlan
from harness.measure.sweep import (
    ProgressBar,
    Sweep,
    SweepOutcome,
    lease_stale_after_s,
    measurement_timeout_s,
    models_from_config,
    prepare_files,
    prepare_models,
    run_plan,
)
from harness.measure.targets import resolve_target
from mobilenet.errors import UserError
from mobilenet.validate import check_plan_size
from results.store import Store, default_db_path

if TYPE_CHECKING:
    import pandas as pd

    from harness.measure.requests import Location, MeasureRequest, ModelChoice, ResumeRequest

Say = Callable[[str], None]
"""Where a workflow's one-line announcements go (the command's stderr)."""

SUMMARY_HEADERS: tuple[str, ...] = (
    "model",
    "threads",
    "trials",
    "p50 ms",
    "CI low ms",
    "CI high ms",
    "spread %",
    "p90 ms",
    "samples",
    "peak RSS MiB",
    "MMACs",
    "status",
    "flags",
)
"""The columns of the table printed after a run (``summary_rows``)."""


def stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class RunResult:
    """A measured run: what was measured, skipped and failed, and its results frame."""

    outcome: SweepOutcome
    frame: pd.DataFrame


def prepare_chosen(choice: ModelChoice, store: Store, models_dir: Path) -> list[ModelEntry]:
    """The chosen models ready to measure: files checked and recorded, or the grid's models
    generated into ``models_dir`` (what is there already is reused)."""
    if choice.paths:
        return prepare_files(choice.paths, choice.shapes, store)
    return prepare_models(choice.specs, models_dir, store, choice.calibration)


def resume_hint(
    run_id: int,
    device: str,
    inventory: Path | None,
    db: Location | None,
    models_dir: Path | None = None,
) -> str:
    """``resume with `mnbench run --resume N ...``` with the options that find the same
    database, device and models again (a device URL with a parameter a database may not
    supply is never read back, so it is given again; nor is the models directory, so one
    other than the default is given again)."""
    from harness.measure.stored import names_program

    argv = ["mnbench", "run", "--resume", str(run_id)]
    if names_program(device):
        argv += ["--device", device]
    if inventory is not None:
        argv += ["--inventory", str(inventory)]
    if db is not None:
        argv += ["--db", str(db)]
    default = Path(os.environ.get("MNBENCH_MODELS") or "models")
    if models_dir is not None and models_dir.resolve() != default.resolve():
        argv += ["--models-dir", str(models_dir)]
    return f"resume with `{shlex.join(argv)}`"


def create_run(
    session: MeasurementSession,
    models: Sequence[ModelEntry],
    chosen: Selection,
    *,
    trials: int,
    device: str,
    label: str | None,
    inventory: Path | None,
    db: Location | None,
    models_dir: Path,
    holder: str,
    extra_config: Mapping[str, object] | None = None,
) -> int:
    """A run of ``trials`` on the ``device`` named, whose stop says how to resume it."""
    run_id = session.create_run(
        models,
        chosen,
        trials,
        device_arg=device,
        models_dir=models_dir,
        label=label,
        holder=holder,
        extra_config=extra_config,
    )
    session.set_resume_command(resume_hint(run_id, device, inventory, db, models_dir))
    return run_id


def check_budget(adaptive: AdaptivePlan | None, base_items: int) -> None:
    """Refuse an adaptive budget smaller than the base plan."""
    if adaptive and adaptive.budget is not None and adaptive.budget < base_items:
        raise UserError(
            f"--budget {adaptive.budget} is below the {base_items} trials of the base plan "
            "(cells x --trials); raise --budget or lower --trials"
        )


def measure_run(request: MeasureRequest, say: Say = stderr) -> RunResult:
    """Measure the request's models on its one device into a new run."""
    threads = request.threads
    check_plan_size(request.models.count, threads, request.trials, request.max_plan)
    check_budget(request.adaptive, request.models.count * len(threads or [1]) * request.trials)
    device = resolve_target(request.devices[0], request.inventory)
    with Store.open(request.db or default_db_path()) as store:
        models = prepare_chosen(request.models, store, request.models_dir)
        with MeasurementSession(
            device,
            request.settings,
            store=store,
            timeout_s=request.timeout_s,
            keep_workdir=request.keep_workdir,
            cooldown=request.cooldown,
        ) as session:
            chosen = session.select(request.cpus or device.cpus, threads)
            adaptive = request.adaptive
            run_id = create_run(
                session,
                models,
                chosen,
                trials=request.trials,
                device=request.devices[0],
                label=request.label,
                inventory=request.inventory,
                db=request.db,
                models_dir=request.models_dir,
                holder="mnbench run",
                extra_config={"adaptive": adaptive.to_config() if adaptive else None},
            )
            say(
                f"run {run_id}: {len(models)} models x {len(chosen.threads)} thread counts x "
                f"{request.trials} trials on {device.name} -> {store.path}"
            )
            plan = make_plan(models, chosen.threads, request.trials, chosen.cpus)
            outcome = _measure(session, run_id, plan, adaptive, request.quiet)
        return RunResult(outcome, store.results_frame([outcome.run_id]))


def _measure(
    sweep: Sweep,
    run_id: int,
    plan: list[PlanItem],
    adaptive: AdaptivePlan | None,
    quiet: bool,
) -> SweepOutcome:
    """The base plan, then (``--target-ci``) rounds of trials until the cross-trial CIs fit."""
    progress = None if quiet else ProgressBar()
    if adaptive is None:
        return run_plan(sweep, run_id, plan, progress)
    sweep.trial_target_ci = adaptive.target_ci
    return run_adaptive(sweep, run_id, plan, adaptive, progress)


def resume_run(request: ResumeRequest, say: Say = stderr) -> RunResult:
    """Measure what an interrupted run is missing, on the run's own device, with its own
    stored plan, settings and cool-down."""
    from harness.measure.stored import check_same_device, check_stored_config, check_stored_device

    with Store.open(request.db or default_db_path(), create=False) as store:
        run_id = store.resolve_run_id(request.run)
        record = store.get_run(run_id)
        config = record.config
        if not config.get("models"):
            raise UserError(f"run {run_id} has no stored plan to resume; start a new run")
        # Everything below comes from the database file: checked like the command line.
        stored = check_stored_config(run_id, config, record.device)
        if request.device is None:  # not given: the run's own device, checked
            device_arg = check_stored_device(run_id, stored.device)
            device = resolve_target(device_arg, request.inventory)
        else:  # the user names it (an inventory entry for a URL that named a program)
            device_arg = request.device
            device = resolve_target(device_arg, request.inventory)
            check_same_device(run_id, stored.device, record.device_kind, device)
        if stored.regress_role is not None and config.get("design") == "pairs":
            from harness.measure.regress import regress_command

            raise UserError(
                f"run {run_id} is the {stored.regress_role} side of a paired `mnbench regress` "
                "(both sides timed in one pair of processes), so it cannot be resumed alone; "
                f"measure again with `{regress_command(store, run_id)}`"
            )
        settings = stored.config.settings
        cooldown = stored.config.cooldown
        timeout_s = measurement_timeout_s(settings, stored.timeout_s)
        stale_s = lease_stale_after_s(timeout_s, settings.batch)
        with (
            store.lease(run_id, "mnbench run --resume", stale_s),
            MeasurementSession(
                device,
                settings,
                store=store,
                timeout_s=stored.timeout_s,
                keep_workdir=request.keep_workdir,
                cooldown=cooldown,
            ) as session,
        ):
            if stored.runtime is not None:
                session.use_python(_regress_side_python(store, run_id, stored, session))
            models = models_from_config(config, store, request.stored_models_dir)
            plan = make_plan(models, stored.threads, stored.trials, stored.cpus)
            session.use_facts(record.device_facts)
            session.set_resume_command(
                resume_hint(
                    run_id, device_arg, request.inventory, request.db, request.stored_models_dir
                )
            )
            say(f"resuming run {run_id} on {device.name}")
            adaptive = adaptive_from_config(run_id, config.get("adaptive"))
            outcome = _measure(session, run_id, plan, adaptive, request.quiet)
        return RunResult(outcome, store.results_frame([outcome.run_id]))


def _regress_side_python(
    store: Store, run_id: int, stored: StoredPlan, session: MeasurementSession
) -> str | None:
    """The interpreter running one side of a ``regress`` run with that side's own runtime.

    A managed ``onnxruntime==X.Y.Z`` environment (built by the harness) or ``current`` is
    used again; an interpreter path read from the database is never run: refused with the
    ``regress`` command that measures it again.
    """
    from harness.measure.regress import regress_command, runtime_python
    from harness.measure.stored import is_managed_runtime

    runtime = stored.runtime
    assert runtime is not None
    if runtime != "current" and not is_managed_runtime(runtime):
        raise UserError(
            f"run {run_id} is the {stored.regress_role or 'one'} side of a `mnbench regress` "
            f"measured with the interpreter {runtime!r}; a database never names a command to "
            f"run, so measure it again with `{regress_command(store, run_id)}`"
        )
    python, _ = runtime_python(runtime, session.device, session.transport)
    return python


def summary_rows(frame: pd.DataFrame) -> list[list[object]]:
    """The rows of the table printed after a run (``SUMMARY_HEADERS``): times in ms, the
    spread in percent, peak RSS in MiB, MACs in millions."""
    return [
        [
            r["name"],
            r["threads"],
            r["trials"],
            r["p50_ms"],
            r["ci_low_ms"],
            r["ci_high_ms"],
            None if r["spread"] is None or r["spread"] != r["spread"] else 100 * r["spread"],
            r["p90_ms"],
            r["samples"],
            _mib(r["peak_rss_bytes"]),
            _millions(r["macs"]),
            r["status"],
            r["flags"] or "",
        ]
        for r in frame.to_dict("records")
    ]


def pin_note(frame: pd.DataFrame) -> list[str]:
    """Lines for stderr after a run: how the frequencies stood and, when they were not
    pinned, the exact command that would pin them (mnbench never runs it)."""
    if frame.empty or "pin_command" not in frame.columns:
        return []
    states = [str(v) for v in frame["device_state"] if isinstance(v, str) and v]
    commands = [str(v) for v in frame["pin_command"] if isinstance(v, str) and v]
    if not commands:
        return []
    return [
        f"note: {states[0] if states else 'CPU frequencies not pinned'}; numbers move with the "
        "governor. To pin the frequencies (root; mnbench never does):",
        f"  {commands[0]}",
    ]


def _mib(value: object) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value) / 2**20
    return None


def _millions(value: object) -> float | None:
    return float(value) / 1e6 if isinstance(value, (int, float)) and math.isfinite(value) else None
