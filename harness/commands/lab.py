"""``mnbench lab``: a campaign's plan as work items in a shared store, and workers for it.

``lab plan`` probes each device once and stores one run per device, its plan inserted as
work items (``results.lab``); ``lab work`` claims and measures a device's items until none
is left (``harness.measure.lab``), from any host that reaches the device, as many workers
at once as there are; ``lab status`` shows the devices, who holds them and what is left.
The store is usually PostgreSQL (``--db postgresql://...``), which many hosts share; an
SQLite file serves the workers of one host.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.commands import SUMMARIES
from harness.commands.generate import add_calibration_argument
from harness.commands.grid import add_grid_arguments
from harness.commands.options import (
    add_cooldown_arguments,
    add_db_argument,
    add_inventory_argument,
    add_measurement_arguments,
    add_model_file_arguments,
)
from mobilenet.errors import UserError
from mobilenet.table import format_table, terminal_safe
from mobilenet.validate import MAX_THREADS, float_arg, int_arg, label_arg

EXAMPLES = """examples:
  mnbench lab plan --campaign nightly --devices pi4 pixel7 local --alpha 0.25 0.5
  mnbench lab plan --campaign zoo --devices phones --model resnet50.onnx --cooldown 45C
  mnbench lab work --devices pi4 pixel7        on each host that reaches those devices
  mnbench lab status --campaign nightly
"""

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from devices.device import DeviceConfig
    from harness.measure.plan import ModelEntry, RunnerSettings
    from harness.measure.session import MeasurementSession
    from mobilenet.spec import ModelSpec
    from results.guards import CooldownPolicy
    from results.store import Store

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
    plan.add_argument(
        "--threads",
        nargs="+",
        type=int_arg("--threads", 1, MAX_THREADS),
        metavar="N",
        help="intra-op thread counts (default: all cores of each device)",
    )
    add_measurement_arguments(plan, "fresh-process trials per model and thread count")
    add_cooldown_arguments(plan)
    plan.add_argument("--models-dir", type=Path, default=None, metavar="DIR")
    plan.add_argument("--label", type=label_arg, default=None, help="stored with each run")
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
    work.add_argument("--models-dir", type=Path, default=None, metavar="DIR")
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


def _resolve_devices(args: argparse.Namespace) -> list[DeviceConfig]:
    """--devices: inventory names, groups of the inventory, URLs; each device once."""
    from devices.inventory import resolve_devices

    explicit = args.inventory or os.environ.get("MNBENCH_INVENTORY")
    return resolve_devices(args.devices, Path(explicit) if explicit else None)


class ModelChoice:
    """The models a campaign measures, checked before anything is created: the grid's
    specs (and calibration), or ``--model`` files (and their ``--shape`` values)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from harness.commands.cost import parse_shapes
        from harness.commands.generate import calibration_from_args
        from harness.commands.grid import specs_from_args
        from harness.commands.run import _distinct_files
        from mobilenet.cost import analyze_model, load_model_file

        self.specs: list[ModelSpec] = []
        self.paths: list[Path] = []
        self.shapes = parse_shapes(args.shape)
        self.calibration = None
        if args.model:
            self.paths = _distinct_files(args.model)
            for path in self.paths:  # unknown --shape names, bad files
                analyze_model(load_model_file(path), self.shapes)
        else:
            if args.shape:
                raise UserError("--shape applies to --model files only; leave it out for the grid")
            self.specs = specs_from_args(args)
            self.calibration = calibration_from_args(args, self.specs)

    @property
    def count(self) -> int:
        return len(self.paths) or len(self.specs)

    def prepare(self, store: Store, models_dir: Path) -> list[ModelEntry]:
        from harness.measure.sweep import prepare_files, prepare_models

        if self.paths:
            return prepare_files(self.paths, self.shapes, store)
        return prepare_models(self.specs, models_dir, store, self.calibration)


def _plan(args: argparse.Namespace) -> int:
    from harness.commands.options import cooldown_from_args, default_models_dir, settings_from_args
    from mobilenet.validate import check_plan_size, creatable_dir, distinct
    from results.store import Store, default_db_path

    settings = settings_from_args(args)
    threads_given = distinct(args.threads, "--threads")
    cooldown = cooldown_from_args(args)
    models_dir = creatable_dir(args.models_dir or default_models_dir(), "--models-dir")
    choice = ModelChoice(args)
    devices = _resolve_devices(args)
    check_plan_size(choice.count * len(devices), threads_given, args.trials, args.max_plan)
    with Store.open(args.db or default_db_path()) as store:
        _refuse_planned(store, args.campaign)
        models = choice.prepare(store, models_dir)
        unplanned: dict[str, str] = {}
        plan = _campaign_plan(
            args, args.campaign, models, models_dir, settings, threads_given, cooldown
        )
        plan_campaign(store, plan, devices, unplanned)
    print(campaign_hint(args.campaign, args.db), file=sys.stderr)
    return 2 if unplanned else 0


