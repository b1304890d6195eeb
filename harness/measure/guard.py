"""The guards around one trial: cool down, sample the device before and after, record.

Owns ``TrialGuard``, which a measurement session calls around every trial: ``before()``
waits as the ``--cooldown`` policy says (the wait is recorded) and takes a guard reading
through the device's Transport (``devices.guards``); ``after()`` takes the second reading
and returns the ``guards`` record stored beside the agent's document
(``harness.measure.sweep.Trial``; the store keeps it in the trial's document column)::

    {"before": READING, "after": READING, "wall_s": float,
     "own_cpu_s": float | null, "own_cpu_source": "runner" | "children" | null,
     "cpus": [int] | null, "cooldown": COOLDOWN | null, "hot_c": float,
     "kind": "local" | "ssh" | "adb", "root_command": str}

``own_cpu_s`` is the trial process's CPU time: on this machine the harness's children's
CPU time over the trial (the runner and the two sampling shells), on a remote device the
runner's own ``process_cpu_s``; without
it the other-load figure cannot be separated from the trial's own and is left out.
``results.guards.judge_trial`` turns the record into flags. Nothing here changes the
device: frequencies and governors are read, never set.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from devices.device import DeviceConfig
from devices.guards import passive_limit_c
from devices.transport import Transport
from results.guards import DEFAULT_HOT_C, CooldownPolicy, CooldownWait, cool_down, hottest_c


@dataclass(frozen=True)
class Started:
    """What ``before()`` saw, handed back to ``after()``."""

    reading: dict[str, object]
    cooldown: CooldownWait | None
    monotonic_s: float
    children_cpu_s: float


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class TrialGuard:
    """Samples one device around its trials; one per measurement session."""

    def __init__(
        self,
        transport: Transport,
        device: DeviceConfig,
        *,
        cooldown: CooldownPolicy | None = None,
        hot_c: float | None = None,
    ) -> None:
        self.transport = transport
        self.device = device
        self.cooldown = cooldown
        self.hot_c = hot_c
        self.waits: list[CooldownWait] = []

    def sample(self) -> dict[str, object]:
        """One reading; a lost device raises ``TransportError`` as a trial would (the sweep
        stops, keeps what was measured and says how to resume)."""
        return self.device.traits.read_guards(self.transport)

    def before(self) -> Started:
        wait: CooldownWait | None = None
        if self.cooldown is not None:
            wait = cool_down(
                self.cooldown,
                lambda: hottest_c(self.sample()),
                sleep=time.sleep,
                monotonic=time.monotonic,
            )
            self.waits.append(wait)
        reading = self.sample()
        if self.hot_c is None:
            self.hot_c = passive_limit_c(reading)
        return Started(reading, wait, time.monotonic(), _children_cpu_s())

    def after(
        self,
        started: Started,
        document: Mapping[str, object] | None,
        cpus: Sequence[int] | None,
    ) -> dict[str, object]:
        wall_s = time.monotonic() - started.monotonic_s
        children = _children_cpu_s() - started.children_cpu_s
        reported = (document or {}).get("process_cpu_s")
        own: float | None
        if self.device.this_machine:
            own, source = children, "children"  # includes start-up before the runner's clock
        elif isinstance(reported, (int, float)) and not isinstance(reported, bool):
            own, source = float(reported), "runner"
        else:
            own, source = None, None
        return {
            "before": started.reading,
            "after": self.sample(),
            "wall_s": round(wall_s, 6),
            "own_cpu_s": own,
            "own_cpu_source": source,
            "cpus": list(cpus) if cpus else None,
            "cooldown": asdict(started.cooldown) if started.cooldown else None,
            "hot_c": self.hot_c if self.hot_c is not None else DEFAULT_HOT_C,
            "kind": self.device.kind,
            "root_command": self.device.traits.root_command,
        }
