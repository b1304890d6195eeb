"""A device: how to reach it (its Transport) and how to run the runner there.

``DeviceConfig`` is the frozen value an inventory entry or a device URL becomes
(``local``, ``ssh://user@host:port``, ``adb://SERIAL``); ``open_transport`` turns it into a
live Transport. Nothing here knows about ONNX or statistics.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from devices.transport import LocalTransport, Transport

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
    def python_argv(self) -> list[str]:
        """The interpreter as an argv prefix (a command may carry arguments)."""
        if self.python:
            return shlex.split(self.python)
        if self.kind == "local":
            return [sys.executable]  # the harness's own interpreter has numpy and onnxruntime
        return ["python3"]


def open_transport(config: DeviceConfig, keep_workdir: bool = False) -> Transport:
    """A live transport for the device (imports the back end only when it is used).

    ``keep_workdir`` keeps the temporary work directory a local transport makes.
    """
    if config.kind == "local":
        return LocalTransport(config.workdir, keep_workdir=keep_workdir)
    if config.kind == "ssh":
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
