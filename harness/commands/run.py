"""``mnbench run``: measure the grid (or given ONNX files) on a device into the store."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from harness.commands import SUMMARIES
from harness.commands.cost import parse_shapes
from harness.commands.generate import add_calibration_argument, calibration_from_args
from harness.commands.grid import add_grid_arguments, specs_from_args
from harness.commands.options import (
    add_db_argument,
    add_device_arguments,
    add_keep_workdir_argument,
    add_measurement_arguments,
    add_model_file_arguments,
    cooldown_from_args,
    create_run,
    default_models_dir,
    models_dir_flag,
    resolve,
    resume_hint,
    settings_from_args,
)
from harness.commands.trust import (
    adaptive_from_args,
    add_trust_arguments,
    check_budget,
    cooldown_from_config,
    pin_note,
)
from harness.measure.adaptive import AdaptivePlan, adaptive_from_config, run_adaptive
from harness.measure.plan import PlanItem, RunnerSettings, make_plan
from harness.measure.session import MeasurementSession
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
from mobilenet.cost import analyze_model, load_model_file
from mobilenet.errors import UserError
from mobilenet.spec import ModelSpec
from mobilenet.table import format_table, terminal_safe
from mobilenet.validate import (
    MAX_THREADS,
    check_plan_size,
    creatable_dir,
    distinct,
    int_arg,
    label_arg,
    note,
    run_id_arg,
)
from results.store import Store, default_db_path

EXAMPLES = """examples:
  mnbench run                                   the 16-cell grid on this CPU, 3 trials
  mnbench run --alpha 0.25 0.5 --resolution 128 --threads 1 2 --trials 5
  mnbench run --variant separable standard --alpha 0.5 --resolution 160
  mnbench run --model resnet50.onnx --shape input=1x3x224x224
  mnbench run --device ssh://pi@raspberrypi.local --cpus big
  mnbench run --device adb://emulator-5554
  mnbench run --device pi4 pixel7 local         three devices at once, one run each
  mnbench run --resume latest                   measure what an interrupted run missed
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help=SUMMARIES["run"],
        description="Generate what is missing and measure every model x thread count x trial, "
        "each in a fresh runner process on the device. Each measurement is committed on its "
        "own: an interrupted run keeps what it measured and --resume finishes it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_device_arguments(parser, several=True)
    add_grid_arguments(parser)
    add_calibration_argument(parser)
    add_model_file_arguments(parser)
    parser.add_argument(
        "--threads",
        nargs="+",
        type=int_arg("--threads", 1, MAX_THREADS),
        metavar="N",
        help="intra-op thread counts (default: all cores of the device)",
    )
    add_measurement_arguments(parser, "fresh-process trials per model and thread count")
    add_trust_arguments(parser)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record per-node profiles (a separate pass after timing)",
    )
    add_db_argument(parser)
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where generated models go (default ./models)",
    )
    parser.add_argument("--label", type=label_arg, default=None, help="a note stored with the run")
    parser.add_argument(
        "--resume",
        type=run_id_arg("--resume"),
        default=None,
        metavar="RUN_ID|latest",
        help="finish an interrupted run: measure only what it is missing, on the run's own "
        "device (give --device again when its URL names a program: python=, adb=)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_keep_workdir_argument(parser)


def run(args: argparse.Namespace) -> int:
    names = args.device if isinstance(args.device, list) else [args.device]
    if len(names) > 1 or _is_group(names[0], args):
        from harness.commands.lab import run_on_devices

        return run_on_devices(args, names)
    args.device = names[0]
    db_path = args.db or default_db_path()
    if args.resume is not None:
        with Store.open(db_path, create=False) as store:
            return _resume(args, store)
    # Everything the user typed is checked before the store, a model or a process exists.
    settings = settings_from_args(args, profile=args.profile)
    adaptive = adaptive_from_args(args, args.trials)
    cooldown = cooldown_from_args(args)
    threads_given = distinct(args.threads, "--threads")
    models_dir = creatable_dir(
        args.models_dir or default_models_dir(), models_dir_flag(args.models_dir, "--models-dir")
    )
    specs: list[ModelSpec] = []
    calibration = None
    if args.model:
        paths = _distinct_files(args.model)
        shapes = parse_shapes(args.shape)
        for path in paths:
            analyze_model(load_model_file(path), shapes)  # unknown --shape names, bad files
        count = len(paths)
    else:
        if args.shape:
            raise UserError("--shape applies to --model files only; leave it out for the grid")
        specs = specs_from_args(args)
        calibration = calibration_from_args(args, specs)
        count = len(specs)
    check_plan_size(count, threads_given, args.trials, args.max_plan)
    check_budget(adaptive, count * len(threads_given or [1]) * args.trials)
    device = resolve(args)
    with Store.open(db_path) as store:
        if args.model:
            models = prepare_files(paths, shapes, store)
        else:
            models = prepare_models(specs, models_dir, store, calibration)
        with MeasurementSession(
            device,
            settings,
            store=store,
            timeout_s=args.timeout,
            keep_workdir=args.keep_workdir,
            cooldown=cooldown,
        ) as session:
            chosen = session.select(args.cpus or device.cpus, threads_given)
            run_id = create_run(
                session,
                args,
                models,
                chosen,
                models_dir=models_dir,
                holder="mnbench run",
                extra_config={"adaptive": adaptive.to_config() if adaptive else None},
            )
            print(
                f"run {run_id}: {len(models)} models x {len(chosen.threads)} thread counts x "
                f"{args.trials} trials on {device.name} -> {store.path}",
                file=sys.stderr,
            )
            plan = make_plan(models, chosen.threads, args.trials, chosen.cpus)
            outcome = _measure(session.sweep, run_id, plan, adaptive, args.quiet)
        return _finish(store, outcome)


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


def _is_group(name: str, args: argparse.Namespace) -> bool:
    """Whether ``name`` is a [groups] entry of the inventory (several devices)."""
    from devices.inventory import DEFAULT_INVENTORY, load_groups

    explicit = args.inventory or os.environ.get("MNBENCH_INVENTORY")
    path = Path(explicit) if explicit else DEFAULT_INVENTORY
    if "://" in name or not path.is_file():
        return False
    return name in load_groups(path)


def _distinct_files(paths: list[Path]) -> list[Path]:
    """The ``--model`` files, each once (by resolved path), saying so when one repeats."""
    seen: dict[Path, Path] = {}
    for path in paths:
        seen.setdefault(path.resolve(), path)
    if len(seen) < len(paths):
        note("--model names a file more than once; each is measured once")
    return list(seen.values())


def _resume(args: argparse.Namespace, store: Store) -> int:
    from harness.measure.stored import check_same_device, check_stored_config, check_stored_device

    run_id = store.resolve_run_id(args.resume)
    record = store.get_run(run_id)
    config = record.config
    if not config.get("models"):
        raise UserError(f"run {run_id} has no stored plan to resume; start a new run")
    # Everything below comes from the database file: checked like the command line.
    stored = check_stored_config(run_id, config, record.device)
    if args.device == "local":  # not given: the run's own device, checked
        args.device = check_stored_device(run_id, stored.device)
        device = resolve(args)
    else:  # the user names it (an inventory entry for a URL that named a program)
        device = resolve(args)
        check_same_device(run_id, stored.device, record.device_kind, device)
    if stored.regress_role is not None and config.get("design") == "pairs":
        from harness.measure.regress import regress_command

        raise UserError(
            f"run {run_id} is the {stored.regress_role} side of a paired `mnbench regress` "
            "(both sides timed in one pair of processes), so it cannot be resumed alone; "
            f"measure again with `{regress_command(store, run_id)}`"
        )
    settings = RunnerSettings(**stored.settings)
    cooldown = cooldown_from_config(run_id, config.get("cooldown"))
    stale_s = lease_stale_after_s(measurement_timeout_s(settings, stored.timeout_s), settings.batch)
    with (
        store.lease(run_id, "mnbench run --resume", stale_s),
        MeasurementSession(
            device,
            settings,
            store=store,
            timeout_s=stored.timeout_s,
            keep_workdir=args.keep_workdir,
            cooldown=cooldown,
        ) as session,
    ):
        if stored.runtime is not None:
            session.use_python(_regress_side_python(store, run_id, stored, session))
        models = models_from_config(config, store, args.models_dir)
        plan = make_plan(models, stored.threads, stored.trials, stored.cpus)
        session.use_facts(record.device_facts)
        session.set_resume_command(resume_hint(run_id, args))
        print(f"resuming run {run_id} on {device.name}", file=sys.stderr)
        adaptive = adaptive_from_config(run_id, config.get("adaptive"))
        outcome = _measure(session.sweep, run_id, plan, adaptive, args.quiet)
    return _finish(store, outcome)


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


def _finish(store: Store, outcome: SweepOutcome) -> int:
    frame = store.results_frame([outcome.run_id])
    if len(frame):
        rows = [
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
        print(
            format_table(
                [
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
                ],
                rows,
            )
        )
    for line in pin_note(frame):
        print(terminal_safe(line), file=sys.stderr)
    print(
        f"run {outcome.run_id}: {outcome.measured} measured, {outcome.skipped} already "
        f"there, {len(outcome.failures)} failed",
        file=sys.stderr,
    )
    if outcome.failures:
        for what, reason in outcome.failures:
            print(terminal_safe(f"failed: {what}: {reason}"), file=sys.stderr)
        return 1
    return 0


def _mib(value: object) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value) / 2**20
    return None


def _millions(value: object) -> float | None:
    return float(value) / 1e6 if isinstance(value, (int, float)) and math.isfinite(value) else None
