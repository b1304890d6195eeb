"""A device: how to reach it (its Transport) and how to run the runner there.

``DeviceConfig`` is the frozen value an inventory entry or a device URL becomes
(``local``, ``ssh://user@host:port``, ``adb://SERIAL``); ``open_transport`` turns it into a
live Transport. What differs between the kinds -- how the device is reached, the interpreter
it has without configuration, how its facts and core names are read -- is written once, in
the ``KindTraits`` table here, and read through the config's properties; no other module
tells the kinds apart. Nothing here knows about ONNX or statistics.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from devices.local import LocalTransport
from devices.transport import Transport

DeviceKind = Literal["local", "ssh", "adb"]
DEVICE_KINDS: tuple[DeviceKind, ...] = ("local", "ssh", "adb")


@dataclass(frozen=True)
class DeviceConfig:
    """Everything the harness needs to know to measure on one device."""

    name: str
    kind: DeviceKind = "local"
    # ssh
    host: str | None = None
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    accept_new_host_key: bool = False
    known_hosts_file: str | None = None
    ssh_options: tuple[str, ...] = ()
    # adb
    serial: str | None = None
    adb_path: str = "adb"
    adb_server_host: str | None = None
    adb_server_port: int | None = None
    perf_test: str | None = None  # local path of an onnxruntime_perf_test binary for the device
    perf_test_libs: tuple[str, ...] = ()  # local paths of libraries pushed beside it
    # every kind
    python: str | None = None  # a path or a command line, e.g. "/opt/venv/bin/python"
    workdir: str | None = None
    cpus: str | None = None  # "0,1", "4-7", "big", "little", "all" or a hex mask "0xf0"
    env: Mapping[str, str] = field(default_factory=dict)
    connect_timeout_s: float = 10.0

    @property
    def traits(self) -> KindTraits:
        """What this kind of device brings (the one place the kinds differ)."""
        return KIND_TRAITS[self.kind]

    @property
    def python_argv(self) -> list[str]:
        """The interpreter as an argv prefix (a command may carry arguments)."""
        if self.python:
            return shlex.split(self.python)
        return self.traits.default_python()

    @property
    def has_python(self) -> bool:
        """Whether the device has a Python to run the runner: configured, or one its kind
        brings (a phone has none unless ``python`` is set; it runs onnxruntime_perf_test)."""
        return bool(self.python) or self.traits.has_python

    @property
    def this_machine(self) -> bool:
        """The device is the machine the harness runs on (its environments, its psutil)."""
        return self.traits.this_machine

    @property
    def address(self) -> str:
        """Where the device is, for a listing: ``user@host:port``, a serial, this machine."""
        return self.traits.address(self)

    def shell_command(self, argv: Sequence[str]) -> str:
        """A command line the user can paste on this machine to run ``argv`` on the device."""
        return self.traits.shell_command(self, argv)

    def collect_facts(self, transport: Transport) -> dict[str, Any]:
        """The device's own facts (CPUs, clusters, memory, OS) read through ``transport``."""
        return dict(self.traits.collect_facts(transport))

    def resolve_cores(self, spec: str, facts: Mapping[str, Any]) -> list[int] | None:
        """Core numbers for a ``cpus`` spec (``0,1``, ``4-7``, ``big``, a mask) on this device."""
        return self.traits.resolve_cores(spec, facts)


@dataclass(frozen=True)
class KindTraits:
    """What one kind of device brings; ``KIND_TRAITS`` holds one per kind."""

    default_python: Callable[[], list[str]]
    has_python: bool
    this_machine: bool
    address: Callable[[DeviceConfig], str]
    shell_command: Callable[[DeviceConfig, Sequence[str]], str]
    collect_facts: Callable[[Transport], Mapping[str, Any]]
    resolve_cores: Callable[[str, Mapping[str, Any]], list[int] | None]
    open: Callable[[DeviceConfig, bool], Transport]
    read_guards: Callable[[Transport], dict[str, object]]
    """One guard reading around a trial (``devices.guards``; phones add ``dumpsys``)."""
    root_command: str
    """How a shell line is run as root on this kind of device (the pin command's prefix)."""


def _linux_guards(transport: Transport) -> dict[str, object]:
    from devices.guards import sample_guards

    return sample_guards(transport, android=False)


def _android_guards(transport: Transport) -> dict[str, object]:
    from devices.guards import sample_guards

    return sample_guards(transport, android=True)


