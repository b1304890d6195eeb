"""Every transport selects the same cores for the same topology (one cluster rule).

The topology is a three-tier SoC: cores 0-3 at 1.80 GHz, 4-6 at 2.25 GHz and 7 at 2.80 GHz
(the case where a midpoint rule and the slowest-cluster rule disagree). Each transport reads
it the way a run does:

- this machine and a board over SSH (the real sshd fixture): the facts script of
  ``devices/probe.py``, on a sysfs-like tree written under a temporary directory; the
  transports are real, only the device paths in the command are pointed at that tree (as
  the adb simulator's sandbox does), because the host's own ``/sys`` cannot be changed;
- a phone through the real ``adb`` client and the simulator: ``devices/android.py``;
- the emulated aarch64 board (qemu-user reached over SSH): the agent itself reports the
  per-core frequencies it reads (``qemu -L`` finds the tree in a sysroot overlay), as in the
  ``host_before`` facts of every measurement.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from devices.agent.bundle import AGENT, zipapp_path
from devices.device import DeviceConfig
from devices.errors import DeviceError
from devices.facts import probe_device
from devices.local import LocalTransport
from devices.probe import resolve_cpus
from devices.ssh import SshTransport
from devices.transport import Completed, Transport
from tests.adbsim import Core, Phone, pixel_like
from tests.fixtures.adb import MakePhone
from tests.fixtures.build_arm64_sysroot import Arm64Sysroot

MAX_KHZ = (1_800_000,) * 4 + (2_250_000,) * 3 + (2_800_000,)
EXPECTED = {
    "big": [4, 5, 6, 7],
    "little": [0, 1, 2, 3],
    "prime": [7],
    "all": list(range(8)),
    "0xf0": [4, 5, 6, 7],
    "0-1,7": [0, 1, 7],
}
SPECS = tuple(EXPECTED)
REDIRECTED = ("/sys/devices/system/cpu", "/proc/cpuinfo")


def write_tree(root: Path) -> Path:
    """The cpufreq part of sysfs (kHz) and an arm64 ``/proc/cpuinfo`` under ``root``."""
    cpu_dir = root / "sys" / "devices" / "system" / "cpu"
    for cpu, khz in enumerate(MAX_KHZ):
        freq = cpu_dir / f"cpu{cpu}" / "cpufreq"
        freq.mkdir(parents=True)
        (freq / "cpuinfo_max_freq").write_text(f"{khz}\n")
        (freq / "scaling_cur_freq").write_text(f"{khz // 2}\n")
        (freq / "scaling_governor").write_text("schedutil\n")
    (cpu_dir / "online").write_text("0-7\n")
    parts = ["0xd05"] * 4 + ["0xd41"] * 3 + ["0xd44"]
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(
        "\n".join(
            f"processor\t: {n}\nCPU implementer\t: 0x41\nCPU part\t: {part}\n"
            for n, part in enumerate(parts)
        )
    )
    return root


class Redirected:
    """A real transport whose commands see ``root`` in place of the device's CPU files."""

    def __init__(self, inner: Transport, root: Path) -> None:
        self.inner = inner
        self.root = root
        self.name = inner.name

    @property
    def workdir(self) -> str:
        return self.inner.workdir

    def run(
        self,
        argv: Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        check: bool = True,
    ) -> Completed:
        moved = list(argv)
        for prefix in REDIRECTED:
            moved = [arg.replace(prefix, f"{self.root}{prefix}") for arg in moved]
        done = self.inner.run(moved, timeout_s, env=env, cwd=cwd, check=check)
        return dataclasses.replace(done, stdout=done.stdout.replace(str(self.root), ""))

    def push(self, local: Path, remote: str) -> None:
        self.inner.push(local, remote)

    def pull(self, remote: str, local: Path) -> None:
        self.inner.pull(remote, local)

    def close(self) -> None:
        self.inner.close()


def selections(facts: Mapping[str, object]) -> dict[str, list[int] | None]:
    return {spec: resolve_cpus(spec, facts) for spec in SPECS}


