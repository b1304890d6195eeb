"""The results package's error: a database or stored run the user can fix.

``ResultsError`` carries one line that says what happened and what to do (no database at a
path, a run that does not exist, a lease someone else holds). The command line
(``harness/cli.py``) prints it as ``mnbench: error: ...`` and maps it to exit code 2.
"""

from __future__ import annotations


class ResultsError(Exception):
    """A failure with stored results the user can fix: one line, never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])
