"""``mnbench run``: measure the grid (or given ONNX files) on a device into the store.

One device is one run (``harness.measure.device_run``); several devices, or an inventory
[groups] name, are measured at once, one run each, grouped as a campaign
(``harness.measure.campaign``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_ERROR, EXIT_FINDING, EXIT_OK
from harness.commands.generate import add_calibration_argument
from harness.commands.grid import add_grid_arguments
from harness.commands.measuring import add_measurement_arguments, settings_from_args
from harness.commands.models import add_model_file_arguments, model_choice
from harness.commands.options import (
    add_db_argument,
    add_device_arguments,
    add_keep_workdir_argument,
    add_label_argument,
    add_models_dir_argument,
    add_quiet_argument,
    add_threads_argument,
    cooldown_from_args,
    models_dir_from_args,
)
from harness.commands.trust import adaptive_from_args, add_trust_arguments
from harness.measure.requests import MeasureRequest, ResumeRequest
from harness.measure.targets import is_group
from mobilenet.errors import UserError
from mobilenet.table import format_table, terminal_safe
from mobilenet.validate import distinct, note, run_id_arg

if TYPE_CHECKING:
    from harness.measure.campaign import CampaignOutcome
    from harness.measure.device_run import RunResult

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
    add_threads_argument(parser)
    add_measurement_arguments(parser, "fresh-process trials per model and thread count")
    add_trust_arguments(parser)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record per-node profiles (a separate pass after timing)",
    )
    add_db_argument(parser)
    add_models_dir_argument(parser, "generated models")
    add_label_argument(parser)
    parser.add_argument(
        "--resume",
        type=run_id_arg("--resume"),
        default=None,
        metavar="RUN_ID|latest",
        help="finish an interrupted run: measure only what it is missing, on the run's own "
        "device (give --device again when its URL names a program: python=, adb=)",
    )
    add_quiet_argument(parser)
    add_keep_workdir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from harness.measure.campaign import run_campaign
    from harness.measure.device_run import measure_run, resume_run

    names = tuple(args.device if isinstance(args.device, list) else [args.device])
    if len(names) > 1 or is_group(names[0], args.inventory):
        _check_several(args)
        return _print_campaign(run_campaign(request_from_args(args, names, several=True)), args)
    if args.resume is not None:
        resume = ResumeRequest(
            run=args.resume,
            device=None if names[0] == "local" else names[0],
            inventory=args.inventory,
            db=args.db,
            stored_models_dir=models_dir_from_args(args),
            quiet=args.quiet,
            keep_workdir=args.keep_workdir,
        )
        return _print_run(resume_run(resume))
    return _print_run(measure_run(request_from_args(args, names, several=False)))


def _check_several(args: argparse.Namespace) -> None:
    """What a run on several devices cannot do, refused (or noted) before anything runs."""
    if args.resume is not None:
        raise UserError(
            "--resume finishes one run; a run on several devices is a campaign, finished by "
            "the `mnbench lab work --campaign ...` line it printed"
        )
    for flag, value in (("--max-trials", args.max_trials), ("--budget", args.budget)):
        if value is not None:
            raise UserError(
                f"{flag} is for the adaptive trials of one device's run; on several devices "
                "give --trials (each device measures its items in turn)"
            )
    if args.target_ci_fraction is not None:
        note("--target-ci on several devices is each trial's stopping rule; trials are not "
             "added adaptively (that is for one device's run)")  # fmt: skip


def request_from_args(
    args: argparse.Namespace, devices: tuple[str, ...], several: bool
) -> MeasureRequest:
    """Everything the user typed, checked before the store, a model or a process exists."""
    settings = settings_from_args(args, profile=getattr(args, "profile", False))
    adaptive = None if several else adaptive_from_args(args, args.trials)
    cooldown = cooldown_from_args(args)
    threads = distinct(args.threads, "--threads")
    models_dir = models_dir_from_args(args)
    return MeasureRequest(
        devices=devices,
        models=model_choice(args),
        settings=settings,
        models_dir=models_dir,
        trials=args.trials,
        threads=tuple(threads) if threads is not None else None,
        cpus=args.cpus,
        timeout_s=args.timeout,
        max_plan=args.max_plan,
        adaptive=adaptive,
        cooldown=cooldown,
        label=args.label,
        inventory=args.inventory,
        db=args.db,
        stored_models_dir=args.models_dir,
        quiet=getattr(args, "quiet", False),
        keep_workdir=getattr(args, "keep_workdir", False),
    )


def _print_run(result: RunResult) -> int:
    from harness.measure.device_run import SUMMARY_HEADERS, pin_note, summary_rows

    outcome = result.outcome
    if len(result.frame):
        print(format_table(list(SUMMARY_HEADERS), summary_rows(result.frame)))
    for line in pin_note(result.frame):
        print(terminal_safe(line), file=sys.stderr)
    print(
        f"run {outcome.run_id}: {outcome.measured} measured, {outcome.skipped} already "
        f"there, {len(outcome.failures)} failed",
        file=sys.stderr,
    )
    if outcome.failures:
        for what, reason in outcome.failures:
            print(terminal_safe(f"failed: {what}: {reason}"), file=sys.stderr)
        return EXIT_FINDING
    return EXIT_OK


def _print_campaign(done: CampaignOutcome, args: argparse.Namespace) -> int:
    from harness.measure.campaign import campaign_hint

    rows: list[list[object]] = [
        [o.device, done.runs[o.device], o.measured, o.failed, terminal_safe(o.error or "done")]
        for o in done.outcomes
    ]
    rows += [
        [name, "", 0, 0, terminal_safe(f"not planned: {why}")]
        for name, why in done.unplanned.items()
    ]
    print(format_table(["device", "run", "measured", "failed", "result"], rows))
    print(terminal_safe(campaign_hint(done.campaign, args.db)), file=sys.stderr)
    stopped = [o for o in done.outcomes if o.error]
    if stopped:
        print(
            f"{len(stopped)} of {len(done.devices)} devices stopped; what was measured is "
            f"kept: {done.resume}",
            file=sys.stderr,
        )
    if done.unplanned:
        print(
            f"not reached: {', '.join(done.unplanned)}; fix them and measure them with their "
            "own `mnbench run --device ...`",
            file=sys.stderr,
        )
    if stopped or done.unplanned:
        return EXIT_ERROR
    return EXIT_FINDING if any(o.failed for o in done.outcomes) else EXIT_OK