def three_tier_phone() -> Phone:
    base = pixel_like()
    parts = ["0xd05"] * 4 + ["0xd41"] * 3 + ["0xd44"]
    cores = tuple(
        Core(max_khz=khz, cur_khz=khz // 2, part=part)
        for khz, part in zip(MAX_KHZ, parts, strict=True)
    )
    return Phone(props=base.props, cores=cores, thermal_zones=base.thermal_zones)


def test_local_transport(local_transport: LocalTransport, tmp_path: Path) -> None:
    transport = Redirected(local_transport, write_tree(tmp_path / "device"))
    facts = probe_device(DeviceConfig(name="here"), transport)
    assert [c["max_freq_khz"] for c in facts["cores"]] == list(MAX_KHZ)
    assert facts["core_types"] == {"Cortex-A55": 4, "Cortex-A78": 3, "Cortex-X1": 1}
    assert selections(facts) == EXPECTED


def test_ssh_transport(ssh_transport: SshTransport, tmp_path: Path) -> None:
    transport = Redirected(ssh_transport, write_tree(tmp_path / "board"))
    config = DeviceConfig(name="board", kind="ssh", host="127.0.0.1")
    facts = probe_device(config, transport)
    assert [c["max_freq_khz"] for c in facts["cores"]] == list(MAX_KHZ)
    assert facts["core_types"] == {"Cortex-A55": 4, "Cortex-A78": 3, "Cortex-X1": 1}
    assert selections(facts) == EXPECTED


def test_adb_simulator(make_adb_phone: MakePhone) -> None:
    phone = make_adb_phone(phone=three_tier_phone())
    transport = phone.server.transport(phone.serial)
    try:
        facts = probe_device(DeviceConfig(name="phone", kind="adb"), transport)
    finally:
        transport.close()
    assert [c["max_khz"] for c in facts["cpus"]] == list(MAX_KHZ)
    assert facts["clusters"] == {"little": [0, 1, 2, 3], "big": [4, 5, 6, 7], "prime": [7]}
    assert selections(facts) == EXPECTED


def test_emulated_board_agent(
    ssh_transport: SshTransport, arm64_board: Arm64Sysroot, tmp_path: Path
) -> None:
    overlay = tmp_path / "sysroot"
    overlay.mkdir()
    for entry in arm64_board.root.iterdir():
        if entry.name not in ("sys", "proc"):
            (overlay / entry.name).symlink_to(entry)
    write_tree(overlay)
    python = [arm64_board.qemu, "-L", str(overlay), str(overlay / "usr/bin/python3.11")]
    remote = f"{ssh_transport.workdir}/agent.pyz"
    ssh_transport.push(zipapp_path(AGENT), remote)
    # A missing model is a usage error whose document still carries the host facts.
    done = ssh_transport.run([*python, remote, "/absent.onnx"], timeout_s=300, check=False)
    assert done.rc == 2, done.stderr
    document = json.loads(done.stdout.strip().splitlines()[-1])
    facts = document["host_before"]
    assert facts["machine"] == "aarch64"
    assert facts["cpu_model"] == "Cortex-A55 + Cortex-A78 + Cortex-X1"
    assert [c["max_khz"] for c in facts["cpus"]] == list(MAX_KHZ)
    assert selections(facts) == EXPECTED


@pytest.mark.parametrize("spec", ["0x100", "8", "fast"])
def test_every_device_refuses_the_same_selections(spec: str) -> None:
    linux = {"cores": [{"cpu": n, "max_freq_khz": khz} for n, khz in enumerate(MAX_KHZ)]}
    android = {"cpus": [{"cpu": n, "max_khz": khz} for n, khz in enumerate(MAX_KHZ)]}
    messages = []
    for facts in (linux, android):
        with pytest.raises(DeviceError) as info:
            resolve_cpus(spec, facts)
        messages.append(info.value.message)
    assert messages[0] == messages[1]
