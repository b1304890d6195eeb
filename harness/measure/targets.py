"""The devices a request names, resolved through the inventory and checked like the command
line; the one place ``$MNBENCH_INVENTORY`` is read.

A name is an inventory entry, a [groups] entry (several devices) or a URL (local,
ssh://user@host:port, adb://SERIAL). The inventory is the one given, else the file
``$MNBENCH_INVENTORY`` names, else ``./devices.toml`` (``devices.inventory``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from devices.device import DeviceConfig
from devices.inventory import DEFAULT_INVENTORY, load_groups, resolve_device, resolve_devices
from devices.probe import check_cpu_spec
from mobilenet.validate import creatable_dir

INVENTORY_ENV_VAR = "MNBENCH_INVENTORY"


def inventory_path(given: Path | None) -> Path | None:
    """The inventory named: ``given``, else ``$MNBENCH_INVENTORY``; None when neither names
    one (``./devices.toml`` is then read if it is there)."""
    if given is not None:
        return given
    named = os.environ.get(INVENTORY_ENV_VAR)
    return Path(named) if named else None


def resolve_target(
    name: str, inventory: Path | None = None, accept_new_host_key: bool = False
) -> DeviceConfig:
    """The device ``name`` names, its cores and work directory checked before it is used."""
    device = resolve_device(name, inventory_path(inventory))
    if accept_new_host_key and device.host:  # only ssh has a host
        device = replace(device, accept_new_host_key=True)
    if device.cpus:
        check_cpu_spec(device.cpus, f"cpus of device {device.name}")
    if device.this_machine and device.workdir:
        creatable_dir(Path(device.workdir).expanduser(), f"the workdir of device {device.name}")
    return device


def resolve_targets(names: Sequence[str], inventory: Path | None = None) -> list[DeviceConfig]:
    """The devices ``names`` name (groups expanded), each once."""
    return resolve_devices(names, inventory_path(inventory))


def is_group(name: str, inventory: Path | None = None) -> bool:
    """Whether ``name`` is a [groups] entry of the inventory (several devices)."""
    path = inventory_path(inventory) or DEFAULT_INVENTORY
    if "://" in name or not path.is_file():
        return False
    return name in load_groups(path)
