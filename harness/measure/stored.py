"""A run's stored configuration read back from a database, checked before anything uses it.

A results database is a file anyone can craft or share. Whatever ``--resume`` reads back
(device, thread counts, cpus, runner settings, timeouts, model entries, the runtime of a
``regress`` side) is untrusted data: it is checked here by the same rules as the command
line, and the device string goes through the same URL / inventory resolution
(``devices/inventory.py`` with the ssh option allow-list of ``devices/ssh_options.py``).
Nothing read back from a database ever names a command to run: a ``regress`` side measured
with an interpreter path is refused with the ``regress`` command to run instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devices.device import DeviceConfig
from mobilenet.errors import UserError
from mobilenet.validate import MAX_THREADS, MAX_TIME_S, MAX_TRIALS

MAX_CPU = 65535
_OPT_LEVELS = ("disable", "basic", "extended", "all")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SHAPE = re.compile(r"[^=\s]+=\d+(x\d+)*\Z")
_RUNTIME_SPEC = re.compile(r"onnxruntime==[0-9]+(\.[0-9]+){1,3}([a-z]+[0-9]*)?\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StoredRunError(UserError):
    """A stored run's configuration fails the command line's rules (exit code 2)."""


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


def _fail(run_id: int, what: str) -> StoredRunError:
    return StoredRunError(
        f"run {run_id}: the stored {what} is not valid (a damaged or crafted database); "
        "start a new run instead of resuming"
    )


def _integer(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _zero(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value) and not _CONTROL.search(value)


MAX_BATCH = 1000
"""The most measurements a stored run may ask one runner process for."""


def check_settings(run_id: int, value: object) -> dict[str, Any]:
    """Runner settings: exactly ``RunnerSettings``' fields, each of the right type and range."""
    from harness.measure.plan import RunnerSettings

    if not isinstance(value, dict):
        raise _fail(run_id, "runner settings")
    names = {f.name for f in fields(RunnerSettings)}
    if set(value) - names:
        raise _fail(run_id, f"runner setting {sorted(set(value) - names)[0]!r}")
    checks: dict[str, Callable[[Any], bool]] = {
        "target_ci": lambda v: _number(v) and v <= 1,
        "min_time_s": lambda v: _number(v) and v <= MAX_TIME_S,
        "max_time_s": lambda v: _number(v) and v <= MAX_TIME_S,
        "min_samples": lambda v: _integer(v, 1, 10_000_000),
        "warmup_max_time_s": lambda v: _zero(v) or (_number(v) and v <= MAX_TIME_S),
        "fixed": lambda v: v is None or _integer(v, 1, 10_000_000),
        "opt_level": lambda v: v in _OPT_LEVELS,
        "profile": lambda v: isinstance(v, bool),
        "profile_runs": lambda v: _integer(v, 2, 10_000),
        "batch": lambda v: _integer(v, 1, MAX_BATCH),
    }
    for key, item in value.items():
        if not checks[key](item):
            raise _fail(run_id, f"runner setting {key}")
    return dict(value)


def check_model_entry(run_id: int, item: object) -> Mapping[str, Any]:
    """One stored model entry: name, path, sha256, spec (a table or null), shapes."""
    if not isinstance(item, dict):
        raise _fail(run_id, "model entry")
    if not _text(item.get("name")) or not _text(item.get("path")):
        raise _fail(run_id, "model name or path")
    if not isinstance(item.get("sha256"), str) or not _SHA256.match(item["sha256"]):
        raise _fail(run_id, "model sha256")
    if item.get("spec") is not None and not isinstance(item["spec"], dict):
        raise _fail(run_id, "model spec")
    shapes = item.get("shapes") or []
    if not isinstance(shapes, list) or not all(
        isinstance(s, str) and _SHAPE.match(s) for s in shapes
    ):
        raise _fail(run_id, "model shapes")
    return item


def check_stored_config(run_id: int, config: Mapping[str, Any], device: str) -> StoredPlan:
    """Every field resume uses, checked; ``StoredRunError`` names the first bad one."""
    stored_device = config.get("device") or device
    if not _text(stored_device) or len(stored_device) > 4096:
        raise _fail(run_id, "device")
    threads = config.get("threads")
    if (
        not isinstance(threads, list)
        or not threads
        or not all(_integer(t, 1, MAX_THREADS) for t in threads)
    ):
        raise _fail(run_id, "thread counts")
    trials = config.get("trials")
    if not _integer(trials, 1, MAX_TRIALS):
        raise _fail(run_id, "trial count")
    cpus = config.get("cpus")
    if cpus is not None and (
        not isinstance(cpus, list) or not cpus or not all(_integer(c, 0, MAX_CPU) for c in cpus)
    ):
        raise _fail(run_id, "cpus")
    timeout = config.get("timeout_s")
    if timeout is not None and not (_number(timeout) and timeout <= 86400 * 7):
        raise _fail(run_id, "timeout")
    models = config.get("models")
    if not isinstance(models, list):
        raise _fail(run_id, "model list")
    for entry in models:
        check_model_entry(run_id, entry)
    if "models_dir" in config and not _text(config["models_dir"]):
        raise _fail(run_id, "models directory")
    runtime = config.get("runtime")
    if runtime is not None and not _text(runtime):
        raise _fail(run_id, "runtime")
    role = config.get("regress_role")
    if role not in (None, "baseline", "candidate"):
        raise _fail(run_id, "regress role")
    assert isinstance(stored_device, str) and isinstance(trials, int)
    return StoredPlan(
        device=stored_device,
        threads=tuple(threads),
        trials=trials,
        cpus=tuple(cpus) if cpus else None,
        settings=check_settings(run_id, config.get("settings", {})),
        timeout_s=float(timeout) if timeout is not None else None,
        runtime=runtime,
        regress_role=role,
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