def _linux_facts(transport: Transport) -> Mapping[str, Any]:
    from devices.probe import collect_facts

    return collect_facts(transport)


def _linux_cores(spec: str, facts: Mapping[str, Any]) -> list[int] | None:
    from devices.probe import resolve_cpus

    return resolve_cpus(spec, facts)


def _android_facts(transport: Transport) -> Mapping[str, Any]:
    from devices.android import collect_android_facts

    return collect_android_facts(transport)


def _android_cores(spec: str, facts: Mapping[str, Any]) -> list[int] | None:
    from devices.android import resolve_cores

    return resolve_cores(spec, facts)


def _local_command(config: DeviceConfig, argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _ssh_command(config: DeviceConfig, argv: Sequence[str]) -> str:
    ssh = ["ssh"]
    if config.port:
        ssh += ["-p", str(config.port)]
    if config.identity_file:
        ssh += ["-i", config.identity_file]
    for option in config.ssh_options:
        ssh += ["-o", option]
    destination = f"{config.user}@{config.host}" if config.user else str(config.host)
    return f"{shlex.join([*ssh, destination])} {shlex.quote(shlex.join(argv))}"


def _adb_command(config: DeviceConfig, argv: Sequence[str]) -> str:
    adb = [config.adb_path]
    if config.adb_server_host:
        adb += ["-H", config.adb_server_host]
    if config.adb_server_port:
        adb += ["-P", str(config.adb_server_port)]
    adb += ["-s", str(config.serial), "shell"]
    return f"{shlex.join(adb)} {shlex.quote(shlex.join(argv))}"


def _ssh_address(config: DeviceConfig) -> str:
    user = f"{config.user}@" if config.user else ""
    port = f":{config.port}" if config.port else ""
    return f"{user}{config.host}{port}"


def _open_local(config: DeviceConfig, keep_workdir: bool) -> Transport:
    return LocalTransport(config.workdir, keep_workdir=keep_workdir)


def _open_ssh(config: DeviceConfig, keep_workdir: bool) -> Transport:
    from devices.ssh import SshTransport  # type: ignore[import-not-found,unused-ignore]

    assert config.host is not None
    transport: Transport = SshTransport(
        host=config.host,
        user=config.user,
        port=config.port,
        identity_file=config.identity_file,
        workdir=config.workdir,
        accept_new_host_key=config.accept_new_host_key,
        known_hosts_file=config.known_hosts_file,
        connect_timeout_s=config.connect_timeout_s,
        ssh_options=config.ssh_options,
    )
    return transport


def _open_adb(config: DeviceConfig, keep_workdir: bool) -> Transport:
    from devices.adb import AdbTransport

    assert config.serial is not None
    adb: Transport = AdbTransport(
        serial=config.serial,
        adb=config.adb_path,
        server_host=config.adb_server_host,
        server_port=config.adb_server_port,
        workdir=config.workdir,
    )
    return adb


KIND_TRAITS: Mapping[DeviceKind, KindTraits] = {
    # The harness's own interpreter has numpy and onnxruntime.
    "local": KindTraits(
        default_python=lambda: [sys.executable],
        has_python=True,
        this_machine=True,
        address=lambda config: "this machine",
        shell_command=_local_command,
        collect_facts=_linux_facts,
        resolve_cores=_linux_cores,
        open=_open_local,
        read_guards=_linux_guards,
        root_command="sudo sh -c",
    ),
    "ssh": KindTraits(
        default_python=lambda: ["python3"],
        has_python=True,
        this_machine=False,
        address=_ssh_address,
        shell_command=_ssh_command,
        collect_facts=_linux_facts,
        resolve_cores=_linux_cores,
        open=_open_ssh,
        read_guards=_linux_guards,
        root_command="sudo sh -c",  # on the board
    ),
    "adb": KindTraits(
        default_python=lambda: ["python3"],
        has_python=False,
        this_machine=False,
        address=lambda config: config.serial or "-",
        shell_command=_adb_command,
        collect_facts=_android_facts,
        resolve_cores=_android_cores,
        open=_open_adb,
        read_guards=_android_guards,
        root_command="adb shell su -c",  # a rooted phone
    ),
}


def open_transport(config: DeviceConfig, keep_workdir: bool = False) -> Transport:
    """A live transport for the device (imports the back end only when it is used).

    ``keep_workdir`` keeps the temporary work directory a local transport makes.
    """
    return config.traits.open(config, keep_workdir)
