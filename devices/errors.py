"""The devices package's error: a device, transport or inventory problem the user can fix.

``DeviceError`` carries one line that says what happened and what to do. This package does
not decide how it ends a program: the command line (``harness/cli.py``) prints it as
``mnbench: error: ...`` and maps it to exit code 2.
"""

from __future__ import annotations


class DeviceError(Exception):
    """A failure with a device the user can fix: one line, never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])
