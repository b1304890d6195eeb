"""Android device facts, core clusters and ABI checks, through any Transport.

Sources: the properties a benchmark records (``ro.product.*``, ``ro.soc.*`` from Android 12
``SocProperties.sysprop``, ``ro.build.*``, ``ro.product.cpu.abilist``); cpufreq sysfs
files in kHz (``Documentation/cpu-freq/user-guide`` in the Linux kernel); thermal zones in
milli-degrees C (``Documentation/driver-api/thermal/sysfs-api``); ``dumpsys battery``
with the temperature in tenths of a degree (``BatteryService``); big/LITTLE grouping by
``cpuinfo_max_freq`` as ncnn's ``src/cpu.cpp`` does; the hex affinity mask of toybox
``taskset`` (``toys/other/taskset.c``); ELF ``e_machine`` values from the System V ABI
(EM_386 = 3, EM_ARM = 40, EM_X86_64 = 62, EM_AARCH64 = 183).

Everything is read in one shell round trip (``collect_android_facts``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from devices.errors import DeviceError
from devices.probe import MAX_CPU
from devices.transport import Transport

ANDROID_PROP_KEYS: tuple[str, ...] = (
    "ro.product.manufacturer",
    "ro.product.brand",
    "ro.product.model",
    "ro.product.name",
    "ro.product.device",
    "ro.board.platform",
    "ro.hardware",
    "ro.soc.manufacturer",
    "ro.soc.model",
    "ro.build.version.release",
    "ro.build.version.sdk",
    "ro.build.fingerprint",
    "ro.build.type",
    "ro.product.cpu.abi",
    "ro.product.cpu.abilist",
)

ClusterName = Literal["little", "big", "prime"]
Abi = Literal["arm64-v8a", "armeabi-v7a", "x86_64", "x86"]
_ELF_MACHINES: dict[int, Abi] = {183: "arm64-v8a", 40: "armeabi-v7a", 62: "x86_64", 3: "x86"}

FACTS_TIMEOUT_S = 60.0

# One static script (no user input in it): every section starts with "== NAME".
_FACTS_SCRIPT = r"""
echo "== getprop"; getprop
echo "== uname"; uname -a
echo "== meminfo"; grep -E '^MemTotal:' /proc/meminfo
for c in /sys/devices/system/cpu/cpu[0-9]*; do
  [ -d "$c" ] || continue
  echo "== cpu ${c##*/cpu}"
  for f in cpuinfo_max_freq scaling_cur_freq scaling_governor; do
    printf '%s=' "$f"; cat "$c/cpufreq/$f" 2>/dev/null || echo
  done
done
for z in /sys/class/thermal/thermal_zone*; do
  [ -d "$z" ] || continue
  echo "== thermal ${z##*/}"
  printf 'type='; cat "$z/type" 2>/dev/null || echo
  printf 'temp='; cat "$z/temp" 2>/dev/null || echo
