"""The reports package's error: an input or output of the report the user can fix (a
malformed accuracy table, an output directory that cannot hold files).

A subclass of the one root, ``mobilenet.errors.MnbenchError``: one line that says what
happened and what to do; the command line prints it and chooses the exit code.
"""

from __future__ import annotations

from mobilenet.errors import MnbenchError


class ReportError(MnbenchError):
    """A failure of the report's input or output the user can fix."""
