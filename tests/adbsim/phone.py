"""A simulated phone: its properties, CPU/thermal/battery facts and its sandbox on the host.

The fixture mirrors what a real device exposes (docs/devices.md, "Device facts"):
``getprop`` keys, ``/sys/devices/system/cpu/cpuN/cpufreq/*`` in kHz,
``/sys/class/thermal/thermal_zoneN/{type,temp}`` in milli-degrees C, ``dumpsys battery``
(temperature in tenths of a degree C), ``/proc/cpuinfo`` and ``/proc/meminfo``.
``build_sandbox`` writes that tree under a host directory, with ``getprop`` and
``dumpsys`` as small ``/bin/sh`` scripts on the sandbox ``PATH``. ``dumpsys`` answers
``battery`` (charging or not), ``thermalservice`` (``thermal.py``; static zones when the
phone has no thermal model) and ``power`` (the screen: ``mWakefulness`` and ``Display
Power: state``, as ``PowerManagerService.dump`` prints them).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from tests.adbsim.thermal import ThermalModel, dumpsys_thermalservice, thermal_status


@dataclass(frozen=True)
class Core:
    """One CPU core as cpufreq reports it."""

    max_khz: int
    cur_khz: int
    min_khz: int = 300_000
    governor: str = "schedutil"
    part: str = "0xd05"  # MIDR part number shown in /proc/cpuinfo


@dataclass(frozen=True)
class Phone:
    """Everything the simulated device answers about itself."""

    props: Mapping[str, str]
    cores: tuple[Core, ...]
    thermal_zones: tuple[tuple[str, int], ...]  # (type, milli-degrees C)
    battery_level_pct: int = 87
    battery_temperature_decidegc: int = 312
    mem_total_kb: int = 7_825_836
    charging: bool = True  # on USB, as a phone on a benchmark bench usually is
    screen_on: bool = True
    thermal: ThermalModel | None = None  # None: the zones keep their temperatures
    extra_files: Mapping[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.props["ro.product.model"]

    def banner(self, features: tuple[str, ...]) -> bytes:
        """The CNXN banner adbd sends (adb.cpp ``get_connection_string``), without a NUL."""
        keys = ("ro.product.name", "ro.product.model", "ro.product.device")
        fields = ";".join(f"{key}={self.props.get(key, '')}" for key in keys)
        return f"device::{fields};features={','.join(features)}".encode()


def pixel_like() -> Phone:
    """A Pixel-like phone: 4 little cores at 1.8 GHz and 4 big cores at 2.8 GHz max."""
    props = {
        "ro.product.manufacturer": "Google",
        "ro.product.brand": "google",
        "ro.product.model": "Pixel Sim 8",
        "ro.product.name": "simfish",
        "ro.product.device": "simfish",
        "ro.board.platform": "zuma",
        "ro.hardware": "simfish",
        "ro.soc.manufacturer": "Google",
        "ro.soc.model": "Tensor G3",
        "ro.build.version.release": "14",
        "ro.build.version.sdk": "34",
        "ro.build.fingerprint": (
            "google/simfish/simfish:14/UQ1A.240105.004/11206848:user/release-keys"
        ),
        "ro.build.type": "user",
        "ro.debuggable": "0",
        "ro.product.cpu.abi": "arm64-v8a",
        "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
        "ro.product.cpu.abilist64": "arm64-v8a",
        "ro.product.cpu.abilist32": "armeabi-v7a,armeabi",
        "persist.sys.timezone": "Europe/Zurich",
    }
    little = Core(max_khz=1_800_000, cur_khz=1_197_000, part="0xd05")
    big = Core(max_khz=2_800_000, cur_khz=2_253_000, part="0xd41", governor="schedutil")
    return Phone(
        props=MappingProxyType(props),
        cores=(little,) * 4 + (big,) * 4,
        thermal_zones=(
            ("battery", 31_200),
            ("skin-therm", 33_500),
            ("cpu-0-0", 41_000),
            ("cpu-1-0", 45_300),
            ("gpu", 39_800),
        ),
    )


def getprop_listing(props: Mapping[str, str]) -> str:
    return "".join(f"[{key}]: [{props[key]}]\n" for key in sorted(props))


def dumpsys_battery(phone: Phone) -> str:
    # BatteryManager: BATTERY_STATUS_CHARGING = 2, BATTERY_STATUS_DISCHARGING = 3.
    return (
        "Current Battery Service state:\n"
        "  AC powered: false\n"
        f"  USB powered: {'true' if phone.charging else 'false'}\n"
        "  Wireless powered: false\n"
        "  Max charging current: 500000\n"
        "  Max charging voltage: 5000000\n"
        "  Charge counter: 3866000\n"
        f"  status: {2 if phone.charging else 3}\n"
        "  health: 2\n"
        "  present: true\n"
        f"  level: {phone.battery_level_pct}\n"
        "  scale: 100\n"
        "  voltage: 4183\n"
        f"  temperature: {phone.battery_temperature_decidegc}\n"
        "  technology: Li-ion\n"
    )


def dumpsys_power(phone: Phone) -> str:
    """The part of ``dumpsys power`` that says whether the screen is on."""
    awake = "Awake" if phone.screen_on else "Asleep"
    return (
        "POWER MANAGER (dumpsys power)\n\n"
        "Power Manager State:\n"
        "  mDirty=0x0\n"
        f"  mWakefulness={awake}\n"
        "  mWakefulnessChanging=false\n"
        f"  mIsPowered={'true' if phone.charging else 'false'}\n"
        f"  mPlugType={2 if phone.charging else 0}\n"
        f"  mBatteryLevel={phone.battery_level_pct}\n"
        "  mStayOn=false\n"
        "\n"
        "Display Power: state=" + ("ON" if phone.screen_on else "OFF") + "\n"
    )


def static_thermalservice(phone: Phone) -> str:
    zones = [(kind, millic / 1000.0) for kind, millic in phone.thermal_zones]
    cpu = [t for kind, t in zones if kind.startswith("cpu")] or [0.0]
    trip = phone.thermal.trip_c if phone.thermal else 55.0
    return dumpsys_thermalservice(zones, thermal_status(max(cpu), trip))


def cpuinfo(phone: Phone) -> str:
    blocks = []
    for index, core in enumerate(phone.cores):
        blocks.append(
            f"processor\t: {index}\n"
            "BogoMIPS\t: 49.15\n"
            "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
            "cpuid asimdrdm lrcpc dcpop asimddp\n"
            "CPU implementer\t: 0x41\n"
            "CPU architecture: 8\n"
            "CPU variant\t: 0x1\n"
            f"CPU part\t: {core.part}\n"
            "CPU revision\t: 0\n"
        )
    return "\n".join(blocks) + "\nHardware\t: " + phone.props.get("ro.hardware", "") + "\n"


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def build_sandbox(phone: Phone, root: Path) -> None:
    """Write the device's file tree under ``root`` (which plays ``/``)."""
    (root / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
    cpu = root / "sys" / "devices" / "system" / "cpu"
    count = len(phone.cores)
    span = f"0-{count - 1}"
    for name in ("present", "possible", "online"):
        _write(cpu / name, span + "\n")
    for index, core in enumerate(phone.cores):
        freq = cpu / f"cpu{index}" / "cpufreq"
        values = {
            "cpuinfo_max_freq": core.max_khz,
            "cpuinfo_min_freq": core.min_khz,
            "scaling_max_freq": core.max_khz,
            "scaling_min_freq": core.min_khz,
            "scaling_cur_freq": core.cur_khz,
            "scaling_governor": core.governor,
            "scaling_available_governors": "sched_pixel schedutil performance powersave",
        }
        for name, value in values.items():
            _write(freq / name, f"{value}\n")
        _write(cpu / f"cpu{index}" / "online", "1\n")
    thermal = root / "sys" / "class" / "thermal"
    for index, (kind, millic) in enumerate(phone.thermal_zones):
        _write(thermal / f"thermal_zone{index}" / "type", kind + "\n")
        _write(thermal / f"thermal_zone{index}" / "temp", f"{millic}\n")
    _write(root / "proc" / "cpuinfo", cpuinfo(phone))
    _write(
        root / "proc" / "meminfo",
        f"MemTotal:       {phone.mem_total_kb} kB\n"
        f"MemFree:         {phone.mem_total_kb // 5} kB\n"
        f"MemAvailable:    {phone.mem_total_kb // 2} kB\n",
    )
    etc = root / "system" / "etc"
    _write(etc / "sim-props", "".join(f"{k}={v}\n" for k, v in sorted(phone.props.items())))
    _write(etc / "sim-props.all", getprop_listing(phone.props))
    _write(etc / "sim-dumpsys-battery", dumpsys_battery(phone))
    _write(etc / "sim-dumpsys-power", dumpsys_power(phone))
    _write(etc / "sim-dumpsys-thermalservice", static_thermalservice(phone))
    bin_dir = root / "system" / "bin"
    props_file = shlex.quote(str(etc / "sim-props"))
    _write(
        bin_dir / "getprop",
        "#!/bin/sh\n"
        f'if [ "$#" -eq 0 ]; then exec cat {shlex.quote(str(etc / "sim-props.all"))}; fi\n'
        f'exec awk -v k="$1" -v d="${{2-}}" '
        '\'index($0, k "=") == 1 { print substr($0, length(k) + 2); f = 1; exit } '
        "END { if (!f) print d }' "
        f"{props_file}\n",
        0o755,
    )
    _write(
        bin_dir / "dumpsys",
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  battery) exec cat {shlex.quote(str(etc / 'sim-dumpsys-battery'))} ;;\n"
        f"  power) exec cat {shlex.quote(str(etc / 'sim-dumpsys-power'))} ;;\n"
        f"  thermalservice) exec cat {shlex.quote(str(etc / 'sim-dumpsys-thermalservice'))} ;;\n"
        '  *) echo "Can\'t find service: $1"; exit 0 ;;\n'
        "esac\n",
        0o755,
    )
    for relative, text in phone.extra_files.items():
        _write(root / relative.lstrip("/"), text)
