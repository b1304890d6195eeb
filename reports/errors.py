"""The reports package's error: an input or output of the report the user can fix.

``ReportError`` carries one line that says what happened and what to do (a malformed
accuracy table, an output directory that cannot hold files). The command line
(``harness/cli.py``) prints it as ``mnbench: error: ...`` and maps it to exit code 2.
"""

from __future__ import annotations


class ReportError(Exception):
    """A failure of the report's input or output the user can fix: one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])
