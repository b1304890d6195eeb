"""Android device facts, core clusters and ABI checks, through any Transport.

Sources: the properties a benchmark records (``ro.product.*``, ``ro.soc.*`` from Android 12
``SocProperties.sysprop``, ``ro.build.*``, ``ro.product.cpu.abilist``); cpufreq sysfs
files in kHz (``Documentation/cpu-freq/user-guide`` in the Linux kernel); thermal zones in
milli-degrees C (``Documentation/driver-api/thermal/sysfs-api``); ``dumpsys battery``
with the temperature in tenths of a degree (``BatteryService``); the clusters by
``cpuinfo_max_freq`` with the agent's one rule (``devices/agent/cores.py``); ELF
``e_machine`` values from the System V ABI (EM_386 = 3, EM_ARM = 40, EM_X86_64 = 62,
EM_AARCH64 = 183).

Everything is read in one shell round trip (``collect_android_facts``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from devices.agent.cores import clusters
from devices.errors import DeviceError
from devices.probe import resolve_cpus, section_lines
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
    sections = section_lines(done.stdout)
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
        "clusters": clusters(max_khz),
        "thermal_zones": zones,
        "battery": _parse_battery(sections.get("battery", [])),
    }


def resolve_cores(spec: str, facts: Mapping[str, object]) -> list[int]:
    """CPU numbers for ``big``, ``little``, ``prime``, ``all``, ``0xMASK`` or ``0,2,4-7`` on a
    phone: the same selection as on every other device (``devices.probe.resolve_cpus``)."""
    cpus = resolve_cpus(spec, facts)
    if cpus is None:
        raise DeviceError("an empty CPU selection selects no cores; pick at least one")
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
