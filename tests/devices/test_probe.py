"""Device facts: pure parsing on recorded probe output, core selection, and real probes."""

from __future__ import annotations

import json
import platform
import sys

import pytest

from devices.agent.cores import clusters
from devices.agent.cpus import cpu_mask
from devices.agent.parts import ARM_PARTS, arm_core_name
from devices.errors import DeviceError
from devices.local import LocalTransport
from devices.probe import (
    DeviceFacts,
    collect_facts,
    core_topology,
    parse_facts,
    probe_python,
    read_facts,
    resolve_cpus,
    split_sections,
)


def _arm_cpu_block(n: int, part: str, revision: int, variant: str = "0x0") -> str:
    return (
        f"processor\t: {n}\n"
        "BogoMIPS\t: 108.00\n"
        "Features\t: fp asimd evtstrm crc32 cpuid\n"
        "CPU implementer\t: 0x41\n"
        "CPU architecture: 8\n"
        f"CPU variant\t: {variant}\n"
        f"CPU part\t: {part}\n"
        f"CPU revision\t: {revision}\n"
    )


def _cpufreq(rows: list[tuple[int, int, int, str]]) -> str:
    lines = []
    for cpu, max_khz, cur_khz, governor in rows:
        lines += [
            f"cpu{cpu} cpuinfo_max_freq {max_khz}",
            f"cpu{cpu} scaling_cur_freq {cur_khz}",
            f"cpu{cpu} scaling_governor {governor}",
        ]
    return "\n".join(lines)


# Raspberry Pi 4 Model B, Raspberry Pi OS bookworm (64-bit).
PI4 = (
    "\n== /proc/device-tree/model\nRaspberry Pi 4 Model B Rev 1.4\x00"
    "\n== /proc/cpuinfo\n"
    + "\n".join(_arm_cpu_block(n, "0xd08", 3) for n in range(4))
    + "\nHardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: 100000002a5a0e1d\n"
    "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
    "\n== /proc/meminfo\n"
    "MemTotal:        3884380 kB\nMemFree:         3012345 kB\nMemAvailable:    3401220 kB\n"
    "Buffers:           41236 kB\n"
    "\n== /etc/os-release\n"
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    "\n== uname\nLinux 6.6.31+rpt-rpi-v8 aarch64\n"
    "\n== nproc\n4\n"
    "\n== cpufreq\n" + _cpufreq([(n, 1800000, 600000, "ondemand") for n in range(4)]) + "\n"
    "\n== thermal\nthermal_zone0 48686 cpu-thermal\n"
    "\n== end\n"
)

# Firefly RK3399: cpu0-3 Cortex-A53 @1.416 GHz, cpu4-5 Cortex-A72 @1.8 GHz (Armbian).
RK3399 = (
    "\n== /proc/device-tree/model\nFirefly-RK3399 Board\x00"
    "\n== /proc/cpuinfo\n"
    + "\n".join(_arm_cpu_block(n, "0xd03", 4) for n in range(4))
    + "\n"
    + "\n".join(_arm_cpu_block(n, "0xd08", 2) for n in range(4, 6))
    + "\n== /proc/meminfo\nMemTotal:        3969488 kB\nMemAvailable:    3521004 kB\n"
    '\n== /etc/os-release\nPRETTY_NAME="Armbian 23.8.1 bookworm"\n'
    "\n== uname\nLinux 6.1.50-current-rockchip64 aarch64\n"
    "\n== nproc\n6\n"
    "\n== cpufreq\n"
    + _cpufreq(
        [(n, 1416000, 408000, "schedutil") for n in range(4)]
        + [(n, 1800000, 1800000, "schedutil") for n in range(4, 6)]
    )
    + "\n\n== thermal\nthermal_zone0 40000 soc-thermal\nthermal_zone1 39375 gpu-thermal\n"
    "\n== end\n"
)

# An x86 desktop (Ryzen 7 5800X, 4 of its 16 threads shown), Ubuntu 22.04, no device tree.
X86 = (
    "\n== /proc/cpuinfo\n"
    + "\n".join(
        f"processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 33\n"
        "model name\t: AMD Ryzen 7 5800X 8-Core Processor\nstepping\t: 0\n"
        "cpu MHz\t\t: 3800.000\ncache size\t: 512 KB\nflags\t\t: fpu vme de pse avx2\n"
        for n in range(4)
    )
    + "\n== /proc/meminfo\nMemTotal:       32827136 kB\nMemAvailable:   28109876 kB\n"
    '\n== /etc/os-release\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n'
    "\n== uname\nLinux 6.5.0-35-generic x86_64\n"
    "\n== nproc\n4\n"
    "\n== cpufreq\n" + _cpufreq([(n, 4850000, 3800000, "schedutil") for n in range(4)]) + "\n"
    "\n== thermal\nthermal_zone0 ? acpitz\nthermal_zone1 45250 x86_pkg_temp\n"
    "\n== end\n"
)


