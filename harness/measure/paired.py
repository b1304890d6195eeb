"""Process pairs measured side by side: the device-side work of ``mnbench regress``.

One pair = a baseline and a candidate runner process in agent mode (``agent.pyz --serve``)
on the device, started together (which one is started first is random). Each loads its
model once; then, with the other process suspended (SIGSTOP of its process group, so its
onnxruntime threads cannot spin and take the cores), each warms up in turn, and the two
alternate bursts of K inferences, the side of the first burst random. K is sized so a burst
lasts about ``burst_target_s`` (from the warm-up's mean time of both sides, fixed per cell
once chosen). Both processes are ended (``exit``, then killed if needed) before the next
pair. Why suspend rather than ``session.intra_op.allow_spinning=0`` on the idle side: the
session options of each side stay as configured (a session's spinning is fixed when it is
created, and the side measured next is the same process: with spinning off, both sides
measure another configuration than the one asked for, docs/measurement.md), and a stopped
process takes no CPU whatever onnxruntime's spin policy. Leaving the idle side alone
measured as well as suspending it with 75 ms bursts on a quiet machine (its threads stop
spinning soon after its last run), but nothing guarantees that;
benchmarks/regress_idle.py measures all three.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from devices.interactive import InteractiveProcess, InteractiveTransport
from devices.transport import CommandTimeout, TransportError

Side = Literal["A", "B"]
SIDES: tuple[Side, Side] = ("A", "B")


@dataclass(frozen=True)
class PairSettings:
    """How one process pair is measured."""

    bursts_per_side: int = 16
    burst_target_s: float = 0.075
    warmup_max_time_s: float = 1.0
    exchange_timeout_s: float = 120.0
    max_burst_inferences: int = 100000
    probe_inferences: int = 10  # after warm-up, untimed for the verdict: sizes the bursts
    suspend_idle: bool = True  # False only to measure the alternatives (benchmarks/)

    def burst_size(self, mean_inference_s: float) -> int:
        if mean_inference_s <= 0:
            return 1
        wanted = round(self.burst_target_s / mean_inference_s)
        return max(1, min(self.max_burst_inferences, wanted))


@dataclass(frozen=True)
class SideCommand:
    """How to start one side's agent on the device."""

    argv: tuple[str, ...]  # python, runner, model, flags (without --serve)
    env: Mapping[str, str] | None = None


class AgentFailed(Exception):
    """One side's runner could not start or run the model; the cell fails on that side."""

    def __init__(
        self,
        side: Side,
        reason: str,
        document: Mapping[str, Any] | None,
        transport_error: bool = False,
    ) -> None:
        super().__init__(reason)
        self.side = side
        self.reason = reason
        self.document = document
        self.transport_error = transport_error  # the link may be at fault, not the runner


@dataclass(frozen=True)
class BurstRecord:
    position: int
    side: Side
    start_unix: float | None
    samples_ms: tuple[float, ...]


@dataclass
class PairResult:
    """What one process pair measured."""

    started_first: Side
    burst_first: Side
    burst_size: int
    documents: dict[Side, dict[str, Any]]
    probe_mean_ms: dict[Side, float]
    bursts: list[BurstRecord] = field(default_factory=list)

    def samples(self, side: Side) -> list[float]:
        return [v for b in self.bursts if b.side == side for v in b.samples_ms]


class Agent:
    """One runner process in agent mode."""

    def __init__(self, side: Side, process: InteractiveProcess, timeout_s: float) -> None:
        self.side = side
        self.process = process
        self.timeout_s = timeout_s
        self.document: dict[str, Any] = {}

    def wait_ready(self) -> dict[str, Any]:
        line = self._line(None)
        try:
            document = json.loads(line)
        except ValueError:
            raise AgentFailed(self.side, f"runner printed {line[:200]!r}", None) from None
        if not isinstance(document, dict) or document.get("status") != "ok":
            reason = document.get("error") if isinstance(document, dict) else None
            raise AgentFailed(self.side, str(reason or "runner reported an error"), document)
        self.document = document
        return document

    def _line(self, request: Mapping[str, Any] | None) -> str:
        try:
            if request is None:
                return self.process.read_line(self.timeout_s)
            return self.process.exchange(json.dumps(dict(request)), self.timeout_s)
        except CommandTimeout as exc:
            raise AgentFailed(self.side, f"runner did not answer: {exc.message}", None) from None
        except TransportError as exc:
            raise AgentFailed(self.side, exc.message, None, transport_error=True) from None

    def request(self, **command: Any) -> dict[str, Any]:
        line = self._line(command)
        try:
            reply = json.loads(line)
        except ValueError:
            raise AgentFailed(self.side, f"runner replied {line[:200]!r}", None) from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else line[:200]
            raise AgentFailed(self.side, str(error), self.document or None)
        return reply

    def close(self) -> None:
        try:
            self.process.resume()
            if self.process.poll() is None:
                self.process.exchange('{"cmd": "exit"}', min(self.timeout_s, 30.0))
        except (TransportError, OSError):
            pass
        finally:
            self.process.close(timeout_s=5.0)


