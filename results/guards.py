"""Device guards: judging a trial's conditions from what was sampled before and after it.

Owns the guard thresholds and the pure functions that apply them: throttling (frequencies
and temperatures), other load (``/proc/stat``, steal, load average), frequency pinning (the
governor, and the command that would pin it, never run), the cool-down policy between
trials and the flags a trial gets. Nothing here reads a device; the samplers hand in plain
data (``/proc/stat`` text, the runner's FACTS mappings, parsed ``dumpsys`` fields), so every
rule is testable on recorded numbers. docs/measurement.md ("Guards") lists the thresholds
and how they were chosen.

What the trusted tools do, and what is followed here:

* pyperf ``system show``/``check``: the CPU governor and whether frequencies are fixed are
  reported, never changed by a benchmark run (``system tune`` is a separate, explicit step):
  ``pinning`` reports and prints the exact commands, it never runs them;
* androidx.benchmark: a trial measured while the device throttles is marked (its
  ``ThrottleDetector`` and thermal-status checks), the run warns on a low battery and
  while charging, and benchmarks wait for the device to cool (``--cooldown`` here);
* MLPerf Mobile: a cool-down pause between tests, with the measurement refused when
  thermal throttling shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from results.rows import as_number

GuardFlag = Literal[
    "throttled",  # max frequency dropped, fixed frequency dropped, or Android thermal status
    "hot",  # the hottest zone reached the device's temperature limit
    "busy",  # other processes used more than OTHER_LOAD_MAX of the measured CPUs
    "steal",  # the hypervisor took more than STEAL_MAX of the CPUs' time
    "overloaded",  # the 1-minute load average exceeded LOADAVG_PER_CPU_MAX x logical CPUs
    "low_battery",  # a phone below LOW_BATTERY_PCT and not charging
]

OTHER_LOAD_MAX: Final = 0.10
"""Other processes' CPU time above this fraction of the measured CPUs' time flags ``busy``."""
STEAL_MAX: Final = 0.05
"""Steal time above this fraction of the measured CPUs' time flags ``steal``."""
LOADAVG_PER_CPU_MAX: Final = 1.5
"""A 1-minute load average above this many runnable tasks per logical CPU flags ``overloaded``."""
DEFAULT_HOT_C: Final = 75.0
"""The temperature limit when the device has none of its own (a passive trip point)."""
FIXED_FREQ_DROP: Final = 0.05
"""Under a fixed-frequency governor, a current frequency this much below before is a drop."""
LOW_BATTERY_PCT: Final = 25
"""androidx.benchmark's low-battery warning level."""
ANDROID_THERMAL_LIGHT: Final = 1
"""Android ``Thermal Status`` from which it throttles (PowerManager THERMAL_STATUS_LIGHT)."""
FIXED_GOVERNORS: Final = frozenset({"performance", "userspace"})


# /proc/stat ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuTicks:
    """One ``cpu`` line of ``/proc/stat``, in clock ticks (USER_HZ).

    ``devices.guards`` reads the lines; guest time is already inside user time (proc(5)).
    """

    busy: int  # user + nice + system + irq + softirq
    idle: int  # idle + iowait
    steal: int

    @property
    def total(self) -> int:
        return self.busy + self.idle + self.steal


def ticks_of(proc_stat: Mapping[str, object]) -> dict[str, CpuTicks]:
    """A reading's ``proc_stat`` (``{"cpu": [busy, idle, steal], ...}``) as CpuTicks."""
    out: dict[str, CpuTicks] = {}
    for name, value in proc_stat.items():
        if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value):
            out[name] = CpuTicks(value[0], value[1], value[2])
    return out


@dataclass(frozen=True)
class OtherLoad:
    """What else used the measured CPUs during one trial."""

    cpus: tuple[int, ...] | None  # None: all CPUs (the trial was not pinned)
    other_fraction: float  # other processes' CPU time / (wall time x CPUs)
    steal_fraction: float  # steal ticks / all ticks of those CPUs
    loadavg_1m: float | None