def test_split_sections() -> None:
    sections = split_sections(PI4)
    assert list(sections)[:3] == ["/proc/device-tree/model", "/proc/cpuinfo", "/proc/meminfo"]
    assert sections["nproc"] == "4"


def test_raspberry_pi_4() -> None:
    facts = parse_facts(PI4)
    assert facts.board_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts.hardware == "BCM2835"
    assert facts.cpu_model is None
    assert dict(facts.core_types) == {"Cortex-A72": 4}
    assert [c.cpu for c in facts.cores] == [0, 1, 2, 3]
    assert {c.max_freq_khz for c in facts.cores} == {1800000}
    assert {c.cur_freq_khz for c in facts.cores} == {600000}
    assert {c.governor for c in facts.cores} == {"ondemand"}
    assert facts.mem_total_bytes == 3884380 * 1024
    assert facts.mem_available_bytes == 3401220 * 1024
    assert facts.os_name == "Debian GNU/Linux 12 (bookworm)"
    assert facts.kernel == "Linux 6.6.31+rpt-rpi-v8 aarch64"
    assert facts.nproc == 4
    assert facts.thermal[0].type == "cpu-thermal"
    assert facts.thermal[0].temp_c == pytest.approx(48.686)


def test_rk3399_big_little() -> None:
    facts = parse_facts(RK3399)
    assert facts.board_model == "Firefly-RK3399 Board"
    assert dict(facts.core_types) == {"Cortex-A53": 4, "Cortex-A72": 2}
    assert facts.cores[4].core_type == "Cortex-A72"
    assert clusters(core_topology(facts)[1]) == {"little": [0, 1, 2, 3], "big": [4, 5]}
    assert resolve_cpus("big", facts) == [4, 5]
    assert resolve_cpus("little", facts) == [0, 1, 2, 3]
    assert resolve_cpus("all", facts) == [0, 1, 2, 3, 4, 5]
    assert cpu_mask(resolve_cpus("big", facts) or []) == "30"
    assert [z.temp_c for z in facts.thermal] == [pytest.approx(40.0), pytest.approx(39.375)]


def test_x86_desktop() -> None:
    facts = parse_facts(X86)
    assert facts.board_model is None
    assert facts.cpu_model == "AMD Ryzen 7 5800X 8-Core Processor"
    assert dict(facts.core_types) == {"AMD Ryzen 7 5800X 8-Core Processor": 4}
    assert facts.cores[0].implementer is None
    assert facts.thermal[0].temp_c is None
    assert facts.thermal[1].temp_c == pytest.approx(45.25)
    assert facts.os_name == "Ubuntu 22.04.4 LTS"
    # One frequency for every core: big and little are both "all cores".
    assert resolve_cpus("big", facts) == [0, 1, 2, 3]
    assert resolve_cpus("little", facts) == [0, 1, 2, 3]


def test_facts_round_trip_through_json() -> None:
    facts = parse_facts(RK3399)
    data = json.loads(json.dumps(facts.to_dict()))
    assert DeviceFacts.from_dict(data) == facts
    assert resolve_cpus("big", data) == [4, 5]


@pytest.mark.parametrize(
    ("implementer", "part", "name"),
    [
        ("0x41", "0xd03", "Cortex-A53"),
        ("0x41", "0xd05", "Cortex-A55"),
        ("0x41", "0xd08", "Cortex-A72"),
        ("0x41", "0xd0b", "Cortex-A76"),
        ("0x41", "0xd0c", "Neoverse-N1"),
        ("0x41", "0xd44", "Cortex-X1"),
        ("0x41", "0xd46", "Cortex-A510"),
        ("0x41", "0xd4f", "Neoverse-V2"),
        ("0x41", "0xd82", "Cortex-X4"),
        ("0x51", "0xd03", None),  # Qualcomm implementer: not an ARM part number
        ("0x41", "0xfff", None),
        (None, None, None),
    ],
)
def test_arm_core_names(implementer: str | None, part: str | None, name: str | None) -> None:
    assert arm_core_name(implementer, part) == name


