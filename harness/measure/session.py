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

The session is the one owner of a measuring verb's state: the device and its facts (the
limits too, ``record_limits``), the runner settings and kill timeout, the files pushed to
the device, the resume hint, and the measuring method (the Python agent or
onnxruntime_perf_test, chosen once: ``harness.measure.methods``). The plan runs through it
(``harness.measure.sweep.run_plan``). The session samples the device around each
fresh-process trial (or process pair) and applies the ``--cooldown`` policy given to it:
one ``TrialGuard`` (``harness.measure.guard``) per session, so every verb that measures
through a session records the same guard readings and waits, judged by
``results.guards``; the policy is stored in each run's configuration
(``results.config.RunConfig``) for ``run --resume``.

Closing removes what was pushed to the device (or, with ``keep_workdir``, says where it is)
and closes the transport. A ``regress`` side measured with another interpreter is another
measuring method of the same session (``side``), sharing the pushed files.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devices.device import DeviceConfig, open_transport
from devices.facts import probe_device
from devices.transport import ClosingContext, Transport, TransportError
from harness.measure.guard import TrialGuard
from harness.measure.methods import DeviceResult, MeasuringMethod, method_for
from harness.measure.plan import ModelEntry, PlanItem, RunnerSettings
from harness.measure.sweep import (
    ProgressFn,
    SweepOutcome,
    default_cpu_count,
    lease_stale_after_s,
    measurement_timeout_s,
    run_plan,
)
from mobilenet import __version__
from results.config import RunConfig, run_config
from results.guards import CooldownPolicy
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
    """A device's transport opened for measuring: everything one measuring verb holds --
    the device, its facts, the runner settings, the guard, the files pushed to the device
    and the measuring method -- in one object that runs plans into the store."""

    def __init__(
        self,
        device: DeviceConfig,
        settings: RunnerSettings,
        *,
        store: Store | None = None,
        timeout_s: float | None = None,
        keep_workdir: bool = False,
        cooldown: CooldownPolicy | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.device = device
        self.cooldown = cooldown
        self.settings = settings
        self.requested_timeout_s = timeout_s
        """As given (stored in the run's configuration; None means the default)."""
        self.timeout_s = measurement_timeout_s(settings, timeout_s)
        """The runner's kill timeout in force."""
        self.keep_workdir = keep_workdir
        """Leave what the session pushed on the device (``--keep-workdir``)."""
        self._store = store
        self.facts: dict[str, Any] = {}
        self.resume_command: str | None = None
        """Overrides ``resume_hint`` (``regress`` resumes differently)."""
        self.trial_target_ci: float | None = None
        """The cross-trial CI target of an adaptive run, stored with each trial's document."""
        self.transport = transport or open_transport(device, keep_workdir=keep_workdir)
        self.guard: TrialGuard | None = TrialGuard(self.transport, device, cooldown=cooldown)
        """Samples the device around every trial, waits as ``cooldown`` says."""
        self._pushed: dict[str, str] = {}  # model sha256 or program name -> path on the device
        self._dir: str | None = None
        self._method: MeasuringMethod | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the measurement session has no store yet (attach one)")
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        self._store = store

    def attach(self, store: Store) -> None:
        """The store the session's runs go to (when it is opened after the transport)."""
        self._store = store

    # How it measures ---------------------------------------------------------------------

    @property
    def method(self) -> MeasuringMethod:
        """How this device measures (the Python agent, or onnxruntime_perf_test on a phone
        without Python): chosen once, on first use."""
        if self._method is None:
            self._method = method_for(self, self.device)
        return self._method

    def use_python(self, python: str | None) -> None:
        """Measure with another interpreter on the device (before anything is measured)."""
        if self._method is not None:
            raise RuntimeError("the interpreter is chosen before the first measurement")
        self.device = replace(self.device, python=python)

    def side(self, python: str | None) -> MeasuringMethod:
        """The device's method with another interpreter, measuring through this session and
        its pushed files (the candidate side of ``regress``)."""
        return method_for(self, replace(self.device, python=python))

    def use_settings(self, settings: RunnerSettings) -> None:
        """Measure with other runner settings from now on (runs created after this record
        them), on the same transport and facts: no second device probe."""
        self.settings = settings
        self.timeout_s = measurement_timeout_s(settings, self.requested_timeout_s)

    def use_facts(self, facts: Mapping[str, Any]) -> None:
        """Measure with these facts (a resumed run's stored ones) instead of probing."""
        self.facts = dict(facts)

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

    def resume_hint(self, run_id: int) -> str:
        """What to type to finish the run after it stopped."""
        return self.resume_command or f"resume with `mnbench run --resume {run_id}`"

    def measure_limits(self, selection: Selection) -> dict[str, Any]:
        """The device's peak GFLOP/s and copy bandwidth on the selected cores and threads
        (an error document from a method that cannot measure them)."""
        return self.method.measure_limits(selection.threads[0], selection.cpus)

    def record_limits(self, threads: int, cpus: Sequence[int] | None) -> dict[str, Any]:
        """Measure the device's limits on these threads and cores and keep them in the
        session's facts (``limits``), stored with the runs created after."""
        limits = self.method.measure_limits(threads, cpus)
        self.facts["limits"] = limits
        return limits

    def measure(self, item: PlanItem, method: MeasuringMethod | None = None) -> DeviceResult:
        """One measurement in a fresh process on the device (by ``method``: a side's)."""
        return (method or self.method).measure(item)

    def measure_batch(
        self, items: Sequence[PlanItem], method: MeasuringMethod | None = None
    ) -> list[DeviceResult]:
        """Each item's result, measured in one process where the method can."""
        return (method or self.method).measure_batch(items)

    # Runs ----------------------------------------------------------------------------------

    def run_config(
        self,
        models: Sequence[ModelEntry],
        selection: Selection,
        trials: int,
        *,
        device_arg: str,
        models_dir: Path,
    ) -> RunConfig:
        """A new run's configuration: the session's settings, timeout and cool-down."""
        return run_config(
            models,
            selection.threads,
            trials,
            selection.cpus,
            self.settings,
            device_arg,
            models_dir,
            self.requested_timeout_s,
            self.cooldown,
        )

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
        """Write the run's configuration (all a ``--resume`` needs, with the verb's own
        keys) and create the run, leased to ``holder`` from the start."""
        config = self.run_config(
            models, selection, trials, device_arg=device_arg, models_dir=models_dir
        )
        return self.create_configured_run(
            config.with_extras(extra_config), label=label, holder=holder
        )

    def create_configured_run(
        self, config: RunConfig, *, label: str | None, holder: str | None
    ) -> int:
        """Create a run of ``config`` on the session's device and facts."""
        return self.store.create_run(
            device=self.device.name,
            device_kind=self.device.kind,
            device_facts=self.facts,
            config=config.to_json(),
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
        return run_plan(self, run_id, plan, progress)

    # Files on the device -------------------------------------------------------------------

    @property
    def session_dir(self) -> str | None:
        """The directory on the device holding what this session pushed (None before a push)."""
        return self._dir

    def remote_path(self, name: str) -> str:
        """Where ``name`` goes on the device: a directory of this session's own inside the
        device's work directory, so sessions sharing a board never remove each other's files."""
        if self._dir is None:
            workdir = self.transport.workdir.rstrip("/")
            self._dir = f"{workdir}/session-{os.getpid()}-{secrets.token_hex(4)}"
        return f"{self._dir}/{name}"

    def push_file(self, local: Path, name: str) -> str:
        """Push a program (or a library beside it) to ``name`` in the session's directory,
        once; its path on the device."""
        key = f"file:{name}"
        if key not in self._pushed:
            remote = self.remote_path(name)
            self.transport.push(local, remote)
            self._pushed[key] = remote
        return self._pushed[key]

    def pushed(self, name: str) -> str | None:
        """Where ``push_file`` put ``name`` (None before it did)."""
        return self._pushed.get(f"file:{name}")

    def push_model(self, model: ModelEntry) -> str:
        if model.sha256 not in self._pushed:
            remote = self.remote_path(f"models/{model.sha256[:12]}-{model.path.name}")
            self.transport.push(model.path, remote)
            self._pushed[model.sha256] = remote
        return self._pushed[model.sha256]

    def remove_files(self) -> None:
        """Remove the runner and model copies the session pushed (best effort: a lost device
        keeps them), unless ``keep_workdir``."""
        directory, self._dir = self._dir, None
        if directory is None or self.keep_workdir:
            return
        self._pushed.clear()
        with contextlib.suppress(TransportError, OSError):
            self.transport.run(["rm", "-rf", "--", directory], timeout_s=60, check=False)

    def close(self) -> None:
        """Remove what the session pushed and close the transport; with ``keep_workdir``,
        say where the kept files are instead."""
        kept = self._dir
        self.remove_files()
        self.transport.close()
        if self.keep_workdir and kept:
            name = self.transport.name
            where = kept if name == "local" else f"{name}:{kept}"
            print(f"kept the work directory {where}", file=sys.stderr)