def other_load(
    before: Mapping[str, CpuTicks],
    after: Mapping[str, CpuTicks],
    *,
    own_cpu_s: float,
    wall_s: float,
    clock_ticks_per_s: int,
    cpus: Sequence[int] | None = None,
    loadavg_1m: float | None = None,
) -> OtherLoad | None:
    """Other processes' share of the measured CPUs between two ``/proc/stat`` samples.

    ``own_cpu_s`` is the trial process's own user + system time over the same interval
    (all its threads; it ran only on ``cpus`` when pinned). Busy ticks minus that time
    are other processes' (and the kernel's) work; None when the samples lack a CPU.
    """
    names = [f"cpu{c}" for c in cpus] if cpus else ["cpu"]
    if wall_s <= 0 or any(n not in before or n not in after for n in names):
        return None
    busy = sum(after[n].busy - before[n].busy for n in names)
    steal = sum(after[n].steal - before[n].steal for n in names)
    total = sum(after[n].total - before[n].total for n in names)
    count = len(cpus) if cpus else _cpu_count(before)
    other_s = busy / clock_ticks_per_s - own_cpu_s
    fraction = max(0.0, other_s / (wall_s * count))
    return OtherLoad(
        cpus=tuple(cpus) if cpus else None,
        other_fraction=fraction,
        steal_fraction=steal / total if total > 0 else 0.0,
        loadavg_1m=loadavg_1m,
    )


def _cpu_count(sample: Mapping[str, CpuTicks]) -> int:
    return max(1, sum(1 for name in sample if name != "cpu"))


def load_flags(load: OtherLoad | None, logical_cpus: int | None) -> list[GuardFlag]:
    flags: list[GuardFlag] = []
    if load is None:
        return flags
    if load.other_fraction > OTHER_LOAD_MAX:
        flags.append("busy")
    if load.steal_fraction > STEAL_MAX:
        flags.append("steal")
    if (
        load.loadavg_1m is not None
        and logical_cpus
        and load.loadavg_1m > LOADAVG_PER_CPU_MAX * logical_cpus
    ):
        flags.append("overloaded")
    return flags


# Frequencies and temperatures ----------------------------------------------------------


@dataclass(frozen=True)
class Throttling:
    """Whether a trial ran throttled, and why (empty reasons: it did not)."""

    reasons: tuple[str, ...]
    hottest_before_c: float | None
    hottest_after_c: float | None

    @property
    def throttled(self) -> bool:
        return bool(self.reasons)


def hottest_c(facts: Mapping[str, object] | None) -> float | None:
    """The highest zone temperature in a FACTS mapping (``thermal``: [{temp_c}])."""
    temps = [
        t
        for zone in _records(facts, "thermal")
        if isinstance(t := zone.get("temp_c"), (int, float)) and math.isfinite(t)
    ]
    return float(max(temps)) if temps else None


def _records(facts: Mapping[str, object] | None, key: str) -> list[Mapping[str, object]]:
    value = facts.get(key) if facts else None
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _cpu_field(facts: Mapping[str, object] | None, key: str) -> dict[int, object]:
    out: dict[int, object] = {}
    for cpu in _records(facts, "cpus"):
        index = cpu.get("cpu")
        if isinstance(index, int):
            out[index] = cpu.get(key)
    return out


