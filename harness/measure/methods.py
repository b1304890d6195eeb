"""How a measurement runs on a device: the ``MeasuringMethod`` seam, chosen once per device.

onnxruntime perf_test has one ``TestSession`` per execution provider; here a device gets
one measuring method when its session first measures (``method_for``), and every verb
measures through it without asking what kind of device it is:

- ``AgentMethod``: the device-side agent (``devices/agent``) pushed to the device as a
  zipapp, one fresh process per measurement (or per batch of them, ``RunnerSettings.batch``);
  it also runs the limits probe
  (``devices/agent/limits.py``, the roofline's ceilings) and starts the long-lived agents
  of ``regress``'s process pairs.
- ``PerfTestMethod``: a phone without Python runs an NDK build of
  ``onnxruntime_perf_test``; its console summary becomes the same runner document
  (``harness/measure/perftest.py``). It has no limits probe and serves no bursts.

Every program of the agent is started by one function, ``AgentMethod.command`` (push once,
then the interpreter, the pushed program and its arguments), and every answer is read by
one function, ``documents`` (the lines of stdout that are JSON documents of the
expected schema): the runner's measurement and the limits probe go the same way. What
crosses back is a ``DeviceResult`` per measurement: the status, the reason of a failure and
the agent's document, as the agent printed it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from devices.agent import limits
from devices.agent.bundle import AGENT, LIMITS
from devices.agent.record import SCHEMA as AGENT_SCHEMA
from devices.transport import CommandFailed, CommandTimeout, Completed, TransportError
from mobilenet.errors import UserError

if TYPE_CHECKING:
    from devices.device import DeviceConfig
    from devices.transport import Transport
    from harness.measure.paired import SideCommand
    from harness.measure.plan import ModelEntry, PlanItem, RunnerSettings

AgentProgram = Literal["runner", "limits"]
AGENT_PROGRAMS: Mapping[AgentProgram, tuple[str, str]] = {
    "runner": (AGENT, "agent.pyz"),
    "limits": (LIMITS, "limits.pyz"),
}
"""The device-side programs of the agent: the zipapp entry point and its name on the device."""
RUNNER_SCHEMA = AGENT_SCHEMA
LIMITS_SCHEMA = limits.SCHEMA
LIMITS_TIMEOUT_S = 120.0
PERF_TEST_RUNS = 100
"""Timed inferences per onnxruntime_perf_test process when the runs are not fixed."""


class DeviceResult(NamedTuple):
    """One measurement as the device's method returns it. A named tuple, so it unpacks as
    ``status, reason, document``; nothing is added to the document after the agent wrote
    it (the guard readings travel beside it, ``harness.measure.sweep.Trial``)."""

    status: Literal["ok", "failed"]
    reason: str | None
    """Why it failed (None when it worked)."""
    document: dict[str, Any] | None
    """The runner's document, when there is one (a failed run may have printed one)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def failed(reason: str, document: dict[str, Any] | None = None) -> DeviceResult:
    return DeviceResult("failed", reason, document)


class DeviceFiles(Protocol):
    """What a measuring method needs of its session: the transport, the settings, the
    facts, and the files pushed to the session's own directory on the device (each once)."""

    transport: Transport
    settings: RunnerSettings
    timeout_s: float
    facts: dict[str, Any]

    def remote_path(self, name: str) -> str: ...

    def push_file(self, local: Path, name: str) -> str: ...

    def pushed(self, name: str) -> str | None: ...

    def push_model(self, model: ModelEntry) -> str: ...


class MeasuringMethod(Protocol):
    """Measures plan items on one device, and the device's limits, in the method's way."""

    name: str

    @property
    def serves_bursts(self) -> bool:
        """Whether it can run ``regress``'s process pairs (a long-lived agent per side)."""
        ...

    def measure(self, item: PlanItem) -> DeviceResult:
        """One measurement in a fresh process on the device."""
        ...

    def measure_batch(self, items: Sequence[PlanItem]) -> list[DeviceResult]:
        """Several measurements (same threads, cores and shapes) in one process where the
        method can (``RunnerSettings.batch``), else one process each; one per item."""
        ...

    def measure_limits(self, threads: int, cpus: Sequence[int] | None) -> dict[str, Any]:
        """The ``mnbench.limits/1`` document of the device (an error document when the
        method cannot measure them)."""
        ...

    def burst_command(self, item: PlanItem) -> SideCommand:
        """How to start one side's agent for ``item`` (only when ``serves_bursts``)."""
        ...


