"""Is a device ready to measure? Each check says what is wrong and the exact command to fix it.

``check_device`` verifies, in order: the device is reachable, its Python runs, numpy and
onnxruntime import there, and the work directory is writable (plus an optional smoke run of
the runner supplied by the caller). Later checks are reported as skipped when an earlier one
they need failed. ``install_runtime`` installs numpy and onnxruntime with the device's own
``python -m pip`` -- ``--user`` for a system Python, into the environment itself for a venv
(PEP 405: ``sys.prefix != sys.base_prefix``). Debian 12 / Raspberry Pi OS mark the system
Python externally managed (PEP 668); then the fix is a venv, and the error says how.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devices.device import DeviceConfig, open_transport
from devices.errors import DeviceError
from devices.probe import probe_python
from devices.transport import CommandFailed, Completed, Transport, TransportError

CheckName = Literal[
    "reachable", "python", "numpy", "onnxruntime", "workdir", "runner", "perf_test", "abi"
]
RUNTIME_PACKAGES: tuple[str, ...] = ("numpy", "onnxruntime")


@dataclass(frozen=True)
class CheckItem:
    """One verdict: ``fix`` is a command the user can paste (None when ok or unknown)."""

    name: CheckName
    ok: bool
    detail: str
    fix: str | None = None


def device_command(config: DeviceConfig, argv: Sequence[str]) -> str:
    """A command line the user can paste on this machine to run ``argv`` on the device."""
    return config.shell_command(argv)


def pip_install_argv(python_argv: Sequence[str], in_venv: bool) -> list[str]:
    user = [] if in_venv else ["--user"]
    return [*python_argv, "-m", "pip", "install", *user, *RUNTIME_PACKAGES]


def shell_path(path: str) -> str:
    """``path`` as one word for ``sh``: quoted, with a leading ``~/`` kept as ``"$HOME"/``."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _word(text: str) -> str:
    """``text`` quoted for a shell only when it needs it (``~`` is shown as typed)."""
    return text if re.fullmatch(r"[\w@%+=:,./~-]+", text) else shlex.quote(text)


def venv_fix(config: DeviceConfig) -> str:
    """How to make a venv with the runtime on the device when pip --user is refused."""
    venv = f"{config.workdir or '~/.cache/mnbench'}/venv"
    python = config.python_argv
    script = (
        f"{shlex.join([*python, '-m', 'venv'])} {shell_path(venv)} && "
        f"{shell_path(venv + '/bin/python')} -m pip install {shlex.join(RUNTIME_PACKAGES)}"
    )
    return (
        device_command(config, ["sh", "-c", script])
        + f"  # then set python = {_word(venv + '/bin/python')}"
    )


def check_device(
    config: DeviceConfig,
    runner_smoke: Callable[[Transport], str | None] | None = None,
) -> list[CheckItem]:
    """Reachable, Python, numpy, onnxruntime, workdir (and the runner smoke when given).

    A phone without a Python entry is checked for its onnxruntime_perf_test binary instead:
    configured, present on this machine, built for an ABI the phone runs.
    """
    if not config.has_python:
        return _check_phone(config, runner_smoke)
    items: list[CheckItem] = []
    try:
        transport = open_transport(config)
    except DeviceError as exc:
        return [CheckItem("reachable", False, exc.message, device_command(config, ["true"]))]
    try:
        try:
            transport.run(["true"], timeout_s=config.connect_timeout_s + 30)
        except TransportError as exc:
            items.append(CheckItem("reachable", False, str(exc), device_command(config, ["true"])))
            return [*items, *_skipped(("python", "numpy", "onnxruntime", "workdir"), "reachable")]
        items.append(CheckItem("reachable", True, f"{transport.name} answers"))

        versions: dict[str, object] | None = None
        try:
            versions = probe_python(transport, config.python_argv, env=config.env)
        except DeviceError as exc:
            items.append(
                CheckItem(
                    "python",
                    False,
                    exc.message,
                    device_command(config, ["sudo", "apt-get", "install", "-y", "python3-pip"])
                    + "  # or set python = /path/to/python for this device",
                )
            )
        if versions is None:
            items += _skipped(("numpy", "onnxruntime"), "python")
        else:
            items.append(
                CheckItem(
                    "python",
                    True,
                    f"{shlex.join(config.python_argv)}: Python {versions.get('python')} "
                    f"on {versions.get('machine')}",
                )
            )
            install = device_command(
                config, pip_install_argv(config.python_argv, bool(versions.get("in_venv")))
            )
            for module in ("numpy", "onnxruntime"):
                version = versions.get(module)
                if version:
                    items.append(CheckItem(module, True, f"{module} {version}"))
                else:
                    error = versions.get(f"{module}_error") or "not installed"
                    items.append(CheckItem(module, False, f"{module}: {error}", install))

        items.append(_check_workdir(config, transport))
        if runner_smoke is not None:
            if all(item.ok for item in items):
                problem = runner_smoke(transport)
                items.append(
                    CheckItem("runner", problem is None, problem or "the runner measured a model")
                )
            else:
                items += _skipped(("runner",), "an earlier check")
    finally:
        transport.close()
    return items