def detect_throttling(
    before: Mapping[str, object] | None,
    after: Mapping[str, object] | None,
    *,
    cpus: Iterable[int] | None = None,
    hot_c: float = DEFAULT_HOT_C,
    thermal_status: int | None = None,
) -> Throttling:
    """Throttling of one trial from the FACTS sampled before and after it.

    Rules (any one marks the trial):

    * ``scaling_max_khz`` of a measured CPU lower after than before: a thermal governor
      capped the frequency during the trial (Android's cpufreq cooling devices do this);
    * under a fixed-frequency governor (performance, userspace) ``cur_khz`` more than
      ``FIXED_FREQ_DROP`` lower after than before; under dynamic governors the current
      frequency follows load and says nothing on its own;
    * the hottest zone at or above ``hot_c`` before or after;
    * Android's thermal status at or above LIGHT (1) after the trial.
    """
    wanted = set(cpus) if cpus is not None else None
    reasons: list[str] = []
    max_before, max_after = (
        _cpu_field(before, "scaling_max_khz"),
        _cpu_field(after, "scaling_max_khz"),
    )
    dropped = sorted(
        cpu
        for cpu, value in max_after.items()
        if (wanted is None or cpu in wanted)
        and isinstance(value, int)
        and isinstance(old := max_before.get(cpu), int)
        and value < old
    )
    if dropped:
        reasons.append(f"max frequency capped on cpu {_cpu_span(dropped)}")
    governors = _cpu_field(before, "governor")
    cur_before, cur_after = _cpu_field(before, "cur_khz"), _cpu_field(after, "cur_khz")
    slowed = sorted(
        cpu
        for cpu, value in cur_after.items()
        if (wanted is None or cpu in wanted)
        and governors.get(cpu) in FIXED_GOVERNORS
        and isinstance(value, int)
        and isinstance(old := cur_before.get(cpu), int)
        and value < old * (1.0 - FIXED_FREQ_DROP)
    )
    if slowed:
        reasons.append(f"fixed frequency dropped on cpu {_cpu_span(slowed)}")
    hot_before, hot_after = hottest_c(before), hottest_c(after)
    peak = max((t for t in (hot_before, hot_after) if t is not None), default=None)
    if peak is not None and peak >= hot_c:
        reasons.append(f"{peak:.1f} °C reached the {hot_c:.0f} °C limit")
    if thermal_status is not None and thermal_status >= ANDROID_THERMAL_LIGHT:
        reasons.append(f"Android thermal status {thermal_status}")
    return Throttling(tuple(reasons), hot_before, hot_after)


def _cpu_span(cpus: Sequence[int]) -> str:
    return ",".join(str(c) for c in cpus)


# Pinning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pinning:
    """The CPUs' governors, whether frequencies are fixed, and how to fix them."""

    governors: tuple[str, ...]
    pinned: bool
    commands: tuple[str, ...]
    """Shell lines that pin every measured CPU at its maximum; empty when already pinned."""


def pinning(
    facts: Mapping[str, object] | None,
    *,
    cpus: Iterable[int] | None = None,
    root_command: str = "sudo sh -c",
) -> Pinning | None:
    """The measured CPUs' frequency state from FACTS; None when the device has no cpufreq.

    Pinned means a fixed governor on every CPU, or ``scaling_min_khz == scaling_max_khz``.
    The commands are what IREE's and FAI-PEP's device scripts do (set both scaling limits to
    one frequency and the governor to ``performance``), run through ``root_command`` (the
    device kind's, e.g. ``adb shell su -c`` on a rooted phone); they need root, and mnbench never
    runs them: a benchmark that changes the device silently reports a device nobody has.
    """
    wanted = set(cpus) if cpus is not None else None
    records = [
        cpu
        for cpu in _records(facts, "cpus")
        if isinstance(cpu.get("cpu"), int) and (wanted is None or cpu["cpu"] in wanted)
    ]
    governors = [str(g) for cpu in records if isinstance(g := cpu.get("governor"), str)]
    if not governors:
        return None
    pinned = all(
        cpu.get("governor") in FIXED_GOVERNORS
        or (
            cpu.get("scaling_min_khz") is not None
            and cpu.get("scaling_min_khz") == cpu.get("scaling_max_khz")
        )
        for cpu in records
    )
    lines: list[str] = []
    if not pinned:
        for cpu in records:
            index = cpu["cpu"]
            top = cpu.get("max_khz")
            base = f"/sys/devices/system/cpu/cpu{index}/cpufreq"
            lines.append(f"echo performance > {base}/scaling_governor")
            if isinstance(top, int):
                lines.append(f"echo {top} > {base}/scaling_max_freq")
                lines.append(f"echo {top} > {base}/scaling_min_freq")
    script = "; ".join(lines)
    commands = (f"{root_command} '{script}'",) if script else ()
    return Pinning(tuple(sorted(set(governors))), pinned, commands)