def campaign_hint(campaign: str, db: object) -> str:
    """The line naming the campaign id the reading verbs take."""
    where = "" if db is None else f" --db {shlex.quote(str(db))}"
    name = shlex.quote(campaign)
    return (
        f"campaign {campaign}: `mnbench results --campaign {name}{where}`, "
        f"`mnbench report --campaign {name}{where}`, "
        f"`mnbench compare --campaign {name} DEVICE DEVICE{where}`"
    )


def _refuse_planned(store: Store, campaign: str) -> None:
    from results.queue import Lab

    if Lab(store).campaign_exists(campaign):
        raise UserError(
            f"campaign {campaign!r} is already planned in {store.path}; work it with "
            "`mnbench lab work` or plan another --campaign"
        )


@dataclass(frozen=True)
class CampaignPlan:
    """What every device of a campaign is planned with (``plan_device``)."""

    campaign: str
    models: Sequence[ModelEntry]
    models_dir: Path
    settings: RunnerSettings
    threads_given: Sequence[int] | None
    cooldown: CooldownPolicy | None
    cpus: str | None
    trials: int
    timeout_s: float | None
    label: str | None


def _stderr(line: str) -> None:
    print(terminal_safe(line), file=sys.stderr)


def plan_device(
    store: Store,
    plan: CampaignPlan,
    device: DeviceConfig,
    unplanned: dict[str, str],
    say: Callable[[str], None] = _stderr,
) -> tuple[int, MeasurementSession] | None:
    """Probe the device and store its run, the plan inserted as work items: the run and
    the session that probed it, still open (the caller closes it). A device that cannot be
    reached is left out (None), its reason recorded in ``unplanned`` and said."""
    from devices.errors import DeviceError
    from harness.measure.plan import make_plan
    from harness.measure.session import MeasurementSession
    from results.queue import Lab
    from results.store import config_key

    session: MeasurementSession | None = None
    try:
        session = MeasurementSession(
            device, plan.settings, store=store, timeout_s=plan.timeout_s, cooldown=plan.cooldown
        )
        chosen = session.select(plan.cpus or device.cpus, plan.threads_given)
        run_id = session.create_run(
            plan.models,
            chosen,
            plan.trials,
            device_arg=device.name,
            models_dir=plan.models_dir,
            label=plan.label,
            holder=None,
            extra_config={"campaign": plan.campaign},
        )
    except (UserError, DeviceError) as exc:
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()
        unplanned[device.name] = exc.message
        say(f"{device.name}: not planned: {exc.message}")
        return None
    except BaseException:
        if session is not None:
            session.close()
        raise
    items = make_plan(plan.models, chosen.threads, plan.trials, chosen.cpus)
    added = Lab(store).enqueue(
        plan.campaign,
        device.name,
        run_id,
        [(item.model.sha256, config_key(item.config), item.trial) for item in items],
    )
    say(f"campaign {plan.campaign}: run {run_id} on {device.name}, {added} items")
    return run_id, session


def plan_campaign(
    store: Store, plan: CampaignPlan, devices: Sequence[DeviceConfig], unplanned: dict[str, str]
) -> dict[str, int]:
    """Probe each device once and store its run (``plan_device``); the run of each device
    planned."""
    runs: dict[str, int] = {}
    for device in devices:
        planned = plan_device(store, plan, device, unplanned)
        if planned is not None:
            runs[device.name] = planned[0]
            planned[1].close()
    return runs


def _campaign_plan(
    args: argparse.Namespace,
    campaign: str,
    models: Sequence[ModelEntry],
    models_dir: Path,
    settings: RunnerSettings,
    threads_given: Sequence[int] | None,
    cooldown: CooldownPolicy | None,
) -> CampaignPlan:
    return CampaignPlan(
        campaign, models, models_dir, settings, threads_given, cooldown, args.cpus,
        args.trials, args.timeout, args.label,
    )  # fmt: skip