def method_for(files: DeviceFiles, device: DeviceConfig) -> MeasuringMethod:
    """The device's method: onnxruntime_perf_test on a device without Python that has a
    perf_test build configured, else the Python agent."""
    if device.perf_test and not device.has_python:
        return PerfTestMethod(files, device)
    return AgentMethod(files, device)


def describe_crash(rc: int, program: str = "runner") -> str:
    import signal

    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        hint = " (killed: out of memory?)" if -rc == signal.SIGKILL else ""
        return f"{program} crashed with {name}{hint}"
    if rc in (137, 139, 134):  # a remote shell reports 128 + signal
        return describe_crash(128 - rc, program)
    return f"{program} exited {rc}"


def last_document(stdout: str, schema: str) -> dict[str, Any] | None:
    """The program's JSON document: the last line of stdout that parses as an object with
    this ``schema`` (the agent's programs print it compact, on one line)."""
    found = documents(stdout, schema)
    return found[-1] if found else None


def documents(stdout: str, schema: str) -> list[dict[str, Any]]:
    """Every line of stdout that is a JSON document of this ``schema``, in order (a batch
    prints one per model)."""
    found = []
    for raw in stdout.splitlines():
        line = raw.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(doc, dict) and doc.get("schema") == schema:
                found.append(doc)
    return found


def _tail(*texts: str) -> str:
    for text in texts:
        lines = text.strip().splitlines()
        if lines:
            return lines[-1][:200]
    return "no output"


class AgentMethod:
    """The Python agent: the runner per measurement, the limits probe, the pair agents."""

    name = "agent"

    def __init__(self, files: DeviceFiles, device: DeviceConfig) -> None:
        self.files = files
        self.device = device
        """The device as this method runs it (its interpreter: a ``regress`` side's own)."""

    @property
    def serves_bursts(self) -> bool:
        """Pairs need a transport that keeps a process open and can suspend it."""
        from devices.interactive import InteractiveTransport

        return isinstance(self.files.transport, InteractiveTransport)

    def command(
        self, program: AgentProgram, args: Sequence[str], models: Sequence[ModelEntry] = ()
    ) -> list[str]:
        """The argv that starts one of the agent's programs on the device: the program and
        the models are pushed once (in that order), then interpreter, program, models, args."""
        from devices.agent.bundle import zipapp_path
        from harness.measure.runtimes import cache_root

        files = self.files
        entry, name = AGENT_PROGRAMS[program]
        remote = files.pushed(name) or files.push_file(
            zipapp_path(entry, cache_root() / "agent"), name
        )
        model_args = [files.push_model(model) for model in models]
        return [*self.device.python_argv, remote, *model_args, *args]

    def run(
        self, argv: Sequence[str], schema: str, timeout_s: float
    ) -> tuple[Completed, dict[str, Any] | None]:
        """Run one program to its end: what it printed, and its document of ``schema``
        (None without one). ``CommandTimeout`` and other ``TransportError`` go to the caller."""
        env = dict(self.device.env) or None
        try:
            done = self.files.transport.run(argv, timeout_s=timeout_s, env=env, check=False)
        except CommandFailed as exc:  # transports that raise even with check=False
            done = exc.completed
        return done, last_document(done.stdout, schema)

    def measure(self, item: PlanItem) -> DeviceResult:
        return self.measure_batch([item])[0]

    def measure_batch(self, items: Sequence[PlanItem]) -> list[DeviceResult]:
        """The items in one runner process (the agent's batch: one document per model, in
        order); a model whose document is missing failed as the process did."""
        first = items[0]
        settings = self.files.settings
        args = ["--threads", str(first.threads), *settings.argv(), *_pin_and_shapes(first)]
        argv = self.command("runner", args, [item.model for item in items])
        timeout_s = self.files.timeout_s * len(items)
        try:
            done, _doc = self.run(argv, RUNNER_SCHEMA, timeout_s)
        except CommandTimeout:
            return [failed(f"timed out after {timeout_s:g} s")] * len(items)
        found = documents(done.stdout, RUNNER_SCHEMA)
        results: list[DeviceResult] = []
        for index in range(len(items)):
            doc = found[index] if index < len(found) else None
            if doc is None:
                tail = _tail(done.stderr, done.stdout)
                if done.rc != 0:
                    results.append(failed(f"{describe_crash(done.rc)}: {tail}"))
                else:
                    results.append(failed(f"runner printed no result document: {tail}"))
            elif doc.get("status") != "ok":
                results.append(failed(str(doc.get("error") or "runner reported an error"), doc))
            else:
                results.append(DeviceResult("ok", None, doc))
        return results

    def measure_limits(self, threads: int, cpus: Sequence[int] | None) -> dict[str, Any]:
        """Run the limits probe: its JSON document, or an error document."""
        args = ["--threads", str(threads)]
        if cpus:
            args += ["--cpus", ",".join(map(str, cpus))]
        try:
            done, doc = self.run(self.command("limits", args), LIMITS_SCHEMA, LIMITS_TIMEOUT_S)
        except TransportError as exc:
            return limits_error(exc.message)
        if doc is not None:
            if doc.get("status") != "ok":
                print(f"limits: {doc.get('error')}", file=sys.stderr)
            return doc
        tail = _tail(done.stderr)
        print(f"limits: no result ({tail}); the roofline will lack its ceilings", file=sys.stderr)
        return limits_error(tail)

    def burst_command(self, item: PlanItem) -> SideCommand:
        from harness.measure.paired import SideCommand

        args = ["--threads", str(item.threads), "--opt-level", self.files.settings.opt_level]
        argv = self.command("runner", [*args, *_pin_and_shapes(item)], [item.model])
        return SideCommand(tuple(argv), dict(self.device.env) or None)


