"""A lab worker: claim a device's next work item, measure it, commit it, until none is left.

The queue is ``results.queue``; the measurement is the measurement session's own
(``harness.measure.session``: the same backend, push and timeout as ``mnbench run``),
given the run's stored settings and models, so a campaign measured by workers gives the
rows ``mnbench run`` would have. One thread per device (a device measures one thing at a
time; devices are independent), each with its own connections. While an item is measured
a heartbeat thread keeps the claim. Every item is measured between the device guards
``mnbench run`` records (``harness.measure.guard``), after the cool-down its run stored.
Progress is one line per device with its ETA (``harness.measure.progress``: redrawn in
place on a terminal, one line per event in a log).

A worker may also plan its devices (``prepare``, ``harness.measure.campaign``): each device
is probed and planned in its own thread and starts measuring as soon as it is planned, in
the session that probed it, so a slow device's set-up waits for no other's.

Failures: a device that drops stops that device's worker with one line, the others go on;
a lost database connection is retried for ``reconnect_s`` (what was committed is kept, and
a measurement not yet committed is committed after the reconnect while the claim is still
ours) before the worker stops with one line.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from devices.device import DeviceConfig
from devices.errors import DeviceError
from devices.transport import TransportError
from harness.measure.plan import ModelEntry, PlanItem, RunnerSettings
from harness.measure.progress import DeviceLines
from harness.measure.session import MeasurementSession
from harness.measure.sweep import models_from_config
from mobilenet.errors import Interrupted, UserError
from results.backend import StoreUnavailable
from results.errors import ResultsError
from results.guards import CooldownPolicy
from results.queue import BUSY, Lab, WorkItem, parse_config_key
from results.store import Store

POLL_S = 1.0
"""How often a worker looks again at a device another worker holds."""


@dataclass
class DeviceOutcome:
    """What one device's worker did."""

    device: str
    measured: int = 0
    failed: int = 0
    lost_claims: int = 0
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    planned: bool = True
    """False when ``prepare`` could not plan the device (it measured nothing)."""


@dataclass(frozen=True)
class _RunContext:
    settings: RunnerSettings
    timeout_s: float | None
    models: dict[str, ModelEntry]
    facts: Mapping[str, Any]
    threads: tuple[int, ...]
    trials: int
    cpus: tuple[int, ...] | None
    cooldown: CooldownPolicy | None


CooldownReader = Callable[[int, object], CooldownPolicy | None]
"""A run's stored cool-down setting, checked (``results.config.cooldown_from_json``)."""

Prepare = Callable[[DeviceConfig, Store], MeasurementSession | None]
"""Plans a device in its worker's thread: the open session that probed it, or None when it
could not be planned (it said why; the device is left out)."""


def _no_cooldown(run_id: int, value: object) -> CooldownPolicy | None:
    if value is not None:
        raise UserError(
            f"run {run_id} stores a cool-down this worker cannot read; measure it with "
            "`mnbench lab work`"
        )
    return None


