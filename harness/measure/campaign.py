"""A campaign: one run per device, its plan stored as work items in a shared store
(``results.queue``) and measured by workers on any host that reaches the device
(``harness.measure.worker``).

``plan_campaign`` probes each device once and stores its run and items (``mnbench lab
plan``); ``work_campaign`` measures the devices' items until none is left (``mnbench lab
work``); ``run_campaign`` does both at once for ``mnbench run --device A B ...``, each
device measuring as soon as it is planned; ``campaign_status`` reads who holds which device
and what is left (``mnbench lab status``).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from devices.device import DeviceConfig
from devices.errors import DeviceError
from harness.measure.device_run import Say, prepare_chosen, stderr
from harness.measure.plan import ModelEntry, RunnerSettings, make_plan
from harness.measure.requests import LabPlanRequest, LabWorkRequest, Location, MeasureRequest
from harness.measure.session import MeasurementSession
from harness.measure.targets import resolve_targets
from harness.measure.worker import DeviceOutcome, Worker
from mobilenet.errors import Interrupted, UserError
from mobilenet.table import terminal_safe
from mobilenet.validate import check_plan_size
from results.config import cooldown_from_json
from results.guards import CooldownPolicy
from results.queue import DeviceStatus, Lab
from results.store import Store, config_key, default_db_path


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


@dataclass(frozen=True)
class CampaignOutcome:
    """What ``run_campaign`` did: the run of each device planned, why the others were not,
    each planned device's outcome, and the line that finishes what is left."""

    campaign: str
    devices: tuple[str, ...]
    runs: Mapping[str, int]
    unplanned: Mapping[str, str]
    outcomes: tuple[DeviceOutcome, ...]
    resume: str


@dataclass(frozen=True)
class LabStatus:
    """The store's campaigns, its devices' holders and what is left."""

    store: str
    """Where the store is (its path or URL), for messages."""
    started: bool
    """False: the store holds no work items yet."""
    devices: tuple[DeviceStatus, ...] = ()
    campaigns: tuple[str, ...] = ()
    runs: Mapping[str, Mapping[str, int]] | None = None
    """Each campaign's run per device."""


def campaign_hint(campaign: str, db: object) -> str:
    """The line naming the campaign id the reading verbs take."""
    where = "" if db is None else f" --db {shlex.quote(str(db))}"
    name = shlex.quote(campaign)
    return (
        f"campaign {campaign}: `mnbench results --campaign {name}{where}`, "
        f"`mnbench report --campaign {name}{where}`, "
        f"`mnbench compare --campaign {name} DEVICE DEVICE{where}`"
    )


def refuse_planned(store: Store, campaign: str) -> None:
    if Lab(store).campaign_exists(campaign):
        raise UserError(
            f"campaign {campaign!r} is already planned in {store.path}; work it with "
            "`mnbench lab work` or plan another --campaign"
        )


def _safe_stderr(line: str) -> None:
    stderr(terminal_safe(line))


def plan_device(
    store: Store,
    plan: CampaignPlan,
    device: DeviceConfig,
    unplanned: dict[str, str],
    say: Say = _safe_stderr,
) -> tuple[int, MeasurementSession] | None:
    """Probe the device and store its run, the plan inserted as work items: the run and
    the session that probed it, still open (the caller closes it). A device that cannot be
    reached is left out (None), its reason recorded in ``unplanned`` and said."""
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


def plan_devices(
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
    request: MeasureRequest, campaign: str, models: Sequence[ModelEntry]
) -> CampaignPlan:
    return CampaignPlan(
        campaign, models, request.models_dir, request.settings, request.threads,
        request.cooldown, request.cpus, request.trials, request.timeout_s, request.label,
    )  # fmt: skip


def _devices(request: MeasureRequest) -> list[DeviceConfig]:
    """The request's devices, its plan's size checked over all of them."""
    devices = resolve_targets(request.devices, request.inventory)
    count = request.models.count * len(devices)
    check_plan_size(count, request.threads, request.trials, request.max_plan)
    return devices


