"""The ``mnbench`` command line: ``main(argv) -> int`` that tests call directly.

Exit codes are chosen here and in ``harness/commands/exits.py`` (README, "Exit codes"): 0 ok;
1 a finding to fail on; 2 an error, printed as one line that says what to do; 3 inconclusive;
128 + N stopped by signal N.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Protocol, cast

from harness.commands import COMMANDS, SUMMARIES
from harness.commands.exits import EXIT_ERROR, interrupted_exit_code
from mobilenet import __version__
from mobilenet.errors import (
    Interrupted,
    MnbenchError,
    UserError,
    disk_full_message,
    request_stop,
    reset_stop,
)

_DAMAGED = ("no such table", "no such column", "malformed", "not a database", "datatype mismatch")


def damaged_database_message(exc: BaseException) -> str | None:
    """One line for a results database whose tables are missing or damaged (a dropped
    table, a corrupt page: a damaged or crafted file), else None."""
    text = str(exc)
    if not isinstance(exc, sqlite3.DatabaseError) or not any(s in text for s in _DAMAGED):
        return None
    shown = text if len(text) <= 80 else text[:77] + "..."
    return (
        f"the results database is damaged or was crafted ({shown}); "
        "read another database or restore this one from a copy"
    )


def exit_code_of(exc: MnbenchError) -> int:
    """The exit code of an error a user can act on, whichever layer raised it."""
    del exc  # every layer's error is a usage, input, device or database problem
    return EXIT_ERROR


class CommandModule(Protocol):
    def add_parser(
        self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
    ) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # "argument --x: --x 'v' is ..." from a type= check that names its flag: say it once
        head, sep, rest = message.partition(": ")
        if sep and head.startswith("argument ") and rest.startswith(head[9:].split("/")[0]):
            message = rest
        raise UserError(f"{self.prog}: {message} (see '{self.prog} --help')")


def chosen_verb(argv: Sequence[str]) -> str | None:
    """The verb an argument list runs: its first word that is not an option (or None)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``mnbench`` parser. Given ``argv``, only the module of the verb it runs is
    imported; every other verb is listed from ``COMMANDS``/``SUMMARIES`` alone, so
    ``mnbench --help`` starts without onnx or pandas. Without ``argv``, every verb's full
    parser is built."""
    verb = None if argv is None else chosen_verb(argv)
    parser = _Parser(
        prog="mnbench",
        description="Benchmark MobileNetV1 (alpha x resolution grid) with ONNX Runtime on "
        "this CPU, ARM boards over SSH and Android phones over adb.",
    )
    parser.add_argument("--version", action="version", version=f"mnbench {__version__}")
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser),
    )
    sub.required = True
    for name, module_name in COMMANDS.items():
        if argv is None or name == verb:
            cast(CommandModule, importlib.import_module(module_name)).add_parser(sub)
        else:
            sub.add_parser(name, help=SUMMARIES[name], add_help=False)
    return parser


RESUMABLE = ("run", "layers", "regress")
"""Verbs that store a run as they go, so an interrupted one can be resumed."""


_STOP_SIGNALS = ("SIGTERM", "SIGHUP")


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``Interrupted`` (once) as Ctrl-C raises KeyboardInterrupt,
    so every verb stops the same way: children killed, runs marked, one line."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            request_stop(signum)
            raise Interrupted(signum)

    previous = {}
    for name in _STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
        reset_stop()


def _interrupted_line(signum: int, hint: str | None, command: str | None) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if hint is not None:
        return f"mnbench: interrupted ({name}); what was measured is kept; {hint}"
    if command in RESUMABLE:
        return (
            f"mnbench: interrupted ({name}); what was measured is kept, resume with --resume latest"
        )
    return (
        f"mnbench: interrupted ({name}); nothing of {command or 'it'} was left half-written, "
        "run it again"
    )


def main(argv: Sequence[str] | None = None) -> int:
    command = None
    try:
        with _stop_signals_interrupt():
            words = list(sys.argv[1:] if argv is None else argv)
            args = build_parser(words).parse_args(words)
            command = args.command
            module = cast(CommandModule, importlib.import_module(COMMANDS[args.command]))
            return module.run(args)
    except MnbenchError as exc:
        print(f"mnbench: error: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    except Interrupted as exc:
        print(_interrupted_line(exc.signum, exc.hint, command), file=sys.stderr)
        return interrupted_exit_code(exc.signum)
    except BrokenPipeError:  # the reader went away (`mnbench results | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (OSError, sqlite3.DatabaseError) as exc:
        full = disk_full_message(exc) or damaged_database_message(exc)
        if full is None:
            raise
        print(f"mnbench: error: {full}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(_interrupted_line(signal.SIGINT, None, command), file=sys.stderr)
        return interrupted_exit_code(signal.SIGINT)


def console() -> None:
    sys.exit(main())
