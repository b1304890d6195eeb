"""Host facts the agent records before and after a run: what the device was doing.

CPU model (``/proc/cpuinfo`` "model name", "Hardware" or the ARM part names), the affinity
of the process and the union over its threads (``/proc/self/task``), per-core frequency and
governor (sysfs cpufreq, kHz), thermal zones (milli-degrees C), load average; plus the peak
resident set size and the model file's size and digest. Missing files give null or empty
values, never an exception.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import platform
import sys
import time

from devices.agent.cpus import parse_cpu_list
from devices.agent.errors import UsageError
from devices.agent.parts import part_name
from devices.agent.record import CpuFacts, HostFacts, ModelFacts, ThermalFacts


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, ValueError):
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _numeric_suffix(path: str, prefix: str) -> int:
    name = os.path.basename(path)
    try:
        return int(name[len(prefix) :])
    except ValueError:
        return -1


def cpu_model() -> str | None:
    """CPU model from /proc/cpuinfo ("model name", "Hardware", "CPU part"), else platform."""
    text = _read("/proc/cpuinfo")
    if text:
        fields: dict[str, list[str]] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), []).append(value.strip())
        for key in ("model name", "hardware"):
            values = [v for v in fields.get(key, []) if v]
            if values:
                return values[0]
        parts: list[str] = []
        for part in fields.get("cpu part", []):
            name = part_name(part)
            if name not in parts:
                parts.append(name)
        if parts:
            return " + ".join(parts)
    processor = platform.processor()
    return processor or None


def current_affinity() -> list[int] | None:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return sorted(getter(0))
    except OSError:
        return None


def thread_affinity() -> list[int] | None:
    """Union of the CPUs every thread of this process may run on (/proc/self/task)."""
    cpus: set[int] = set()
    for status_path in glob.glob("/proc/self/task/*/status"):
        status = _read(status_path)
        if not status:
            continue
        for line in status.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                with contextlib.suppress(ValueError):
                    cpus.update(parse_cpu_list(line.split(":", 1)[1]))
    return sorted(cpus) if cpus else None


def collect_host_facts() -> HostFacts:
    """Facts about the host at this moment; missing files give null/empty, never raise."""
    cpus: list[CpuFacts] = []
    cpu_dirs = glob.glob("/sys/devices/system/cpu/cpu[0-9]*")
    for cpu_dir in sorted(cpu_dirs, key=lambda p: _numeric_suffix(p, "cpu")):
        index = _numeric_suffix(cpu_dir, "cpu")
        if index < 0:
            continue
        freq = os.path.join(cpu_dir, "cpufreq")
        cpus.append(
            {
                "cpu": index,
                "cur_khz": _read_int(os.path.join(freq, "scaling_cur_freq")),
                "max_khz": _read_int(os.path.join(freq, "cpuinfo_max_freq")),
                "scaling_max_khz": _read_int(os.path.join(freq, "scaling_max_freq")),
                "scaling_min_khz": _read_int(os.path.join(freq, "scaling_min_freq")),
                "governor": _read(os.path.join(freq, "scaling_governor")),
            }
        )
    thermal: list[ThermalFacts] = []
    zones = glob.glob("/sys/class/thermal/thermal_zone*")
    for zone in sorted(zones, key=lambda p: _numeric_suffix(p, "thermal_zone")):
        millideg = _read_int(os.path.join(zone, "temp"))
        if millideg is None:
            continue
        thermal.append(
            {
                "zone": os.path.basename(zone),
                "type": _read(os.path.join(zone, "type")) or "",
                "temp_c": millideg / 1000.0,
            }
        )
    try:
        loadavg: list[float] | None = [float(x) for x in os.getloadavg()]
    except (OSError, AttributeError):
        loadavg = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "affinity": current_affinity(),
        "thread_affinity": thread_affinity(),
        "cpus": cpus,
        "thermal": thermal,
        "loadavg": loadavg,
        "time_unix": time.time(),
    }


def peak_rss() -> tuple[int | None, str | None]:
    """(peak resident set size in bytes, source): VmHWM, else ru_maxrss, else (None, None)."""
    status = _read("/proc/self/status")
    if status:
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                fields = line.split()
                try:
                    return int(fields[1]) * 1024, "VmHWM"
                except (IndexError, ValueError):
                    break
    try:
        import resource  # not on Windows

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError, ValueError):
        return None, None
    if maxrss <= 0:
        return None, None
    # Linux reports KiB, macOS bytes.
    return (int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024), "ru_maxrss"


def model_facts(path: str) -> ModelFacts:
    """Path, size and sha256 of the model file; ``UsageError`` when it is missing."""
    if not os.path.isfile(path):
        raise UsageError(f"model file not found: {path} (push it to the device first)")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": path, "file_bytes": os.path.getsize(path), "sha256": digest.hexdigest()}