# Cool-down ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CooldownPolicy:
    """Wait before a trial: until the hottest zone is below ``below_c``, or ``fixed_s``."""

    below_c: float | None = None
    fixed_s: float | None = None
    max_wait_s: float = 300.0
    poll_s: float = 1.0


@dataclass(frozen=True)
class CooldownWait:
    """One wait as it happened (stored with the trial)."""

    waited_s: float
    start_c: float | None
    end_c: float | None
    reached: bool  # False: the cap ended the wait, or no temperature could be read
    policy: str


def cooldown_to_config(policy: CooldownPolicy | None) -> dict[str, object] | None:
    """The policy as stored in a run's configuration (read back by ``run --resume``)."""
    if policy is None:
        return None
    return {"below_c": policy.below_c, "fixed_s": policy.fixed_s, "max_wait_s": policy.max_wait_s}


def parse_cooldown(text: str, max_wait_s: float = 300.0) -> CooldownPolicy | None:
    """``--cooldown``: ``none``, ``45C`` (below 45 °C) or ``30s`` (a fixed pause)."""
    value = text.strip().lower()
    if value in ("", "none", "off", "0"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(c|s)", value)
    if not match:
        raise ValueError(
            f"--cooldown {text!r}: give a temperature such as 45C, a pause such as 30s, or none"
        )
    number = float(match.group(1))
    if match.group(2) == "c":
        if not 0 < number < 150:
            raise ValueError(f"--cooldown {text!r}: the temperature must be between 0 and 150 °C")
        return CooldownPolicy(below_c=number, max_wait_s=max_wait_s)
    return CooldownPolicy(fixed_s=number, max_wait_s=max_wait_s)


def describe_policy(policy: CooldownPolicy) -> str:
    if policy.below_c is not None:
        return f"until below {policy.below_c:g} °C, at most {policy.max_wait_s:g} s"
    return f"{policy.fixed_s:g} s"


def cool_down(
    policy: CooldownPolicy,
    read_hottest_c: Callable[[], float | None],
    *,
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> CooldownWait:
    """Wait as the policy says; the clock, the sleep and the thermometer are handed in."""
    start = monotonic()
    start_c = read_hottest_c()
    if policy.below_c is None:
        pause = min(policy.fixed_s or 0.0, policy.max_wait_s)
        if pause > 0:
            sleep(pause)
        return CooldownWait(
            monotonic() - start, start_c, read_hottest_c(), True, describe_policy(policy)
        )
    current = start_c
    while current is not None and current >= policy.below_c:
        left = policy.max_wait_s - (monotonic() - start)
        if left <= 0:
            break
        sleep(min(policy.poll_s, left))
        current = read_hottest_c()
    reached = current is not None and current < policy.below_c
    return CooldownWait(monotonic() - start, start_c, current, reached, describe_policy(policy))


# Phones --------------------------------------------------------------------------------------


def phone_flags(battery_level_pct: int | None, charging: bool | None) -> list[GuardFlag]:
    """``low_battery`` as androidx.benchmark warns: below 25 % and not charging.

    Charging and the screen state are recorded and shown, not flagged: both are how many
    phones are benchmarked, and what they change (heat) is judged by the thermal rules.
    """
    flags: list[GuardFlag] = []
    if battery_level_pct is not None and battery_level_pct < LOW_BATTERY_PCT and not charging:
        flags.append("low_battery")
    return flags


# One trial --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialJudgement:
    """The guard flags of one trial and the figures behind them."""

    notes: tuple[tuple[GuardFlag, str], ...]  # each flag once, with its figure and threshold
    load: OtherLoad | None
    throttling: Throttling | None
    cooldown_s: float | None

    @property
    def flags(self) -> tuple[GuardFlag, ...]:
        return tuple(flag for flag, _ in self.notes)


def _reading(record: Mapping[str, object], key: str) -> Mapping[str, object] | None:
    value = record.get(key)
    return value if isinstance(value, Mapping) else None


def judge_trial(record: Mapping[str, object] | None) -> TrialJudgement:
    """Judge a trial's ``guards`` record (``harness/measure/guard.py``) against the thresholds."""
    if not record:
        return TrialJudgement((), None, None, None)
    before, after = _reading(record, "before"), _reading(record, "after")
    notes: list[tuple[GuardFlag, str]] = []
    cpus_value = record.get("cpus")
    cpus = [c for c in cpus_value if isinstance(c, int)] if isinstance(cpus_value, list) else None
    hot = as_number(record.get("hot_c")) or DEFAULT_HOT_C
    android_value = (after or {}).get("android")
    android = android_value if isinstance(android_value, Mapping) else {}
    status = android.get("thermal_status")
    throttling = detect_throttling(
        before,
        after,
        cpus=cpus or None,
        hot_c=hot,
        thermal_status=status if isinstance(status, int) else None,
    )
    hot_reasons = [r for r in throttling.reasons if r.endswith("limit")]
    other_reasons = [r for r in throttling.reasons if not r.endswith("limit")]
    if other_reasons:
        notes.append(("throttled", "; ".join(other_reasons)))
    if hot_reasons:
        notes.append(("hot", "; ".join(hot_reasons)))
    load: OtherLoad | None = None
    logical: int | None = None
    own, wall = as_number(record.get("own_cpu_s")), as_number(record.get("wall_s"))
    stat_before = before.get("proc_stat") if before else None
    stat_after = after.get("proc_stat") if after else None
    if isinstance(stat_before, Mapping) and isinstance(stat_after, Mapping):
        ticks_before, ticks_after = ticks_of(stat_before), ticks_of(stat_after)
        logical = _cpu_count(ticks_before)
        if own is not None and wall is not None:
            clock = (before or {}).get("clock_ticks_per_s")
            loadavg = (after or {}).get("loadavg")
            load = other_load(
                ticks_before,
                ticks_after,
                own_cpu_s=own,
                wall_s=wall,
                clock_ticks_per_s=clock if isinstance(clock, int) and clock > 0 else 100,
                cpus=cpus or None,
                loadavg_1m=as_number(loadavg[0]) if isinstance(loadavg, list) and loadavg else None,
            )
    for flag in load_flags(load, logical):
        assert load is not None
        if flag == "busy":
            note = (
                f"other processes used {load.other_fraction:.0%} of the measured CPUs "
                f"(limit {OTHER_LOAD_MAX:.0%})"
            )
        elif flag == "steal":
            note = f"steal {load.steal_fraction:.0%} (limit {STEAL_MAX:.0%})"
        else:
            note = (
                f"load average {load.loadavg_1m:.1f} on {logical} CPUs "
                f"(limit {LOADAVG_PER_CPU_MAX:g} per CPU)"
            )
        notes.append((flag, note))
    level, charging = android.get("battery_level_pct"), android.get("charging")
    for flag in phone_flags(
        level if isinstance(level, int) else None, charging if isinstance(charging, bool) else None
    ):
        notes.append((flag, f"battery {level} % and not charging (limit {LOW_BATTERY_PCT} %)"))
    cooldown = _reading(record, "cooldown")
    waited = as_number(cooldown.get("waited_s")) if cooldown else None
    return TrialJudgement(tuple(notes), load, throttling, waited)
