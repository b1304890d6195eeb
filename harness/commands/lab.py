"""``mnbench lab``: a campaign's plan as work items in a shared store, and workers for it.

``lab plan`` probes each device once and stores one run per device, its plan inserted as
work items; ``lab work`` claims and measures a device's items until none is left, from any
host that reaches the device, as many workers at once as there are; ``lab status`` shows the
devices, who holds them and what is left (``harness.measure.campaign``). The store is
usually PostgreSQL (``--db postgresql://...``), which many hosts share; an SQLite file
serves the workers of one host.
"""

from __future__ import annotations

import argparse
import sys

from harness.commands import SUMMARIES
from harness.commands.exits import EXIT_ERROR, EXIT_FINDING, EXIT_OK
from harness.commands.generate import add_calibration_argument
from harness.commands.grid import add_grid_arguments
from harness.commands.measuring import add_measurement_arguments
from harness.commands.models import add_model_file_arguments
from harness.commands.options import (
    add_cooldown_arguments,
    add_db_argument,
    add_inventory_argument,
    add_label_argument,
    add_models_dir_argument,
    add_threads_argument,
    models_dir_from_args,
)
from harness.measure.requests import LabPlanRequest, LabWorkRequest
from mobilenet.table import format_table, terminal_safe
from mobilenet.validate import float_arg, label_arg

EXAMPLES = """examples:
  mnbench lab plan --campaign nightly --devices pi4 pixel7 local --alpha 0.25 0.5
  mnbench lab plan --campaign zoo --devices phones --model resnet50.onnx --cooldown 45C
  mnbench lab work --devices pi4 pixel7        on each host that reaches those devices
  mnbench lab status --campaign nightly
"""

DEFAULT_LEASE_S = 120.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "lab",
        help=SUMMARIES["lab"],
        description="A campaign is one run per device whose plan is stored as work items. "
        "Workers on any host claim a device's next item under a lease, measure it and "
        "commit it; an item whose worker died is claimed again when its lease ends.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="lab_command", metavar="ACTION", parser_class=type(parser))
    verbs.required = True

    plan = verbs.add_parser("plan", help="store a campaign: one run per device, its items")
    plan.add_argument("--campaign", required=True, type=label_arg, help="the campaign's name")
    _add_devices(plan)
    add_grid_arguments(plan)
    add_calibration_argument(plan)
    add_model_file_arguments(plan)
    add_threads_argument(plan, default="all cores of each device")
    add_measurement_arguments(plan, "fresh-process trials per model and thread count")
    add_cooldown_arguments(plan)
    add_models_dir_argument(plan)
    add_label_argument(plan, each=True)
    _add_common(plan)

    work = verbs.add_parser("work", help="measure the devices' items until none is left")
    _add_devices(work)
    work.add_argument("--campaign", type=label_arg, default=None, help="only this campaign")
    work.add_argument(
        "--lease",
        type=float_arg("--lease", high=86_400.0),
        default=DEFAULT_LEASE_S,
        metavar="S",
        help="an item whose worker is silent for S seconds is claimed again (default "
        f"{DEFAULT_LEASE_S:g}); the worker beats every S/3",
    )
    work.add_argument(
        "--reconnect",
        type=float_arg("--reconnect", high=86_400.0),
        default=60.0,
        metavar="S",
        help="retry a lost database connection for S seconds before stopping (default 60)",
    )
    add_models_dir_argument(work)
    _add_common(work)

    status = verbs.add_parser("status", help="devices, who holds them, items left")
    status.add_argument("--campaign", type=label_arg, default=None, help="only this campaign")
    _add_common(status)


def _add_devices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices",
        nargs="+",
        required=True,
        metavar="NAME|URL",
        help="inventory names or URLs (local, ssh://..., adb://...)",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_db_argument(parser)
    add_inventory_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.lab_command == "plan":
        return _plan(args)
    if args.lab_command == "work":
        return _work(args)
    return _status(args)


def _plan(args: argparse.Namespace) -> int:
    from harness.commands.run import request_from_args
    from harness.measure.campaign import campaign_hint, plan_campaign

    measure = request_from_args(args, tuple(args.devices), several=True)
    unplanned = plan_campaign(LabPlanRequest(args.campaign, measure))
    print(campaign_hint(args.campaign, args.db), file=sys.stderr)
    return EXIT_ERROR if unplanned else EXIT_OK


def _work(args: argparse.Namespace) -> int:
    from harness.measure.campaign import work_campaign

    request = LabWorkRequest(
        devices=tuple(args.devices),
        campaign=args.campaign,
        lease_s=args.lease,
        reconnect_s=args.reconnect,
        inventory=args.inventory,
        db=args.db,
        stored_models_dir=models_dir_from_args(args),
    )
    outcomes = work_campaign(request)
    if any(outcome.error for outcome in outcomes):
        return EXIT_ERROR
    return EXIT_FINDING if sum(outcome.failed for outcome in outcomes) else EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from harness.measure.campaign import campaign_hint, campaign_status

    status = campaign_status(args.db, args.campaign)
    if not status.started:
        print(f"{status.store} holds no campaigns yet; plan one with `mnbench lab plan`")
        return EXIT_OK
    rows = []
    for device in status.devices:
        if device.holder is None:
            held = "free"
        else:
            state = "" if device.live else ", lease expired"
            held = (
                f"{device.holder} (pid {device.pid} on {device.host}, "
                f"{device.heartbeat_age_s or 0:.0f} s ago{state})"
            )
        left = device.pending + device.claimed
        rows.append(
            [device.device, held, device.campaign or "", left, device.claimed, device.done,
             device.failed]
        )  # fmt: skip
    campaigns = status.campaigns
    print(terminal_safe(f"campaigns: {', '.join(campaigns) if campaigns else 'none'}"))
    if rows:
        safe = [[terminal_safe(str(cell)) for cell in row] for row in rows]
        headers = ["device", "held by", "campaign", "left", "claimed", "done", "failed"]
        print(format_table(headers, safe))
    for campaign in campaigns:
        runs = ", ".join(f"{d} run {r}" for d, r in (status.runs or {})[campaign].items())
        print(terminal_safe(f"{campaign}: {runs}"))
    if campaigns:
        print(terminal_safe(campaign_hint(campaigns[-1], args.db)))
    return EXIT_OK