class _Idle:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def suspend(self, agent: Agent) -> None:
        if self.enabled:
            agent.process.suspend()

    def resume(self, agent: Agent) -> None:
        if self.enabled:
            agent.process.resume()


def measure_pair(
    transport: InteractiveTransport,
    commands: Mapping[Side, SideCommand],
    rng: random.Random,
    settings: PairSettings,
    burst_size: int | None = None,
    on_burst: Callable[[BurstRecord], None] | None = None,
) -> PairResult:
    """Measure one process pair (see the module docstring)."""
    started_first: Side = rng.choice(SIDES)
    order: list[Side] = [started_first, "B" if started_first == "A" else "A"]
    agents: dict[Side, Agent] = {}
    try:
        for side in order:
            command = commands[side]
            try:
                process = transport.start_interactive(
                    [
                        *command.argv,
                        "--serve",
                        "--warmup-max-time",
                        repr(settings.warmup_max_time_s),
                    ],
                    env=command.env,
                )
            except TransportError as exc:
                raise AgentFailed(side, exc.message, None, transport_error=True) from None
            agents[side] = Agent(side, process, settings.exchange_timeout_s)
        documents = {side: agents[side].wait_ready() for side in order}
        idle = _Idle(settings.suspend_idle)
        for agent in agents.values():
            idle.suspend(agent)
        warm: dict[Side, float] = {}
        for side in order:
            agent = agents[side]
            idle.resume(agent)
            agent.request(cmd="warmup")
            probe = agent.request(cmd="burst", n=settings.probe_inferences)
            idle.suspend(agent)
            times = [float(v) for v in probe.get("samples_ms") or (0.0,)]
            warm[side] = sum(times) / len(times)  # the mean: bursts are sized in wall time
        if burst_size is None:
            burst_size = settings.burst_size(sum(warm.values()) / len(warm) / 1000.0)
        burst_first: Side = rng.choice(SIDES)
        result = PairResult(started_first, burst_first, burst_size, documents, warm)
        side = burst_first
        for position in range(2 * settings.bursts_per_side):
            agent = agents[side]
            idle.resume(agent)
            reply = agent.request(cmd="burst", n=burst_size)
            idle.suspend(agent)
            samples = tuple(float(v) for v in reply.get("samples_ms") or ())
            start = reply.get("start_unix")
            record = BurstRecord(
                position, side, float(start) if isinstance(start, (int, float)) else None, samples
            )
            result.bursts.append(record)
            if on_burst is not None:
                on_burst(record)
            side = "B" if side == "A" else "A"
        return result
    finally:
        for agent in agents.values():
            agent.close()


def pair_document(result: PairResult, side: Side) -> dict[str, Any]:
    """The runner document stored as this side's measurement of the pair: the agent's
    ready document with every burst's samples, so unpaired tools read it like a trial."""
    doc = dict(result.documents[side])
    samples = result.samples(side)
    doc["samples_ms"] = samples
    doc["iterations"] = len(samples)
    doc["stop_reason"] = "fixed"
    doc["pair"] = {
        "burst_size": result.burst_size,
        "bursts": sum(1 for b in result.bursts if b.side == side),
        "started_first": result.started_first,
        "burst_first": result.burst_first,
        "probe_mean_ms": result.probe_mean_ms.get(side),
    }
    return doc


def burst_rows(
    result: PairResult, side: Side
) -> Sequence[tuple[int, str, float | None, Sequence[float]]]:
    return [
        (b.position, b.side, b.start_unix, b.samples_ms) for b in result.bursts if b.side == side
    ]