def plan_campaign(request: LabPlanRequest) -> dict[str, str]:
    """Store the campaign: one run per device reached, its items queued; the devices that
    could not be planned, each with why."""
    measure = request.measure
    devices = _devices(measure)
    unplanned: dict[str, str] = {}
    with Store.open(measure.db or default_db_path()) as store:
        refuse_planned(store, request.campaign)
        models = prepare_chosen(measure.models, store, measure.models_dir)
        plan_devices(store, _campaign_plan(measure, request.campaign, models), devices, unplanned)
    return unplanned


def run_campaign(request: MeasureRequest) -> CampaignOutcome:
    """One run per device, grouped as a campaign, the devices planned and measured at once
    (one worker thread each, each device's measurements in turn; a device starts measuring
    as soon as it is planned) through the lab's queue in the run's own store."""
    devices = _devices(request)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    campaign = f"{request.label or 'run'}-{stamp}"
    location = request.db or default_db_path()
    with Store.open(location) as store:
        refuse_planned(store, campaign)
        models = prepare_chosen(request.models, store, request.models_dir)
    plan = _campaign_plan(request, campaign, models)
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
        return work_hint(campaign, planned, request.inventory, request.db)

    worker = Worker(
        location,
        devices,
        campaign=campaign,
        models_dir=request.models_dir,
        quiet=request.quiet,
        prepare=prepare,
        cooldown_of=cooldown_from_json,
    )
    try:
        outcomes = worker.run()
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT, hint()) from None
    except Interrupted as exc:
        raise Interrupted(exc.signum, hint()) from None
    if not runs:
        raise UserError(f"no device could be reached ({'; '.join(unplanned.values())})")
    return CampaignOutcome(
        campaign,
        tuple(device.name for device in devices),
        runs,
        unplanned,
        tuple(o for o in outcomes if o.planned and o.device in runs),
        hint(),
    )


def work_hint(
    campaign: str, devices: Sequence[str], inventory: Path | None, db: Location | None
) -> str:
    """``resume with `mnbench lab work --campaign ...``` for the devices named."""
    again = ["mnbench", "lab", "work", "--campaign", campaign, "--devices", *devices]
    if inventory is not None:
        again += ["--inventory", str(inventory)]
    if db is not None:
        again += ["--db", str(db)]
    return f"resume with `{shlex.join(again)}`"


def work_campaign(request: LabWorkRequest) -> list[DeviceOutcome]:
    """Measure the devices' items (of one campaign, or of any) until none is left; one
    outcome per device."""
    devices = resolve_targets(request.devices, request.inventory)
    location = request.db or default_db_path()
    if request.campaign is not None:  # checked before any device is reached
        with Store.open(location, create=False) as store:
            if not Lab(store).campaign_exists(request.campaign):
                raise UserError(
                    f"no campaign {request.campaign!r} in {store.path}; `mnbench lab status` "
                    "lists them"
                )
    worker = Worker(
        location,
        devices,
        campaign=request.campaign,
        lease_s=request.lease_s,
        reconnect_s=request.reconnect_s,
        models_dir=request.stored_models_dir,
        cooldown_of=cooldown_from_json,
    )
    return worker.run()


def campaign_status(db: Location | None, campaign: str | None = None) -> LabStatus:
    """The store's campaigns (or the one named), its devices' holders and items left."""
    with Store.open(db or default_db_path(), create=False) as store:
        if "work_items" not in store.database.tables():
            return LabStatus(str(store.path), started=False)
        lab = Lab(store)
        if campaign is not None and not lab.campaign_exists(campaign):
            raise UserError(
                f"no campaign {campaign!r} in {store.path}; `mnbench lab status` lists them"
            )
        campaigns = [campaign] if campaign else lab.campaigns()
        return LabStatus(
            str(store.path),
            started=True,
            devices=tuple(lab.status(campaign)),
            campaigns=tuple(campaigns),
            runs={name: lab.runs_of(name) for name in campaigns},
        )