done
echo "== battery"; dumpsys battery 2>/dev/null
true
"""

_PROP_RE = re.compile(r"^\[(?P<key>[^\]]+)\]: \[(?P<value>.*)\]$")


class AbiMismatch(DeviceError):
    """A binary built for an ABI the phone cannot run."""


def collect_android_facts(transport: Transport) -> dict[str, object]:
    """Properties, CPUs and clusters, thermal zones, battery, memory and kernel of a phone."""
    done = transport.run(["sh", "-c", _FACTS_SCRIPT], timeout_s=FACTS_TIMEOUT_S)
    sections = _sections(done.stdout)
    all_props = _parse_getprop(sections.get("getprop", []))
    props = {key: all_props.get(key) for key in ANDROID_PROP_KEYS}

    cpus: list[dict[str, object]] = []
    for name, lines in sections.items():
        if not name.startswith("cpu "):
            continue
        fields = _key_values(lines)
        cpus.append(
            {
                "cpu": int(name.split()[1]),
                "max_khz": _int_or_none(fields.get("cpuinfo_max_freq")),
                "cur_khz": _int_or_none(fields.get("scaling_cur_freq")),
                "governor": fields.get("scaling_governor") or None,
            }
        )
    cpus.sort(key=lambda c: int(str(c["cpu"])))
    max_khz = {int(str(c["cpu"])): int(str(c["max_khz"])) for c in cpus if c["max_khz"] is not None}

    zones: list[dict[str, object]] = []
    for name, lines in sections.items():
        if name.startswith("thermal "):
            fields = _key_values(lines)
            millic = _int_or_none(fields.get("temp"))
            zones.append(
                {
                    "zone": name.split()[1],
                    "type": fields.get("type") or None,
                    "temp_c": millic / 1000 if millic is not None else None,
                }
            )
    zones.sort(key=lambda z: _zone_index(str(z["zone"])))

    mem_total_bytes = None
    for line in sections.get("meminfo", []):
        match = re.match(r"MemTotal:\s+(\d+)\s*kB", line)
        if match:
            mem_total_bytes = int(match.group(1)) * 1024

    abilist = props.get("ro.product.cpu.abilist") or props.get("ro.product.cpu.abi") or ""
    sdk = _int_or_none(props.get("ro.build.version.sdk"))
    return {
        "kind": "android",
        "getprop": props,
        "manufacturer": props["ro.product.manufacturer"],
        "model": props["ro.product.model"],
        "soc": _soc_name(props),
        "android_release": props["ro.build.version.release"],
        "sdk": sdk,
        "build_type": props["ro.build.type"],
        "abilist": [abi for abi in abilist.split(",") if abi],
        "uname": " ".join(sections.get("uname", [])).strip() or None,
        "mem_total_bytes": mem_total_bytes,
        "cpu_count": len(cpus),
        "cpus": cpus,
        "clusters": cluster_cpus(max_khz),
        "thermal_zones": zones,
        "battery": _parse_battery(sections.get("battery", [])),
    }


def cluster_cpus(per_core_max_khz: Mapping[int, int]) -> dict[str, list[int]]:
    """Group cores by maximum frequency: ``little`` (slowest), ``big``, ``prime``.

    ``big`` is every core faster than the little cluster (what a "big cores" taskset mask
    means); with three or more frequency levels the fastest level is also ``prime``. A
    phone whose cores all share one frequency has ``big`` == ``little`` == all cores.
    """
    if not per_core_max_khz:
        return {}
    levels = sorted(set(per_core_max_khz.values()))
    by_level = {
        level: sorted(cpu for cpu, khz in per_core_max_khz.items() if khz == level)
        for level in levels
    }
    everyone = sorted(per_core_max_khz)
    if len(levels) == 1:
        return {"little": everyone, "big": everyone}
    clusters = {
        "little": by_level[levels[0]],
        "big": sorted(cpu for cpu, khz in per_core_max_khz.items() if khz > levels[0]),
    }
    if len(levels) >= 3:
        clusters["prime"] = by_level[levels[-1]]
    return clusters


def taskset_mask(cpus: Sequence[int]) -> str:
    """The hex affinity mask toybox/util-linux ``taskset`` takes, e.g. [4, 5, 6, 7] → f0."""
    if not cpus:
        raise ValueError("an affinity mask needs at least one CPU")
    mask = 0
    for cpu in cpus:
        if cpu < 0:
            raise ValueError(f"not a CPU number: {cpu}")
        mask |= 1 << cpu
    return f"{mask:x}"


def resolve_cores(spec: str, facts: Mapping[str, object]) -> list[int]:
    """CPU numbers for ``big``, ``little``, ``prime``, ``all``, ``0xMASK`` or ``0,2,4-7``."""
    text = spec.strip().lower()
    known = _known_cpus(facts)
    clusters = facts.get("clusters")
    if text == "all":
        cpus = sorted(known)
    elif text in ("big", "little", "prime"):
        members = clusters.get(text) if isinstance(clusters, Mapping) else None
        if not members:
            available = ", ".join(sorted(clusters)) if isinstance(clusters, Mapping) else "none"
            raise DeviceError(
                f"this device has no {text!r} cores (clusters: {available}); "
                "use all, a list like 0-3 or a hex mask like 0xf0"
            )
        cpus = sorted(int(cpu) for cpu in members)
    elif text.startswith("0x"):
        try:
            mask = int(text, 16)
        except ValueError:
            raise DeviceError(f"bad CPU mask {spec[:60]!r}; write it in hex like 0xf0") from None
        if mask.bit_length() > MAX_CPU + 1:
            raise DeviceError(
                f"CPU mask {spec[:60]!r} names cores above {MAX_CPU}; no device has them"
            )
        cpus = [bit for bit in range(mask.bit_length()) if mask >> bit & 1]
    else:
        cpus = _parse_cpu_list(spec)
    if not cpus:
        raise DeviceError(f"CPU selection {spec[:60]!r} selects no cores; pick at least one")
    missing = [cpu for cpu in cpus if known and cpu not in known]
    if missing:
        raise DeviceError(
            f"CPU selection {spec[:60]!r} names cores {_few(missing)} the device does not have "
            f"(it has {_span(sorted(known))}); choose among those"
        )
    return cpus


def abi_of_elf(path: Path) -> Abi:
    """The Android ABI a local ELF binary or library was built for (from ``e_machine``)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError as exc:
        raise DeviceError(f"cannot read {path}: {exc.strerror}; check the path") from exc
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise DeviceError(f"{path} is not an ELF binary; give an Android build of the tool")
    order: Literal["little", "big"] = "little" if header[5] == 1 else "big"
    machine = int.from_bytes(header[18:20], order)
    abi = _ELF_MACHINES.get(machine)
    if abi is None:
        raise DeviceError(
            f"{path} is built for ELF machine {machine}, not an Android ABI; "
            "build it for arm64-v8a or armeabi-v7a"
        )
    return abi


