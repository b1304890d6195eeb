"""results.guards: the guard rules on recorded numbers, and busy detection on this machine.

The last test starts a real competing CPU load (a bounded busy loop on the measured CPU)
and checks that ``/proc/stat`` sampled around a trial-like busy loop flags it, while the
same loop alone does not.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.guards import parse_proc_stat_ticks
from results.guards import (
    OTHER_LOAD_MAX,
    CooldownPolicy,
    CpuTicks,
    OtherLoad,
    cool_down,
    detect_throttling,
    hottest_c,
    load_flags,
    other_load,
    parse_cooldown,
    phone_flags,
    pinning,
    ticks_of,
)

PROC_STAT = """\
cpu  1336230 1220 122146 405429 3034 0 1168 1273 0 0
cpu0 625255 661 57245 249864 1028 0 256 630 0 0
cpu1 710975 558 64901 155565 2005 0 912 643 0 0
intr 12345 0 0
ctxt 999
"""


def _facts(
    temps: list[float], cur: int, scaling_max: int, governor: str = "schedutil"
) -> dict[str, object]:
    return {
        "cpus": [
            {
                "cpu": i,
                "cur_khz": cur,
                "max_khz": 2_800_000,
                "scaling_max_khz": scaling_max,
                "scaling_min_khz": 300_000,
                "governor": governor,
            }
            for i in range(4)
        ],
        "thermal": [
            {"zone": f"thermal_zone{i}", "type": "cpu", "temp_c": t} for i, t in enumerate(temps)
        ],
    }


def test_parse_proc_stat_fields() -> None:
    lines = ticks_of(parse_proc_stat_ticks(PROC_STAT.splitlines()))
    assert set(lines) == {"cpu", "cpu0", "cpu1"}
    assert lines["cpu0"] == CpuTicks(
        busy=625255 + 661 + 57245 + 0 + 256, idle=249864 + 1028, steal=630
    )
    assert lines["cpu"].total == 1336230 + 1220 + 122146 + 405429 + 3034 + 1168 + 1273


def test_other_load_subtracts_own_time() -> None:
    before = {"cpu0": CpuTicks(1000, 1000, 0), "cpu1": CpuTicks(1000, 1000, 0)}
    after = {"cpu0": CpuTicks(1200, 1000, 0), "cpu1": CpuTicks(1050, 1150, 0)}
    # 2 s on cpu0 at 100 ticks/s: 200 busy ticks, 1.9 s of them our own.
    load = other_load(before, after, own_cpu_s=1.9, wall_s=2.0, clock_ticks_per_s=100, cpus=[0])
    assert load is not None
    assert load.other_fraction == pytest.approx(0.05)
    assert load_flags(load, 2) == []
    busy = other_load(before, after, own_cpu_s=1.0, wall_s=2.0, clock_ticks_per_s=100, cpus=[0])
    assert busy is not None and load_flags(busy, 2) == ["busy"]
    # Unpinned: both CPUs count; cpu1's 50 ticks are someone else's.
    whole = other_load(
        {"cpu": CpuTicks(2000, 2000, 0), **before},
        {"cpu": CpuTicks(2250, 2150, 100), **after},
        own_cpu_s=2.0,
        wall_s=2.0,
        clock_ticks_per_s=100,
        loadavg_1m=3.5,
    )
    assert whole is not None
    assert whole.other_fraction == pytest.approx(0.5 / 4.0)
    assert whole.steal_fraction == pytest.approx(100 / 500)
    assert load_flags(whole, 2) == ["busy", "steal", "overloaded"]
    assert other_load(before, after, own_cpu_s=0, wall_s=1, clock_ticks_per_s=100, cpus=[7]) is None


def test_throttling_rules() -> None:
    cool = _facts([40.0, 45.0], 2_000_000, 2_800_000)
    assert not detect_throttling(cool, cool).throttled
    assert hottest_c(cool) == 45.0
    capped = _facts([70.0, 74.0], 1_500_000, 1_800_000)
    result = detect_throttling(cool, capped)
    assert result.throttled
    assert result.reasons == ("max frequency capped on cpu 0,1,2,3",)
    assert result.hottest_after_c == 74.0
    only_cpu3 = detect_throttling(cool, capped, cpus=[3])
    assert only_cpu3.reasons == ("max frequency capped on cpu 3",)
    # A dynamic governor lowering the current frequency is not throttling...
    idle = _facts([40.0], 900_000, 2_800_000)
    assert not detect_throttling(cool, idle).throttled
    # ...under performance it is.
    fixed = _facts([40.0], 2_800_000, 2_800_000, "performance")
    fixed_low = _facts([40.0], 2_400_000, 2_800_000, "performance")
    assert detect_throttling(fixed, fixed_low).reasons == (
        "fixed frequency dropped on cpu 0,1,2,3",
    )
    hot = _facts([80.0], 2_000_000, 2_800_000)
    assert detect_throttling(cool, hot).reasons == ("80.0 °C reached the 75 °C limit",)
    assert not detect_throttling(cool, hot, hot_c=90.0).throttled
    assert detect_throttling(cool, cool, thermal_status=2).reasons == ("Android thermal status 2",)
    assert not detect_throttling(cool, cool, thermal_status=0).throttled
    assert not detect_throttling(None, None).throttled


def test_pinning_reports_and_prints_the_command() -> None:
    dynamic = _facts([40.0], 2_000_000, 2_800_000)
    state = pinning(dynamic, cpus=[0], root_command="adb shell su -c")
    assert state is not None and not state.pinned
    assert state.governors == ("schedutil",)
    base = "/sys/devices/system/cpu/cpu0/cpufreq"
    assert state.commands == (
        f"adb shell su -c 'echo performance > {base}/scaling_governor; "
        f"echo 2800000 > {base}/scaling_max_freq; echo 2800000 > {base}/scaling_min_freq'",
    )
    fixed = pinning(_facts([40.0], 2_800_000, 2_800_000, "performance"))
    assert fixed is not None and fixed.pinned and fixed.commands == ()
    assert pinning({"cpus": [{"cpu": 0, "governor": None}]}) is None
    board = pinning(dynamic, cpus=[1])
    assert board is not None and board.commands[0].startswith("sudo sh -c 'echo performance")


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("45C", CooldownPolicy(below_c=45.0)),
        ("37.5c", CooldownPolicy(below_c=37.5)),
        ("30s", CooldownPolicy(fixed_s=30.0)),
        ("none", None),
    ],
)
def test_parse_cooldown(text: str, policy: CooldownPolicy | None) -> None:
    assert parse_cooldown(text) == policy


@pytest.mark.parametrize("text", ["hot", "45", "45F", "-3C", "200C"])
def test_parse_cooldown_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="--cooldown"):
        parse_cooldown(text)


class _Clock:
    def __init__(self, temps: Iterator[float]) -> None:
        self.now = 0.0
        self.temps = temps
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def read(self) -> float | None:
        return next(self.temps)


def test_cool_down_waits_until_below_and_is_capped() -> None:
    clock = _Clock(iter([60.0, 55.0, 50.0, 44.0]))
    wait = cool_down(
        CooldownPolicy(below_c=45.0, poll_s=2.0),
        clock.read,
        sleep=clock.sleep,
        monotonic=lambda: clock.now,
    )
    assert wait.reached and wait.waited_s == 6.0 and wait.start_c == 60.0 and wait.end_c == 44.0
    hot = _Clock(iter([60.0] * 100))
    capped = cool_down(
        CooldownPolicy(below_c=45.0, poll_s=2.0, max_wait_s=5.0),
        hot.read,
        sleep=hot.sleep,
        monotonic=lambda: hot.now,
    )
    assert not capped.reached and capped.waited_s == 5.0 and hot.sleeps == [2.0, 2.0, 1.0]
    fixed = _Clock(iter([50.0, 49.0]))
    pause = cool_down(
        CooldownPolicy(fixed_s=3.0), fixed.read, sleep=fixed.sleep, monotonic=lambda: fixed.now
    )
    assert pause.reached and pause.waited_s == 3.0 and pause.policy == "3 s"
    blind = _Clock(iter([None]))  # type: ignore[list-item]
    unknown = cool_down(
        CooldownPolicy(below_c=45.0), blind.read, sleep=blind.sleep, monotonic=lambda: blind.now
    )
    assert not unknown.reached and unknown.waited_s == 0.0


def test_phone_flags() -> None:
    assert phone_flags(20, charging=False) == ["low_battery"]
    assert phone_flags(20, charging=True) == []
    assert phone_flags(87, charging=False) == []
    assert phone_flags(None, None) == []


# A real competing load on this machine -------------------------------------------------------

SPIN_S = 1.5


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _competitor(cpu: int, seconds: float) -> None:
    os.sched_setaffinity(0, {cpu})
    _spin(seconds)


def _measured_spin(cpu: int) -> float:
    """A trial-like busy loop pinned to ``cpu``; the other-load fraction around it."""
    stat = Path("/proc/stat")
    before = ticks_of(parse_proc_stat_ticks(stat.read_text().splitlines()))
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    _spin(SPIN_S)
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    after = ticks_of(parse_proc_stat_ticks(stat.read_text().splitlines()))
    own = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    load = other_load(
        before,
        after,
        own_cpu_s=own,
        wall_s=wall,
        clock_ticks_per_s=os.sysconf("SC_CLK_TCK"),
        cpus=[cpu],
    )
    assert load is not None
    return load.other_fraction


@pytest.mark.slow
def test_busy_machine_detected_with_a_real_competing_load() -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    previous = os.sched_getaffinity(0)
    context = multiprocessing.get_context("spawn")
    competitor = context.Process(target=_competitor, args=(cpu, SPIN_S + 3.0), daemon=True)
    try:
        os.sched_setaffinity(0, {cpu})
        competitor.start()
        time.sleep(1.0)  # the spawned interpreter is running its loop by now
        loaded = _measured_spin(cpu)
    finally:
        competitor.terminate()
        competitor.join(timeout=10)
        os.sched_setaffinity(0, previous)
    # Two busy loops on one CPU: the scheduler gives each about half, so about half of the
    # CPU's time was someone else's whatever else this machine runs.
    assert loaded > 0.3, loaded
    assert loaded > OTHER_LOAD_MAX
    flagged = OtherLoad(cpus=(cpu,), other_fraction=loaded, steal_fraction=0.0, loadavg_1m=None)
    assert load_flags(flagged, None) == ["busy"]
