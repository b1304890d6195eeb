"""devices.guards: the guard sampler's parsers on real output, and through the real adb client.

The thermal tests drive the simulated phone's thermal model (tests/adbsim/thermal.py): a
real CPU load started through adb heats it until its governor caps the frequency, the
guard rules see the throttling, and the cool-down policy waits until it is cool again.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import pytest

from devices.guards import (
    parse_battery,
    parse_guard_output,
    parse_power,
    parse_thermalservice,
    passive_limit_c,
    sample_guards,
)
from devices.local import LocalTransport
from results.guards import CooldownPolicy, cool_down, detect_throttling, hottest_c
from tests.adbsim import ThermalModel, pixel_like
from tests.adbsim.phone import build_sandbox
from tests.adbsim.thermal import ThermalState
from tests.fixtures.adb import MakePhone

# `adb shell dumpsys thermalservice` on a Samsung A52 5G, Android 12 (as published).
A52_THERMALSERVICE = """\
IsStatusOverride: false
ThermalEventListeners:
\tcallbacks: 1
\tkilled: false
\tbroadcasts count: -1
ThermalStatusListeners:
\tcallbacks: 4
\tkilled: false
\tbroadcasts count: -1
Thermal Status: 0
Cached temperatures:
\tTemperature{mValue=0.0, mType=2, mName=SUBBAT, mStatus=0}
\tTemperature{mValue=25.6, mType=0, mName=AP, mStatus=0}
\tTemperature{mValue=23.8, mType=2, mName=BAT, mStatus=0}
HAL Ready: true
HAL connection:
\tThermalHAL 2.0 connected: yes
Current temperatures from HAL:
\tTemperature{mValue=25.6, mType=0, mName=AP, mStatus=0}
\tTemperature{mValue=23.8, mType=2, mName=BAT, mStatus=0}
\tTemperature{mValue=24.7, mType=3, mName=LRB, mStatus=0}
Current cooling devices from HAL:
Temperature static thresholds from HAL:
"""


def test_parse_thermalservice_real_output() -> None:
    parsed = parse_thermalservice(A52_THERMALSERVICE)
    assert parsed["thermal_status"] == 0
    assert parsed["temperatures"] == [
        {"name": "AP", "type": 0, "temp_c": 25.6},
        {"name": "BAT", "type": 2, "temp_c": 23.8},
        {"name": "LRB", "type": 3, "temp_c": 24.7},
    ]
    assert parse_thermalservice("Can't find service: thermalservice")["thermal_status"] is None


def test_parse_battery_and_power() -> None:
    battery = ["  AC powered: false", "  USB powered: true", "  status: 2", "  level: 41"]
    assert parse_battery(battery) == {"battery_level_pct": 41, "charging": True}
    unplugged = ["  USB powered: false", "  status: 3", "  level: 10", "  scale: 50"]
    assert parse_battery(unplugged) == {"battery_level_pct": 20, "charging": False}
    assert parse_battery([]) == {"battery_level_pct": None, "charging": None}
    assert parse_power(["  mWakefulness=Awake", "Display Power: state=OFF"]) is False
    assert parse_power(["  mWakefulness=Awake"]) is True
    assert parse_power(["  mWakefulness=Asleep"]) is False
    assert parse_power([]) is None


def test_parse_guard_output_sections() -> None:
    text = (
        "== stat\ncpu  10 1 5 100 4 0 2 3 0 0\ncpu0 10 1 5 100 4 0 2 3 0 0\n"
        "== loadavg\n0.52 0.40 0.31 1/99 123\n== clk\n100\n"
        "== cpu 0\ncpuinfo_max_freq=2800000\nscaling_max_freq=1680000\n"
        "scaling_min_freq=300000\nscaling_cur_freq=1200000\nscaling_governor=schedutil\n"
        "== thermal thermal_zone1\ntype=cpu-1-0\ntemp=45300\npassive=65000\n"
        "== thermal thermal_zone0\ntype=battery\ntemp=\n"
    )
    reading = parse_guard_output(text, android=False)
    assert reading["proc_stat"] == {"cpu": [18, 104, 3], "cpu0": [18, 104, 3]}
    assert reading["loadavg"] == [0.52, 0.40, 0.31]
    assert reading["clock_ticks_per_s"] == 100
    assert reading["cpus"] == [
        {
            "cpu": 0,
            "cur_khz": 1_200_000,
            "max_khz": 2_800_000,
            "scaling_max_khz": 1_680_000,
            "scaling_min_khz": 300_000,
            "governor": "schedutil",
        }
    ]
    assert reading["thermal"] == [
        {"zone": "thermal_zone1", "type": "cpu-1-0", "temp_c": 45.3, "passive_c": 65.0}
    ]
    assert passive_limit_c(reading) == 65.0
    assert "android" not in reading


def test_sample_guards_on_this_machine() -> None:
    with LocalTransport() as transport:
        reading = sample_guards(transport, android=False)
    stat = reading["proc_stat"]
    assert isinstance(stat, dict) and "cpu" in stat and "cpu0" in stat
    assert isinstance(reading["loadavg"], list) and len(reading["loadavg"]) == 3
    assert isinstance(reading["clock_ticks_per_s"], int)


def _capped(state: ThermalState) -> bool:
    return state.capped


def test_thermal_model_heats_caps_and_cools(tmp_path: Path) -> None:
    phone = dataclasses.replace(pixel_like(), thermal=ThermalModel(ambient_c=30.0, tau_s=4.0))
    build_sandbox(phone, tmp_path)
    state = ThermalState(
        ThermalModel(ambient_c=30.0, gain_c_per_cpu_s=12.0, tau_s=4.0, trip_c=55.0),
        tmp_path,
        phone.thermal_zones,
        tuple(c.max_khz for c in phone.cores),
        tuple(c.cur_khz for c in phone.cores),
        set,
    )
    start = state.hottest_cpu_c()
    state.advance(4.0, busy_cores=1.0)  # towards 30 + 12 * 4 = 78 °C, one time constant
    assert state.hottest_cpu_c() == pytest.approx(78 + (start - 78) * 0.36787944, abs=1e-6)
    assert _capped(state)
    state.write()
    cpu7 = tmp_path / "sys/devices/system/cpu/cpu7/cpufreq"
    assert int((cpu7 / "scaling_max_freq").read_text()) == 1_680_000
    assert int((cpu7 / "scaling_cur_freq").read_text()) <= 1_680_000
    status = parse_thermalservice((tmp_path / "system/etc/sim-dumpsys-thermalservice").read_text())
    assert status["thermal_status"] == 2  # 66 °C: 10 °C above the trip point
    state.advance(20.0, busy_cores=0.0)  # five time constants idle
    assert state.hottest_cpu_c() < 31.0
    assert not _capped(state)
    state.write()
    assert int((cpu7 / "scaling_max_freq").read_text()) == 2_800_000
    assert state.throttle_events == 1


SPIN = "import time\nend = time.perf_counter() + 1.0\nwhile time.perf_counter() < end: pass\n"


@pytest.mark.slow
def test_adb_phone_throttles_under_load_and_cooldown_waits(make_adb_phone: MakePhone) -> None:
    model = ThermalModel(ambient_c=32.0, gain_c_per_cpu_s=15.0, tau_s=3.0, trip_c=50.0)
    phone = make_adb_phone(phone=dataclasses.replace(pixel_like(), thermal=model))
    transport = phone.server.transport(phone.serial, workdir="/data/local/tmp/guards")
    try:
        before = sample_guards(transport, android=True)
        android = before["android"]
        assert android == {
            "thermal_status": 0,
            "battery_level_pct": 87,
            "charging": True,
            "screen_on": True,
        }
        after = before
        statuses: list[int] = []
        for _ in range(30):  # a real load through adb until the phone's governor caps it
            transport.run([sys.executable, "-c", SPIN], timeout_s=30)
            after = sample_guards(transport, android=True)
            android_after = after["android"]
            assert isinstance(android_after, dict)
            statuses.append(int(android_after["thermal_status"]))
            if detect_throttling(before, after).throttled:
                break
        throttling = detect_throttling(before, after, thermal_status=statuses[-1])
        assert throttling.throttled, (before, after)
        assert any("max frequency capped" in r for r in throttling.reasons)
        # The cap went on at the trip point; dumpsys said LIGHT or above while it was hot
        # (the cap stays on a few degrees below the trip point, as the status does not).
        thermal = phone.sim.thermal
        assert thermal is not None and thermal.peak_c >= model.trip_c
        assert thermal.throttle_events >= 1
        assert max(statuses) >= 1 or thermal.peak_c < model.trip_c + 0.5

        def read() -> float | None:
            return hottest_c(sample_guards(transport, android=True))

        # The phone cools on the wall clock, also while this (possibly busy) host reads it: aim
        # a quarter of the way from ambient to where it is now, two time constants away, so the
        # wait cannot be over before it starts however slowly the readings come back.
        hot_c = read()
        assert hot_c is not None and hot_c > model.ambient_c + 4.0
        below_c = model.ambient_c + (hot_c - model.ambient_c) / 4
        wait = cool_down(
            CooldownPolicy(below_c=below_c, max_wait_s=60.0, poll_s=0.5),
            read,
            sleep=time.sleep,
            monotonic=time.monotonic,
        )
        assert wait.reached and wait.end_c is not None and wait.end_c < below_c
        assert wait.start_c is not None and wait.start_c >= below_c and wait.waited_s > 0
        cool = sample_guards(transport, android=True)
        assert not detect_throttling(cool, cool).throttled
        cpus = cool["cpus"]
        assert isinstance(cpus, list) and cpus[7]["scaling_max_khz"] == 2_800_000
    finally:
        transport.close()