@dataclass
class Worker:
    """Works the queue of ``location`` for some devices."""

    location: Path | str
    devices: Sequence[DeviceConfig]
    campaign: str | None = None
    lease_s: float = 60.0
    reconnect_s: float = 60.0
    models_dir: Path | None = None
    holder: str = "mnbench lab work"
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    stop: threading.Event = field(default_factory=threading.Event)
    on_claim: Callable[[WorkItem], None] | None = None
    """Called once an item is claimed, before it is measured (tests)."""
    cooldown_of: CooldownReader = _no_cooldown
    prepare: Prepare | None = None
    quiet: bool = False
    """No per-item progress (the devices' stops and summaries are still said)."""
    live: bool | None = None
    """Redraw the device lines in place (None: when the stream is a terminal)."""
    lines: DeviceLines | None = None

    def say(self, line: str) -> None:
        if self.lines is None:
            self.lines = DeviceLines(self.stream, [d.name for d in self.devices], live=False)
        self.lines.say(line)

    def run(self) -> list[DeviceOutcome]:
        """Work every device until its items are done; one outcome per device."""
        outcomes = [DeviceOutcome(device.name) for device in self.devices]
        live = False if self.quiet else self.live
        self.lines = DeviceLines(self.stream, [d.name for d in self.devices], live=live)
        if len(self.devices) == 1:
            self._work_device(self.devices[0], outcomes[0])
            return outcomes
        threads = [
            threading.Thread(
                target=self._work_device, args=(device, outcome), name=f"lab-{device.name}"
            )
            for device, outcome in zip(self.devices, outcomes, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(timeout=0.2)
                self.lines.tick()
        except (KeyboardInterrupt, Interrupted):
            self.stop.set()
            for thread in threads:
                thread.join()
            raise
        return outcomes

    # -- one device ------------------------------------------------------------------------

    def _work_device(self, device: DeviceConfig, outcome: DeviceOutcome) -> None:
        try:
            self._loop(device, outcome)
        except (UserError, ResultsError) as exc:
            outcome.error = exc.message
            self.say(f"{device.name}: stopped: {exc.message}")
        except TransportError as exc:
            outcome.error = f"lost {device.name} ({exc.message})"
            self.say(
                f"{device.name}: stopped: lost the device ({exc.message}); its item is back "
                "in the queue for another worker"
            )
        except DeviceError as exc:
            outcome.error = exc.message
            self.say(f"{device.name}: stopped: {exc.message}")

    def _open(self) -> Store:
        deadline = time.monotonic() + self.reconnect_s
        while True:
            try:
                return Store.open(self.location)
            except StoreUnavailable:
                if time.monotonic() >= deadline or self.stop.is_set():
                    raise
                time.sleep(min(2.0, self.reconnect_s / 10 or 0.1))

    def _loop(self, device: DeviceConfig, outcome: DeviceOutcome) -> None:
        store = self._open()
        lab = Lab(store, self.holder, self.lease_s)
        session: MeasurementSession | None = None
        contexts: dict[int, _RunContext] = {}
        pending: tuple[WorkItem, str, str, str | None, dict[str, Any] | None] | None = None
        try:
            if self.prepare is not None:
                session = self.prepare(device, store)
                if session is None:
                    outcome.planned = False
                    return
            assert self.lines is not None
            self.lines.start(device.name)
            outcome.started = time.monotonic()
            while not self.stop.is_set():
                try:
                    if pending is not None:  # a measurement the connection dropped under
                        self._commit(lab, outcome, *pending)
                        pending = None
                    claim = lab.claim(device.name, self.campaign)
                    if claim is None:
                        break
                    if claim == BUSY:
                        time.sleep(POLL_S)
                        continue
                    assert isinstance(claim, WorkItem)
                    try:
                        context = contexts.get(claim.run_id)
                        if context is None:
                            context = self._context(store, claim.run_id)
                            contexts[claim.run_id] = context
                        wanted = (context.settings, context.timeout_s)
                        if session is not None and wanted != (
                            session.settings,
                            session.requested_timeout_s,
                        ):
                            session.close()
                            session = None
                        if session is None:
                            session = MeasurementSession(
                                device, context.settings, store=store, timeout_s=context.timeout_s
                            )
                        session.use_facts(context.facts)
                        if self.on_claim is not None:
                            self.on_claim(claim)
                        with self._heartbeat(lab, claim):
                            plan_item = self._plan_item(claim, context)
                            status, reason, doc = self._measure(session, plan_item, context)
                    except BaseException:
                        with contextlib.suppress(Exception):  # back in the queue at once
                            lab.abandon(claim)
                            lab.release(device.name)
                        raise
                    what = (
                        f"{plan_item.model.name} threads={plan_item.threads} "
                        f"trial {plan_item.trial}"
                    )
                    pending = (claim, what, status, reason, doc)
                    self._commit(lab, outcome, *pending)
                    pending = None
                except StoreUnavailable as exc:
                    self.say(f"{device.name}: {exc.message}; reconnecting")
                    with contextlib.suppress(Exception):
                        store.close()
                    token = lab.token  # the claims this worker holds stay its own
                    store = self._open()
                    lab = Lab(store, self.holder, self.lease_s)
                    lab.token = token
                    contexts.clear()
                    if session is not None:
                        session.attach(store)
                        session.store = store
            with contextlib.suppress(Exception):
                lab.release(device.name)
            left = "" if not self.stop.is_set() else " (stopped)"
            assert self.lines is not None
            self.lines.finish(
                device.name,
                f"{outcome.measured} measured, {outcome.failed} failed, "
                f"{outcome.lost_claims} reclaimed by others{left}",
            )
        finally:
            if session is not None:
                session.close()
            with contextlib.suppress(Exception):
                store.close()

    def _commit(
        self,
        lab: Lab,
        outcome: DeviceOutcome,
        item: WorkItem,
        what: str,
        status: str,
        reason: str | None,
        doc: dict[str, Any] | None,
    ) -> None:
        committed = lab.complete(item, "ok" if status == "ok" else "failed", reason, doc)
        if committed is None:
            outcome.lost_claims += 1
            self.say(f"{item.device}: item {item.id} was reclaimed by another worker; dropped")
            return
        outcome.measured += 1
        if status != "ok":
            outcome.failed += 1
        done, total = lab.progress(item.device, self.campaign)
        result = "ok" if status == "ok" else f"failed: {reason}"
        if not self.quiet and self.lines is not None:
            self.lines.item(item.device, done, total, f"{what} (run {item.run_id}): {result}")

    @staticmethod
    def _measure(
        session: MeasurementSession, item: PlanItem, context: _RunContext
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        """The item measured between the session's device guards, after the run's stored
        cool-down, as ``mnbench run`` measures a trial (``harness.measure.sweep.measure_trials``):
        the guard readings stored beside the agent's document."""
        from harness.measure.sweep import measure_trials

        if session.guard is not None:
            session.guard.cooldown = context.cooldown
        (trial,) = measure_trials(session, [item])
        return trial.result.status, trial.result.reason, trial.stored_document()

    def _context(self, store: Store, run_id: int) -> _RunContext:
        """The run's stored plan, checked as ``run --resume`` checks it (a shared database
        is read like the command line: it never names a command to run)."""
        from harness.measure.stored import check_stored_config

        record = store.get_run(run_id)
        config = record.config
        stored = check_stored_config(run_id, config, record.device)
        models = models_from_config(config, store, self.models_dir)
        return _RunContext(
            RunnerSettings(**stored.settings),
            stored.timeout_s,
            {model.sha256: model for model in models},
            record.device_facts,
            stored.threads,
            stored.trials,
            stored.cpus,
            self.cooldown_of(run_id, config.get("cooldown")),
        )

    @staticmethod
    def _plan_item(item: WorkItem, context: _RunContext) -> PlanItem:
        """The item as the sweep's plan item, if the run's stored plan holds it."""
        model = context.models.get(item.model_sha256)
        config = parse_config_key(item.config_key)
        threads, cpus = config.get("threads"), config.get("cpus")
        pinned = tuple(cpus) if isinstance(cpus, list) and cpus else None
        if (
            model is None
            or threads not in context.threads
            or pinned != context.cpus
            or not 1 <= item.trial <= context.trials
        ):
            raise UserError(
                f"work item {item.id} is not part of run {item.run_id}'s stored plan (a damaged "
                "or crafted database); plan the campaign again"
            )
        assert isinstance(threads, int)
        return PlanItem(model, threads, item.trial, pinned)

    @contextlib.contextmanager
    def _heartbeat(self, lab: Lab, item: WorkItem) -> Iterator[None]:
        """Beat every third of the lease from a connection of its own while the block runs."""
        done = threading.Event()
        interval_s = max(0.2, self.lease_s / 3)

        def beat() -> None:
            store: Store | None = None
            try:
                store = Store.open(self.location)
                own = Lab(store, self.holder, self.lease_s)
                own.token = lab.token
                while not done.wait(interval_s):
                    with contextlib.suppress(StoreUnavailable):
                        if not own.heartbeat(item):
                            return
            except (UserError, ResultsError):
                return
            finally:
                if store is not None:
                    with contextlib.suppress(Exception):
                        store.close()

        thread = threading.Thread(target=beat, name=f"heartbeat-{item.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=30)