def require_abi(binary: Path, facts: Mapping[str, object]) -> Abi:
    """The binary's ABI, or ``AbiMismatch`` when the phone's abilist does not contain it."""
    abi = abi_of_elf(binary)
    abilist = facts.get("abilist")
    supported = [str(a) for a in abilist] if isinstance(abilist, list) else []
    if supported and abi not in supported:
        raise AbiMismatch(
            f"{binary.name} is built for {abi} but the phone runs {','.join(supported)}; "
            f"use a build for {supported[0]}"
        )
    return abi


# -- parsing helpers ------------------------------------------------------------------


def _sections(stdout: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in stdout.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("== "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
    return sections


def _parse_getprop(lines: Sequence[str]) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in lines:
        match = _PROP_RE.match(line)
        if match:
            props[match.group("key")] = match.group("value")
    return props


def _key_values(lines: Sequence[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _parse_battery(lines: Sequence[str]) -> dict[str, object]:
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    level = _int_or_none(fields.get("level"))
    scale = _int_or_none(fields.get("scale")) or 100
    temp = _int_or_none(fields.get("temperature"))
    return {
        "level_pct": round(level * 100 / scale) if level is not None else None,
        "temperature_c": temp / 10 if temp is not None else None,
        "status": _int_or_none(fields.get("status")),
        "usb_powered": fields.get("usb powered") == "true" if "usb powered" in fields else None,
    }


def _soc_name(props: Mapping[str, str | None]) -> str | None:
    maker, model = props.get("ro.soc.manufacturer"), props.get("ro.soc.model")
    if model:
        return f"{maker} {model}" if maker else model
    return props.get("ro.board.platform") or props.get("ro.hardware")


def _known_cpus(facts: Mapping[str, object]) -> set[int]:
    cpus = facts.get("cpus")
    known: set[int] = set()
    if isinstance(cpus, list):
        for entry in cpus:
            if isinstance(entry, Mapping) and "cpu" in entry:
                known.add(int(entry["cpu"]))
    return known


def _parse_cpu_list(spec: str) -> list[int]:
    cpus: set[int] = set()
    try:
        for raw in spec.split(","):
            part = raw.strip()
            if not part:
                continue
            first, _, last = part.partition("-")
            start, end = int(first), int(last or first)
            if end < start:
                raise ValueError
            if end > MAX_CPU:
                raise DeviceError(
                    f"CPU selection {spec[:60]!r} names core {end}; core numbers stop at {MAX_CPU}"
                )
            cpus.update(range(start, end + 1))
    except ValueError:
        raise DeviceError(
            f"bad CPU selection {spec[:60]!r}; use big, little, prime, all, 0,1,4-7 "
            "or a mask like 0xf0"
        ) from None
    return sorted(cpus)


def _few(cpus: Sequence[int]) -> str:
    """A short list of core numbers for a message: all of them, or the ends and the count."""
    return str(list(cpus)) if len(cpus) <= 8 else f"[{cpus[0]}, ..., {cpus[-1]}] ({len(cpus)})"


def _span(cpus: Sequence[int]) -> str:
    return f"{cpus[0]}-{cpus[-1]}" if cpus else "none"


def _zone_index(zone: str) -> int:
    digits = re.sub(r"\D", "", zone)
    return int(digits) if digits else 0


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None
