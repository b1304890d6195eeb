"""``SshTransport``: an ARM board (or any POSIX host) reached with the OpenSSH client binaries.

Using ``ssh`` itself rather than a Python SSH library means the user's ``~/.ssh/config``,
keys, agent and ``ProxyJump`` work unchanged (docs/devices.md, the same
choice as Ansible's default ``ssh`` connection plugin). Per ssh(1) and ssh_config(5)
of OpenSSH 9.2:

- one ControlMaster per transport, its socket in a private temporary directory, kept
  alive by ``ControlPersist`` between commands; ``close()`` runs ``ssh -O exit`` and
  removes the directory;
- ``BatchMode=yes`` (never prompt), ``-T`` (never a PTY, so stderr stays separate),
  ``ConnectTimeout``, ``ServerAliveInterval``;
- host keys are always checked: ``StrictHostKeyChecking=yes`` by default, ``accept-new``
  only when the caller asks for it (logged); a changed key is never bypassed;
- ssh exits 255 for its own errors; those are turned into one-line ``TransportError``
  messages that say what to do. Any other exit status is the remote command's.

The remote login shell receives one command string in which every piece is
``shlex.quote``d (so the login shell must be POSIX-like: sh, dash, bash, zsh, ash). The
command runs under a small constant ``sh`` wrapper that kills the command's process group
when the SSH channel closes, so a command whose local ``ssh`` was killed on timeout (or whose
harness died) does not keep running on the board. Files move as ``cat`` streams over the same
connection: byte-identical, parent directories created, written to a ``.part`` file and
renamed, so a failed transfer never leaves a truncated file under the final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from devices.ssh_options import UnsafeSshOption, check_ssh_options, valid_host, valid_user
from devices.transport import (
    ClosingContext,
    CommandFailed,
    CommandTimeout,
    Completed,
    TransportError,
    communicate_or_kill,
    describe_failure,
    die_with_parent,
    mark_owner,
    remove_orphaned_workdirs,
)

if TYPE_CHECKING:
    from devices.interactive import InteractiveProcess

log = logging.getLogger(__name__)

SSH_ERROR_RC = 255
CONTROL_PERSIST_S = 60
SERVER_ALIVE_INTERVAL_S = 15
DEFAULT_WORKDIR = "~/.cache/mnbench"
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Runs "$@" in the background and, as soon as its stdin -- the SSH channel -- reaches EOF,
# kills the command: the whole process group when this shell leads it (OpenSSH's sshd makes
# the session a new session with setsid), else only the command itself, so a server that
# keeps sessions in its own group is never hit. Background jobs get /dev/null as stdin, so
# the channel is kept on fd 3 for the watcher only.
_WATCH_SCRIPT = (
    'exec 3<&0; "$@" 3<&- & c=$!; '
    "{ cat <&3 >/dev/null 2>&1; g=; "
    "{ read -r s < /proc/$$/stat && set -- $s && g=$5; } 2>/dev/null; "
    'if [ "$g" = "$$" ]; then kill -KILL 0; else kill -KILL $c; fi; } >/dev/null 2>&1 & w=$!; '
    "exec 3<&-; wait $c; r=$?; kill $w 2>/dev/null; exit $r"
)
_PUSH_SCRIPT = (
    'd=$(dirname -- "$1") && mkdir -p -- "$d" && '
    '{ cat > "$1.part" && mv -f -- "$1.part" "$1"; } || { rm -f -- "$1.part"; exit 1; }'
)
_WORKDIR_SCRIPT = 'cd && mkdir -p -- "$1" && cd -- "$1" && pwd'


def classify_ssh_error(
    stderr: str,
    destination: str,
    host: str,
    port: int | None,
    identity_file: str | None = None,
    known_hosts_file: str | None = None,
) -> str | None:
    """A one-line message for a connection-level failure in ssh's stderr, or None.

    Pure, so it is tested on recorded OpenSSH 9.2 messages.
    """
    text = stderr.replace("\r", "")
    hostport = f"{host}:{port or 22}"
    known_name = f"[{host}]:{port}" if port not in (None, 22) else host
    in_file = f" -f {shlex.quote(known_hosts_file)}" if known_hosts_file else ""
    key = f"the identity file {identity_file}" if identity_file else "your keys and ssh-agent"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return (
            f"the host key of {hostport} has CHANGED since it was recorded (a re-installed "
            f"board, or someone in the middle); verify the new key with the board's owner, "
            f"then remove the old one with `ssh-keygen -R {shlex.quote(known_name)}{in_file}`"
        )
    if re.search(r"No \S+ host key is known for", text) or (
        "Host key verification failed" in text and "Offending" not in text
    ):
        return (
            f"the host key of {hostport} is not known and strict checking is on; connect "
            f"once with `ssh -p {port or 22} {shlex.quote(destination)}` to verify and record "
            "it, or pass "
            "accept_new_host_key / --accept-new-host-key (accept-new) to trust it on first use"
        )
    if "Permission denied" in text:
        return (
            f"ssh to {destination} at {hostport} was refused: permission denied (publickey); "
            f"check {key}, or install the key on the board with "
            f"`ssh-copy-id{' -i ' + shlex.quote(identity_file) if identity_file else ''} "
            f"-p {port or 22} {shlex.quote(destination)}`"
        )
    if "Connection refused" in text:
        return f"connection refused by {hostport}: is sshd running on {hostport}?"
    for pattern in (
        "Could not resolve hostname",
        "Name or service not known",
        "Temporary failure in name resolution",
        "No route to host",
        "Network is unreachable",
        "Connection timed out",
        "Operation timed out",
    ):
        if pattern in text:
            return (
                f"cannot reach {hostport} ({pattern.lower()}); check the host name, the "
                "network and that the board is powered on"
            )
    if re.search(r"(Load key|Identity file) .*(No such file|not accessible|invalid format)", text):
        return "ssh cannot use the identity file; check its path and permissions (chmod 600)"
    return None


class SshTransport(ClosingContext):
    """A device reached over SSH with the OpenSSH client (``ssh``), one multiplexed connection."""

    def __init__(
        self,
        host: str,
        user: str | None = None,
        port: int | None = None,
        identity_file: str | None = None,
        workdir: str | None = None,
        accept_new_host_key: bool = False,
        known_hosts_file: str | None = None,
        connect_timeout_s: float = 10.0,
        ssh_options: Sequence[str] = (),
    ) -> None:
        if not host or not valid_host(host):
            raise TransportError(f"invalid SSH host {host!r}; give a host name or address")
        if user is not None and not valid_user(user):
            raise TransportError(f"invalid SSH user {user!r}; give a plain login name")
        if port is not None and not 1 <= port <= 65535:
            raise TransportError(f"invalid SSH port {port}; use 1-65535")
        if connect_timeout_s <= 0:
            raise TransportError("connect_timeout_s must be positive")
        try:
            options = check_ssh_options(list(ssh_options))
        except UnsafeSshOption as exc:
            raise TransportError(exc.message) from None
        if identity_file is not None:
            identity_file = os.path.expanduser(identity_file)
            if not os.path.isfile(identity_file):
                raise TransportError(
                    f"identity file {identity_file} does not exist; fix identity_file or "
                    "create a key with `ssh-keygen -t ed25519`"
                )
        self.host = host
        self.user = user
        self.port = port
        self.identity_file = identity_file
        self.accept_new_host_key = accept_new_host_key
        self.known_hosts_file = known_hosts_file
        self.connect_timeout_s = connect_timeout_s
        self.ssh_options = options
        self._requested_workdir = workdir
        self._workdir: str | None = None
        self._control_dir: str | None = None
        self._ssh = shutil.which("ssh") or "ssh"
        if accept_new_host_key:
            log.warning(
                "%s: StrictHostKeyChecking=accept-new: an unknown host key will be recorded "
                "without verification (a changed key is still refused)",
                self.name,
            )

    # -- identity -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        who = f"{self.user}@" if self.user else ""
        where = f":{self.port}" if self.port else ""
        return f"ssh://{who}{self.host}{where}"

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def control_path(self) -> str | None:
        """The ControlMaster socket (None until the first connection)."""
        return os.path.join(self._control_dir, "cm") if self._control_dir else None

    # -- ssh command lines --------------------------------------------------------------

    def _ensure_control_dir(self) -> str:
        if self._control_dir is None:
            # Unix socket paths are limited to ~108 bytes: prefer a short base directory.
            base = tempfile.gettempdir()
            if len(base) > 60:
                base = "/tmp"
            remove_orphaned_workdirs(base)
            self._control_dir = tempfile.mkdtemp(prefix="mnbench-ssh-", dir=base)
            mark_owner(self._control_dir)
        return self._control_dir

    def ssh_argv(self, *extra: str) -> list[str]:
        """``ssh`` with this transport's options up to (not including) the destination."""
        control = os.path.join(self._ensure_control_dir(), "cm").replace("%", "%%")
        argv = [
            self._ssh,
            "-T",
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={max(1, round(self.connect_timeout_s))}",
            "-o", f"ServerAliveInterval={SERVER_ALIVE_INTERVAL_S}",
            "-o", "ServerAliveCountMax=4",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={_ssh_option_value(control)}",
            "-o", f"ControlPersist={CONTROL_PERSIST_S}",
            "-o", "StrictHostKeyChecking="
            + ("accept-new" if self.accept_new_host_key else "yes"),
        ]  # fmt: skip
        if self.known_hosts_file:
            argv += ["-o", f"UserKnownHostsFile={_ssh_option_value(self.known_hosts_file)}"]
        if self.identity_file:
            argv += ["-i", self.identity_file, "-o", "IdentitiesOnly=yes"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        for option in self.ssh_options:
            argv += ["-o", option]
        argv += list(extra)
        return argv

    def _remote_argv(self, command: str) -> list[str]:
        return [*self.ssh_argv(), "--", self.host, command]

    # -- connection ---------------------------------------------------------------------

    def _master_alive(self) -> bool:
        if self._control_dir is None:
            return False
        proc = subprocess.run(
            [*self.ssh_argv("-O", "check"), "--", self.host],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return proc.returncode == 0

    def connect(self) -> None:
        """Open the ControlMaster now (commands open it on demand otherwise)."""
        if self._master_alive():
            return
        control_dir = self._ensure_control_dir()
        with open(os.path.join(control_dir, "master.log"), "w+") as errors:
            try:
                proc = subprocess.run(
                    [*self.ssh_argv("-M", "-N", "-f"), "--", self.host],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    timeout=self.connect_timeout_s + 30,
                    check=False,
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired:
                raise TransportError(
                    f"cannot reach {self.host}:{self.port or 22} within "
                    f"{self.connect_timeout_s:g} s; check the network, or raise connect_timeout_s"
                ) from None
            errors.seek(0)
            stderr = errors.read()
        if proc.returncode != 0:
            raise TransportError(self._connection_message(stderr))

    def _connection_message(self, stderr: str) -> str:
        message = classify_ssh_error(
            stderr,
            self.destination,
            self.host,
            self.port,
            self.identity_file,
            self.known_hosts_file,
        )
        if message is not None:
            return message
        tail = (stderr.strip().splitlines() or ["no message"])[-1].strip()
        return f"ssh to {self.name} failed: {tail[:300]}; try `ssh -v` with the same options"

    def _lost_message(self, what: str) -> str:
        return (
            f"the SSH connection to {self.name} was lost during {what}; check that the board "
            "is up (power, network, a reboot or OOM kill) and retry"
        )

    # -- Transport ----------------------------------------------------------------------

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            requested = self._requested_workdir or DEFAULT_WORKDIR
            if requested == "~":
                relative = "."
            elif requested.startswith("~/"):
                relative = requested[2:]
            else:
                relative = requested  # absolute, or relative to the login directory
            done = self.run(
                ["sh", "-c", _WORKDIR_SCRIPT, "sh", relative], timeout_s=30 + self.connect_timeout_s
            )
            path = done.stdout.strip()
            if not path.startswith("/"):
                raise TransportError(
                    f"cannot resolve the work directory {requested} on {self.name}"
                )
            self._workdir = path
        return self._workdir

    def remote_command(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> str:
        """The string the remote login shell runs: every piece shlex-quoted."""
        if not argv:
            raise ValueError("argv must not be empty")
        parts: list[str] = []
        if cwd is not None:
            parts += ["cd", shlex.quote(cwd), "&&"]
        parts += ["exec", "env"]
        for key, value in (env or {}).items():
            if not _ENV_KEY.match(key):
                raise ValueError(f"invalid environment variable name {key!r}")
            parts.append(shlex.quote(f"{key}={value}"))
        parts += ["sh", "-c", shlex.quote(_WATCH_SCRIPT), "mnbench"]
        parts += [shlex.quote(arg) for arg in argv]
        return " ".join(parts)

    def run(
        self,
        argv: Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        check: bool = True,
    ) -> Completed:
        command = self.remote_command(argv, env, cwd)
        self.connect()
        program = os.path.basename(argv[0])
        start = time.perf_counter()
        # stdin is a pipe we hold open: its EOF is what tells the remote wrapper to kill.
        stdin_read, stdin_write = os.pipe()
        try:
            proc = subprocess.Popen(
                self._remote_argv(command),
                stdin=stdin_read,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - see die_with_parent
            )
        except OSError as exc:
            os.close(stdin_write)
            raise TransportError(
                f"cannot start ssh: {exc.strerror}; install openssh-client"
            ) from exc
        finally:
            os.close(stdin_read)
        try:
            out, err, timed_out = communicate_or_kill(proc, timeout_s)
        finally:
            os.close(stdin_write)
        if timed_out:
            raise CommandTimeout(
                f"{program} on {self.name} did not finish within {timeout_s:g} s and was killed; "
                "raise the timeout or check the command",
                out,
                err,
            )
        completed = Completed(tuple(argv), proc.returncode, out, err, time.perf_counter() - start)
        if completed.rc == SSH_ERROR_RC:
            self._raise_if_connection_error(err, f"{program}")
        if check and completed.rc != 0:
            raise CommandFailed(describe_failure(self.name, completed), completed)
        return completed

    def _raise_if_connection_error(self, stderr: str, what: str) -> None:
        message = classify_ssh_error(
            stderr,
            self.destination,
            self.host,
            self.port,
            self.identity_file,
            self.known_hosts_file,
        )
        if message is not None:
            raise TransportError(message)
        if not self._master_alive():
            raise TransportError(self._lost_message(what))

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        try:
            size = local.stat().st_size
            source: IO[bytes] = open(local, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise TransportError(
                f"push {local} failed: {exc.strerror}; check the local path"
            ) from exc
        what = f"push {local} -> {self.name}:{remote}"
        with source:
            rc, _, err = self._stream(
                shlex.join(["sh", "-c", _PUSH_SCRIPT, "sh", remote]), stdin=source, size=size,
                what=what, stdout=None,
            )  # fmt: skip
        if rc != 0:
            raise TransportError(_transfer_message(what, err))

    def pull(self, remote: str, local: Path) -> None:
        local = Path(local)
        what = f"pull {self.name}:{remote} -> {local}"
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            part = local.with_name(f".{local.name}.part")
            sink: IO[bytes] = open(part, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise TransportError(f"{what} failed: {exc.strerror}; check the local path") from exc
        try:
            with sink:
                rc, _, err = self._stream(
                    shlex.join(["cat", "--", remote]), stdin=None, size=0, what=what, stdout=sink
                )
            if rc != 0:
                raise TransportError(_transfer_message(what, err))
            os.replace(part, local)
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()

    def _stream(
        self, command: str, stdin: IO[bytes] | None, size: int, what: str, stdout: IO[bytes] | None
    ) -> tuple[int, bytes, str]:
        self.connect()
        timeout_s = 120 + size / 1e6  # never slower than 1 MB/s on a live link
        proc = subprocess.Popen(
            self._remote_argv(command),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - see die_with_parent
        )
        out, err_bytes, timed_out = communicate_or_kill(proc, timeout_s)
        if timed_out:
            raise TransportError(
                f"{what} did not finish within {timeout_s:g} s; check the link to the board"
            )
        err = err_bytes.decode(errors="replace")
        if proc.returncode == SSH_ERROR_RC:
            self._raise_if_connection_error(err, what)
        return proc.returncode, out or b"", err

    def close(self) -> None:
        if self._control_dir is None:
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if os.path.exists(os.path.join(self._control_dir, "cm")):
                subprocess.run(
                    [*self.ssh_argv("-O", "exit"), "--", self.host],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
        shutil.rmtree(self._control_dir, ignore_errors=True)
        self._control_dir = None

    def __del__(self) -> None:
        # A forgotten transport must not leave a master running for ControlPersist seconds.
        if getattr(self, "_control_dir", None) is not None:
            with contextlib.suppress(Exception):
                self.close()

    # -- interactive processes (devices/interactive.py) ----------------------------------
    # The command runs without the EOF watcher of ``run`` (its stdin is the channel itself):
    # a command that reads its stdin ends when the channel closes, and ``close()``/``kill()``
    # of the interactive process also kill its group on the board.

    def start_interactive(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> InteractiveProcess:
        from devices.interactive import prologue_argv, spawn

        parts: list[str] = ["cd", shlex.quote(cwd), "&&"] if cwd is not None else []
        parts += ["exec", "env"]
        for key, value in (env or {}).items():
            if not _ENV_KEY.match(key):
                raise ValueError(f"invalid environment variable name {key!r}")
            parts.append(shlex.quote(f"{key}={value}"))
        parts += [shlex.quote(arg) for arg in prologue_argv(argv)]
        self.connect()
        return spawn(
            self._remote_argv(" ".join(parts)),
            self.name,
            os.path.basename(argv[0]),
            self.signal_group,
        )

    def signal_group(self, pgid: int, signal_name: str) -> None:
        from devices.interactive import signal_remote_group

        signal_remote_group(self.run, self.name, pgid, signal_name)


def _ssh_option_value(value: str) -> str:
    """Quote an ``-o`` value for ssh's own argument splitter when it holds spaces."""
    if re.search(r'[\s"]', value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _transfer_message(what: str, stderr: str) -> str:
    text = stderr.replace("\r", "")
    if "No space left on device" in text:
        return (
            f"{what} failed: No space left on device; free space on the board or set "
            "another workdir"
        )
    tail = (text.strip().splitlines() or ["no message"])[-1].strip()
    if ": " in tail:  # "cat: /x: No such file or directory" -> the reason only
        tail = tail.rsplit(": ", 1)[-1]
    return f"{what} failed: {tail[:300]}"
