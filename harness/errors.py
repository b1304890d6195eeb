"""Errors a user can act on.

A ``UserError`` carries one line that says what happened and what to do; the CLI prints it
and exits with its ``exit_code`` (2 for usage and harness errors, see docs/architecture.md).
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can fix: printed as one line, never as a traceback."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])
