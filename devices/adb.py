"""``AdbTransport``: an Android phone reached through the ``adb`` client binary.

Every call is one ``adb [-H HOST] [-P PORT] -s SERIAL ...`` process, the way
onnxruntime's own Android CI drives phones (``tools/ci_build/build.py``,
``run_android_tests``). Behaviour follows the adb client at AOSP ``platform/system/core``
tag platform-tools-29.0.6:

- ``adb shell CMD`` sends one string that the device runs with ``sh -c`` (the client joins
  its arguments with spaces without escaping, ``adb/client/commandline.cpp``), so every
  argv element is ``shlex.quote``d here;
- with the ``shell_v2`` feature the client returns the remote exit status, without it it
  always returns 0 (``commandline.cpp``: ``RemoteShell``/``read_and_dump``). In both
  cases the command ends with ``echo __MNBENCH_RC=$?``: ``read_and_dump`` also returns 0
  when the connection drops before the exit packet arrives, so a missing marker is how
  a lost connection is told apart from success;
- ``adb push``/``adb pull`` use the sync service (``adb/client/file_sync_client.cpp``); the
  device's failure text (``remote write failed: No space left on device``) is passed on.

Failures are one line that says what to do: no adb binary, device not found, offline,
unauthorized, connection lost, a failed transfer. A timeout kills the adb process group.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devices.transport import (
    ClosingContext,
    CommandFailed,
    CommandTimeout,
    Completed,
    TransportError,
    communicate_or_kill,
    describe_failure,
    die_with_parent,
)

if TYPE_CHECKING:
    from devices.interactive import InteractiveProcess

DEFAULT_WORKDIR = "/data/local/tmp/mnbench"
RC_MARKER = "__MNBENCH_RC="
_RC_RE = re.compile(re.escape(RC_MARKER) + r"(\d+)\r?\n?\Z")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HOST_PORT_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
CONTROL_TIMEOUT_S = 30.0
TRANSFER_RATE_FLOOR_BYTES_PER_S = 2 * 1024 * 1024


@dataclass(frozen=True)
class _Ran:
    rc: int
    stdout: str
    stderr: str
    wall_s: float


class AdbTransport(ClosingContext):
    """One Android device (``SERIAL`` as ``adb devices`` lists it, or ``HOST:PORT``)."""

    def __init__(
        self,
        serial: str,
        adb: str = "adb",
        server_host: str | None = None,
        server_port: int | None = None,
        workdir: str | None = None,
    ) -> None:
        if not serial or serial.startswith("-") or re.search(r"[\s\x00-\x1f\x7f]", serial):
            raise TransportError(
                f"invalid adb serial {serial!r}; list devices with 'adb devices'"
                if serial
                else "no adb serial given; list devices with 'adb devices'"
            )
        self.serial = serial
        self._adb = adb
        self._server_host = server_host
        self._server_port = server_port
        self._workdir = workdir or DEFAULT_WORKDIR
        self._adb_path: str | None = None
        self._shell_v2: bool | None = None
        self._made_dirs: set[str] = set()

    # -- Transport interface -----------------------------------------------------------

    @property
    def name(self) -> str:
        return f"adb://{self.serial}"

    @property
    def workdir(self) -> str:
        if self._workdir not in self._made_dirs:
            self._mkdirs(self._workdir)
        return self._workdir

    @property
    def shell_v2(self) -> bool:
        """Whether the device speaks the shell protocol v2 (exit codes, separate stderr)."""
        self._ensure_ready()
        assert self._shell_v2 is not None
        return self._shell_v2

    def run(
        self,
        argv: Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        check: bool = True,
    ) -> Completed:
        if not argv:
            raise ValueError("run() needs a non-empty argv")
        self._ensure_ready()
        command = shell_command(argv, env=env, cwd=cwd)
        ran = self._adb_run(
            [*self._device_argv(), "shell", f"{command}; echo {RC_MARKER}$?"],
            timeout_s,
            what=os.path.basename(argv[0]),
        )
        match = _RC_RE.search(ran.stdout)
        if match is None:
            self._raise_for_adb_error(ran)
            raise TransportError(
                f"connection to {self.name} was lost while running {argv[0]!r}; "
                "check the cable or network with 'adb devices' and retry"
            )
        completed = Completed(
            tuple(argv), int(match.group(1)), ran.stdout[: match.start()], ran.stderr, ran.wall_s
        )
        if check and completed.rc != 0:
            raise CommandFailed(describe_failure(self.name, completed), completed)
        return completed

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        if not local.is_file():
            raise TransportError(f"push {local} -> {self.name}: no such local file")
        self._ensure_ready()
        parent = posixpath.dirname(remote.rstrip("/")) or "/"
        if parent not in self._made_dirs:
            self._mkdirs(parent)
        ran = self._adb_run(
            [*self._device_argv(), "push", str(local), remote],
            _transfer_timeout_s(local.stat().st_size),
            what="adb push",
        )
        if ran.rc != 0:
            self._raise_for_adb_error(ran)
            raise TransportError(
                f"push {local} -> {self.name}:{remote} failed: {_transfer_reason(ran)}"
                f"{_transfer_advice(ran)}"
            )

    def pull(self, remote: str, local: Path) -> None:
        local = Path(local)
        self._ensure_ready()
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f".{local.name}.part")
        ran = self._adb_run(
            [*self._device_argv(), "pull", remote, str(part)],
            _transfer_timeout_s(256 * 1024 * 1024),
            what="adb pull",
        )
        if ran.rc != 0:
            part.unlink(missing_ok=True)
            self._raise_for_adb_error(ran)
            raise TransportError(
                f"pull {self.name}:{remote} -> {local} failed: {_transfer_reason(ran)}"
                f"{_transfer_advice(ran)}"
            )
        os.replace(part, local)

    def close(self) -> None:
        return None

    # -- adb plumbing -----------------------------------------------------------------

    def _server_argv(self) -> list[str]:
        assert self._adb_path is not None
        argv = [self._adb_path]
        if self._server_host:
            argv += ["-H", self._server_host]
        if self._server_port is not None:
            argv += ["-P", str(self._server_port)]
        return argv

    def _device_argv(self) -> list[str]:
        return [*self._server_argv(), "-s", self.serial]

    def _resolve_adb(self) -> str:
        found = shutil.which(self._adb)
        if found is None:
            raise TransportError(
                f"the adb client {self._adb!r} was not found; install it "
                "(Debian/Ubuntu: apt-get install adb) or give the path of the binary (adb=PATH)"
            )
        return found

    def _ensure_ready(self) -> None:
        if self._shell_v2 is not None:
            return
        if self._adb_path is None:
            self._adb_path = self._resolve_adb()
        state = self.state()
        if state is None and _HOST_PORT_RE.match(self.serial):
            self._connect()
            state = self.state()
        self._check_state(state)
        ran = self._adb_run([*self._device_argv(), "features"], CONTROL_TIMEOUT_S, "adb features")
        if ran.rc != 0:
            self._raise_for_adb_error(ran)
            raise TransportError(
                f"cannot read the features of {self.name}: {_last_line(ran)}; check 'adb devices'"
            )
        self._shell_v2 = "shell_v2" in ran.stdout.split()

    def state(self) -> str | None:
        """The device's state in ``adb devices`` (``device``, ``offline``...), None if absent."""
        if self._adb_path is None:
            self._adb_path = self._resolve_adb()
        ran = self._adb_run([*self._server_argv(), "devices"], CONTROL_TIMEOUT_S, "adb devices")
        if ran.rc != 0:
            raise TransportError(
                f"cannot list adb devices: {_last_line(ran)}; check the adb server "
                "('adb start-server', or the -H/-P server address)"
            )
        for line in ran.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == self.serial:
                return fields[1]
        return None

    def _connect(self) -> None:
        ran = self._adb_run(
            [*self._server_argv(), "connect", self.serial], CONTROL_TIMEOUT_S, "adb connect"
        )
        text = (ran.stdout + ran.stderr).strip()
        if "failed to authenticate" in text:
            self._check_state("unauthorized")
        if ran.rc != 0 or not ("connected to" in text and "failed" not in text):
            raise TransportError(
                f"cannot connect to adb device {self.serial}: {_last_line(ran) or 'no answer'}; "
                f"check that the phone listens there ('adb tcpip 5555' over USB first) "
                f"and retry 'adb connect {self.serial}'"
            )

    def _check_state(self, state: str | None) -> None:
        if state == "device":
            return
        if state is None:
            raise TransportError(
                f"adb device {self.serial!r} not found; list attached devices with "
                "'adb devices' (for a phone over the network: adb connect HOST:PORT)"
            )
        if state == "offline":
            raise TransportError(
                f"adb device {self.serial!r} is offline; replug the cable or run "
                "'adb reconnect offline', then retry"
            )
        if state in ("unauthorized", "authorizing"):
            raise TransportError(
                f"adb device {self.serial!r} is unauthorized; unlock the phone and accept "
                "the RSA prompt ('Allow USB debugging'), then retry"
            )
        raise TransportError(
            f"adb device {self.serial!r} is in {state!r} mode, not running Android; "
            "reboot it ('adb reboot') and retry"
        )

    def _raise_for_adb_error(self, ran: _Ran) -> None:
        """Turn the adb client's own error lines into one actionable line."""
        text = f"{ran.stderr}\n{ran.stdout}"
        if "device unauthorized" in text or "device still authorizing" in text:
            self._check_state("unauthorized")
        if "device offline" in text:
            self._check_state("offline")
        if re.search(r"error: device '.*' not found|no devices/emulators found", text):
            self._shell_v2 = None  # look again (and reconnect) next time
            self._check_state(None)
        if "cannot connect to daemon" in text or "failed to start daemon" in text:
            raise TransportError(
                f"cannot reach the adb server for {self.name}: {_last_line(ran)}; "
                "start it with 'adb start-server' or check the -H/-P server address"
            )
        if re.search(r"error: (closed|protocol fault|connection reset)", text) or (
            "couldn't read from device" in text
        ):
            self._shell_v2 = None
            raise TransportError(
                f"connection to {self.name} was lost: {_last_line(ran)}; check the cable "
                "or network with 'adb devices' and retry"
            )

    def _mkdirs(self, remote_dir: str) -> None:
        self.run(["mkdir", "-p", remote_dir], timeout_s=CONTROL_TIMEOUT_S)
        path = remote_dir.rstrip("/") or "/"
        while path not in ("/", ""):
            self._made_dirs.add(path)
            path = posixpath.dirname(path)

    def _adb_run(self, argv: list[str], timeout_s: float, what: str) -> _Ran:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - see die_with_parent
            )
        except FileNotFoundError:
            raise TransportError(
                f"the adb client {argv[0]!r} was not found; install it "
                "(Debian/Ubuntu: apt-get install adb) or give the path of the binary (adb=PATH)"
            ) from None
        except OSError as exc:
            raise TransportError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc
        out, err, timed_out = communicate_or_kill(proc, timeout_s)
        if timed_out:
            raise CommandTimeout(
                f"{what} on {self.name} did not finish within {timeout_s:g} s and was killed; "
                "raise the timeout or check the device",
                _strip_marker(out),
                err,
            )
        return _Ran(proc.returncode, out, err, time.perf_counter() - start)

    # -- interactive processes (devices/interactive.py) ----------------------------------

    def start_interactive(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> InteractiveProcess:
        """Needs the shell protocol v2: only then does ``adb shell`` forward stdin."""
        from devices.interactive import prologue_argv, spawn

        if not self.shell_v2:
            raise TransportError(
                f"{self.name} does not speak the adb shell protocol v2, so a command there "
                "cannot read its stdin; update the device's adbd (Android 7 or newer)"
            )
        command = shell_command(prologue_argv(argv), env=env, cwd=cwd)
        return spawn(
            [*self._device_argv(), "shell", command],
            self.name,
            os.path.basename(argv[0]),
            self.signal_group,
        )

    def signal_group(self, pgid: int, signal_name: str) -> None:
        from devices.interactive import signal_remote_group

        signal_remote_group(self.run, self.name, pgid, signal_name)


def shell_command(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None
) -> str:
    """One ``sh -c`` string for argv: every word quoted, ``K=V`` prefixes, ``cd DIR &&``."""
    words = []
    for key, value in (env or {}).items():
        if not _ENV_NAME_RE.match(key):
            raise ValueError(f"not an environment variable name: {key!r}")
        words.append(f"{key}={shlex.quote(value)}")
    words.extend(shlex.quote(str(word)) for word in argv)
    command = " ".join(words)
    if cwd is not None:
        command = f"cd {shlex.quote(cwd)} && {command}"
    return command


def _strip_marker(stdout: str) -> str:
    match = _RC_RE.search(stdout)
    return stdout[: match.start()] if match else stdout


def _last_line(ran: _Ran) -> str:
    lines = [
        line.strip()
        for line in (ran.stderr + "\n" + ran.stdout).splitlines()
        if line.strip() and not line.startswith("* daemon")
    ]
    return lines[0][:300] if lines else ""


def _transfer_reason(ran: _Ran) -> str:
    for line in (ran.stdout + "\n" + ran.stderr).splitlines():
        match = re.search(r"failed to copy '.*?' to '.*?': (.*)", line)
        if match:
            return match.group(1).strip().removeprefix("remote ")
        match = re.search(r"(?:adb: )?error: (.*)", line)
        if match:
            return match.group(1).strip()
    return _last_line(ran) or f"adb exited {ran.rc}"


def _transfer_advice(ran: _Ran) -> str:
    text = ran.stdout + ran.stderr
    if "No space left" in text:
        return "; free space on the phone (adb shell df -h /data/local/tmp) and retry"
    if "Permission denied" in text or "Read-only file system" in text:
        return "; use a path under /data/local/tmp, which the shell user may write"
    if "No such file" in text:
        return "; check the remote path with 'adb shell ls'"
    return "; check 'adb devices' and retry"


def _transfer_timeout_s(size_bytes: int) -> float:
    return 60.0 + size_bytes / TRANSFER_RATE_FLOOR_BYTES_PER_S
