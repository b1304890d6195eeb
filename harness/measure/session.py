"""One measurement session: a device, its transport, its facts and the cores and threads
chosen, running plans into the store.

``run``, ``layers``, ``regress`` and ``predict`` measure the same way -- open the transport,
probe the facts, pick the cores, pick the threads, write the configuration, create the run,
plan, execute, close -- so the way is written once, here, as a context manager (asv's thin
commands over library calls; pyperf's runner owning its workers)::

    with MeasurementSession(device, settings, store=store) as session:
        selection = session.select(cpus_spec, threads)        # probes the facts first
        run_id = session.create_run(models, selection, trials, label=..., holder=...)
        outcome = session.run(run_id, make_plan(models, selection.threads, trials,
                                                selection.cpus))

Every sweep of the session samples the device around each fresh-process trial (or process
pair) and applies the ``--cooldown`` policy given to the session: one ``TrialGuard``
(``harness.measure.guard``) per session, so every verb that measures through a session
records the same guard readings and waits, judged by ``results.guards``; the policy is
stored in each run's configuration (``cooldown``) for ``run --resume``.

Closing removes what was pushed to the device (or, with ``keep_workdir``, says where it is)
and closes the transport. The device's backend (the Python agent or onnxruntime_perf_test)
is chosen once, by the session's sweeps (``harness.measure.backends``). A ``regress`` side
measured with another interpreter is a second sweep of the same session (``side``), sharing
the pushed files.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devices.device import DeviceConfig, open_transport
from devices.facts import probe_device
from devices.transport import ClosingContext
from harness.measure.guard import TrialGuard
from harness.measure.plan import ModelEntry, PlanItem, RunnerSettings
from harness.measure.sweep import (
    ProgressFn,
    Sweep,
    SweepOutcome,
    default_cpu_count,
    lease_stale_after_s,
    measurement_timeout_s,
    run_plan,
    sweep_config,
)
from mobilenet import __version__
from results.guards import CooldownPolicy, cooldown_to_config
from results.store import Store


@dataclass(frozen=True)
class Selection:
    """The cores a run is pinned to (None: not pinned) and its intra-op thread counts."""

    cpus: list[int] | None
    threads: list[int]


def select_cores(
    device: DeviceConfig,
    facts: Mapping[str, Any],
    cpus_spec: str | None,
    threads: Sequence[int] | None = None,
) -> Selection:
    """Cores from a ``cpus`` spec read on the device's facts; threads as given, else one
    per selected core, else all the device's cores."""
    cpus = device.resolve_cores(cpus_spec, facts) if cpus_spec else None
    chosen = list(threads) if threads else [len(cpus) if cpus else default_cpu_count(facts)]
    return Selection(cpus, chosen)


