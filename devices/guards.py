"""Sampling a device's guard readings through its Transport, one shell round trip each.

Owns the sampling script and its parsers. One reading (``GuardReading``, a plain
JSON-ready mapping stored with the trial) holds what ``results.guards`` judges:

* ``proc_stat``: the ``cpu`` lines of ``/proc/stat`` as ``[busy, idle, steal]`` clock
  ticks (proc(5)), ``clock_ticks_per_s`` (``getconf CLK_TCK``; USER_HZ is 100 on every
  Linux and Android kernel when it cannot be read), ``loadavg`` (``/proc/loadavg``);
* ``cpus``: per core ``cur_khz``, ``max_khz`` (``cpuinfo_max_freq``), ``scaling_max_khz``,
  ``scaling_min_khz`` and ``governor`` (cpufreq sysfs, kHz);
* ``thermal``: per zone ``type``, ``temp_c`` and the first ``passive`` trip point
  ``passive_c`` when the zone has one (thermal sysfs, milli-degrees C);
* on phones, ``android``: ``thermal_status`` (``dumpsys thermalservice``, ``Thermal
  Status: N``, android.os.PowerManager THERMAL_STATUS_*), ``battery_level_pct`` and
  ``charging`` (``dumpsys battery``: ``status: 2`` is BATTERY_STATUS_CHARGING), and
  ``screen_on`` (``dumpsys power``: ``Display Power: state=ON``, else ``mWakefulness=Awake``).

The script is static text (no user input reaches it); a file that cannot be read leaves
its value null.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Final

from devices.probe import section_lines
from devices.transport import Transport

GUARD_TIMEOUT_S: Final = 30.0
DEFAULT_CLOCK_TICKS: Final = 100

_LINUX_SCRIPT = r"""
echo "== stat"; cat /proc/stat 2>/dev/null
echo "== loadavg"; cat /proc/loadavg 2>/dev/null
echo "== clk"; getconf CLK_TCK 2>/dev/null
for c in /sys/devices/system/cpu/cpu[0-9]*; do
  [ -d "$c/cpufreq" ] || continue
  echo "== cpu ${c##*/cpu}"
  for f in cpuinfo_max_freq scaling_max_freq scaling_min_freq scaling_cur_freq scaling_governor; do
    printf '%s=' "$f"; cat "$c/cpufreq/$f" 2>/dev/null || echo
  done
done
for z in /sys/class/thermal/thermal_zone*; do
  [ -d "$z" ] || continue
  echo "== thermal ${z##*/}"
  printf 'type='; cat "$z/type" 2>/dev/null || echo
  printf 'temp='; cat "$z/temp" 2>/dev/null || echo
  for t in "$z"/trip_point_*_type; do
    [ -f "$t" ] || continue
    if [ "$(cat "$t" 2>/dev/null)" = passive ]; then
      printf 'passive='; cat "${t%_type}_temp" 2>/dev/null || echo; break
    fi
  done
done
"""

_ANDROID_SCRIPT = r"""
echo "== thermalservice"; dumpsys thermalservice 2>/dev/null
echo "== battery"; dumpsys battery 2>/dev/null
echo "== power"; dumpsys power 2>/dev/null | grep -E 'mWakefulness=|Display Power'
"""


def guard_script(android: bool) -> str:
    return _LINUX_SCRIPT + (_ANDROID_SCRIPT if android else "") + "true\n"


def sample_guards(transport: Transport, *, android: bool) -> dict[str, object]:
    """One guard reading of the device now (see the module docstring for its keys)."""
    done = transport.run(["sh", "-c", guard_script(android)], timeout_s=GUARD_TIMEOUT_S)
    reading = parse_guard_output(done.stdout, android=android)
    reading["time_unix"] = time.time()
    return reading


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _fields(lines: Sequence[str], sep: str = "=") -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, found, value = line.partition(sep)
        if found:
            out[key.strip().lower()] = value.strip()
    return out


def parse_proc_stat_ticks(lines: Sequence[str]) -> dict[str, list[int]]:
    """``cpu``/``cpuN`` lines as ``[busy, idle, steal]`` (busy: user nice system irq softirq)."""
    out: dict[str, list[int]] = {}
    for line in lines:
        match = re.match(r"^(cpu\d*)\s+(.*)$", line)
        if not match:
            continue
        try:
            values = [int(v) for v in match.group(2).split()]
        except ValueError:
            continue
        values += [0] * (8 - len(values))
        user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
        out[match.group(1)] = [user + nice + system + irq + softirq, idle + iowait, steal]
    return out


_STATUS_RE = re.compile(r"^\s*Thermal Status:\s*(-?\d+)\s*$", re.MULTILINE)
_TEMPERATURE_RE = re.compile(
    r"Temperature\{mValue=(?P<value>-?[\d.]+|NaN), mType=(?P<type>-?\d+), "
    r"mName=(?P<name>[^,]*), mStatus=(?P<status>-?\d+)\}"
)


def parse_thermalservice(text: str) -> dict[str, object]:
    """``dumpsys thermalservice``: the status and the HAL's current temperatures."""
    status = _STATUS_RE.search(text)
    hal = text.split("Current temperatures from HAL:", 1)
    body = hal[1] if len(hal) == 2 else text
    temperatures = [
        {"name": m["name"], "type": int(m["type"]), "temp_c": float(m["value"])}
        for m in _TEMPERATURE_RE.finditer(body.split("Current cooling devices", 1)[0])
        if m["value"] != "NaN"
    ]
    return {
        "thermal_status": int(status.group(1)) if status else None,
        "temperatures": temperatures,
    }


