"""Android facts, clusters, masks and ABI checks (facts over the simulated phone)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from devices.adb import AdbTransport
from devices.agent.cores import clusters
from devices.agent.cpus import cpu_mask
from devices.android import (
    ANDROID_PROP_KEYS,
    AbiMismatch,
    abi_of_elf,
    collect_android_facts,
    require_abi,
    resolve_cores,
)
from devices.errors import DeviceError
from tests.fixtures.adb import AdbPhone


@pytest.fixture(scope="module")
def facts(adb_phone: AdbPhone) -> dict[str, object]:
    transport = adb_phone.server.transport(adb_phone.serial)
    return collect_android_facts(transport)


def test_facts_from_simulated_phone(facts: dict[str, object]) -> None:
    assert facts["model"] == "Pixel Sim 8"
    assert facts["manufacturer"] == "Google"
    assert facts["soc"] == "Google Tensor G3"
    assert facts["sdk"] == 34
    assert facts["abilist"] == ["arm64-v8a", "armeabi-v7a", "armeabi"]
    props = facts["getprop"]
    assert isinstance(props, dict)
    assert set(props) == set(ANDROID_PROP_KEYS)
    assert props["ro.build.type"] == "user"
    assert facts["clusters"] == {"little": [0, 1, 2, 3], "big": [4, 5, 6, 7]}
    assert facts["cpu_count"] == 8
    assert facts["mem_total_bytes"] == 7_825_836 * 1024
    assert facts["battery"] == {
        "level_pct": 87,
        "temperature_c": 31.2,
        "status": 2,
        "usb_powered": True,
    }
    assert isinstance(facts["uname"], str)
    assert facts["uname"]


def test_per_core_facts(facts: dict[str, object]) -> None:
    cpus = facts["cpus"]
    assert isinstance(cpus, list)
    assert cpus[0] == {
        "cpu": 0,
        "max_khz": 1_800_000,
        "cur_khz": 1_197_000,
        "governor": "schedutil",
    }
    assert cpus[7]["max_khz"] == 2_800_000


def test_thermal_zones(facts: dict[str, object]) -> None:
    zones = facts["thermal_zones"]
    assert isinstance(zones, list)
    assert zones[0] == {"zone": "thermal_zone0", "type": "battery", "temp_c": 31.2}
    assert [z["type"] for z in zones] == ["battery", "skin-therm", "cpu-0-0", "cpu-1-0", "gpu"]


def test_facts_take_one_round_trip(adb_transport: AdbTransport) -> None:
    adb_transport.run(["true"], 30)  # connection set up
    calls: list[object] = []
    original = adb_transport.run

    class Counting:
        name = adb_transport.name
        workdir = "/data/local/tmp"

        def run(self, *args: object, **kwargs: object) -> object:
            calls.append(args)
            return original(*args, **kwargs)  # type: ignore[arg-type]

        def push(self, local: Path, remote: str) -> None: ...

        def pull(self, remote: str, local: Path) -> None: ...

        def close(self) -> None: ...

    collect_android_facts(Counting())  # type: ignore[arg-type]
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("max_khz", "expected"),
    [
        (
            {0: 1_800_000, 1: 1_800_000, 2: 2_800_000, 3: 2_800_000},
            {"little": [0, 1], "big": [2, 3]},
        ),
        (
            {0: 1_700_000, 1: 1_700_000, 2: 2_370_000, 3: 2_370_000, 4: 2_910_000},
            {"little": [0, 1], "big": [2, 3, 4], "prime": [4]},
        ),
        ({0: 1_500_000, 1: 1_500_000}, {"little": [0, 1], "big": [0, 1]}),
        ({}, {}),
    ],
)
def test_clusters(max_khz: dict[int, int], expected: dict[str, list[int]]) -> None:
    assert clusters(max_khz) == expected


def test_taskset_mask() -> None:
    assert cpu_mask([4, 5, 6, 7]) == "f0"
    assert cpu_mask([0]) == "1"
    assert cpu_mask([0, 1, 2, 3, 8]) == "10f"
    with pytest.raises(ValueError):
        cpu_mask([])


def test_resolve_cores(facts: dict[str, object]) -> None:
    assert resolve_cores("big", facts) == [4, 5, 6, 7]
    assert resolve_cores("little", facts) == [0, 1, 2, 3]
    assert resolve_cores("all", facts) == list(range(8))
    assert resolve_cores("0xf0", facts) == [4, 5, 6, 7]
    assert resolve_cores("0,2,5-6", facts) == [0, 2, 5, 6]
    with pytest.raises(DeviceError, match="no 'prime' cores"):
        resolve_cores("prime", facts)
    with pytest.raises(DeviceError, match="names cores 8 that the device does not have"):
        resolve_cores("0x100", facts)
    with pytest.raises(DeviceError, match="not a CPU list"):
        resolve_cores("fast", facts)


def _elf(tmp_path: Path, machine: int, name: str) -> Path:
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HH", 2, machine)
    path = tmp_path / name
    path.write_bytes(header + bytes(64))
    return path


@pytest.mark.parametrize(
    ("machine", "abi"),
    [(183, "arm64-v8a"), (40, "armeabi-v7a"), (62, "x86_64"), (3, "x86")],
)
def test_abi_of_elf(tmp_path: Path, machine: int, abi: str) -> None:
    assert abi_of_elf(_elf(tmp_path, machine, "bin")) == abi


def test_abi_of_real_binary() -> None:
    assert abi_of_elf(Path(sys.executable).resolve()) in ("x86_64", "arm64-v8a")


def test_abi_errors(tmp_path: Path) -> None:
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\n")
    with pytest.raises(DeviceError, match="not an ELF binary"):
        abi_of_elf(text)
    with pytest.raises(DeviceError, match="ELF machine 243"):
        abi_of_elf(_elf(tmp_path, 243, "riscv"))


def test_wrong_abi_is_refused(tmp_path: Path, facts: dict[str, object]) -> None:
    assert require_abi(_elf(tmp_path, 183, "ok"), facts) == "arm64-v8a"
    with pytest.raises(AbiMismatch, match="built for x86_64 but the phone runs arm64-v8a"):
        require_abi(_elf(tmp_path, 62, "onnxruntime_perf_test"), facts)