class MeasurementSession(ClosingContext):
    """A device's transport opened for measuring, and the sweeps that measure through it."""

    def __init__(
        self,
        device: DeviceConfig,
        settings: RunnerSettings,
        *,
        store: Store | None = None,
        timeout_s: float | None = None,
        keep_workdir: bool = False,
        cooldown: CooldownPolicy | None = None,
    ) -> None:
        self.device = device
        self.cooldown = cooldown
        self.settings = settings
        self.requested_timeout_s = timeout_s
        """As given (stored in the run's configuration; None means the default)."""
        self.timeout_s = measurement_timeout_s(settings, timeout_s)
        """The runner's kill timeout in force."""
        self.keep_workdir = keep_workdir
        self._store = store
        self.facts: dict[str, Any] = {}
        self.resume_command: str | None = None
        self._sweeps: list[Sweep] = []
        self.transport = open_transport(device, keep_workdir=keep_workdir)
        self.guard = TrialGuard(self.transport, device, cooldown=cooldown)
        """Samples the device around every trial of every sweep, waits as ``cooldown`` says."""

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the measurement session has no store yet (attach one)")
        return self._store

    def attach(self, store: Store) -> None:
        """The store the session's runs go to (when it is opened after the transport)."""
        self._store = store

    def use_python(self, python: str | None) -> None:
        """Measure with another interpreter on the device (before anything is measured)."""
        if self._sweeps:
            raise RuntimeError("the interpreter is chosen before the first sweep")
        self.device = replace(self.device, python=python)

    @property
    def sweep(self) -> Sweep:
        """The session's sweep on its device (made on first use)."""
        if not self._sweeps:
            self._add_sweep(self.device)
        return self._sweeps[0]

    def side(self, python: str | None) -> Sweep:
        """Another sweep on the same device with another interpreter, sharing the files the
        first one pushes (the two sides of ``regress``)."""
        first = self.sweep
        other = self._add_sweep(replace(self.device, python=python))
        other.share_files(first)
        return other

    def _add_sweep(self, device: DeviceConfig) -> Sweep:
        sweep = Sweep(device, self.store, self.settings, self.requested_timeout_s, self.transport)
        sweep.facts = self.facts
        sweep.resume_command = self.resume_command
        sweep.guard = self.guard
        self._sweeps.append(sweep)
        return sweep

    def use_settings(self, settings: RunnerSettings) -> None:
        """Measure with other runner settings from now on (runs created after this record
        them), on the same transport and facts: no second device probe."""
        self.settings = settings
        self.timeout_s = measurement_timeout_s(settings, self.requested_timeout_s)
        for sweep in self._sweeps:
            sweep.settings = settings
            sweep.timeout_s = self.timeout_s

    def use_facts(self, facts: Mapping[str, Any]) -> None:
        """Measure with these facts (a resumed run's stored ones) instead of probing."""
        self.facts = dict(facts)
        for sweep in self._sweeps:
            sweep.facts = self.facts

    def probe(self) -> dict[str, Any]:
        """Read the device's facts through the transport (once per session)."""
        self.use_facts(probe_device(self.device, self.transport))
        return self.facts

    def select(self, cpus_spec: str | None, threads: Sequence[int] | None = None) -> Selection:
        """Probe the facts (unless known), then pick the cores and the threads."""
        if not self.facts:
            self.probe()
        return select_cores(self.device, self.facts, cpus_spec, threads)

    def set_resume_command(self, command: str) -> None:
        """What to type to finish the session's runs after they stopped."""
        self.resume_command = command
        for sweep in self._sweeps:
            sweep.resume_command = command

    def measure_limits(self, selection: Selection) -> dict[str, Any]:
        """The device's peak GFLOP/s and copy bandwidth on the selected cores and threads
        (an error document from a backend that cannot measure them)."""
        return self.sweep.backend.measure_limits(selection.threads[0], selection.cpus)

    def create_run(
        self,
        models: Sequence[ModelEntry],
        selection: Selection,
        trials: int,
        *,
        device_arg: str,
        models_dir: Path,
        label: str | None,
        holder: str | None,
        extra_config: Mapping[str, object] | None = None,
    ) -> int:
        """Write the run's configuration (all a ``--resume`` needs) and create the run,
        leased to ``holder`` from the start."""
        config = sweep_config(
            models,
            selection.threads,
            trials,
            selection.cpus,
            self.settings,
            device_arg,
            models_dir,
            self.requested_timeout_s,
        )
        config["cooldown"] = cooldown_to_config(self.cooldown)
        config.update(extra_config or {})
        return self.store.create_run(
            device=self.device.name,
            device_kind=self.device.kind,
            device_facts=self.facts,
            config=config,
            harness_version=__version__,
            runtime_version=None,
            label=label,
            lease_holder=holder,
            lease_stale_after_s=lease_stale_after_s(self.timeout_s, self.settings.batch),
        )

    def run(
        self, run_id: int, plan: Sequence[PlanItem], progress: ProgressFn | None = None
    ) -> SweepOutcome:
        """Measure every planned item the run does not hold yet, holding its lease."""
        return run_plan(self.sweep, run_id, plan, progress)

    def close(self) -> None:
        """Remove what the sweeps pushed and close the transport; with ``keep_workdir``,
        say where the kept files are instead."""
        kept = next((s.session_dir for s in self._sweeps if s.session_dir), None)
        for sweep in self._sweeps:
            sweep.keep_files = self.keep_workdir
            sweep.remove_files()
        self.transport.close()
        if self.keep_workdir and kept:
            name = self.transport.name
            where = kept if name == "local" else f"{name}:{kept}"
            print(f"kept the work directory {where}", file=sys.stderr)
