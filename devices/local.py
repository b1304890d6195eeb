"""This machine as a device: ``LocalTransport``, the same interface as the SSH and adb
transports (devices/transport.py has the contract), so a sweep never branches on where the
device is. It makes a private ``/tmp/mnbench-*`` work directory on first use and removes it
on close, and removes those of earlier harness processes that were killed outright.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devices.interactive import InteractiveProcess, signal_local_group, spawn
from devices.transport import (
    WORKDIR_PREFIX,
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


class LocalTransport(ClosingContext):
    """This machine, through the same interface as a remote device.

    With no ``workdir`` it makes a private ``/tmp/mnbench-*`` directory on first use and
    removes it on ``close()`` (``keep_workdir=True`` keeps it: ``created_workdir`` says where).
    """

    def __init__(
        self, workdir: str | os.PathLike[str] | None = None, keep_workdir: bool = False
    ) -> None:
        self._workdir = str(workdir) if workdir is not None else None
        self._created: str | None = None
        self.keep_workdir = keep_workdir

    @property
    def name(self) -> str:
        return "local"

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            remove_orphaned_workdirs()
            self._workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
            self._created = self._workdir
            mark_owner(self._workdir)
        Path(self._workdir).mkdir(parents=True, exist_ok=True)
        return self._workdir

    @property
    def created_workdir(self) -> str | None:
        """The temporary work directory this transport made (None when given one)."""
        return self._created

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
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - see die_with_parent
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
        created, self._created = self._created, None
        if created is None:
            return
        if self.keep_workdir:
            return
        with contextlib.suppress(OSError):
            shutil.rmtree(created)
        self._workdir = None

    def start_interactive(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> InteractiveProcess:
        """``argv`` here, in its own session, spoken to line by line (devices/interactive.py)."""

        return spawn(argv, self.name, os.path.basename(argv[0]), signal_local_group, env, cwd, True)

    def signal_group(self, pgid: int, signal_name: str) -> None:

        signal_local_group(pgid, signal_name)


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
