"""A run's stored configuration read back from a database, checked before anything uses it.

A results database is a file anyone can craft or share. Whatever ``--resume`` reads back
(device, thread counts, cpus, runner settings, timeouts, model entries, the runtime of a
``regress`` side) is untrusted data: it is checked by ``results.config.RunConfig.from_json``
by the same rules as the command line, and the device string here goes through the same
URL / inventory resolution (``devices/inventory.py`` with the ssh option allow-list of
``devices/ssh_options.py``). Nothing read back from a database ever names a command to
run: a device URL naming a program is refused, and a ``regress`` side measured with an
interpreter path is refused with the ``regress`` command to run instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devices.device import DeviceConfig
from results.config import RunConfig, StoredRunError

_RUNTIME_SPEC = re.compile(r"onnxruntime==[0-9]+(\.[0-9]+){1,3}([a-z]+[0-9]*)?\Z")


@dataclass(frozen=True)
class StoredPlan:
    """The checked parts of a stored run configuration that resume re-plans from."""

    device: str
    threads: tuple[int, ...]
    trials: int
    cpus: tuple[int, ...] | None
    settings: Mapping[str, Any]
    timeout_s: float | None
    runtime: str | None
    regress_role: str | None
    config: RunConfig
    """The whole configuration, typed."""


def check_stored_config(run_id: int, config: Mapping[str, Any], device: str) -> StoredPlan:
    """Every field resume uses, checked; ``StoredRunError`` names the first bad one."""
    checked = RunConfig.from_json(run_id, config, device)
    side = checked.regress
    return StoredPlan(
        device=checked.device,
        threads=checked.threads,
        trials=checked.trials,
        cpus=checked.cpus,
        settings=asdict(checked.settings),
        timeout_s=checked.timeout_s,
        runtime=side.runtime if side else None,
        regress_role=side.role if side else None,
        config=checked,
    )


PROGRAM_PARAMETERS = ("python", "adb", "perf_test", "libs")
"""Device URL parameters that name a program to run (here or on the device)."""


def names_program(device: str) -> bool:
    """Whether a device URL has a parameter that names a program (``PROGRAM_PARAMETERS``)."""
    if "://" not in device:
        return False
    keys = {key for key, _ in parse_qsl(urlsplit(device).query, keep_blank_values=True)}
    return bool(keys & set(PROGRAM_PARAMETERS))


def check_stored_device(run_id: int, device: str) -> str:
    """The stored device string, refused when it is a URL that names a program to run.

    A URL typed on the command line may say ``python=`` or ``adb=``; the same URL read
    from a database would let the file's author choose a command run with the user's keys.
    The user names such a device again on the command line (``--device URL`` or NAME).
    """
    if "://" not in device:
        return device  # local or an inventory name: resolved from the user's own inventory
    query = urlsplit(device).query
    keys = {key for key, _ in parse_qsl(query, keep_blank_values=True)}
    named = ", ".join(f"{key}=" for key in sorted(keys & set(PROGRAM_PARAMETERS)))
    if named:
        raise StoredRunError(
            f"run {run_id}'s stored device URL names a program ({named}); "
            "a database never names a command to run: name the device yourself, "
            f"`mnbench run --resume {run_id} --device URL` (or an inventory name)"
        )
    return device


def check_same_device(run_id: int, stored: str, kind: str, given: DeviceConfig) -> None:
    """A device named on ``--resume`` must be the one the run measured (same kind and
    address), so one run never mixes two devices."""
    if given.kind != kind:
        raise StoredRunError(
            f"run {run_id} was measured on a {kind} device, not {given.name} ({given.kind}); "
            "resume it on the same device"
        )
    if "://" not in stored:
        return
    parts = urlsplit(stored)
    try:
        same = (
            (parts.hostname or "") == (given.host or "").lower() and parts.port == given.port
            if kind == "ssh"
            else unquote(parts.netloc) == given.serial
        )
    except ValueError:
        same = False
    if not same:
        raise StoredRunError(
            f"run {run_id} was measured on {parts.scheme}://{parts.netloc}, not on "
            f"{given.name}; resume it on the same device"
        )


def is_managed_runtime(spec: str) -> bool:
    """``onnxruntime==X.Y.Z``: an environment the harness builds itself (no command in it)."""
    return bool(_RUNTIME_SPEC.match(spec))
