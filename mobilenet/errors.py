"""Errors a user can act on: one root, a subclass per layer, and the stop signals.

``MnbenchError`` carries one line that says what happened and what to do. Each layer raises
its own subclass (``DeviceError`` in ``devices``, ``ResultsError`` in ``results``,
``ReportError`` in ``reports``, ``UserError`` for the model family and the harness); none of
them decides how a program ends: only the command line (``harness/cli.py``) prints the line
and chooses the exit code. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import PurePath


class MnbenchError(Exception):
    """The root of every failure a user can fix: printed as one line, never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class UserError(MnbenchError):
    """A bad argument, model spec or file of the harness's own, or a workflow that cannot go
    on (the model family and the ``harness`` layer raise it)."""


class Interrupted(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP reached the harness: the CLI prints one line and exits
    128 + the signal number. ``hint`` is the command that resumes the work, when there is one.
    A ``BaseException`` like ``KeyboardInterrupt``, so nothing that catches ``Exception``
    swallows it."""

    def __init__(self, signum: int, hint: str | None = None) -> None:
        super().__init__(signum, hint)
        self.signum = signum
        self.hint = hint


_stop_signals: list[int] = []


def request_stop(signum: int) -> None:
    """Remember that SIGTERM/SIGHUP asked the harness to stop (see ``check_stop``)."""
    _stop_signals.append(signum)


def reset_stop() -> None:
    """Forget stop signals (the command that received them has ended)."""
    _stop_signals.clear()


def check_stop() -> None:
    """Raise ``Interrupted`` again if a stop signal arrived whose exception was lost.

    A signal handler's exception is swallowed when the signal lands inside a destructor or a
    callback whose errors Python ignores; the sweep calls this before every measurement so
    such a stop still happens."""
    if _stop_signals:
        raise Interrupted(_stop_signals[0])


def disk_full_message(exc: BaseException) -> str | None:
    """One line for an out-of-space error (``ENOSPC``/``EDQUOT`` or SQLite's "disk is full"),
    else None."""
    import errno
    import sqlite3

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = ""
        if exc.filename:
            path = PurePath(str(exc.filename))
            while any(part.startswith(".mnbench-") for part in path.parts):
                path = path.parent  # our own temporary files: name the user's directory
            where = f" writing in {path}" if path != PurePath(str(exc.filename)) else ""
            where = where or f" writing {path}"
        return f"no space left on the device{where}; free space or choose another directory"
    if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
        return "the results database's disk is full; free space (or move the database with --db)"
    return None
