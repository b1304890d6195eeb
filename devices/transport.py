"""The Transport seam: the one way every device is reached (TVM RPC's LocalSession idea).

A transport runs an argv on the device, moves files both ways and owns a work directory.
``LocalTransport`` (``devices/local.py``) implements the same interface as the SSH and adb
transports, so sweep orchestration never branches on where the device is.

Contract (docs/architecture.md):
- ``run(argv, timeout_s, env=None, cwd=None) -> Completed``; argv is a list and is never
  joined into a shell string unquoted; every call has a timeout; a non-zero exit raises
  ``CommandFailed`` carrying stdout/stderr unless ``check=False``.
- ``push(local, remote)``, ``pull(remote, local)``: byte-identical copies; parent
  directories are created on the receiving side.
- ``workdir``: a directory on the device the harness may write to.
- ``close()``: release connections; transports are context managers.

Every child a transport starts (the runner locally, the ``ssh``/``adb`` clients for remote
devices) leads its own process group and, on Linux, is killed by the kernel when the harness
dies, even by SIGKILL (``die_with_parent``, ``prctl(PR_SET_PDEATHSIG)``); the ssh and adb
wrappers on the device kill the remote command when that client's channel closes.
``LocalTransport`` removes the temporary work directory it created when it is closed unless
asked to keep it, and removes those of earlier harness processes that were killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from devices.errors import DeviceError
from devices.processes import pid_alive

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Completed:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    wall_s: float


class TransportError(DeviceError):
    """The device could not be reached or a file could not be moved (exit code 2)."""


class CommandFailed(TransportError):
    """A command ran on the device and exited non-zero (or was killed)."""

    def __init__(self, message: str, completed: Completed) -> None:
        super().__init__(message)
        self.completed = completed


class CommandTimeout(TransportError):
    """A command did not finish within its timeout and was killed."""

    def __init__(self, message: str, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


@runtime_checkable
class Transport(Protocol):
    """How the harness reaches one device."""

    @property
    def name(self) -> str:
        """A short human name for messages, e.g. ``local`` or ``ssh://pi@board:22``."""
        ...

    @property
    def workdir(self) -> str:
        """A writable directory on the device (created on first use)."""
        ...

    def run(
        self,
        argv: Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        check: bool = True,
    ) -> Completed: ...

    def push(self, local: Path, remote: str) -> None: ...

    def pull(self, remote: str, local: Path) -> None: ...

    def close(self) -> None: ...


def describe_failure(name: str, completed: Completed) -> str:
    """One line for a failed command: what ran, how it ended, the last line of stderr."""
    tail = (completed.stderr.strip().splitlines() or completed.stdout.strip().splitlines() or [""])[
        -1
    ]
    how = f"was killed by signal {-completed.rc}" if completed.rc < 0 else f"exited {completed.rc}"
    program = os.path.basename(completed.argv[0]) if completed.argv else "command"
    line = f"{program} on {name} {how}"
    return f"{line}: {tail[:300]}" if tail else line


_T = TypeVar("_T", bound="ClosingContext")


class ClosingContext:
    """``with transport:`` closes it on the way out (shared by every transport)."""

    def close(self) -> None:
        return None

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


WORKDIR_PREFIX = "mnbench-"
OWNER_FILE = ".mnbench-owner"
"""In a temporary work directory: ``PID HOST`` of the process that made it."""


def mark_owner(directory: str) -> None:
    """Write ``OWNER_FILE`` into a temporary directory this process made."""
    with contextlib.suppress(OSError):
        Path(directory, OWNER_FILE).write_text(f"{os.getpid()} {socket.gethostname()}")


def remove_orphaned_workdirs(base: str | None = None) -> list[str]:
    """Remove temporary work directories whose maker died without cleaning up (SIGKILL).

    Only directories that carry an ``OWNER_FILE`` naming a dead process on this host are
    touched; the removed paths are returned.
    """
    root = Path(base or tempfile.gettempdir())
    removed: list[str] = []
    host = socket.gethostname()
    for path in root.glob(f"{WORKDIR_PREFIX}*"):
        try:
            pid_text, _, owner_host = (path / OWNER_FILE).read_text().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if owner_host != host or pid == os.getpid() or pid_alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed


@functools.lru_cache(maxsize=1)
def _prctl() -> Any:
    """libc's ``prctl`` (looked up once: the harness's own process already has libc)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when this process dies.

    Linux only (``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through libc); None elsewhere. A parent
    that died between ``fork`` and ``prctl`` is caught by comparing ``getppid``. The
    function runs in the forked child before ``exec`` and only makes three system calls
    (``prctl``, ``getppid``, ``kill``) through an already loaded libc, taking no lock another
    thread could hold, which is what makes ``preexec_fn`` safe here.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = _prctl()
    if prctl is None:  # pragma: no cover
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kill a process started with ``start_new_session=True`` and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def communicate_or_kill(proc: subprocess.Popen[Any], timeout_s: float) -> tuple[Any, Any, bool]:
    """(stdout, stderr, timed_out). A process still running after ``timeout_s``, or when the
    caller is interrupted (Ctrl-C), is killed with its whole process group."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        return out, err, True
    except BaseException:
        kill_group(proc)
        proc.wait()
        raise
    return out, err, False