def _check_phone(
    config: DeviceConfig, runner_smoke: Callable[[Transport], str | None] | None
) -> list[CheckItem]:
    from devices.android import abi_of_elf, collect_android_facts

    items: list[CheckItem] = []
    try:
        transport = open_transport(config)
    except DeviceError as exc:
        return [CheckItem("reachable", False, exc.message, f"{config.adb_path} devices -l")]
    try:
        try:
            facts = collect_android_facts(transport)
        except TransportError as exc:
            connect = (
                f"{config.adb_path} connect {config.serial}"
                if ":" in str(config.serial)
                else f"{config.adb_path} devices -l"
            )
            items.append(CheckItem("reachable", False, exc.message, connect))
            return [*items, *_skipped(("perf_test", "abi", "workdir"), "reachable")]
        items.append(
            CheckItem("reachable", True, f"{transport.name} answers ({facts.get('model')})")
        )
        binary = Path(config.perf_test).expanduser() if config.perf_test else None
        if binary is None or not binary.is_file():
            what = "no perf_test binary is configured" if binary is None else f"{binary} is missing"
            items.append(
                CheckItem(
                    "perf_test",
                    False,
                    f"{what}; phones without Python run onnxruntime_perf_test",
                    "build it with onnxruntime's ./build.sh --android --android_abi arm64-v8a "
                    "--build_shared_lib, then set perf_test = PATH (and perf_test_libs) for "
                    "this device, or python = ... on a phone that has one",
                )
            )
            items += _skipped(("abi",), "perf_test")
        else:
            items.append(CheckItem("perf_test", True, str(binary)))
            abilist = facts.get("abilist")
            supported = [str(a) for a in abilist] if isinstance(abilist, list) else []
            try:
                abi = abi_of_elf(binary)
            except DeviceError as exc:
                items.append(CheckItem("abi", False, exc.message, None))
            else:
                ok = not supported or abi in supported
                items.append(
                    CheckItem(
                        "abi",
                        ok,
                        f"{binary.name} is {abi}; the phone runs {', '.join(supported) or '?'}",
                        None
                        if ok
                        else f"rebuild with --android_abi {supported[0] if supported else '...'}",
                    )
                )
        items.append(_check_workdir(config, transport))
        if runner_smoke is not None:
            if all(item.ok for item in items):
                problem = runner_smoke(transport)
                items.append(
                    CheckItem("runner", problem is None, problem or "perf_test measured a model")
                )
            else:
                items += _skipped(("runner",), "an earlier check")
    finally:
        transport.close()
    return items


def _check_workdir(config: DeviceConfig, transport: Transport) -> CheckItem:
    try:
        workdir = transport.workdir
        probe = f"{workdir}/.mnbench-write-test"
        transport.run(["sh", "-c", 'echo ok > "$1" && rm -f "$1"', "sh", probe], timeout_s=60)
    except TransportError as exc:
        target = config.workdir or "~/.cache/mnbench"
        return CheckItem(
            "workdir",
            False,
            str(exc),
            device_command(
                config,
                [
                    "sh",
                    "-c",
                    f"mkdir -p -- {shell_path(target)} && touch -- {shell_path(target + '/x')}",
                ],
            )
            + "  # or set workdir = a writable directory",
        )
    return CheckItem("workdir", True, f"{workdir} is writable")


def _skipped(names: Sequence[CheckName], because: str) -> list[CheckItem]:
    return [CheckItem(name, False, f"skipped: {because} failed") for name in names]


def install_runtime(
    config: DeviceConfig, transport: Transport, timeout_s: float = 1800.0
) -> Completed:
    """``python -m pip install [--user] numpy onnxruntime`` on the device."""
    versions = probe_python(transport, config.python_argv, env=config.env)
    argv = pip_install_argv(config.python_argv, bool(versions.get("in_venv")))
    try:
        return transport.run(argv, timeout_s=timeout_s, env=config.env)
    except CommandFailed as exc:
        output = exc.completed.stderr + exc.completed.stdout
        if "externally-managed-environment" in output:
            raise DeviceError(
                f"the system Python on {transport.name} is externally managed (PEP 668); "
                f"make a venv there: {venv_fix(config)}"
            ) from exc
        if "No module named pip" in output:
            raise DeviceError(
                f"pip is missing on {transport.name}; install it with: "
                + device_command(config, ["sudo", "apt-get", "install", "-y", "python3-pip"])
            ) from exc
        raise
