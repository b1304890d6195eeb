"""Device facts, read from the device itself through any Transport, in one remote call.

What is collected (docs/devices.md, "Device facts"): the board model
(``/proc/device-tree/model``), CPU model and per-core ARM core types (``/proc/cpuinfo``
"CPU implementer"/"CPU part", named with the MIDR part numbers of Linux's
``arch/arm64/include/asm/cputype.h``), per-core ``cpuinfo_max_freq``/``scaling_cur_freq``/
``scaling_governor`` (sysfs cpufreq, kHz), thermal zones (``/sys/class/thermal``, milli-°C),
``/proc/meminfo``, ``uname -srm``, ``/etc/os-release`` and ``nproc``. One constant POSIX
``sh`` script prints them as ``== NAME`` sections (never built from user input), so an SSH
or adb device costs one round trip; the parsing is pure and tested on recorded samples.

Core selection (``resolve_cpus``) applies the agent's one cluster rule
(``devices/agent/cores.py``: little = the slowest cluster, big = every faster core, prime =
the fastest of three or more levels) to the facts of any device, Linux or Android.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from devices.agent.cores import CORE_WORDS, CoreSelectionError, select_cores
from devices.agent.cpus import MAX_CPU
from devices.agent.parts import arm_core_name
from devices.errors import DeviceError
from devices.transport import CommandFailed, Transport, TransportError

FACTS_SCRIPT = r"""
section() { printf '\n== %s\n' "$1"; }
for f in /proc/device-tree/model /proc/cpuinfo /proc/meminfo /etc/os-release; do
  if [ -r "$f" ]; then section "$f"; cat "$f" 2>/dev/null; fi
done
section uname
uname -srm 2>/dev/null
section nproc
nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
section cpufreq
for d in /sys/devices/system/cpu/cpu[0-9]*; do
  [ -d "$d/cpufreq" ] || continue
  for k in cpuinfo_max_freq scaling_cur_freq scaling_governor; do
    v=
    { read -r v < "$d/cpufreq/$k"; } 2>/dev/null
    [ -n "$v" ] && echo "${d##*/} $k $v"
  done
done
section thermal
for z in /sys/class/thermal/thermal_zone[0-9]*; do
  [ -d "$z" ] || continue
  t=; y=
  { read -r y < "$z/type"; } 2>/dev/null
  { read -r t < "$z/temp"; } 2>/dev/null
  echo "${z##*/} ${t:-?} ${y:-?}"
