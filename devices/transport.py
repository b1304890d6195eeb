"""The Transport seam: the one way every device is reached (TVM RPC's LocalSession idea).

A transport runs an argv on the device, moves files both ways and owns a work directory.
``LocalTransport`` implements the same interface as the SSH and adb transports, so sweep
orchestration never branches on where the device is.

Contract (docs/architecture.md):
- ``run(argv, timeout_s, env=None, cwd=None) -> Completed``; argv is a list and is never
  joined into a shell string unquoted; every call has a timeout; a non-zero exit raises
  ``CommandFailed`` carrying stdout/stderr unless ``check=False``.
- ``push(local, remote)``, ``pull(remote, local)``: byte-identical copies; parent
  directories are created on the receiving side.
- ``workdir``: a directory on the device the harness may write to.
- ``close()``: release connections; transports are context managers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from harness.errors import UserError

if TYPE_CHECKING:
    from devices.interactive import InteractiveProcess


@dataclass(frozen=True)
class Completed:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    wall_s: float


class TransportError(UserError):
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


class LocalTransport(ClosingContext):
    """This machine, through the same interface as a remote device."""

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        self._workdir = str(workdir) if workdir is not None else None

    @property
    def name(self) -> str:
        return "local"

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="mnbench-")
        Path(self._workdir).mkdir(parents=True, exist_ok=True)
        return self._workdir

    def run(
        self,
        argv: Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        check: bool = True,
    ) -> Completed:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot start {argv[0]!r} on local: {exc.strerror}") from exc
        out, err, timed_out = communicate_or_kill(proc, timeout_s)
        if timed_out:
            raise CommandTimeout(
                f"{os.path.basename(argv[0])} on local did not finish within {timeout_s:g} s "
                "and was killed; raise the timeout or check the command",
                out,
                err,
            )
        completed = Completed(tuple(argv), proc.returncode, out, err, time.perf_counter() - start)
        if check and completed.rc != 0:
            raise CommandFailed(describe_failure(self.name, completed), completed)
        return completed

    def push(self, local: Path, remote: str) -> None:
        _copy(Path(local), Path(remote), "push")

    def pull(self, remote: str, local: Path) -> None:
        _copy(Path(remote), Path(local), "pull")

    def close(self) -> None:
        return None

    def start_interactive(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> InteractiveProcess:
        """``argv`` here, in its own session, spoken to line by line (devices/interactive.py)."""
        from devices.interactive import signal_local_group, spawn

        return spawn(argv, self.name, os.path.basename(argv[0]), signal_local_group, env, cwd, True)

    def signal_group(self, pgid: int, signal_name: str) -> None:
        from devices.interactive import signal_local_group

        signal_local_group(pgid, signal_name)


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


def _copy(src: Path, dst: Path, verb: str) -> None:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise TransportError(
            f"{verb} {src} -> {dst} failed on local: {exc.strerror or exc}"
        ) from exc
