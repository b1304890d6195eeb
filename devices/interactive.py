"""Interactive processes on a device: a long-lived command spoken to line by line.

``start_interactive(argv)`` on a transport starts ``argv`` on the device with its stdin and
stdout connected to the harness (directly for ``local``, through the ``ssh`` or ``adb shell``
client otherwise) and returns an ``InteractiveProcess``:

- ``exchange(line, timeout_s)`` writes one line and reads one reply line; every read has a
  timeout, and a process that does not answer in time is killed (with its process group,
  on the device and the local client) and ``CommandTimeout`` is raised;
- ``suspend()`` / ``resume()`` send SIGSTOP / SIGCONT to the device-side process group, so
  a process waiting for its next command takes no CPU at all (its threads cannot spin);
- ``close()`` resumes a suspended group, closes stdin, waits briefly, then kills the group.

The device-side process group is learnt from the first line the command prints. Remote
commands are started under a constant ``sh`` prologue that prints ``__MNBENCH_PGID=<id>``
(field 5 of ``/proc/$$/stat``) and then ``exec``\\ s the argv; signals to the group are
sent with ``kill -s SIG -- -PGID`` through the transport's own ``run``. Locally the command
is started in a new session, so its group id is its pid. A group id equal to the harness's
own is refused (a signal would stop the harness itself).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Protocol, runtime_checkable

from devices.transport import (
    CommandTimeout,
    Completed,
    Transport,
    TransportError,
    die_with_parent,
    kill_group,
)

GROUP_MARKER = "__MNBENCH_PGID="
GROUP_PROLOGUE = 'printf "%s%s\\n" "$0" "$(cut -d " " -f 5 /proc/$$/stat)" && exec "$@"'
"""``sh -c GROUP_PROLOGUE __MNBENCH_PGID= ARGV...``: prints the marker and the group id."""
SIGNAL_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60.0
CLOSE_WAIT_S = 5.0
_READ_CHUNK = 65536

SignalGroup = Callable[[int, str], None]
"""``signal_group(pgid, "STOP" | "CONT" | "KILL")`` on the device."""


@runtime_checkable
class InteractiveTransport(Transport, Protocol):
    """A transport that can also start interactive processes (local, SSH, adb)."""

    def start_interactive(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> InteractiveProcess: ...

    def signal_group(self, pgid: int, signal_name: str) -> None: ...


def prologue_argv(argv: Sequence[str]) -> list[str]:
    """argv wrapped so that it first prints its process group id (for remote devices)."""
    if not argv:
        raise ValueError("argv must not be empty")
    return ["sh", "-c", GROUP_PROLOGUE, GROUP_MARKER, *argv]


class InteractiveProcess:
    """One running command: line exchanges with timeouts, suspend/resume, close."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        device: str,
        program: str,
        signal_group: SignalGroup,
        stderr_file: IO[bytes],
        pgid: int | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self._proc = proc
        self.device = device
        self.program = program
        self._signal = signal_group
        self._stderr = stderr_file
        self._buffer = b""
        self._eof = False
        self._suspended = False
        self._closed = False
        assert proc.stdout is not None and proc.stdin is not None
        self._stdout = proc.stdout
        self._stdin = proc.stdin
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)
        if pgid is None:
            try:
                first = self.read_line(start_timeout_s)
            except BaseException:
                self.close()
                raise
            if not first.startswith(GROUP_MARKER) or not first[len(GROUP_MARKER) :].isdigit():
                self.kill()
                raise TransportError(
                    f"{program} on {device} did not start as expected (first line {first!r}); "
                    "the device needs sh, cut and /proc"
                )
            pgid = int(first[len(GROUP_MARKER) :])
        if pgid <= 1 or pgid == os.getpgrp():
            self.kill()
            raise TransportError(
                f"{program} on {device} runs in process group {pgid}, which cannot be "
                "signalled safely; the device's shell must start commands in their own group"
            )
        self.pgid = pgid

    # -- lines -----------------------------------------------------------------------------

    def send_line(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("one line at a time")
        try:
            self._stdin.write(line.encode() + b"\n")
            self._stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._ended("while being sent a command") from None

    def read_line(self, timeout_s: float) -> str:
        """The next line of output (without the newline), waiting at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            if self._eof:
                raise self._ended("before it answered")
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                if b"\n" in self._buffer:
                    break
                self.kill()
                raise CommandTimeout(
                    f"{self.program} on {self.device} did not answer within {timeout_s:g} s "
                    "and was killed; raise the timeout or check the device",
                    self._buffer.decode(errors="replace"),
                    self.stderr_text(),
                )
            chunk = os.read(self._stdout.fileno(), _READ_CHUNK)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")

    def exchange(self, line: str, timeout_s: float) -> str:
        """Send one line, return the reply line."""
        self.send_line(line)
        return self.read_line(timeout_s)

    # -- the process group on the device ----------------------------------------------------

    @property
    def suspended(self) -> bool:
        return self._suspended

    def suspend(self) -> None:
        """SIGSTOP the device-side process group: it takes no CPU until ``resume()``."""
        if not self._suspended:
            self._signal(self.pgid, "STOP")
            self._suspended = True

    def resume(self) -> None:
        if self._suspended:
            self._signal(self.pgid, "CONT")
            self._suspended = False

    def poll(self) -> int | None:
        return self._proc.poll()

    # -- ending ------------------------------------------------------------------------------

    def stderr_text(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            return self._stderr.read().decode(errors="replace")
        return ""

    def _ended(self, when: str) -> TransportError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=CLOSE_WAIT_S)
        tail = (self.stderr_text().strip().splitlines() or [""])[-1][:300]
        rc = self._proc.poll()
        how = f"exited {rc}" if rc is not None else "closed its output"
        return TransportError(
            f"{self.program} on {self.device} {how} {when}" + (f": {tail}" if tail else "")
        )

    def kill(self) -> None:
        """Kill the device-side group (best effort) and the local process and its group."""
        if hasattr(self, "pgid"):
            with contextlib.suppress(TransportError, OSError):
                self._signal(self.pgid, "KILL")
        kill_group(self._proc)
        self._finish()

    def close(self, timeout_s: float = CLOSE_WAIT_S) -> int | None:
        """End the process: resume it, close its stdin, wait ``timeout_s``, then kill it."""
        if self._closed:
            return self._proc.poll()
        with contextlib.suppress(TransportError, OSError):
            self.resume()
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self._finish()
        return self._proc.poll()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self._proc.wait(timeout=CLOSE_WAIT_S)
        for stream in (self._stdin, self._stdout, self._stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        self._selector.close()

    def __enter__(self) -> InteractiveProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def spawn(
    argv: Sequence[str],
    device: str,
    program: str,
    signal_group: SignalGroup,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    local_group: bool = False,
) -> InteractiveProcess:
    """Start ``argv`` locally (the command itself, or the ssh/adb client that carries it).

    ``local_group=True``: the command is the device-side process (local transport); its group
    id is its pid. Otherwise the first output line names the device-side group.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 -- owned by the process object
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - see die_with_parent
        )
    except OSError as exc:
        stderr_file.close()
        raise TransportError(f"cannot start {argv[0]!r} on {device}: {exc.strerror}") from exc
    return InteractiveProcess(
        proc, device, program, signal_group, stderr_file, proc.pid if local_group else None
    )


def signal_local_group(pgid: int, signal_name: str) -> None:
    """``os.killpg`` for this machine's groups; a group that is gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, getattr(signal, f"SIG{signal_name}"))


def signal_remote_group(
    run: Callable[..., object], device: str, pgid: int, signal_name: str
) -> None:
    """``kill -s SIG -- -PGID`` on the device through the transport's ``run``.

    A group that is already gone is not an error for KILL; for STOP and CONT it is.
    """
    done = run(
        ["kill", "-s", signal_name, "--", f"-{pgid}"], timeout_s=SIGNAL_TIMEOUT_S, check=False
    )
    assert isinstance(done, Completed)
    if done.rc != 0 and signal_name != "KILL":
        tail = (done.stderr.strip().splitlines() or [""])[-1][:200]
        raise TransportError(
            f"cannot send SIG{signal_name} to process group {pgid} on {device}: {tail}"
        )
