"""A run's stored configuration read back from a database, checked before anything uses it.

A results database is a file anyone can craft or share. Whatever ``--resume`` reads back
(device, thread counts, cpus, runner settings, timeouts, model entries, the runtime of a
``regress`` side) is untrusted data: it is checked by ``results.config.RunConfig.from_json``
by the same rules as the command line, and the device string here goes through the same
URL / inventory resolution (``devices/inventory.py`` with the ssh option allow-list of
``devices/ssh_options.py``). Nothing read back from a database ever names a command to
run, a file, a directory or a host-key policy: a device URL with any parameter but
``STORED_PARAMETERS`` is refused, and a ``regress`` side measured with an
interpreter path is refused with the ``regress`` command to run instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devices.device import DeviceConfig
from devices.ssh_options import UnsafeSshOption, check_ssh_option, is_stored_option
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
STORED_PARAMETERS = ("cpus", "cores", "connect_timeout_s", "ssh_option")
"""The only device URL parameters read back from a database: none names a file, a program,
a directory, another server or a host-key policy (``ssh_option`` only with an option of
``devices.ssh_options.STORED_OPTIONS``)."""


def refused_parameters(device: str) -> list[str]:
    """The parameters of a device URL that a database may not supply (sorted, ``key=``),
    empty for ``local``, an inventory name or a URL of ``STORED_PARAMETERS`` only."""
    if "://" not in device:
        return []
    try:
        pairs = parse_qsl(urlsplit(device).query, keep_blank_values=True)
    except ValueError:
        return ["(malformed)"]
    refused = {
        f"{key}={value}" if key == "ssh_option" else f"{key}="
        for key, value in pairs
        if key not in STORED_PARAMETERS or (key == "ssh_option" and not is_stored_option(value))
    }
    return sorted(refused)


def names_program(device: str) -> bool:
    """Whether a device URL has a parameter a database may not supply (so it is never read
    back: the user gives the URL again)."""
    return bool(refused_parameters(device))


def check_stored_device(run_id: int, device: str) -> str:
    """The stored device string, refused when it is a URL with a parameter that could name
    a program, a file, a directory, another server or a host-key policy.

    A URL typed on the command line may say ``python=``, ``identity_file=`` or
    ``accept_new_host_key=1``; the same URL read from a database would let the file's author
    choose a command run, a file read or written, or a host key trusted with the user's keys.
    The user names such a device again on the command line (``--device URL`` or NAME).
    """
    try:
        query = urlsplit(device).query if "://" in device else ""
    except ValueError:
        raise StoredRunError(
            f"run {run_id}'s stored device URL is malformed; name the device "
            f"yourself, `mnbench run --resume {run_id} --device URL`"
        ) from None
    if query:  # the command line's own check first, then the narrower list
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "ssh_option":
                try:
                    check_ssh_option(value)
                except UnsafeSshOption as exc:
                    raise StoredRunError(f"run {run_id}'s stored device URL: {exc}") from None
    refused = refused_parameters(device)
    if not refused:
        return device
    programs = [f"{key}=" for key in PROGRAM_PARAMETERS if f"{key}=" in refused]
    if programs:
        named = ", ".join(sorted(programs))
        what = f"names a program ({named}); a database never names a command to run"
    else:
        shown = ", ".join(refused)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        what = f"sets {shown}; a database never names a file, a server or a host-key policy"
    raise StoredRunError(
        f"run {run_id}'s stored device URL {what}: name the device yourself, "
        f"`mnbench run --resume {run_id} --device URL` (or an inventory name)"
    )


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