def parse_battery(lines: Sequence[str]) -> dict[str, object]:
    fields = _fields(lines, ":")
    level, scale = _int(fields.get("level")), _int(fields.get("scale")) or 100
    status = _int(fields.get("status"))
    powered = [fields.get(f"{kind} powered") for kind in ("ac", "usb", "wireless")]
    charging: bool | None
    if status is not None:
        charging = status in (2, 5)  # CHARGING, FULL (still on the charger)
    elif any(p is not None for p in powered):
        charging = "true" in powered
    else:
        charging = None
    return {
        "battery_level_pct": round(level * 100 / scale) if level is not None else None,
        "charging": charging,
    }


def parse_power(lines: Sequence[str]) -> bool | None:
    """Whether the screen is on, from ``dumpsys power`` lines."""
    text = "\n".join(lines)
    display = re.search(r"Display Power: state=(\w+)", text)
    if display:
        return display.group(1).upper() == "ON"
    wake = re.search(r"mWakefulness=(\w+)", text)
    return wake.group(1) == "Awake" if wake else None


def parse_guard_output(stdout: str, *, android: bool) -> dict[str, object]:
    sections = section_lines(stdout)
    loadavg_fields = " ".join(sections.get("loadavg", [])).split()
    try:
        loadavg: list[float] | None = [float(v) for v in loadavg_fields[:3]]
    except ValueError:
        loadavg = None
    if loadavg is not None and len(loadavg) < 3:
        loadavg = None
    cpus: list[dict[str, object]] = []
    thermal: list[dict[str, object]] = []
    for name, lines in sections.items():
        fields = _fields(lines)
        if name.startswith("cpu ") and name[4:].isdigit():
            cpus.append(
                {
                    "cpu": int(name[4:]),
                    "cur_khz": _int(fields.get("scaling_cur_freq")),
                    "max_khz": _int(fields.get("cpuinfo_max_freq")),
                    "scaling_max_khz": _int(fields.get("scaling_max_freq")),
                    "scaling_min_khz": _int(fields.get("scaling_min_freq")),
                    "governor": fields.get("scaling_governor") or None,
                }
            )
        elif name.startswith("thermal "):
            millic = _int(fields.get("temp"))
            if millic is None:
                continue
            passive = _int(fields.get("passive"))
            thermal.append(
                {
                    "zone": name[8:],
                    "type": fields.get("type", ""),
                    "temp_c": millic / 1000.0,
                    "passive_c": passive / 1000.0 if passive else None,
                }
            )
    cpus.sort(key=lambda c: int(str(c["cpu"])))
    thermal.sort(key=lambda z: _zone_index(str(z["zone"])))
    reading: dict[str, object] = {
        "proc_stat": parse_proc_stat_ticks(sections.get("stat", [])),
        "clock_ticks_per_s": _int(" ".join(sections.get("clk", []))) or DEFAULT_CLOCK_TICKS,
        "loadavg": loadavg,
        "cpus": cpus,
        "thermal": thermal,
    }
    if android:
        service = parse_thermalservice("\n".join(sections.get("thermalservice", [])))
        reading["android"] = {
            "thermal_status": service["thermal_status"],
            **parse_battery(sections.get("battery", [])),
            "screen_on": parse_power(sections.get("power", [])),
        }
    return reading


def _zone_index(zone: str) -> int:
    digits = re.sub(r"\D", "", zone)
    return int(digits) if digits else -1


def passive_limit_c(reading: Mapping[str, object]) -> float | None:
    """The lowest passive trip point of the reading's zones: the device's own hot limit."""
    zones = reading.get("thermal")
    limits = [
        float(p)
        for z in (zones if isinstance(zones, list) else [])
        if isinstance(z, Mapping) and isinstance(p := z.get("passive_c"), (int, float))
    ]
    return min(limits) if limits else None