def _pin_and_shapes(item: PlanItem) -> list[str]:
    """The runner's --cpus and --shape flags of a plan item."""
    args = ["--cpus", ",".join(map(str, item.cpus))] if item.cpus else []
    for shape in item.model.shapes:
        args += ["--shape", shape]
    return args


def limits_error(reason: str) -> dict[str, Any]:
    return {"schema": LIMITS_SCHEMA, "status": "error", "error": reason}


class PerfTestMethod:
    """onnxruntime_perf_test on a phone without Python: pushed with its libraries once."""

    name = "onnxruntime_perf_test"
    serves_bursts = False

    def __init__(self, files: DeviceFiles, device: DeviceConfig) -> None:
        self.files = files
        self.device = device

    def push(self) -> tuple[str, str | None]:
        """Push the perf_test binary (and its libraries) once: (binary path, library dir)."""
        files = self.files
        device = self.device
        name = "bin/onnxruntime_perf_test"
        lib_dir = files.remote_path("lib") if device.perf_test_libs else None
        remote = files.pushed(name)
        if remote is not None:
            return remote, lib_dir
        assert device.perf_test is not None
        binary = Path(device.perf_test).expanduser()
        if not binary.is_file():
            raise UserError(
                f"{binary} (perf_test of {device.name}) does not exist; "
                "fix the device entry's perf_test path"
            )
        if files.facts:
            from devices.android import require_abi

            require_abi(binary, files.facts)
        remote = files.push_file(binary, name)
        files.transport.run(["chmod", "755", remote], timeout_s=60)
        for lib in device.perf_test_libs:
            files.push_file(Path(lib).expanduser(), f"lib/{Path(lib).name}")
        return remote, lib_dir

    def measure(self, item: PlanItem) -> DeviceResult:
        from devices.agent.cpus import cpu_mask
        from harness.measure.perftest import PerfTestOutputError, parse_perf_test, perf_test_argv

        files = self.files
        binary, lib_dir = self.push()
        model = files.push_model(item.model)
        runs = files.settings.fixed or PERF_TEST_RUNS
        argv = perf_test_argv(
            binary,
            model,
            item.threads,
            runs,
            lib_dir,
            cpu_mask(item.cpus) if item.cpus else None,
        )
        try:
            done = files.transport.run(argv, timeout_s=files.timeout_s, check=False)
        except CommandTimeout:
            return failed(f"timed out after {files.timeout_s:g} s")
        if done.rc != 0:
            tail = _tail(done.stderr)
            return failed(f"{describe_crash(done.rc, 'onnxruntime_perf_test')}: {tail}")
        try:
            doc = parse_perf_test(
                done.stdout,
                done.stderr,
                model_path=model,
                model_file_bytes=item.model.path.stat().st_size,
                model_sha256=item.model.sha256,
                threads=item.threads,
                runs=runs,
            )
        except PerfTestOutputError as exc:
            return failed(exc.message)
        doc["host_before"] = files.facts
        return DeviceResult("ok", None, doc)

    def measure_batch(self, items: Sequence[PlanItem]) -> list[DeviceResult]:
        """One onnxruntime_perf_test process per item: it measures one model."""
        return [self.measure(item) for item in items]

    def measure_limits(self, threads: int, cpus: Sequence[int] | None) -> dict[str, Any]:
        return limits_error("no Python on the device")

    def burst_command(self, item: PlanItem) -> SideCommand:
        raise UserError("onnxruntime_perf_test cannot serve bursts; use --design trials")