def test_part_table_has_the_listed_cores() -> None:
    assert len(ARM_PARTS) == len(set(ARM_PARTS.values()))
    assert ARM_PARTS[0xD80] == "Cortex-A520"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, None),
        ("", None),
        ("0,1", [0, 1]),
        ("4-5", [4, 5]),
        ("0-1,4", [0, 1, 4]),
        (" 5 , 4 ", [4, 5]),
        ("0xf", [0, 1, 2, 3]),
        ("0x30", [4, 5]),
        ("BIG", [4, 5]),
    ],
)
def test_resolve_cpus(spec: str | None, expected: list[int] | None) -> None:
    assert resolve_cpus(spec, parse_facts(RK3399)) == expected


@pytest.mark.parametrize("spec", ["7", "0-9", "0x100", "x", "3-1", "0xzz", "1,,2"])
def test_resolve_cpus_rejects(spec: str) -> None:
    with pytest.raises(DeviceError) as info:
        resolve_cpus(spec, parse_facts(RK3399))
    assert "\n" not in info.value.message


def test_big_needs_frequencies() -> None:
    no_freq = parse_facts(PI4.replace("cpuinfo_max_freq", "other"))
    with pytest.raises(DeviceError, match="core numbers"):
        resolve_cpus("big", no_freq)


def test_three_clusters_slowest_cluster_rule() -> None:
    # Snapdragon 888-like: 4 x A55 @1.8, 3 x A78 @2.42, 1 x X1 @2.84 GHz.
    text = "\n== cpufreq\n" + _cpufreq(
        [(n, 1804800, 0, "s") for n in range(4)]
        + [(n, 2419200, 0, "s") for n in range(4, 7)]
        + [(7, 2841600, 0, "s")]
    )
    facts = parse_facts(text)
    assert resolve_cpus("big", facts) == [4, 5, 6, 7]
    assert resolve_cpus("little", facts) == [0, 1, 2, 3]
    assert resolve_cpus("prime", facts) == [7]


def test_big_is_every_core_faster_than_the_slowest_cluster() -> None:
    # 1.80 / 2.25 / 2.80 GHz: a midpoint rule (2.30 GHz) would call only core 7 big.
    text = "\n== cpufreq\n" + _cpufreq(
        [(n, 1800000, 0, "s") for n in range(4)]
        + [(n, 2250000, 0, "s") for n in range(4, 7)]
        + [(7, 2800000, 0, "s")]
    )
    facts = parse_facts(text)
    assert resolve_cpus("big", facts) == [4, 5, 6, 7]
    assert resolve_cpus("prime", facts) == [7]
    with pytest.raises(DeviceError, match="no 'prime' cores"):
        resolve_cpus("prime", parse_facts(RK3399))


# -- real devices ---------------------------------------------------------------------------


def test_collect_facts_on_this_machine(local_transport: LocalTransport) -> None:
    facts = collect_facts(local_transport)
    json.dumps(facts)
    assert facts["nproc"] and isinstance(facts["nproc"], int)
    assert platform.machine() in str(facts["kernel"])
    facts_obj = read_facts(local_transport)
    assert len(facts_obj.cores) >= 1
    assert facts_obj.mem_total_bytes and facts_obj.mem_total_bytes > 0


def test_probe_python_on_this_machine(local_transport: LocalTransport) -> None:
    versions = probe_python(local_transport, [sys.executable])
    assert versions["python"] == platform.python_version()
    assert versions["machine"] == platform.machine()
    import numpy
    import onnxruntime

    assert versions["numpy"] == numpy.__version__
    assert versions["onnxruntime"] == onnxruntime.__version__


def test_probe_python_missing_module(local_transport: LocalTransport) -> None:
    versions = probe_python(local_transport, [sys.executable, "-I", "-S"])
    assert versions["numpy"] is None
    assert "numpy_error" in versions


def test_probe_python_not_found(local_transport: LocalTransport) -> None:
    with pytest.raises(DeviceError) as info:
        probe_python(local_transport, ["sh", "-c", "exit 127", "nope"])
    assert "not found" in info.value.message


@pytest.mark.slow
def test_probe_emulated_arm64_board(local_transport: LocalTransport, arm64_board: object) -> None:
    from tests.fixtures.build_arm64_sysroot import Arm64Sysroot

    assert isinstance(arm64_board, Arm64Sysroot)
    versions = probe_python(local_transport, arm64_board.python_argv)
    assert versions["machine"] == "aarch64"
    assert versions["onnxruntime"] == "1.31.1"
    # The sysroot's proc/cpuinfo is what the emulated board sees (qemu -L lookup).
    done = local_transport.run(
        [*arm64_board.python_argv, "-c", "print(open('/proc/cpuinfo').read())"], timeout_s=300
    )
    cores = parse_facts("== /proc/cpuinfo\n" + done.stdout).core_types
    assert dict(cores) == {"Cortex-A72": 4}
