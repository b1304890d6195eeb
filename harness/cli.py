"""The ``mnbench`` command line: ``main(argv) -> int`` that tests call directly.

Exit codes (docs/architecture.md): 0 ok; 1 a finding the user asked to fail on (a regression,
failed measurements); 2 usage or harness error, printed as one line that says what to do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from harness import __version__
from harness.commands import COMMANDS
from harness.errors import UserError


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


def build_parser() -> argparse.ArgumentParser:
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
    for module_name in COMMANDS.values():
        cast(CommandModule, importlib.import_module(module_name)).add_parser(sub)
    return parser


RESUMABLE = ("run", "layers", "regress")
"""Verbs that store a run as they go, so an interrupted one can be resumed."""


def main(argv: Sequence[str] | None = None) -> int:
    command = None
    try:
        parser = build_parser()
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        command = args.command
        module = cast(CommandModule, importlib.import_module(COMMANDS[args.command]))
        return module.run(args)
    except UserError as exc:
        print(f"mnbench: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (`mnbench results | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        if command in RESUMABLE:
            print(
                "mnbench: interrupted; what was measured is kept, resume with --resume latest",
                file=sys.stderr,
            )
        else:
            print(
                f"mnbench: interrupted; nothing of {command or 'it'} was left half-written, "
                "run it again",
                file=sys.stderr,
            )
        return 130


def console() -> None:
    sys.exit(main())