done
section end
"""

PYTHON_PROBE = r"""
import json, platform, sys
out = {"python": platform.python_version(), "machine": platform.machine(),
       "executable": sys.executable,
       "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix)}
for mod in ("numpy", "onnxruntime"):
    try:
        m = __import__(mod)
        out[mod] = str(getattr(m, "__version__", "unknown"))
    except Exception as exc:
        out[mod] = None
        out[mod + "_error"] = ("%s: %s" % (type(exc).__name__, exc))[:300]
print("MNBENCH-PROBE " + json.dumps(out))
"""


@dataclass(frozen=True)
class CpuCore:
    """One logical CPU as the device reports it."""

    cpu: int
    implementer: str | None = None
    part: str | None = None
    core_type: str | None = None  # "Cortex-A72", or the x86 "model name"
    max_freq_khz: int | None = None
    cur_freq_khz: int | None = None
    governor: str | None = None


@dataclass(frozen=True)
class ThermalZone:
    zone: str
    type: str
    temp_c: float | None


@dataclass(frozen=True)
class DeviceFacts:
    """What ``collect_facts`` found; ``to_dict`` is the JSON-able form stored with a run."""

    board_model: str | None = None
    cpu_model: str | None = None
    hardware: str | None = None
    cores: tuple[CpuCore, ...] = ()
    core_types: Mapping[str, int] = field(default_factory=dict)
    mem_total_bytes: int | None = None
    mem_available_bytes: int | None = None
    thermal: tuple[ThermalZone, ...] = ()
    kernel: str | None = None
    os_name: str | None = None
    nproc: int | None = None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["cores"] = [asdict(c) for c in self.cores]
        data["thermal"] = [asdict(t) for t in self.thermal]
        data["core_types"] = dict(self.core_types)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceFacts:
        return cls(
            board_model=data.get("board_model"),
            cpu_model=data.get("cpu_model"),
            hardware=data.get("hardware"),
            cores=tuple(CpuCore(**c) for c in data.get("cores", ())),
            core_types=dict(data.get("core_types", {})),
            mem_total_bytes=data.get("mem_total_bytes"),
            mem_available_bytes=data.get("mem_available_bytes"),
            thermal=tuple(ThermalZone(**t) for t in data.get("thermal", ())),
            kernel=data.get("kernel"),
            os_name=data.get("os_name"),
            nproc=data.get("nproc"),
        )

    @property
    def cpu_ids(self) -> list[int]:
        if self.cores:
            return sorted(c.cpu for c in self.cores)
        return list(range(self.nproc or 0))


# -- pure parsing -----------------------------------------------------------------------


def section_lines(text: str) -> dict[str, list[str]]:
    """The lines of each ``== NAME`` headed section of a device script's output (the probe's,
    the phone's facts, the guard readings); a name given twice gathers both."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("== "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
    return sections


def split_sections(text: str) -> dict[str, str]:
    """``== NAME`` headed sections of the probe script's output, each as one text."""
    return {name: "\n".join(lines).strip("\n") for name, lines in section_lines(text).items()}


def parse_cpuinfo(text: str) -> tuple[list[CpuCore], str | None, str | None]:
    """Cores, the CPU model name (x86 / 32-bit ARM) and the ``Hardware`` line."""
    cores: list[CpuCore] = []
    model: str | None = None
    hardware: str | None = None
    for block in re.split(r"\n\s*\n", text.replace("\x00", "")):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        hardware = fields.get("hardware", hardware)
        if "processor" not in fields or not fields["processor"].isdigit():
            model = fields.get("model name", model)
            continue
        name = fields.get("model name")
        model = name or model
        implementer = fields.get("cpu implementer")
        part = fields.get("cpu part")
        core_type = arm_core_name(implementer, part) or name
        if core_type is None and part is not None:
            core_type = f"unknown ({implementer}:{part})"
        cores.append(CpuCore(int(fields["processor"]), implementer, part, core_type))
    return cores, model, hardware


def parse_meminfo(text: str) -> tuple[int | None, int | None]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    return values.get("MemTotal"), values.get("MemAvailable")


def parse_os_release(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"').strip("'")
    return None


def parse_cpufreq(text: str) -> dict[int, dict[str, str]]:
    per_cpu: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].startswith("cpu") and parts[0][3:].isdigit():
            per_cpu.setdefault(int(parts[0][3:]), {})[parts[1]] = parts[2].strip()
    return per_cpu


def parse_thermal(text: str) -> list[ThermalZone]:
    zones: list[ThermalZone] = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        try:
            temp_c: float | None = int(parts[1]) / 1000.0
        except ValueError:
            temp_c = None
        zones.append(ThermalZone(parts[0], parts[2], temp_c))
    return zones


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_facts(text: str) -> DeviceFacts:
    """Everything the probe script printed, as a ``DeviceFacts``."""
    sections = split_sections(text)
    cores, model, hardware = parse_cpuinfo(sections.get("/proc/cpuinfo", ""))
    freqs = parse_cpufreq(sections.get("cpufreq", ""))
    by_cpu = {c.cpu: c for c in cores}
    for cpu in freqs:
        by_cpu.setdefault(cpu, CpuCore(cpu))
    merged: list[CpuCore] = []
    for cpu in sorted(by_cpu):
        f = freqs.get(cpu, {})
        core = by_cpu[cpu]
        merged.append(
            CpuCore(
                cpu=cpu,
                implementer=core.implementer,
                part=core.part,
                core_type=core.core_type,
                max_freq_khz=_int_or_none(f.get("cpuinfo_max_freq")),
                cur_freq_khz=_int_or_none(f.get("scaling_cur_freq")),
                governor=f.get("scaling_governor"),
            )
        )
    core_types: dict[str, int] = {}
    for core in merged:
        if core.core_type:
            core_types[core.core_type] = core_types.get(core.core_type, 0) + 1
    total, available = parse_meminfo(sections.get("/proc/meminfo", ""))
    board = sections.get("/proc/device-tree/model", "").replace("\x00", "").strip() or None
    nproc = _int_or_none(sections.get("nproc", "").strip() or None)
    return DeviceFacts(
        board_model=board,
        cpu_model=model,
        hardware=hardware,
        cores=tuple(merged),
        core_types=core_types,
        mem_total_bytes=total,
        mem_available_bytes=available,
        thermal=tuple(parse_thermal(sections.get("thermal", ""))),
        kernel=sections.get("uname", "").strip() or None,
        os_name=parse_os_release(sections.get("/etc/os-release", "")),
        nproc=nproc,
    )


# -- talking to the device --------------------------------------------------------------


def read_facts(transport: Transport, timeout_s: float = 60.0) -> DeviceFacts:
    done = transport.run(["sh", "-c", FACTS_SCRIPT], timeout_s=timeout_s, check=False)
    if "== end" not in done.stdout:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TransportError(f"reading device facts on {transport.name} failed: {tail[:300]}")
    return parse_facts(done.stdout)


def collect_facts(transport: Transport, timeout_s: float = 60.0) -> dict[str, object]:
    """The device's facts as a plain JSON-able dict (one remote call)."""
    return read_facts(transport, timeout_s).to_dict()


def probe_python(
    transport: Transport,
    python_argv: Sequence[str],
    timeout_s: float = 300.0,
    env: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The device Python's versions: python, machine, numpy and onnxruntime (None if absent)."""
    program = " ".join(python_argv)
    try:
        done = transport.run([*python_argv, "-c", PYTHON_PROBE], timeout_s=timeout_s, env=env)
    except CommandFailed as exc:
        tail = (exc.completed.stderr.strip().splitlines() or ["no output"])[-1]
        if exc.completed.rc in (126, 127):
            raise DeviceError(
                f"Python {program!r} was not found on {transport.name} ({tail[:200]}); install "
                "python3 there or set the device's python to an interpreter path"
            ) from exc
        raise DeviceError(f"Python {program!r} on {transport.name} failed: {tail[:300]}") from exc
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("MNBENCH-PROBE "):
            result: dict[str, object] = json.loads(line[len("MNBENCH-PROBE ") :])
            return result
    raise DeviceError(f"Python {program!r} on {transport.name} printed no version report")


# -- core selection ---------------------------------------------------------------------


def core_topology(facts: DeviceFacts | Mapping[str, Any]) -> tuple[list[int], dict[int, int]]:
    """(every core, maximum kHz of the cores that report one) from a device's facts: a Linux
    device's (``cores`` with ``max_freq_khz``) or an Android phone's (``cpus`` with
    ``max_khz``, ``devices/android.py``)."""
    if isinstance(facts, Mapping) and "cores" not in facts and "cpus" in facts:
        entries = [e for e in facts.get("cpus") or () if isinstance(e, Mapping) and "cpu" in e]
        cpus = sorted(int(e["cpu"]) for e in entries)
        max_khz = {int(e["cpu"]): int(e["max_khz"]) for e in entries if e.get("max_khz")}
        return cpus, max_khz
    device = facts if isinstance(facts, DeviceFacts) else DeviceFacts.from_dict(facts)
    max_khz = {c.cpu: c.max_freq_khz for c in device.cores if c.max_freq_khz}
    return device.cpu_ids, max_khz


_CPU_PIECE = re.compile(r"(\d{1,12})(?:-(\d{1,12}))?\Z")
MAX_SPEC_CHARS = 200


def check_cpu_spec(text: str, name: str = "cpus") -> str:
    """Refuse a CPU list whose numbers or size no machine has, before anything expands it."""
    spec = text.strip().lower()
    if spec in CORE_WORDS:
        return text
    if len(spec) > MAX_SPEC_CHARS:
        raise DeviceError(f"{name} {_shown(text)} is too long; give core numbers, ranges or a word")
    if spec.startswith("0x"):
        digits = spec[2:]
        if not digits or not re.fullmatch(r"[0-9a-f]+", digits):
            raise DeviceError(f"{name} {_shown(text)} is not a hex mask; write it like 0xf0")
        if int(digits, 16).bit_length() > MAX_CPU + 1:
            raise DeviceError(
                f"{name} {_shown(text)} names cores above {MAX_CPU}; no device has them"
            )
        return text
    for piece in spec.split(","):
        match = _CPU_PIECE.match(piece.strip())
        if not match:
            raise DeviceError(
                f"{name} {_shown(text)} is not a CPU list; use core numbers (0,1), ranges "
                "(4-7), big, little, all or a hex mask (0xf0)"
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last > MAX_CPU:
            raise DeviceError(
                f"{name} {_shown(text)} names core {last}; core numbers stop at {MAX_CPU}"
            )
        if last < first:
            raise DeviceError(f"{name}: range {piece.strip()!r} runs backwards; write low-high")
    return text


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:60] + "...")


def resolve_cpus(
    spec: str | None, facts: DeviceFacts | Mapping[str, Any] | None = None
) -> list[int] | None:
    """Core numbers for a spec ("0,1", "4-7", "big", "little", "prime", "all", "0xf0") on a
    Linux or Android device; None = no pinning."""
    if spec is None or not spec.strip():
        return None
    check_cpu_spec(spec)
    text = spec.strip().lower()
    cpus: list[int] = []
    max_khz: dict[int, int] = {}
    if facts is None:
        if text in CORE_WORDS:
            raise DeviceError(f"cpus = {spec!r} needs the device's facts; probe the device first")
    else:
        cpus, max_khz = core_topology(facts)
    try:
        return select_cores(spec, cpus, max_khz)
    except CoreSelectionError as error:
        raise DeviceError(str(error)) from None