def run_on_devices(args: argparse.Namespace, names: Sequence[str]) -> int:
    """``mnbench run --device A B ...``: one run per device, grouped as a campaign, the
    devices planned and measured at once (one worker thread each, each device's
    measurements in turn; a device starts measuring as soon as it is planned) through the
    lab's queue in the run's own store."""
    import signal
    from datetime import datetime, timezone

    from devices.inventory import resolve_devices
    from harness.commands.options import cooldown_from_args, default_models_dir, settings_from_args
    from harness.commands.trust import cooldown_from_config
    from harness.measure.lab import Worker
    from mobilenet.errors import Interrupted
    from mobilenet.validate import check_plan_size, creatable_dir, distinct, note
    from results.store import Store, default_db_path

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
    settings = settings_from_args(args, profile=args.profile)
    threads_given = distinct(args.threads, "--threads")
    cooldown = cooldown_from_args(args)
    models_dir = creatable_dir(args.models_dir or default_models_dir(), "--models-dir")
    choice = ModelChoice(args)
    explicit = args.inventory or os.environ.get("MNBENCH_INVENTORY")
    devices = resolve_devices(names, Path(explicit) if explicit else None)
    check_plan_size(choice.count * len(devices), threads_given, args.trials, args.max_plan)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    campaign = f"{args.label or 'run'}-{stamp}"
    location = args.db or default_db_path()
    with Store.open(location) as store:
        _refuse_planned(store, campaign)
        models = choice.prepare(store, models_dir)
    plan = _campaign_plan(args, campaign, models, models_dir, settings, threads_given, cooldown)
    unplanned: dict[str, str] = {}
    runs: dict[str, int] = {}

    def prepare(device: DeviceConfig, store: Store) -> MeasurementSession | None:
        planned = plan_device(store, plan, device, unplanned, worker.say)
        if planned is None:
            return None
        runs[device.name] = planned[0]
        return planned[1]

    def hint() -> str:
        planned = [device.name for device in devices if device.name in runs]
        again = ["mnbench", "lab", "work", "--campaign", campaign, "--devices", *planned]
        if args.inventory is not None:
            again += ["--inventory", str(args.inventory)]
        if args.db is not None:
            again += ["--db", str(args.db)]
        return f"resume with `{shlex.join(again)}`"

    worker = Worker(
        location,
        devices,
        campaign=campaign,
        models_dir=args.models_dir,
        quiet=args.quiet,
        prepare=prepare,
        cooldown_of=cooldown_from_config,
    )
    try:
        outcomes = worker.run()
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT, hint()) from None
    except Interrupted as exc:
        raise Interrupted(exc.signum, hint()) from None
    if not runs:
        raise UserError(f"no device could be reached ({'; '.join(unplanned.values())})")
    outcomes = [o for o in outcomes if o.planned and o.device in runs]
    rows: list[list[object]] = [
        [o.device, runs[o.device], o.measured, o.failed, terminal_safe(o.error or "done")]
        for o in outcomes
    ]
    rows += [
        [name, "", 0, 0, terminal_safe(f"not planned: {why}")] for name, why in unplanned.items()
    ]
    print(format_table(["device", "run", "measured", "failed", "result"], rows))
    print(terminal_safe(campaign_hint(campaign, args.db)), file=sys.stderr)
    stopped = [o for o in outcomes if o.error]
    if stopped:
        print(
            f"{len(stopped)} of {len(devices)} devices stopped; what was measured is kept: "
            f"{hint()}",
            file=sys.stderr,
        )
    if unplanned:
        print(
            f"not reached: {', '.join(unplanned)}; fix them and measure them with their own "
            "`mnbench run --device ...`",
            file=sys.stderr,
        )
    if stopped or unplanned:
        return 2
    return 1 if any(o.failed for o in outcomes) else 0


def _work(args: argparse.Namespace) -> int:
    from harness.commands.trust import cooldown_from_config
    from harness.measure.lab import Worker
    from results.queue import Lab
    from results.store import Store, default_db_path

    devices = _resolve_devices(args)
    location = args.db or default_db_path()
    if args.campaign is not None:  # checked before any device is reached
        with Store.open(location, create=False) as store:
            if not Lab(store).campaign_exists(args.campaign):
                raise UserError(
                    f"no campaign {args.campaign!r} in {store.path}; `mnbench lab status` "
                    "lists them"
                )
    worker = Worker(
        location,
        devices,
        campaign=args.campaign,
        lease_s=args.lease,
        reconnect_s=args.reconnect,
        models_dir=args.models_dir,
        cooldown_of=cooldown_from_config,
    )
    outcomes = worker.run()
    errors = [outcome for outcome in outcomes if outcome.error]
    failed = sum(outcome.failed for outcome in outcomes)
    if errors:
        return 2
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    from results.queue import Lab
    from results.store import Store, default_db_path

    with Store.open(args.db or default_db_path(), create=False) as store:
        if "work_items" not in store.database.tables():
            print(f"{store.path} holds no campaigns yet; plan one with `mnbench lab plan`")
            return 0
        lab = Lab(store)
        if args.campaign is not None and not lab.campaign_exists(args.campaign):
            raise UserError(
                f"no campaign {args.campaign!r} in {store.path}; `mnbench lab status` lists them"
            )
        rows = []
        for device in lab.status(args.campaign):
            if device.holder is None:
                held = "free"
            else:
                state = "" if device.live else ", lease expired"
                held = (
                    f"{device.holder} (pid {device.pid} on {device.host}, "
                    f"{device.heartbeat_age_s or 0:.0f} s ago{state})"
                )
            rows.append(
                [
                    device.device,
                    held,
                    device.campaign or "",
                    device.pending + device.claimed,
                    device.claimed,
                    device.done,
                    device.failed,
                ]
            )
        campaigns = [args.campaign] if args.campaign else lab.campaigns()
        print(terminal_safe(f"campaigns: {', '.join(campaigns) if campaigns else 'none'}"))
        if rows:
            safe = [[terminal_safe(str(cell)) for cell in row] for row in rows]
            print(
                format_table(
                    ["device", "held by", "campaign", "left", "claimed", "done", "failed"], safe
                )
            )
        for campaign in campaigns:
            runs = ", ".join(f"{d} run {r}" for d, r in lab.runs_of(campaign).items())
            print(terminal_safe(f"{campaign}: {runs}"))
        if campaigns:
            print(terminal_safe(campaign_hint(campaigns[-1], args.db)))
    return 0
